"""Checking several models at once, in worker processes (``rflint check -j N``).

The output must be the one of a serial run, in the same order, so :func:`lint_all` yields one
outcome per spec in the order of the specs, whatever order the workers finish in; the engine
turns them into reports and failures exactly as it does serially.

Decisions:

- **Cache hits stay in the main process.** A linter with a ``lookup`` method (the result cache)
  is asked first; only the misses go to workers. An explicit ``-j N`` starts up to N processes
  (never more than there are misses); the default, the number of CPUs, starts one per four
  misses at most, since a process costs an interpreter and a torch import (2-4 s).
- **spawn, never fork.** The main process may already hold torch (a ``torchvision:*`` glob
  imports it to list the names), whose OpenMP and intra-op thread pools do not survive a fork,
  and the progress display runs a thread. A spawned worker starts clean, imports torch once and
  then checks one model at a time, so memory stays bounded by a worker count of meta-device
  models (the loader's address-space cap applies per worker).
- **The main process is one of the N.** ``-j N`` starts N - 1 workers, which take models from
  the front of the list, while the main process checks models from the back until they meet:
  an interpreter and a torch import (seconds) fewer than N workers and an idle main process.
- **What crosses the process boundary.** A spec goes out as :func:`rflint.serialize.to_data`
  (a spec from the config holds a ``MappingProxyType``, which does not pickle); a report comes
  back pickled by the worker (plain data if it would not pickle), and the main process puts its
  own spec back in. A worker's exception is sent as is when it survives pickling
  unchanged (rflint's errors do); otherwise its type name, message and hint are sent and an
  exception of a class with the same name is rebuilt, so the one-line message is the same as
  in a serial run. The worker's traceback is attached as the cause, for ``--verbose``.
"""

from __future__ import annotations

import os
import pickle
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from rflint.results import ModelReport
from rflint.serialize import from_data, to_data
from rflint.spec import ModelSpec

Linter = Callable[[ModelSpec], ModelReport]


#: with the default ``-j``, a process is started only for this many models to check: starting
#: one costs an interpreter and a torch import (2-4 s), about what four small models take
MODELS_PER_PROCESS = 4


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
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
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
    try:  # 4x faster than to_data + from_data for a 700-layer report
        return "pickle", pickle.dumps(report, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - anything that does not pickle goes as plain data
        return "report", to_data(report)


def _check_here(linter: Linter, spec: ModelSpec) -> ModelReport | BaseException:
    try:
        return linter(spec)
    except Exception as exc:  # noqa: BLE001 - reported by the engine as a failure
        return exc


def lint_all(
    specs: Sequence[ModelSpec],
    linter: Linter,
    jobs: int | None = 1,
    on_model: Callable[[ModelSpec], None] | None = None,
) -> Iterator[tuple[ModelSpec, ModelReport | BaseException]]:
    """``(spec, report or exception)`` for every spec, in order; ``on_model`` is called before
    each spec's outcome is produced (progress display). ``jobs`` processes at most (never more
    than there are models to check); None: the CPUs, but one process per
    :data:`MODELS_PER_PROCESS` models to check at most."""
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
    import multiprocessing
    import threading
    from collections import deque
    from concurrent.futures import Future, ProcessPoolExecutor, wait

    outcomes: dict[int, ModelReport | BaseException] = dict(done)
    pending = deque(i for i in range(len(specs)) if i not in done)
    running: dict[int, Future] = {}
    pool = ProcessPoolExecutor(max_workers=workers - 1, mp_context=multiprocessing.get_context("spawn"))
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


def _result(future: Any, spec: ModelSpec) -> ModelReport | BaseException:
    from dataclasses import replace

    try:
        kind, payload = future.result()
    except Exception as exc:  # noqa: BLE001 - a worker that died (killed, out of memory)
        return RuntimeError(f"the worker process checking this model stopped: {type(exc).__name__}: {exc}")
    if kind == "pickle":
        return replace(pickle.loads(payload), spec=spec)
    if kind == "report":
        return replace(from_data(ModelReport, payload), spec=spec)
    return payload.rebuild()
