"""One self-contained HTML file per run: findings, the growth plot and the graph, for a CI artifact.

No scripts, no external files: the SVG is inline and the plot is a base64 PNG (left out, with a
note, when matplotlib is not installed). ``render(reports, ctx)`` has the signature of the
report renderers so that ``--output-format html`` can use it directly.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from html import escape
from typing import Any

from rflint.rf.status import layer_status
from rflint.errors import UsageError
from rflint.ir import Analysis, Finding, Kind, Status
from rflint.viz import svg
from rflint.rf.display import fmt_axes
from rflint.viz.graph_layout import op_label

#: layer kinds listed in the main table; the rest sit in a folded "all layers" table
SHOWN_KINDS = {Kind.INPUT, Kind.WINDOW, Kind.UPSAMPLE, Kind.MERGE, Kind.GLOBAL, Kind.UNKNOWN}

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #212529; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #dee2e6; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.meta { color: #495057; font-size: 13px; }
table { border-collapse: collapse; font-size: 12.5px; margin: 6px 0 12px; }
th, td { border: 1px solid #dee2e6; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f1f3f5; } td.num { text-align: right; font-family: ui-monospace, Menlo, monospace; }
td.mono { font-family: ui-monospace, Menlo, monospace; }
.status { display: inline-block; padding: 0 6px; border-radius: 3px; border: 1px solid; font-size: 12px; }
.sev-error { color: #c92a2a; font-weight: 600; } .sev-warn { color: #e8590c; font-weight: 600; } .sev-info { color: #1c7ed6; }
.graph { overflow: auto; border: 1px solid #dee2e6; max-height: 1200px; background: #fff; }
.note { color: #868e96; font-size: 12.5px; }
.summary td { border: none; padding: 1px 12px 1px 0; }
img.plot { max-width: 100%; border: 1px solid #dee2e6; }
"""


def _status_badge(status: Status) -> str:
    fill, stroke = svg.COLOURS[status]
    return f'<span class="status" style="background:{fill};border-color:{stroke}">{status.value}</span>'


def _plot_img(analysis: Analysis) -> str:
    try:
        from rflint.viz.plot import Series, growth_png

        png = growth_png([Series(analysis.graph.name, analysis)])
    except UsageError:
        return '<p class="note">growth plot left out: matplotlib is not installed (pip install \'rflint[plot]\')</p>'
    data = base64.b64encode(png).decode("ascii")
    return f'<img class="plot" alt="receptive-field growth" src="data:image/png;base64,{data}">'


def summary_table(analysis: Analysis) -> str:
    g = analysis.graph
    counts: dict[Status, int] = {}
    for lrf in analysis.layers:
        s = layer_status(lrf, g.input_size)
        counts[s] = counts.get(s, 0) + 1
    rows = [
        ("input size", fmt_axes(g.input_size)),
        ("I_min (no critical layer)", fmt_axes(analysis.i_min)),
        ("I_min (no unproductive layer)", fmt_axes(analysis.i_min_unproductive)),
        ("I_max (largest finite r_max)", fmt_axes(analysis.i_max)),
        ("layers", f"{len(analysis.layers)} (" + ", ".join(f"{n} {s.value}" for s, n in counts.items()) + ")"),
        ("traced with", g.tracer),
    ]
    body = "".join(f"<tr><td>{escape(k)}</td><td><b>{escape(v)}</b></td></tr>" for k, v in rows)
    return f'<table class="summary">{body}</table>'


