"""``full``: the human format (rustc/ruff style): code, severity and message, an arrow to the
location, the source line with a caret, the receptive-field numbers and a ``help:`` hint.

Findings that share a source line are grouped under one snippet: a model whose layers all sit
in one ``nn.Sequential`` (VGG's ``x = self.features(x)``) shows that line once, with one
headline and one line of numbers per layer. Long lines wrap with a hanging indent at
``ctx.width``; source lines never wrap. A layer a helper built (library code, a builder
elsewhere in the project) sits at the user's line, and ``= built at FILE:LINE`` names the
helper's line. Rendered with rich into a string; ``ctx.color`` decides
ANSI colour, and rich's environment lookups are switched off (``_environ={}``) so the output
depends on the arguments alone.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from itertools import groupby

from rich.text import Text

from rflint.ir import Finding, Severity
from rflint.report.common import RenderContext, axes_text, display_path, run_summary, string_console
from rflint.results import ModelReport

STYLES = {Severity.ERROR: "bold red", Severity.WARN: "bold yellow", Severity.INFO: "bold cyan"}
GUTTER = "  = "


def _numbers(finding: Finding) -> str:
    rf = finding.receptive_field
    size = "x".join(str(s) for s in finding.input_size)
    parts = [f"input {size}"] if size else []
    for key in ("input_r_min", "r_min", "r_max", "i_min", "i_max"):
        if key in rf:
            parts.append(f"{key} {axes_text(list(rf[key]))}")  # type: ignore[arg-type]
    return ", ".join(parts)


def _wrapped(text: str, first: int, width: int) -> list[str]:
    """``text`` in lines that fit ``width`` after a prefix of ``first`` characters; the
    continuation lines are indented by the same amount (a hanging indent). Words are never
    broken, so a long path stays whole."""
    room = max(width - first, 20)
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        lines += textwrap.wrap(paragraph, room, break_long_words=False, break_on_hyphens=False) or [""]
    return lines


def _append_wrapped(out: Text, prefix: str, text: str, width: int, prefix_style: str = "blue", style: str = "") -> None:
    lines = _wrapped(text, len(prefix), width)
    for i, line in enumerate(lines):
        out.append(prefix if i == 0 else " " * len(prefix), style=prefix_style)
        out.append(line + "\n", style=style)


def _headline(out: Text, finding: Finding, width: int) -> None:
    code = f"{finding.code} [{finding.severity.value}] "
    lines = _wrapped(finding.message, len(code), width)
    out.append(finding.code, style=STYLES.get(finding.severity, "bold"))
    out.append(f" [{finding.severity.value}] ", style="dim")
    out.append(lines[0] + "\n", style="bold")
    for line in lines[1:]:
        out.append(" " * len(code) + line + "\n", style="bold")


def _snippet(out: Text, finding: Finding, ctx: RenderContext) -> None:
    s = finding.source
    assert s is not None
    out.append("   --> ", style="blue")
    out.append(f"{display_path(s.file, ctx)}:{s.line}:{s.col}\n")
    line = ctx.snippets.get((s.file, s.line))
    if line is None:
        return
    number = str(s.line)
    pad = " " * len(number)
    code = line.rstrip().expandtabs(4)
    start = min(max(s.col - 1, 0), len(code))
    if start == 0:  # a call-site line from a stack trace has no column: skip the indent
        start = len(code) - len(code.lstrip())
    span = max(len(code) - start, 1)
    out.append(f"{pad} |\n", style="blue")
    out.append(f"{number} | ", style="blue")
    out.append(code + "\n")
    out.append(f"{pad} | ", style="blue")
    out.append(" " * start + "^" * span + "\n", style=STYLES.get(finding.severity, "bold"))


def _group(group: Sequence[Finding], ctx: RenderContext) -> Text:
    """One snippet and its findings: headlines, location, model, numbers, distinct hints."""
    out = Text()
    for finding in group:
        _headline(out, finding, ctx.width)
    if group[0].source is not None:
        _snippet(out, group[0], ctx)
    models = list(dict.fromkeys(f.model for f in group))
    if len(group) == 1:
        f = group[0]
        _append_wrapped(out, GUTTER, f"model: {f.model} :: {f.layer}" if f.layer else f"model: {f.model}", ctx.width)
        numbers = _numbers(f)
        if numbers:
            _append_wrapped(out, GUTTER, numbers, ctx.width)
    else:
        _append_wrapped(out, GUTTER, f"model{'s' if len(models) > 1 else ''}: {', '.join(models)}", ctx.width)
        for f in group:
            numbers = _numbers(f)
            if numbers:
                who = f.layer or "model"
                who = f"{f.model} :: {who}" if len(models) > 1 else who
                _append_wrapped(out, GUTTER, f"{who}: {numbers}", ctx.width)
    for built in dict.fromkeys(r for f in group for r in f.related):
        _append_wrapped(out, GUTTER, f"built at {display_path(built.file, ctx)}:{built.line}", ctx.width)
    for hint in dict.fromkeys(f.hint for f in group if f.hint):
        lines = _wrapped(hint, len(GUTTER) + len("help: "), ctx.width)
        out.append(GUTTER, style="blue")
        out.append("help: ", style="bold cyan")
        out.append(lines[0] + "\n")
        for line in lines[1:]:
            out.append(" " * (len(GUTTER) + len("help: ")) + line + "\n")
    return out


def groups(findings: Sequence[Finding]) -> list[list[Finding]]:
    """Runs of findings at the same source line (the input is sorted by location); a finding
    without a location stands alone."""

    def key(item: tuple[int, Finding]) -> object:
        index, f = item
        return (f.source.file, f.source.line) if f.source is not None else ("", index)

    return [[f for _, f in run] for _, run in groupby(enumerate(findings), key=key)]


def render(reports: Sequence[ModelReport], findings: Sequence[Finding], ctx: RenderContext) -> str:
    console, buffer = string_console(ctx, width=max(ctx.width, 40), markup=False, soft_wrap=True)
    for group in groups(findings):
        console.print(_group(group, ctx))
    summary = Text()
    _append_wrapped(summary, "", run_summary(findings, ctx), ctx.width, style="bold")
    console.print(summary, end="")
    return buffer.getvalue()
