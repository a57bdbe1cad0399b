"""The ``rflint`` command line. The only module that prints, reads the environment or picks
exit codes: 0 = no error-level findings, 1 = findings at error level, 2 = could not run.

:mod:`.base` holds the app and what every command shares; :mod:`.lint` has ``check``,
``clean`` and ``rule``, :mod:`.views` the per-model views (``inspect``, ``halo``,
``suggest``, ``graph``, ``plot``, ``erf``) and :mod:`.diff` ``rflint diff``. The order of :data:`COMMANDS`
is the order of ``rflint --help``.

Every command speaks one option vocabulary: the model options, declared once
(:func:`rflint.cli.options.model_options`: ``--input-size``, ``--input-shape``,
``--model-kwargs``, ``--leaf-module``, ``--trust-pickle``, ``--task``, ``--causal``,
``--sample-rate``),
``--output-format``, ``-o/--output-file`` (repeatable, ``FORMAT:PATH`` or ``PATH``),
``--color``, ``--config``, ``--isolated`` and ``--verbose``; every command reads the nearest
config file and takes a configured model's ``name`` wherever it takes a target. Nothing here
imports torch at module level.

A command module is imported only when its command runs: a cached ``rflint check`` is mostly
interpreter start-up and imports, and ``rflint diff``'s module alone costs more than the rest
of the answer. :func:`main` reads the command's name off the command line and registers only
that module's commands; ``--help``, an unknown name, shell completion and any use of
:data:`app` from Python (``from rflint.cli import app``, ``CliRunner``) register them all.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

#: command name -> the module that defines it, in the order of ``rflint --help``
COMMANDS = {
    "diff": "rflint.cli.diff",
    "check": "rflint.cli.lint",
    "clean": "rflint.cli.lint",
    "rule": "rflint.cli.lint",
    "inspect": "rflint.cli.views",
    "halo": "rflint.cli.views",
    "suggest": "rflint.cli.views",
    "graph": "rflint.cli.views",
    "plot": "rflint.cli.views",
    "erf": "rflint.cli.views",
}

__all__ = ["COMMANDS", "FailOn", "app", "diff", "diff_exit_code", "invoked_command", "lint", "main", "show_progress", "views"]


def invoked_command(args: Sequence[str]) -> str | None:
    """The command a command line runs (its first word that is not an option; the app's own
    options take no value), or None for none or an unknown one."""
    for arg in args:
        if arg == "--":
            return None
        if not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def register_commands(name: str | None = None) -> None:
    """Import the module of command ``name`` (every command module, in help order, for None,
    and every command left out before), which registers its commands on the app."""
    from rflint.cli import base

    modules = [COMMANDS[name]] if name in COMMANDS else list(dict.fromkeys(COMMANDS.values()))
    if name not in COMMANDS:
        base.only_command = None
    for module in modules:
        importlib.import_module(module)
    if name not in COMMANDS:
        base.build_deferred()


def load(args: Sequence[str]) -> Any:
    """The app with the commands that ``args`` (a command line without the program name) may
    run registered: only the invoked command, none for ``--version``, else all (see the module
    docstring). Imports the CLI's dependencies, so :mod:`rflint.__main__` calls it under its
    broken-install guard."""
    from rflint.cli import base

    completing = any(key.startswith("_") and key.endswith("_COMPLETE") for key in os.environ)
    name = None if completing else invoked_command(args)
    if name is not None:
        base.only_command = name
        register_commands(name)
    elif completing or not {"--version", "-V"} & set(args):
        register_commands()
    return base.app


def main() -> None:
    """Run the CLI on ``sys.argv``."""
    load(sys.argv[1:])()


def __getattr__(name: str) -> Any:
    """``app``, ``FailOn``, ... on first use, with every command registered."""
    if name in ("app", "show_progress"):
        register_commands()
        from rflint.cli import base

        return getattr(base, name)
    if name in ("FailOn", "diff_exit_code"):
        register_commands()
        from rflint.cli import diff

        return getattr(diff, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
