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
