"""The ``rflint`` command line. The only module that prints, reads the environment or picks
exit codes: 0 = no error-level findings, 1 = findings at error level, 2 = could not run.

:mod:`.base` holds the app and what every command shares; :mod:`.lint` has ``check``,
``clean`` and ``rule``, :mod:`.views` the one-model commands (``inspect``, ``suggest``,
``graph``, ``plot``, ``erf``) and :mod:`.diff` ``rflint diff``. The import order below is the
order of ``rflint --help``.

Every command speaks one option vocabulary: the model options (``--input-size``,
``--input-shape``, ``--model-kwargs``, ``--leaf-module``, ``--trust-pickle``),
``--output-format``, ``-o/--output-file`` (repeatable, ``FORMAT:PATH`` or ``PATH``),
``--color``, ``--config``, ``--isolated`` and ``--verbose``; every command reads the nearest
config file and takes a configured model's ``name`` wherever it takes a target. Nothing here
imports torch at module level.
"""

from __future__ import annotations

from rflint.cli import diff, lint, views  # noqa: I001 - registers the commands, in this order
from rflint.cli.base import app, main, show_progress
from rflint.cli.diff import FailOn, diff_exit_code

__all__ = ["FailOn", "app", "diff", "diff_exit_code", "lint", "main", "show_progress", "views"]
