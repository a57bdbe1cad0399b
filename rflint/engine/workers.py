"""Checking several models at once, in worker processes (``rflint check -j N``).

The output must be the one of a serial run, in the same order, so :func:`lint_all` yields one
outcome per spec in the order of the specs, whatever order the workers finish in; the engine
turns them into reports and failures exactly as it does serially.

Decisions:

- **Cache hits stay in the main process.** A linter with a ``lookup`` method (the result cache)
  is asked first; only the misses go to workers. An explicit ``-j N`` starts up to N processes
  (never more than there are misses); the default, the number of CPUs, starts one per four
  misses at most, since a process that cannot be forked warm costs an interpreter and a torch
  import (2-4 s).
- **Workers start warm** (:func:`warm_context`, for any child process that checks models). A
  fresh interpreter importing torch costs 2-4 s of CPU, as much as several models, and on two
  cores it is paid while the main process imports torch too. So the main process imports
  torch and rflint's frontends (:data:`PRELOAD`) itself, which it needs for its own share
  anyway, before it has run any model code or torch operation, and *forks* the workers from
  that state: they start with everything imported, sharing the memory. Fork is used only
  where it is safe: Linux, a process with no other Python thread (the progress display runs
  one), CUDA not initialised; each forked worker runs torch with one intra-op thread, so no
  OpenMP pool inherited from the parent is ever entered. Elsewhere a ``forkserver`` preloaded
  with the same modules (one torch import for all workers), else ``spawn``.
  ``RFLINT_START_METHOD`` (``fork``, ``forkserver``, ``spawn``) forces one. A worker then
  checks one model at a time, so memory stays bounded by a worker count of meta-device models
  (the loader's address-space cap applies per worker).
- **The main process is one of the N.** ``-j N`` starts N - 1 workers, which take models from
  the front of the list, while the main process checks models from the back until they meet:
  an interpreter and a torch import (seconds) fewer than N workers and an idle main process.
- **With a sandbox (``rflint check``), no model code runs in the main process.** Every
  miss but an ONNX file is checked in a child of :mod:`rflint.engine.sandbox` (one model at a time,
  ``-j N`` children at most, the serial run in one), which also ends a model that hangs or
  kills its process without taking the other models with it. The main process then only
  answers hits, reads ONNX files and puts the outcomes in order.
- **What crosses the process boundary.** A spec goes out as :func:`rflint.serialize.to_data`
  (a spec from the config holds a ``MappingProxyType``, which does not pickle); a report comes
  back pickled by the worker (plain data if it would not pickle), and the main process puts its
  own spec back in. A worker's exception is sent as is when it survives pickling
  unchanged (rflint's errors do); otherwise its type name, message and hint are sent and an
  exception of a class with the same name is rebuilt, so the one-line message is the same as
  in a serial run. The worker's traceback is attached as the cause, for ``--verbose``.
"""

from __future__ import annotations

import functools

import contextlib
import importlib
import os
import pickle
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from rflint.results import ModelReport
from rflint.serialize import from_data, to_data
from rflint.spec import ModelSpec

if TYPE_CHECKING:
    from rflint.engine.sandbox import Sandbox

Linter = Callable[[ModelSpec], ModelReport]


#: with the default ``-j``, a process is started only for this many models to check: starting
#: one costs an interpreter and a torch import (2-4 s), about what four small models take
MODELS_PER_PROCESS = 4


#: what a worker imports before its first model: torch and the frontends a miss runs through
PRELOAD = ("torch", "torch.fx", "rflint.sources.load", "rflint.frontend.fx", "rflint.frontend.geometry", "rflint.frontend.torch_ops", "rflint.frontend.torch_modules", "rflint.frontend.shapes")
START_METHODS = ("fork", "forkserver", "spawn")


def warm_context(extra: Sequence[str] = ()) -> Any:
    """A :mod:`multiprocessing` context whose processes start with :data:`PRELOAD` (and
    ``extra`` modules, e.g. ``torchvision`` for its targets) already imported: fork from this
    process after importing them here, where that is safe, else a preloaded forkserver, else
    spawn (see the module docstring). Processes from it should call :func:`warm_start` first
    (``initializer=warm_start``)."""
    import multiprocessing

    from rflint.errors import UsageError

    modules = [*PRELOAD, *extra]
    method = os.environ.get("RFLINT_START_METHOD", "").strip().lower() or None
    if method is not None and method not in START_METHODS:
        raise UsageError(f"RFLINT_START_METHOD={method!r} is not a start method", hint="use fork, forkserver or spawn, or unset it")
    available = multiprocessing.get_all_start_methods()
    if method is None:
        method = "fork" if fork_is_safe() else "forkserver" if "forkserver" in available else "spawn"
    if method == "fork":
        for name in modules:
            importlib.import_module(name)
        for stream in (sys.stdout, sys.stderr):  # a buffered line would be written twice
            with contextlib.suppress(AttributeError, ValueError, OSError):  # None or closed
                stream.flush()
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload(modules)
    return context


