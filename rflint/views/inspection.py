"""``rflint inspect``: one row per layer (table for people, JSON for programs).

The rows are plain JSON-friendly dicts, built once and rendered either as a rich table or as
JSON, so both views always show the same numbers. Next to the receptive fields they carry what
a torchinfo user looks for: output channels, parameters and multiply-accumulates per layer and
in total (convolutions and linear layers, bias not counted: :func:`rflint.rf.sizes.layer_cost`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from rich.table import Table

from rflint.ir import INF, Graph, Kind, Layer
from rflint.rf import tiling
from rflint.rf.display import axis_names, display
from rflint.rf.status import layer_status
from rflint.rf.sizes import is_transposed, layer_cost
from rflint.views.timebase import in_time, time_lines
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
        macs, params = cost(layer, analysis.graph)
        rows.append(
            {
                "layer": layer.qualname,
                "op": layer.op,
                "kind": layer.kind.value,
                "kernel": list(layer.kernel),
                "stride": [display(s) for s in written_stride(layer)],
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
        m, p = cost(lrf.layer, report.analysis.graph)
        macs += m
        params[lrf.layer.qualname] = p
    return macs, sum(params.values())


def cost(layer: Layer, graph: Graph) -> tuple[int, int]:
    """:func:`rflint.rf.sizes.layer_cost`, with a transposed conv's input size from its input."""
    source = graph.by_name().get(layer.inputs[0]) if is_transposed(layer) and layer.inputs else None
    return layer_cost(layer, layer.out_size, source.out_size if source is not None else None)


def written_stride(layer: Layer) -> tuple[Fraction | int, ...]:
    """The stride as the model's code writes it: a transposed conv's ``stride=2`` is ``1 / 2``
    input units per output unit in the IR, and ``2`` in ``ConvTranspose2d(..., stride=2)``."""
    if is_transposed(layer):
        return tuple(1 / Fraction(s) for s in layer.stride)
    return layer.stride


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
        "outputs": output_rows(report),
        "halo": halo_rows(report),
        "task": a.task,
        "task_source": a.task_source,
        "causal": [axis_names(len(a.graph.input_size))[i] for i in a.causal_axes],
        "sample_rate": report.spec.sample_rate,
    }


def output_rows(report: ModelReport) -> list[dict[str, Any]]:
    """One dict per model output: its field, jump (stride) and offset per axis."""
    return [
        {
            "output": f.label,
            "layer": f.layer,
            "r_min": [display(x) for x in f.r_min],
            "r_max": [display(x) for x in f.r_max],
            "r_narrow": [display(x) for x in f.r_narrow],
            "jump": [display(x) for x in f.jump],
            "offset": [display(x) for x in f.offset],
            "period": list(f.period),
            "feature_map": list(f.feature_map) if f.feature_map else None,
            "global_context": f.global_context,
            "uncertain": f.uncertain,
        }
        for f in tiling.output_fields(report.analysis)
    ]


def halo_rows(report: ModelReport) -> list[dict[str, Any]]:
    """One dict per axis: the tiling halo (:mod:`rflint.rf.tiling`); null where infinite."""
    names = axis_names(report.analysis.graph.ndim)
    return [
        {
            "axis": name,
            "before": display(h.before),
            "after": display(h.after),
            "granularity": h.granularity,
            "before_aligned": display(h.before_aligned),
            "after_aligned": display(h.after_aligned),
            "exact": h.exact,
        }
        for name, h in zip(names, tiling.halo(report.analysis))
    ]


def render_json(reports: Sequence[ModelReport], show_all: bool, ctx: RenderContext) -> str:
    """One object per model (an array when several models were inspected)."""
    payloads = [
        {"schema_version": SCHEMA_VERSION, **summary(r), "layers": layer_rows(r, show_all, ctx)} for r in reports
    ]
    return json.dumps(payloads[0] if len(payloads) == 1 else payloads, indent=2) + "\n"


