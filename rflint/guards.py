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
import sys
from collections.abc import Iterator

from rflint.errors import TargetError


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