def fork_is_safe() -> bool:
    """Fork copies one thread and every lock: only on Linux (macOS frameworks are not
    fork-safe), with no other Python thread running, and before CUDA is initialised."""
    import threading

    if not sys.platform.startswith("linux") or threading.active_count() > 1:
        return False
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    return not (cuda is not None and getattr(cuda, "is_initialized", lambda: False)())


def warm_start() -> None:
    """First thing in a worker: one intra-op thread (a forked worker must not enter an OpenMP
    pool it inherited; one process per core is the parallelism anyway)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def default_jobs() -> int:
    """The CPUs this process may run on (a container's limit, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker, shown as its cause."""

    def __str__(self) -> str:
        return "\n" + "".join(self.args)


@dataclass(frozen=True)
class _Error:
    """A worker's exception, as data."""

    exception: BaseException | None  # the exception itself when it pickles unchanged
    type_name: str
    message: str
    hint: str
    traceback: str

    def rebuild(self) -> BaseException:
        exc = self.exception
        if exc is None:
            exc = type(self.type_name, (Exception,), {"hint": self.hint})(self.message)
        exc.__cause__ = RemoteTraceback(self.traceback)
        return exc


def _portable(exc: BaseException) -> _Error:
    from rflint.engine.dependencies import broken_install
    from rflint.errors import BrokenInstallError, RflintError

    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    broken = None if isinstance(exc, RflintError) else broken_install(exc)
    if broken is not None:  # the traceback names the package; it does not cross the boundary
        exc = BrokenInstallError(*broken)
    sendable: BaseException | None
    try:
        back = pickle.loads(pickle.dumps(exc))
        same = type(back) is type(exc) and str(back) == str(exc) and getattr(back, "hint", "") == getattr(exc, "hint", "")
        sendable = exc if same else None
    except Exception:  # noqa: BLE001 - anything that does not round-trip is sent as text
        sendable = None
    if sendable is not None:
        sendable.__traceback__ = None
        sendable.__cause__ = sendable.__context__ = None
    return _Error(sendable, type(exc).__name__, str(exc), str(getattr(exc, "hint", "") or ""), text)


def _work(linter: Linter, spec_data: Any) -> tuple[str, Any]:
    """In a worker: check one model; ("pickle", bytes) or ("report", data) or ("error", _Error)."""
    spec = from_data(ModelSpec, spec_data)
    try:
        report = linter(spec)
    except Exception as exc:  # noqa: BLE001 - every failure goes back to the main process
        return "error", _portable(exc)
    except SystemExit as exc:  # the model's code, outside the guards: a failure, not the worker's end
        from rflint.sources.guards import exit_error

        return "error", _portable(exit_error(spec.display_name, exc.code))
    try:  # 4x faster than to_data + from_data for a 700-layer report
        return "pickle", pickle.dumps(report, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - anything that does not pickle goes as plain data
        return "report", to_data(report)


def _check_here(linter: Linter, spec: ModelSpec) -> ModelReport | BaseException:
    try:
        return linter(spec)
    except Exception as exc:  # noqa: BLE001 - reported by the engine as a failure
        return exc
    except SystemExit as exc:  # the model's code, outside the guards: never the run's exit
        from rflint.sources.guards import exit_error

        return exit_error(spec.display_name, exc.code)


def lint_all(
    specs: Sequence[ModelSpec],
    linter: Linter,
    jobs: int | None = 1,
    on_model: Callable[[ModelSpec], None] | None = None,
    sandbox: Sandbox | None = None,
) -> Iterator[tuple[ModelSpec, ModelReport | BaseException]]:
    """``(spec, report or exception)`` for every spec, in order; ``on_model`` is called before
    each spec's outcome is produced (progress display). ``jobs`` processes at most (never more
    than there are models to check); None: the CPUs, but one process per
    :data:`MODELS_PER_PROCESS` models to check at most. With a ``sandbox``, every model whose
    check runs code is checked in a child process (:mod:`rflint.engine.sandbox`), serially too."""
    if sandbox is not None:
        yield from _isolated(specs, linter, jobs, on_model, sandbox)
        return
    lookup = getattr(linter, "lookup", None)
    done: dict[int, ModelReport | BaseException] = {}
    if (jobs is None or jobs > 1) and lookup is not None:
        for i, spec in enumerate(specs):
            hit = lookup(spec)
            if hit is not None:
                done[i] = hit
    misses = [i for i in range(len(specs)) if i not in done]
    if jobs is None:
        workers = min(default_jobs(), len(misses) // MODELS_PER_PROCESS)
    else:
        workers = min(jobs, len(misses))
    if workers < 2:
        for i, spec in enumerate(specs):
            if on_model is not None:
                on_model(spec)
            yield spec, done[i] if i in done else _check_here(linter, spec)
        return
    yield from _in_workers(specs, linter, workers, done, on_model)


def _isolated(
    specs: Sequence[ModelSpec],
    linter: Linter,
    jobs: int | None,
    on_model: Callable[[ModelSpec], None] | None,
    sandbox: Sandbox,
) -> Iterator[tuple[ModelSpec, ModelReport | BaseException]]:
    """Hits and ONNX files (read without running code) in this process, every other model in
    a child; ``jobs`` children at most (None: as for worker processes, but at least one)."""
    from rflint.engine.sandbox import run_isolated
    from rflint.sources.targets import is_onnx_target

    lookup = getattr(linter, "lookup", None)
    outcomes: dict[int, ModelReport | BaseException] = {}
    for i, spec in enumerate(specs):
        hit = lookup(spec) if lookup is not None else None
        if hit is not None:
            outcomes[i] = hit
        elif is_onnx_target(spec.target):
            outcomes[i] = _check_here(linter, spec)
    misses = [i for i in range(len(specs)) if i not in outcomes]
    processes = max(1, min(default_jobs(), len(misses) // MODELS_PER_PROCESS) if jobs is None else min(jobs, len(misses)))
    work = functools.partial(_work, linter)  # what a child does with one spec's data (picklable)
    finished = run_isolated(misses, lambda i: to_data(specs[i]), lambda i: specs[i].display_name, work, processes, sandbox)
    for emitted, spec in enumerate(specs):
        while emitted not in outcomes:
            i, outcome = next(finished)
            outcomes[i] = _outcome(outcome, specs[i])
        if on_model is not None:
            on_model(spec)
        yield spec, outcomes.pop(emitted)
    finished.close()


def _outcome(outcome: Any, spec: ModelSpec) -> ModelReport | BaseException:
    """A child's :func:`_work` result as a report or an exception (or the exception that a
    child which died or hung stands for)."""
    if isinstance(outcome, BaseException):
        return outcome
    kind, payload = outcome
    if kind == "pickle":
        return replace(pickle.loads(payload), spec=spec)
    if kind == "report":
        return replace(from_data(ModelReport, payload), spec=spec)
    return payload.rebuild()


def _in_workers(
    specs: Sequence[ModelSpec],
    linter: Linter,
    workers: int,
    done: dict[int, ModelReport | BaseException],
    on_model: Callable[[ModelSpec], None] | None,
) -> Iterator[tuple[ModelSpec, ModelReport | BaseException]]:
    """``workers - 1`` worker processes take models from the front of the list (one running
    and one queued each, refilled as each finishes); the main process checks models from the
    back until they meet. Outcomes are yielded in the order of ``specs`` as soon as the next
    one is known."""
    import threading
    from collections import deque
    from concurrent.futures import Future, ProcessPoolExecutor, wait

    outcomes: dict[int, ModelReport | BaseException] = dict(done)
    pending = deque(i for i in range(len(specs)) if i not in done)
    running: dict[int, Future] = {}
    pool = ProcessPoolExecutor(max_workers=workers - 1, mp_context=warm_context(_extra_modules(specs)), initializer=warm_start)
    handing = threading.Lock()  # a model is in `pending` or in `running`, never in between

    def feed(_finished: Future | None = None) -> None:
        """Hand the front of the list to the pool (also from the pool's thread, as a model
        finishes, so that no worker waits for the main process to finish its own model)."""
        with handing:
            if not pending:
                return
            i = pending[0]
            try:
                running[i] = future = pool.submit(_work, linter, to_data(specs[i]))
            except RuntimeError:  # the pool is shutting down
                return
            pending.popleft()
        future.add_done_callback(feed)

    emitted = 0
    try:
        for _ in range(2 * (workers - 1)):
            feed()
        while emitted < len(specs):
            while emitted in outcomes or (emitted in running and running[emitted].done()):
                if emitted not in outcomes:
                    outcomes[emitted] = _result(running.pop(emitted), specs[emitted])
                if on_model is not None:
                    on_model(specs[emitted])
                yield specs[emitted], outcomes.pop(emitted)
                emitted += 1
            if emitted >= len(specs):
                break
            with handing:
                mine = pending.pop() if pending else None
            if mine is None:  # the rest is with the workers
                wait([running[emitted]])
                continue
            outcomes[mine] = _check_here(linter, specs[mine])
    finally:
        pool.shutdown(wait=emitted < len(specs), cancel_futures=True)


def _extra_modules(specs: Sequence[ModelSpec]) -> list[str]:
    """Model libraries the targets name (``torchvision:``, ``timm:``), to import once for all."""
    prefixes = {s.target.split(":", 1)[0] for s in specs if ":" in s.target}
    return [name for name, prefix in (("torchvision.models", "torchvision"), ("timm", "timm")) if prefix in prefixes and _importable(name)]


def _importable(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name.split(".")[0]) is not None
    except (ImportError, ValueError):
        return False


def _result(future: Any, spec: ModelSpec) -> ModelReport | BaseException:
    try:
        outcome = future.result()
    except Exception as exc:  # noqa: BLE001 - a worker that died (killed, out of memory)
        return RuntimeError(f"the worker process checking this model stopped: {type(exc).__name__}: {exc}")
    return _outcome(outcome, spec)