def table_parts(report: ModelReport, show_all: bool, ctx: RenderContext | None = None) -> list[Any]:
    """The rich renderables of one model's table and summary lines."""
    rows = layer_rows(report, show_all, ctx or RenderContext())
    if not show_all:
        rows = group_merges(rows)
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
    if len(s["outputs"]) > 1:
        out.append(outputs_table(s["outputs"]))
    out.append("Tiling halo: " + halo_text(s["halo"]))
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


#: the columns a group of rows shares exactly (so the one row shown says what each would)
_SHARED = ("r_min", "r_max", "r_narrow", "jump", "effective_padding", "feature_map", "status", "uncertain", "global_context")


def group_merges(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive merge rows of one module with the same fields, as one row named by the module.

    A norm written out by hand (ConvNeXt's channels-first LayerNorm: ``(x - u) / sqrt(s + eps)``)
    is two subtractions and a division, each a merge of ``x`` with its channel statistics, all
    with the field of ``x``: three rows per norm that say nothing the first does not. The row
    kept is the last of the run (the module's output) with ``op`` listing the ops, so every
    number shown stays the number of a real layer; ``--all`` and JSON keep every row."""
    out: list[dict[str, Any]] = []
    run: list[dict[str, Any]] = []

    def flush() -> None:
        if len(run) > 1:
            ops = ", ".join(dict.fromkeys(r["op"] for r in run))
            out.append({**run[-1], "layer": _parent(run[-1]["layer"]), "op": f"{len(run)} ops: {ops}"})
        else:
            out.extend(run)
        run.clear()

    for row in rows:
        joins = (
            row["kind"] == Kind.MERGE.value
            and _parent(row["layer"])
            and run
            and _parent(run[0]["layer"]) == _parent(row["layer"])
            and all(run[0][k] == row[k] for k in _SHARED)
        )
        if not joins:
            flush()
        if row["kind"] == Kind.MERGE.value and _parent(row["layer"]):
            run.append(row)
        else:
            out.append(row)
    flush()
    return out


def _parent(qualname: str) -> str:
    return qualname.rpartition(".")[0]


def outputs_table(rows: list[dict[str, Any]]) -> Table:
    """One row per model output (an FPN's levels, a detector's heads)."""
    table = Table(title="outputs")
    for col in ("output", "layer", "r_min", "r_max", "jump", "offset", "feature map"):
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(
            row["output"], row["layer"], axes_text(row["r_min"]), _widest(row), axes_text(row["jump"]),
            axes_text(row["offset"]), axes_text(row["feature_map"]) if row["feature_map"] else "",
        )
    return table


def halo_text(rows: list[dict[str, Any]]) -> str:
    """``H before 4 after 4 (grid 1), W ...``; ``whole axis`` where a global path reaches."""
    parts = []
    for h in rows:
        if h["before"] is None or h["after"] is None:
            parts.append(f"{h['axis']} whole axis (a global path)")
            continue
        aligned = "" if h["granularity"] == 1 else f", aligned {h['before_aligned']}/{h['after_aligned']}"
        parts.append(f"{h['axis']} before {h['before']} after {h['after']} (grid {h['granularity']}{aligned})" + ("" if h["exact"] else " or more"))
    return ", ".join(parts)


def _widest(row: dict[str, Any]) -> str:
    """``25`` or, behind upsampling, ``21-25`` (narrowest to widest unit)."""
    if row["r_narrow"] == row["r_max"]:
        return axes_text(row["r_max"])
    return "x".join(f"{n}-{m}" if n != m else str(m) for n, m in zip(row["r_narrow"], row["r_max"])) if len(set(map(str, row["r_max"]))) > 1 or len(set(map(str, row["r_narrow"]))) > 1 else f"{axes_text(row['r_narrow'])}-{axes_text(row['r_max'])}"


def render_table(reports: Sequence[ModelReport], show_all: bool, ctx: RenderContext) -> str:
    """The rich table(s) and summary lines, as text (coloured when ``ctx.color``)."""
    parts = [p for r in reports for p in table_parts(r, show_all, ctx)]
    return render_rich(parts, ctx)
