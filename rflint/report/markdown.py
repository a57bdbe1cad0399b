"""``markdown``: a job summary for ``$GITHUB_STEP_SUMMARY``: one table row per model (input size,
I_min, I_max, findings per rule), then the findings."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from rflint.rf.display import fmt_axes
from rflint.results import ModelReport
from rflint.ir import Finding
from rflint.report.common import RenderContext, display_path, run_summary
from rflint.project.rule_docs import rule_url


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _notes(ctx: RenderContext) -> list[str]:
    """Per model, what qualifies its numbers: the fallback tracer, global context, lower bounds."""
    lines = []
    for model, facts in ctx.facts.items():
        said = []
        if facts.tracer != "fx":
            said.append(f"traced with torch.{facts.tracer} ({_cell(facts.tracer_reason)})")
        if facts.global_context:
            said.append("global context via " + ", ".join(f"`{_cell(g)}`" for g in facts.global_context[:3]) + (" ..." if len(facts.global_context) > 3 else ""))
        if facts.unknown_ops:
            said.append(f"{facts.lower_bounds} layers after {facts.unknown_ops} unknown ops are lower bounds")
        if said:
            lines.append(f"- `{_cell(model)}`: " + "; ".join(said))
    return lines + [""] if lines else []


def render(reports: Sequence[ModelReport], findings: Sequence[Finding], ctx: RenderContext) -> str:
    codes = [rule.code for rule in ctx.rules]
    counts = Counter((f.model, f.code) for f in findings)
    out = ["## rflint", ""]
    out.append("| Model | Input size | I_min | I_max | " + " | ".join(codes) + " |")
    out.append("| --- | --- | ---: | ---: | " + " | ".join("---:" for _ in codes) + " |")
    for report in reports:
        a = report.analysis
        name = report.spec.display_name
        row = [f"`{_cell(name)}`", fmt_axes(a.graph.input_size), fmt_axes(a.i_min), fmt_axes(a.i_max)]
        row += [str(counts.get((name, code), 0)) for code in codes]
        out.append("| " + " | ".join(row) + " |")
    out.append("")
    out += _notes(ctx)
    if findings:
        out += ["### Findings", ""]
        for f in findings:
            where = f"`{_cell(f.model)}`" + (f" `{_cell(f.layer)}`" if f.layer else "")
            loc = f" (`{display_path(f.source.file, ctx)}:{f.source.line}`)" if f.source is not None else ""
            out.append(f"- **{f.severity.value}** [{f.code}]({rule_url(f.code)}) {where}{loc}: {_cell(f.message)}")
        out.append("")
    out.append(run_summary(findings, ctx))
    return "\n".join(out) + "\n"
