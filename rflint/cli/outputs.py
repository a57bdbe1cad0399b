"""Where a command's output goes: the ``-o/--output-file`` values. Stdlib only.

One run can write several outputs, so that a CI job pays for ``import torch`` and tracing once::

    rflint check --output-format github --output-file sarif:rflint.sarif \\
                 --output-file markdown:$GITHUB_STEP_SUMMARY

``FORMAT:PATH`` writes that format to the file; a plain ``PATH`` writes the ``--output-format``
(or, for pictures, the format its extension names); ``-`` is stdout. The ``--output-format``
goes to stdout unless a plain ``PATH`` took it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rflint.errors import UsageError
from rflint.safe_write import write_atomic

STDOUT = "-"
#: files a report never replaces: sources, configuration and models (a mistyped ``-o``)
PROTECTED_SUFFIXES = frozenset({".py", ".pyi", ".pyx", ".ipynb", ".toml", ".cfg", ".ini", ".onnx", ".pt", ".pt2", ".pth", ".ckpt", ".safetensors"})


@dataclass(frozen=True)
class Output:
    """One destination: ``fmt`` written to ``path`` (``-`` for stdout). ``primary`` is the
    ``--output-format`` destination (``--statistics`` and colour apply there)."""

    fmt: str
    path: str = STDOUT
    primary: bool = True

    @property
    def to_stdout(self) -> bool:
        return self.path == STDOUT


def parse_outputs(
    values: Sequence[str] | None,
    primary: str,
    formats: Iterable[str],
    by_suffix: Mapping[str, str] | None = None,
    stdout_default: bool = True,
) -> list[Output]:
    """The outputs ``-o`` asks for.

    Args:
        values: the ``-o/--output-file`` values, in order.
        primary: the ``--output-format`` (already defaulted).
        formats: every format name the command knows (``FORMAT:`` prefixes are matched
            case-insensitively, so ``C:\\\\x`` on Windows stays a path).
        by_suffix: file extension -> format, for commands whose files say their format
            (``.svg``, ``.png``); other plain paths get ``primary``.
        stdout_default: whether ``primary`` goes to stdout when no plain path takes it.
    """
    known = {f.lower() for f in formats}
    suffixes = {k.lower(): v for k, v in (by_suffix or {}).items()}
    outputs: list[Output] = []
    for value in values or ():
        if not value:
            raise UsageError("--output-file needs a path", hint="e.g. -o report.sarif or -o sarif:report.sarif")
        head, sep, rest = value.partition(":")
        if sep and head.lower() in known:
            if not rest:
                raise UsageError(f"--output-file {value!r} names no file", hint=f"write {head}:PATH, or {head}:- for stdout")
            outputs.append(Output(head.lower(), rest, primary=False))
        else:
            outputs.append(Output(suffixes.get(Path(value).suffix.lower(), primary), value, primary=True))
    for output in outputs:
        refuse_protected(output.path)  # before the run, not after it
    if stdout_default and not any(o.primary for o in outputs):
        outputs.insert(0, Output(primary))
    if sum(o.to_stdout for o in outputs) > 1:
        raise UsageError("only one output can go to stdout", hint="give the others a file: -o FORMAT:PATH")
    return outputs


def refuse_protected(path: str) -> None:
    """A report never replaces an existing source, config or model file (``-o model.py``).

    Raises:
        UsageError: naming the file.
    """
    if path != STDOUT and Path(path).suffix.lower() in PROTECTED_SUFFIXES and os.path.lexists(path):
        raise UsageError(
            f"refusing to overwrite {path} with a report: it is a source, config or model file",
            hint="give --output-file another name, e.g. rflint-report.json",
        )


def write(output: Output, data: str | bytes, stdout) -> None:
    """Write ``data`` to ``output``: ``stdout`` byte for byte (never through rich), a file
    atomically with its missing parent folders created (:func:`rflint.safe_write.write_atomic`). An unwritable path is a usage error (exit 2)."""
    if output.to_stdout:
        if isinstance(data, bytes):
            stdout.buffer.write(data)
        else:
            stdout.write(data)
        return
    refuse_protected(output.path)
    try:
        write_atomic(output.path, data)
    except OSError as exc:
        raise UsageError(f"cannot write {output.path}: {exc.strerror or exc}", hint="check the path and its permissions") from None
