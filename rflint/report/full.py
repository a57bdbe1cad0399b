"""``full``: the human format (rustc/ruff style): code, severity and message, an arrow to the
location, the source line with a caret, the receptive-field numbers and a ``help:`` hint.

Rendered with rich into a string; ``ctx.color`` decides ANSI colour, and rich's environment
lookups are switched off (``_environ={}``) so the output depends on the arguments alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from io import StringIO

from rich.console import Console
from rich.text import Text

from rflint.results import ModelReport
from rflint.ir import Finding, Severity
from rflint.report.common import RenderContext, display_path, summary_line

STYLES = {Severity.ERROR: "bold red", Severity.WARN: "bold yellow", Severity.INFO: "bold cyan"}


def _numbers(finding: Finding) -> str:
    rf = finding.receptive_field
    size = "x".join(str(s) for s in finding.input_size)
    parts = [f"input {size}"] if size else []
    for key in ("input_r_min", "r_min", "r_max", "i_min", "i_max"):
        if key in rf:
            values = ["inf" if v is None else str(v) for v in rf[key]]  # type: ignore[union-attr]
            parts.append(f"{key} {values[0] if len(set(values)) == 1 else 'x'.join(values)}")
    return ", ".join(parts)


def _finding(finding: Finding, ctx: RenderContext) -> Text:
    text = Text()
    text.append(finding.code, style=STYLES.get(finding.severity, "bold"))
    text.append(f" [{finding.severity.value}] ", style="dim")
    text.append(finding.message, style="bold")
    text.append("\n")
    gutter = " " * 4
    if finding.source is not None:
        s = finding.source
        text.append(f"{gutter[:-1]}--> ", style="blue")
        text.append(f"{display_path(s.file, ctx)}:{s.line}:{s.col}\n")
        line = ctx.snippets.get((s.file, s.line))
        if line is not None:
            number = str(s.line)
            pad = " " * len(number)
            code = line.rstrip().expandtabs(4)
            start = min(max(s.col - 1, 0), len(code))
            if start == 0:  # a call-site line from a stack trace has no column: skip the indent
                start = len(code) - len(code.lstrip())
            span = max(len(code) - start, 1)
            text.append(f"{pad} |\n", style="blue")
            text.append(f"{number} | ", style="blue")
            text.append(code + "\n")
            text.append(f"{pad} | ", style="blue")
            text.append(" " * start + "^" * span + "\n", style=STYLES.get(finding.severity, "bold"))
    where = f"{finding.model} :: {finding.layer}" if finding.layer else finding.model
    text.append(f"{gutter[:-2]}= ", style="blue")
    text.append(f"model: {where}\n")
    numbers = _numbers(finding)
    if numbers:
        text.append(f"{gutter[:-2]}= ", style="blue")
        text.append(f"{numbers}\n")
    if finding.hint:
        text.append(f"{gutter[:-2]}= ", style="blue")
        text.append("help: ", style="bold cyan")
        text.append(f"{finding.hint}\n")
    return text


def render(reports: Sequence[ModelReport], findings: Sequence[Finding], ctx: RenderContext) -> str:
    buffer = StringIO()
    console = Console(
        file=buffer,
        force_terminal=ctx.color,
        no_color=not ctx.color,
        color_system="standard" if ctx.color else None,
        width=ctx.width,
        highlight=False,
        emoji=False,
        markup=False,
        soft_wrap=True,
        _environ={},
    )
    for finding in findings:
        console.print(_finding(finding, ctx))
    console.print(Text(summary_line(findings, ctx.failed), style="bold"))
    return buffer.getvalue()
