"""Telling a broken installation from a bug: which installed package failed to import.

A dependency that cannot be imported (a torch build whose CUDA libraries are missing, a typer
without click) must end the run with exit code 2 and one line naming the package, never with a
traceback and exit code 1, which CI would read as "findings". Stdlib only: the entry point uses
it before typer and rich are imported.
"""

from __future__ import annotations

import sys
import traceback
from importlib import metadata

#: modules whose frames say nothing about which package is broken
_NEUTRAL = frozenset({"rflint", "importlib", "__main__", "runpy", "typing"})


def broken_package(exc: BaseException) -> str | None:
    """The top-level name of the installed package whose import raised ``exc``, or None when
    the failure did not happen while importing one (a bug in rflint, an error at run time).

    The outermost module-level frame of a package other than rflint in the traceback is the
    import that failed (``import torch`` running ``torch/__init__.py``); without one, an
    ``ImportError`` raised by rflint's own ``import typer`` names the missing module itself.
    """
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_name != "<module>":
            continue
        top = str(frame.f_globals.get("__name__", "")).split(".")[0]
        if top and top not in _NEUTRAL and top not in sys.stdlib_module_names:
            return top
    if isinstance(exc, ImportError) and exc.name:
        top = exc.name.split(".")[0]
        return None if top in _NEUTRAL else top
    return None


def distribution(top: str) -> str:
    """The pip name that installs the import name ``top`` (``yaml`` -> ``PyYAML``)."""
    try:
        names = metadata.packages_distributions().get(top) or []
    except Exception:  # noqa: BLE001 - a broken metadata folder must not hide the real error
        names = []
    return names[0] if names else top


def broken_install(exc: BaseException) -> tuple[str, str] | None:
    """``(message, hint)`` for a dependency that fails to import, else None."""
    top = broken_package(exc)
    if top is None:
        return None
    text = " ".join(str(exc).split())
    reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if isinstance(exc, ModuleNotFoundError) and exc.name and exc.name.split(".")[0] == top:
        message = f"the package {top!r} that rflint needs is not installed ({reason})"
    else:
        message = f"the installed package {top!r} fails to import ({reason})"
    dist = distribution(top)
    hint = f"reinstall it in the environment rflint runs in: {sys.executable} -m pip install --force-reinstall {dist}"
    return message, hint


def error_line(message: str, hint: str = "") -> str:
    """The one line every error ends with: ``rflint: error: MESSAGE (hint: HINT)``."""
    return f"rflint: error: {message}" + (f" (hint: {hint})" if hint else "")
