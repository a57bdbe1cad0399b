"""``github``: GitHub Actions workflow commands, one annotation per finding.

``::error title=rflint (RF101),file=models/net.py,line=12,col=9,endLine=12,endColumn=9::...``
Escaping follows actions/toolkit ``command.ts``: data escapes ``%``, CR and LF; property values
also escape ``:`` and ``,``. Paths are repo-relative so annotations attach to the PR diff.
"""

from __future__ import annotations

from collections.abc import Sequence

from rflint.results import ModelReport
from rflint.ir import Finding, Severity
from rflint.report.common import RenderContext, display_path

LEVELS = {Severity.ERROR: "error", Severity.WARN: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(finding: Finding, ctx: RenderContext) -> str:
    props = [("title", f"rflint ({finding.code})")]
    if finding.source is not None:
        s = finding.source
        props += [
            ("file", display_path(s.file, ctx)),
            ("line", str(s.line)),
            ("col", str(s.col)),
            ("endLine", str(s.line)),
            ("endColumn", str(s.col)),
        ]
    where = f"{finding.model}::{finding.layer}" if finding.layer else finding.model
    message = f"{finding.code} {finding.message}\n  model: {where}"
    for built in finding.related:  # the helper that constructed the layer (library or builder code)
        message += f"\n  built at: {display_path(built.file, ctx)}:{built.line}"
    if finding.hint:
        message += f"\n  help: {finding.hint}"
    head = ",".join(f"{k}={escape_property(v)}" for k, v in props)
    return f"::{LEVELS.get(finding.severity, 'warning')} {head}::{escape_data(message)}"


def notices(ctx: RenderContext) -> list[str]:
    """One ``::notice`` per model read by the fallback tracer or with unknown ops: not findings,
    but a reader of the run should know the numbers' footing."""
    out = []
    for model, facts in ctx.facts.items():
        if facts.tracer != "fx":
            out.append(f"::notice title=rflint ({escape_property(model)})::{escape_data(f'traced with torch.{facts.tracer}: {facts.tracer_reason}')}")
        if facts.unknown_ops:
            text = f"{facts.lower_bounds} layers after {facts.unknown_ops} unknown ops have lower-bound fields"
            out.append(f"::notice title=rflint ({escape_property(model)})::{escape_data(text)}")
    return out


def render(reports: Sequence[ModelReport], findings: Sequence[Finding], ctx: RenderContext) -> str:
    return "".join(line + "\n" for line in notices(ctx) + [annotation(f, ctx) for f in findings])
