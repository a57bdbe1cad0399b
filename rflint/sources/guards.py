"""Running user code: importing a model file and calling its factory execute arbitrary code.

Why a memory cap: importing a model file and calling its factory runs arbitrary user code, and
the CPU retry (or code that names ``device="cpu"`` explicitly) really allocates. To make sure a
model that allocates 100 GB is refused instead of bringing the machine down, import and
construction run under a temporary ``RLIMIT_AS`` soft limit of *current address space + a
budget* (half the physical memory by default, ``memory_limit`` to change it). An allocation
past the budget then fails inside torch (``RuntimeError: ... can't allocate memory``) or
Python (``MemoryError``) and becomes a :class:`~rflint.errors.TargetError`. The limit is
restored afterwards. It is a no-op where ``resource``/``RLIMIT_AS`` is unavailable or not
enforced (Windows, macOS); there the meta device is the only protection.

User code may print; its stdout is redirected to stderr while it runs so that machine-readable
output (JSON, SARIF) on stdout stays valid.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from typing import Any

from rflint.errors import ModelTimeoutError, TargetError, UserExitError


class MemoryExceeded(Exception):
    """User code hit the address-space cap."""


def default_memory_limit() -> int:
    """Half the physical memory: enough for any real model, far from taking the machine down."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def memory_error(what: str, budget: int) -> TargetError:
    error = TargetError(
        f"{what} tried to allocate more than the {budget / 2**30:.1f} GiB memory limit",
        hint="make the model constructible on the meta device (no explicit device='cpu' tensors), or build it smaller",
    )
    error.transient = True  # the limit is the machine's: the result cache must not keep it
    return error


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    return isinstance(exc, RuntimeError) and (
        "can't allocate memory" in str(exc) or "not enough memory" in str(exc).lower()
    )


@contextlib.contextmanager
def user_code(budget: int) -> Iterator[None]:
    """Run user code with stdout sent to stderr and under the memory cap; turn an
    out-of-memory failure into :class:`MemoryExceeded`."""
    try:
        with contextlib.redirect_stdout(sys.stderr), _address_space_cap(budget):
            yield
    except BaseException as exc:
        if _is_oom(exc):
            raise MemoryExceeded(str(exc)) from exc
        raise


def _address_space_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


@contextlib.contextmanager
def _address_space_cap(budget: int) -> Iterator[None]:
    """Temporarily lower the soft ``RLIMIT_AS`` to current usage + ``budget``."""
    try:
        import resource
    except ImportError:  # Windows
        yield
        return
    current = _address_space_bytes()
    if current is None or not hasattr(resource, "RLIMIT_AS"):
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = current + budget
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if soft != resource.RLIM_INFINITY and soft <= limit:
        yield  # an existing, stricter limit already applies
        return
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


# ---------------------------------------------------------------------------------------------
# in-process containment: what the model's code may not do to the run (print to stdout, chdir, exit)


def _flush(*streams: Any) -> None:
    for stream in streams:
        with contextlib.suppress(Exception):
            stream.flush()


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Point file descriptor 1 and ``sys.stdout`` at stderr, and restore both after. What the
    code buffered in ``sys.__stdout__`` is flushed while fd 1 still points at stderr."""
    _flush(sys.stdout, sys.__stdout__)
    try:
        saved = os.dup(1)
    except OSError:  # no file descriptor 1 (a closed stdout): Python-level redirection only
        saved = None
    if saved is not None:
        os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        _flush(sys.stdout, sys.__stdout__, sys.stderr, sys.__stderr__)
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)


def exit_error(name: str, status: object) -> UserExitError:
    """The failure of model ``name`` whose code tried to end the process with ``status``."""
    return UserExitError(f"{name}: the model's code exited the process ({_status_text(status)})")


def timeout_error(name: str, limit: float) -> ModelTimeoutError:
    return ModelTimeoutError(f"{name}: importing, building and tracing the model did not finish within {limit:g} s (--timeout)")


def _status_text(status: object) -> str:
    if isinstance(status, int) and status < 0:
        with contextlib.suppress(ValueError):
            return f"killed by signal {signal.Signals(-status).name}"
        return f"killed by signal {-status}"
    if status is None or isinstance(status, int):
        return f"exit status {status or 0}"
    return f"exit status 1, message {str(status)[:100]!r}"  # sys.exit("text") prints it and exits 1


@contextlib.contextmanager
def guarded(name: str) -> Iterator[None]:
    """Run model ``name``'s code with stdout on stderr, the working directory restored after,
    and ``SystemExit`` turned into :class:`UserExitError`."""
    cwd = os.getcwd()
    try:
        with stdout_to_stderr():
            yield
    except SystemExit as exc:
        raise exit_error(name, exc.code) from None
    finally:
        with contextlib.suppress(OSError):
            os.chdir(cwd)
