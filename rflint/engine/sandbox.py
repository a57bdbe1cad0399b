"""Running a model's code where it cannot touch the run: a child process per checker.

Importing a model file, calling its factory and tracing its forward run arbitrary code, and
rflint is a gate whose stdout is parsed (JSON, SARIF, JUnit) and whose exit code is trusted.
What that code may do, and what :func:`run_isolated` makes of it:

- **write to stdout** (``print``, ``os.write(1, ...)``, ``sys.__stdout__``, an ``atexit``
  handler): a child's file descriptor 1 is its stderr from its first line, so nothing it
  writes can reach rflint's stdout; it is shown on stderr, in order with rflint's notes;
- **end the process** (``sys.exit``, ``os._exit``, a segfault, the OOM killer): only the
  child ends; its model becomes a one-line failure (:class:`~rflint.errors.UserExitError`,
  exit 2) and a fresh child checks the next models;
- **hang** (an import that never returns, ``input()``, an endless loop): the child is killed
  after the per-model time limit (``--timeout``, :data:`DEFAULT_TIMEOUT`), and the model fails
  with :class:`~rflint.errors.ModelTimeoutError`; the clock starts once the child has
  imported torch, so the limit measures the model's own code;
- **change process state** (``os.chdir``, ``sys.path``, monkeypatched torch, ``atexit``):
  it lives and dies with the child. The parent never imports the model, so its working
  directory (where ``-o report.json`` goes), its stdout and its exit status are its own. A
  child checks several models in turn, so it restores the working directory after each
  (:func:`guarded`), and it ends with ``os._exit``, so user ``atexit`` handlers never run.

Why a child process, not an in-process guard alone: a guard cannot catch ``os._exit`` or a
segfault, cannot stop a hang inside C code (a signal is only handled between bytecodes), and
cannot undo a monkeypatch; a process boundary bounds all of them the same way. The cost is an
interpreter start, rflint's import in the child and one pickled report; torch is imported in
the child instead of the parent, so a miss pays it once either way (``benchmarks/isolation.py``
measures the difference). Cache hits are answered in the parent without a child, and ONNX
files, which rflint reads without running code, are checked in the parent.

:func:`guarded` is the in-process half, for the callers that need the model in their own
process (the Python API with a built module, ``suggest``, ``erf``, ``inspect``): stdout at
file-descriptor level, the working directory and ``SystemExit`` are contained there too,
though ``os._exit`` and hangs are not.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from rflint.project.config import DEFAULT_TIMEOUT
from rflint.sources.guards import _flush, exit_error, guarded, stdout_to_stderr, timeout_error  # noqa: F401 - re-exported

#: how long a finished child may take to exit before it is killed
_EXIT_GRACE = 2.0
#: how often the children are polled for having died
_POLL = 0.5


@dataclass(frozen=True)
class Sandbox:
    """How models are isolated: the per-model time limit in seconds (None or 0: none)."""

    timeout: float | None = DEFAULT_TIMEOUT

    @property
    def limit(self) -> float | None:
        return self.timeout if self.timeout else None


# ---------------------------------------------------------------------------------------------
# the child


def _child_main(conn: Any, work: Callable[[Any], Any]) -> None:
    """A child's whole life: stdout to stderr, torch imported, then one model per message
    (spec data in, ``work``'s outcome out) until None; ``os._exit`` at the end so that no
    ``atexit`` handler of the models' code runs."""
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    with contextlib.suppress(Exception):
        import rflint.sources.load  # noqa: F401 - torch, before the clock of the first model starts
    conn.send(("ready", None))
    while True:
        try:
            spec_data = conn.recv()
        except EOFError:
            break
        if spec_data is None:
            break
        cwd = os.getcwd()
        outcome = work(spec_data)
        with contextlib.suppress(OSError):
            os.chdir(cwd)
        _flush(sys.stdout, sys.stderr)
        conn.send(outcome)
    from multiprocessing import util

    with contextlib.suppress(Exception):
        util._run_finalizers()  # multiprocessing's own clean-up (tqdm's lock, in fx), no atexit
    _flush(sys.stdout, sys.stderr)
    os._exit(0)


@dataclass
class _Child:
    process: Any
    conn: Any
    ready: bool = False
    job: int | None = None
    deadline: float | None = None


def _start(context: Any, work: Callable[[Any], Any]) -> _Child:
    parent_end, child_end = context.Pipe()
    process = context.Process(target=_child_main, args=(child_end, work), name="rflint-model")
    process.start()
    child_end.close()  # the parent's copy: the pipe reports EOF when the child dies
    return _Child(process, parent_end)


def _stop(child: _Child, kill: bool) -> None:
    if not kill:
        with contextlib.suppress(OSError, ValueError):
            child.conn.send(None)
        child.process.join(_EXIT_GRACE)
    if child.process.is_alive():
        child.process.kill()
    child.process.join()
    child.conn.close()


@dataclass
class _Run:
    """One isolated run: the jobs left, the children and what each runs."""

    queue: deque[int]
    send: Callable[[int], Any]
    name: Callable[[int], str]
    work: Callable[[Any], Any]
    context: Any
    limit: float | None
    children: list[_Child] = field(default_factory=list)

    def start(self) -> None:
        self.children.append(_start(self.context, self.work))

    def hand_out(self, child: _Child) -> None:
        """Give the child the next job, or let it go when none is left."""
        if not self.queue:
            self.children.remove(child)
            _stop(child, kill=False)
            return
        child.job = self.queue.popleft()
        child.deadline = None if self.limit is None else time.monotonic() + self.limit
        with contextlib.suppress(OSError):  # a child that just died: its end of the pipe reports it
            child.conn.send(self.send(child.job))

    def drop(self, child: _Child) -> int | None:
        """Kill a child that died or hung (a fresh one takes over if jobs are left); the
        job it was running, or, if it died before it was ready, the next one (which fails
        in its place, so a child that cannot start ends the run instead of looping)."""
        self.children.remove(child)
        _stop(child, kill=True)
        job = child.job
        if job is None and not child.ready and self.queue:
            job = self.queue.popleft()
        if self.queue:
            self.start()
        return job

    def next_wakeup(self) -> float:
        """Seconds until the next deadline, :data:`_POLL` at most (a child's death is polled
        for as well as read off its pipe: a process it forked keeps the pipe open)."""
        deadlines = [c.deadline - time.monotonic() for c in self.children if c.deadline is not None]
        return max(0.0, min([_POLL, *deadlines]))


def run_isolated(
    jobs: Sequence[int],
    send: Callable[[int], Any],
    name: Callable[[int], str],
    work: Callable[[Any], Any],
    processes: int,
    sandbox: Sandbox,
) -> Iterator[tuple[int, Any]]:
    """``(job, outcome)`` for every job, in the order they finish, each checked in a child
    process (``processes`` at most, one model at a time each). ``send(job)`` is the message
    for a child (a spec as data), ``name(job)`` the model's name for a failure; an outcome is
    what ``work`` (a picklable callable, run in the child) returns for that data, or the
    exception for a model whose child died or hung."""
    import multiprocessing
    from multiprocessing.connection import wait

    _quiet_resource_tracker()
    run = _Run(deque(jobs), send, name, work, multiprocessing.get_context("spawn"), sandbox.limit)
    try:
        for _ in range(min(processes, len(jobs))):
            run.start()
        while run.children:
            readable = wait([c.conn for c in run.children], timeout=run.next_wakeup())
            now = time.monotonic()
            for child in list(run.children):
                if child.conn in readable:
                    yield from _receive(child, run)
                elif not child.process.is_alive():  # a process the model forked may hold the pipe open
                    yield from _died(child, run)
                elif child.deadline is not None and now >= child.deadline:
                    job = run.drop(child)
                    if job is not None:
                        yield job, timeout_error(run.name(job), run.limit or 0)
    finally:
        for child in run.children:
            _stop(child, kill=True)


def _quiet_resource_tracker() -> None:
    """Start multiprocessing's resource tracker without its "leaked semaphore" warning: it
    cleans up after a child that was killed or ended by the model's code (which the model's
    failure already reports), and a warning there would only confuse."""
    from multiprocessing import resource_tracker

    flag = "ignore::UserWarning:multiprocessing.resource_tracker"
    sys.warnoptions.append(flag)
    try:
        # nor with rflint's stderr (it passes sys.stderr's descriptor when it has one): a
        # process the model forked keeps the tracker alive, and the tracker would keep a
        # caller's stderr pipe open (pre-commit, CI) until then
        with contextlib.suppress(Exception), contextlib.redirect_stderr(io.StringIO()):
            resource_tracker.ensure_running()
    finally:
        sys.warnoptions.remove(flag)


def _died(child: _Child, run: _Run) -> Iterator[tuple[int, Any]]:
    """A child ended before it was told to: the model's code ended it."""
    job = run.drop(child)
    if job is not None:
        yield job, exit_error(run.name(job), child.process.exitcode)


def _receive(child: _Child, run: _Run) -> Iterator[tuple[int, Any]]:
    try:
        message = child.conn.recv()
    except (EOFError, OSError):
        yield from _died(child, run)
        return
    child.ready = True
    job, child.job, child.deadline = child.job, None, None
    run.hand_out(child)  # before the outcome is used: the child works meanwhile
    if job is not None:
        yield job, message
