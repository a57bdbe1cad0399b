"""``rflint inspect``: one row per layer (table for people, JSON for programs).

The rows are plain JSON-friendly dicts, built once and rendered either as a rich table or as
JSON, so both views always show the same numbers. Next to the receptive fields they carry what
a torchinfo user looks for: output channels, parameters and multiply-accumulates per layer and
in total (convolutions and linear layers, bias not counted: :func:`rflint.sizes.layer_cost`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from rich.table import Table

from rflint.sizes import layer_cost
from rflint.algebra import axis_names, display, layer_status
from rflint.report.timebase import in_time, time_lines
from rflint.ir import INF
from rflint.ir import Kind
from rflint.report.common import RenderContext, axes_text, display_path, render_rich
from rflint.results import ModelReport

SCHEMA_VERSION = 1
SHOWN_KINDS = {Kind.INPUT, Kind.WINDOW, Kind.UPSAMPLE, Kind.MERGE, Kind.GLOBAL, Kind.UNKNOWN}
STATUS_STYLE = {"ok": "green", "critical": "yellow", "unproductive": "bold red", "unknown": "magenta", "global": "cyan"}


def layer_rows(report: ModelReport, show_all: bool, ctx: RenderContext) -> list[dict[str, Any]]:
    """One dict per layer with everything ``inspect`` shows, in JSON-friendly types."""
    analysis = report.analysis
    size = analysis.graph.input_size
    rows = []
    for lrf in analysis.layers:
        layer = lrf.layer
        if not show_all and layer.kind not in SHOWN_KINDS:
            continue
        macs, params = layer_cost(layer)
        rows.append(
            {
                "layer": layer.qualname,
                "op": layer.op,
                "kind": layer.kind.value,
                "kernel": list(layer.kernel),
                "stride": [display(s) for s in layer.stride],
                "dilation": list(layer.dilation),
                "r_min": [display(x) for x in lrf.r_min],
                "r_max": [display(x) for x in lrf.r_max],
                "r_narrow": [display(a.r_narrow) for a in lrf.axes],
                "period": [a.period for a in lrf.axes],
                "input_r_min": [display(x) for x in lrf.input_r_min],
                "jump": [display(x) for x in lrf.jump],
                "effective_padding": [None if a.start == INF else display(-a.start) for a in lrf.axes],
                "centre": [display(Fraction(a.start + a.end) / 2) if a.start != INF else None for a in lrf.axes],
                "lookahead": [display(x) for x in lrf.lookahead],
                "history": [display(x) for x in lrf.history],
                **({"reach_in": [display(x) for x in lrf.reach_in], "reach": [display(x) for x in lrf.reach]} if lrf.reach else {}),
                **in_time(lrf, report.spec.sample_rate),
                "feature_map": list(layer.out_size) if layer.out_size else None,
                "out_channels": layer.out_channels,
                "params": params,
                "macs": macs,
                "global_context": any(a.has_global for a in lrf.axes),
                "global_via": sorted({v for a in lrf.axes for v in a.global_via}),
                "uncertain": lrf.uncertain,
                "status": layer_status(lrf, size).value,
                "source": {"file": display_path(layer.source.file, ctx), "line": layer.source.line} if layer.source else None,
                "note": layer.note,
            }
        )
    return rows


def totals(report: ModelReport) -> tuple[int, int]:
    """``(MACs, parameters)`` of every layer, shown or not; a module called at several places
    counts its parameters once."""
    macs, params = 0, {}
    for lrf in report.analysis.layers:
        m, p = layer_cost(lrf.layer)
        macs += m
        params[lrf.layer.qualname] = p
    return macs, sum(params.values())


def count_text(n: int) -> str:
    """``11.69M``, ``1.82G``, ``864``: three significant digits, as torchinfo users read them."""
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return str(n)


def summary(report: ModelReport) -> dict[str, Any]:
    """The model-level numbers: input size, I_min (both kinds), I_max, tracer, totals."""
    a = report.analysis
    macs, params = totals(report)
    return {
        "model": report.spec.display_name,
        "target": report.spec.target,
        "tracer": a.graph.tracer,
        "tracer_reason": report.tracer_reason,
        "input_size": list(a.graph.input_size),
        "i_min": [display(x) for x in a.i_min],
        "i_min_unproductive": [display(x) for x in a.i_min_unproductive],
        "i_max": [display(x) for x in a.i_max],
        "layers_total": len(a.layers),
        "params_total": params,
        "macs_total": macs,
        "global_context": list(a.global_via),
        "notes": list(report.notes),
        "task": a.task,
        "task_source": a.task_source,
        "causal": [axis_names(len(a.graph.input_size))[i] for i in a.causal_axes],
        "sample_rate": report.spec.sample_rate,
    }


def render_json(reports: Sequence[ModelReport], show_all: bool, ctx: RenderContext) -> str:
    """One object per model (an array when several models were inspected)."""
    payloads = [
        {"schema_version": SCHEMA_VERSION, **summary(r), "layers": layer_rows(r, show_all, ctx)} for r in reports
    ]
    return json.dumps(payloads[0] if len(payloads) == 1 else payloads, indent=2) + "\n"


def table_parts(report: ModelReport, show_all: bool, ctx: RenderContext | None = None) -> list[Any]:
    """The rich renderables of one model's table and summary lines."""
    rows = layer_rows(report, show_all, ctx or RenderContext())
    s = summary(report)
    table = Table(title=f"{s['model']} @ {axes_text(s['input_size'])} (traced with {s['tracer']})")
    for col in ("layer", "op", "k / s / d", "r_min", "r_max", "jump", "pad", "feature map", "out ch", "params", "MACs", "status"):
        table.add_column(col, overflow="fold", justify="right" if col in ("out ch", "params", "MACs") else "left")
    for row in rows:
        ksd = "" if not row["kernel"] else f"{axes_text(row['kernel'])} / {axes_text(row['stride'])} / {axes_text(row['dilation'])}"
        status = row["status"] + (" (global ctx)" if row["global_context"] and row["status"] == "ok" else "")
        if row["uncertain"]:
            status += " ?"
        table.add_row(
            row["layer"],
            row["op"],
            ksd,
            axes_text(row["r_min"]),
            _widest(row),
            axes_text(row["jump"]),
            axes_text(row["effective_padding"]),
            axes_text(row["feature_map"]) if row["feature_map"] else "",
            "" if row["out_channels"] is None else str(row["out_channels"]),
            count_text(row["params"]) if row["params"] else "",
            count_text(row["macs"]) if row["macs"] else "",
            f"[{STATUS_STYLE.get(row['status'], '')}]{status}[/]",
        )
    out: list[Any] = [table]
    out.append(
        f"I_min {axes_text(s['i_min'])} (no critical layer)   "
        f"I_min {axes_text(s['i_min_unproductive'])} (no unproductive layer)   "
        f"I_max {axes_text(s['i_max'])}   input {axes_text(s['input_size'])}"
    )
    out.append(
        f"Total: {count_text(s['params_total'])} parameters ({s['params_total']:,}), "
        f"{count_text(s['macs_total'])} MACs ({s['macs_total']:,}) in convolutions and linear layers, "
        f"all {s['layers_total']} layers" + ("" if show_all else " (--all shows every row)")
    )
    if s["global_context"]:
        shown = ", ".join(s["global_context"][:3]) + (f" and {len(s['global_context']) - 3} more" if len(s["global_context"]) > 3 else "")
        out.append(f"Global context reaches the output via {shown} (beside the local fields above)")
    if any(r["period"] != [1] * len(r["period"]) and r["r_narrow"] != r["r_max"] for r in rows):
        out.append("r_max a-b: behind upsampling neighbouring units see from a (the narrowest) to b (the widest) pixels")
    out.extend(time_lines(report, rows))
    if s["task"] == "dense":
        how = "chosen from the outputs, which keep spatial axes" if s["task_source"] == "auto" else "as configured"
        out.append(f"task: dense ({how}): status judges every unit, corners included (see docs/dense.md)")
    out.append("pad: effective padding, how far before pixel 0 the field of unit 0 starts (unit i: i * jump later)")
    if any(r["uncertain"] for r in rows):
        out.append("? = an op of unknown receptive-field effect lies before this layer: its numbers are lower bounds")
    return out


def _widest(row: dict[str, Any]) -> str:
    """``25`` or, behind upsampling, ``21-25`` (narrowest to widest unit)."""
    if row["r_narrow"] == row["r_max"]:
        return axes_text(row["r_max"])
    return "x".join(f"{n}-{m}" if n != m else str(m) for n, m in zip(row["r_narrow"], row["r_max"])) if len(set(map(str, row["r_max"]))) > 1 or len(set(map(str, row["r_narrow"]))) > 1 else f"{axes_text(row['r_narrow'])}-{axes_text(row['r_max'])}"


def render_table(reports: Sequence[ModelReport], show_all: bool, ctx: RenderContext) -> str:
    """The rich table(s) and summary lines, as text (coloured when ``ctx.color``)."""
    parts = [p for r in reports for p in table_parts(r, show_all, ctx)]
    return render_rich(parts, ctx)