def layer_table(analysis: Analysis, kinds: set[Kind] | None = SHOWN_KINDS) -> str:
    size = analysis.graph.input_size
    head = "".join(
        f"<th>{h}</th>"
        for h in ("#", "layer", "op", "kind", "r_min", "r_max", "input r_min", "jump", "feature map", "status")
    )
    rows = []
    for i, lrf in enumerate(analysis.layers):
        layer = lrf.layer
        if kinds is not None and layer.kind not in kinds:
            continue
        status = layer_status(lrf, size)
        fm = "x".join(str(s) for s in layer.out_size) if layer.out_size else ""
        unsure = " ?" if lrf.uncertain else ""
        rows.append(
            f"<tr><td class=num>{i}</td><td class=mono>{escape(layer.qualname)}</td>"
            f"<td>{escape(op_label(lrf))}</td><td>{layer.kind.value}</td>"
            f"<td class=num>{fmt_axes(lrf.r_min)}{unsure}</td><td class=num>{fmt_axes(lrf.r_max)}{unsure}</td>"
            f"<td class=num>{fmt_axes(lrf.input_r_min)}</td><td class=num>{fmt_axes(lrf.jump)}</td>"
            f"<td class=num>{fm}</td><td>{_status_badge(status)}</td></tr>"
        )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def findings_table(findings: Sequence[Finding], ctx: Any = None) -> str:
    """The findings, with paths relative to the project root (``ctx.root``) as in every
    other format."""
    from rflint.report.common import RenderContext, display_path

    ctx = ctx if ctx is not None else RenderContext()
    if not findings:
        return '<p class="note">no findings</p>'
    rows = []
    for f in findings:
        where = f"{display_path(f.source.file, ctx)}:{f.source.line}" if f.source else ""
        rows.append(
            f"<tr><td class='sev-{f.severity.value}'>{f.severity.value}</td><td class=mono>{escape(f.code)}</td>"
            f"<td class=mono>{escape(f.layer)}</td><td>{escape(f.message)}"
            + (f"<br><span class=note>hint: {escape(f.hint)}</span>" if f.hint else "")
            + f"</td><td class=mono>{escape(where)}</td></tr>"
        )
    head = "<tr><th>severity</th><th>code</th><th>layer</th><th>message</th><th>source</th></tr>"
    return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def model_section(
    analysis: Analysis,
    findings: Sequence[Finding] | None = None,
    collapse: bool = True,
    plot: bool = True,
    level: int = 2,
    ctx: Any = None,
) -> str:
    """Summary, findings, plot, graph and tables for one model."""
    h = f"h{level}"
    sub = f"h{level + 1}"
    parts = [f"<{h}>{escape(analysis.graph.name)}</{h}>", summary_table(analysis)]
    if findings is not None:
        parts += [f"<{sub}>Findings ({len(findings)})</{sub}>", findings_table(findings, ctx)]
    if plot:
        parts += [f"<{sub}>Receptive-field growth</{sub}>", _plot_img(analysis)]
    parts += [
        f"<{sub}>Graph</{sub}>",
        '<p class="note">boxes coloured by status at the input size; blue edges skip layers '
        "(shortcuts, concatenations); hover a box for every folded layer's numbers</p>",
        f'<div class="graph">{_strip_xml_header(svg.render(analysis, collapse))}</div>',
        f"<{sub}>Layers that shape the receptive field</{sub}>",
        layer_table(analysis),
        f"<details><summary>all {len(analysis.layers)} layers</summary>{layer_table(analysis, None)}</details>",
    ]
    return "\n".join(parts)


def _strip_xml_header(text: str) -> str:
    return text.split("?>", 1)[1] if text.startswith("<?xml") else text


def document(title: str, body: str, subtitle: str = "") -> str:
    sub = f'<p class="meta">{escape(subtitle)}</p>' if subtitle else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1>{sub}\n{body}\n</body></html>\n"
    )


def graph_document(analysis: Analysis, collapse: bool = True) -> str:
    """``rflint graph -o model.html``: the graph, the summary and the layer table."""
    from rflint._version import __version__

    body = model_section(analysis, None, collapse, plot=False)
    return document(f"rflint: {analysis.graph.name}", body, f"rflint {__version__}")


def render(reports: Sequence[Any], findings: Sequence[Finding] | None = None, ctx: Any = None) -> str:
    """``check --output-format html``: one section per model report (``engine.ModelReport``).

    ``findings`` are the findings left after configuration, suppressions and baseline (the
    report renderers' signature); without them each report's own findings are shown.
    """
    from rflint._version import __version__

    def of(report: Any) -> list[Finding]:
        if findings is None:
            return list(report.findings)
        names = {report.analysis.graph.name, getattr(report.spec, "display_name", None)}
        return [f for f in findings if f.model in names]

    per_model = [(r, of(r)) for r in reports]
    total = sum(len(fs) for _, fs in per_model)
    errors = sum(1 for _, fs in per_model for f in fs if f.severity.value == "error")
    subtitle = (
        f"rflint {__version__} — {len(reports)} model{'s' if len(reports) != 1 else ''}, "
        f"{total} finding{'s' if total != 1 else ''} ({errors} at error level)"
    )
    sections = []
    if len(reports) > 1:
        index = "".join(
            f"<li>{escape(r.analysis.graph.name)}: {len(fs)} findings</li>" for r, fs in per_model
        )
        sections.append(f"<ul>{index}</ul>")
    for r, fs in per_model:
        sections.append(model_section(r.analysis, fs, ctx=ctx))
    return document("rflint report", "\n".join(sections), subtitle)
