"""What every renderer shares: the render context and small pure helpers."""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from rflint import __version__
from rflint.checks import ALL_RULES, Rule
from rflint.ir import Finding, Severity
from rflint.rule_docs import rule_url


@dataclass(frozen=True)
class RenderContext:
    """Everything a renderer needs besides the findings; filled by the CLI.

    Attributes:
        root: absolute directory that paths are shown relative to (the repository root);
            "" shows paths as the findings hold them.
        color: emit ANSI colour (``full`` only).
        width: line width for ``full``.
        rules: the rule registry (SARIF ``tool.driver.rules``, markdown columns).
        rule_docs: rule code -> Markdown page (SARIF ``fullDescription``).
        snippets: (file, line) -> source line text (``full`` shows it under the location).
        failed: how many models could not be checked (the summary must not claim success).
    """

    root: str = ""
    color: bool = False
    width: int = 100
    version: str = __version__
    rules: tuple[Rule, ...] = ALL_RULES
    rule_docs: Mapping[str, str] = field(default_factory=dict)
    snippets: Mapping[tuple[str, int], str] = field(default_factory=dict)
    failed: int = 0


def axes_text(values: Sequence[object]) -> str:
    """``139`` when every axis agrees, ``139x75`` per axis otherwise; None reads ``inf``."""
    shown = ["inf" if v is None else str(v) for v in values]
    return shown[0] if len(set(shown)) == 1 else "x".join(shown)


def render_rich(parts: Sequence[object], ctx: RenderContext, soft_wrap: bool = False) -> str:
    """Print rich renderables (tables, markup strings) into a string: renderers do no I/O.
    Colour only when ``ctx.color``; rich's environment lookups are off so that the text depends
    on the arguments alone. ``soft_wrap`` keeps long text lines whole (tables still fit)."""
    from io import StringIO

    from rich.console import Console
    from rich.text import Text

    buffer = StringIO()
    console = Console(
        file=buffer,
        force_terminal=ctx.color,
        no_color=not ctx.color,
        color_system="standard" if ctx.color else None,
        width=ctx.width,
        highlight=False,
        emoji=False,
        _environ={},
    )
    for part in parts:
        console.print(part, soft_wrap=soft_wrap and isinstance(part, (str, Text)))
    return buffer.getvalue()


def display_path(file: str, ctx: RenderContext) -> str:
    """``file`` relative to ``ctx.root`` with ``/`` separators when it lies under it, else as is."""
    if ctx.root and os.path.isabs(file):
        rel = os.path.relpath(file, ctx.root)
        if not rel.startswith(".."):
            return PurePosixPath(*rel.split(os.sep)).as_posix()
    return file


def is_relative(file: str, ctx: RenderContext) -> bool:
    return not os.path.isabs(display_path(file, ctx))


def fingerprint(finding: Finding) -> str:
    """Stable identity of a finding across runs and line moves: sha256(rule|model|layer)."""
    return hashlib.sha256(f"{finding.code}|{finding.model}|{finding.layer}".encode()).hexdigest()


def severity_counts(findings: Iterable[Finding]) -> Counter[Severity]:
    return Counter(f.severity for f in findings)


def summary_line(findings: Sequence[Finding], failed: int = 0) -> str:
    """``Found 3 findings (1 error, 1 warning, 1 info).`` or ``All checks passed!``, and how
    many models could not be checked, if any."""
    not_checked = f" {failed} model{'s' if failed != 1 else ''} could not be checked." if failed else ""
    if not findings:
        return f"No findings.{not_checked}" if failed else "All checks passed!"
    counts = severity_counts(findings)
    parts = []
    for sev, word in ((Severity.ERROR, "error"), (Severity.WARN, "warning"), (Severity.INFO, "info")):
        n = counts.get(sev, 0)
        if n:
            parts.append(f"{n} {word}{'s' if n != 1 and word != 'info' else ''}")
    n = len(findings)
    return f"Found {n} finding{'s' if n != 1 else ''} ({', '.join(parts)}).{not_checked}"


def location_text(finding: Finding, ctx: RenderContext) -> str:
    """``path:line:col`` or, with no source, the model name."""
    if finding.source is None:
        return finding.model
    s = finding.source
    return f"{display_path(s.file, ctx)}:{s.line}:{s.col}"


def finding_dict(finding: Finding, ctx: RenderContext) -> dict[str, object]:
    """One finding as a ruff-shaped JSON object, plus rflint's model, layer and field numbers."""
    loc = None if finding.source is None else {"row": finding.source.line, "column": finding.source.col}
    return {
        "code": finding.code,
        "name": finding.name,
        "message": finding.message,
        "severity": finding.severity.value,
        "filename": None if finding.source is None else display_path(finding.source.file, ctx),
        "location": loc,
        "end_location": loc,
        "noqa_row": None if finding.source is None else finding.source.line,
        "fix": None,
        "url": rule_url(finding.code),
        "model": finding.model,
        "layer": finding.layer,
        "input_size": list(finding.input_size),
        "receptive_field": dict(finding.receptive_field),
        "hint": finding.hint,
        "fingerprint": fingerprint(finding),
    }
