"""Exceptions that stand for bad input. The CLI turns each into one line and exit code 2.

Every message names the problem and what to do; a traceback is shown only with ``--verbose``.
"""

from __future__ import annotations


class RflintError(Exception):
    """Base class: a problem with the user's input, not a bug in rflint."""

    hint: str = ""
    #: the outcome depends on the machine (a memory cap), not on the input: never cached
    transient: bool = False

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        if hint:
            self.hint = hint


class TargetError(RflintError):
    """The model target cannot be found, imported or built."""


class TraceError(RflintError):
    """The model cannot be traced into a graph."""

    hint = "mark the offending submodule as a leaf (--leaf-module pkg.mod.Class) or remove data-dependent control flow"


class ShapeError(RflintError):
    """The model does not accept the requested input shape."""

    hint = "check --input-size / --input-shape against what the model's forward expects"


class ConfigError(RflintError):
    """The configuration file or an option is invalid."""


class UsageError(RflintError):
    """A command-line option is invalid."""


class ErfError(RflintError):
    """The effective receptive field cannot be measured (bad layer, weights or images)."""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (cut at ``limit``), or its type's name when it
    has none: what a one-line error shows of an exception raised by torch or the user's code."""
    text = str(exc).strip().splitlines()
    return text[0][:limit] if text else type(exc).__name__


def unexpected(exc: BaseException) -> str:
    """One line for an exception that is not bad input (a bug, or a library's own failure)."""
    text = str(exc).strip().splitlines()
    return f"unexpected {type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class UserExitError(TargetError):
    """The model's code tried to end the process (``sys.exit``, ``os._exit``, a fatal signal).

    rflint is a gate: a model that ends the run must fail it, never pass it silently."""

    hint = "remove the sys.exit() / os._exit() / exit() call from the model's import, factory or forward"


class ModelTimeoutError(TargetError):
    """Importing, building or tracing the model took longer than the time limit."""

    hint = "find what hangs (a download, input(), a lock, an endless loop), or raise the limit: --timeout SECONDS (0: none)"


class OutputError(RflintError):
    """The model's forward returned nothing rflint can analyse (no tensor computed from the input)."""

    hint = "forward() must return the output tensor(s) computed from its input (a tensor, or a tuple/list/dict holding one)"


class BrokenInstallError(RflintError):
    """An installed package fails to import (:func:`rflint.engine.dependencies.broken_install`),
    found in a child process, where the traceback that names the package is, and sent to the
    main process as this one-line error."""


class ArgumentError(RflintError, ValueError, TypeError):
    """A Python API call got an argument of the wrong type or value.

    One type for every bad argument, so that callers catch one thing; it is a ``ValueError``
    and a ``TypeError`` (what Python's own functions raise for each case) and a
    :class:`RflintError` (the message names the argument, ``hint`` the fix)."""
