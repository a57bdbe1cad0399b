"""RF104 causal-lookahead: the first layer whose field reads the future along a causal axis."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from rflint.rf.display import axis_names, display, op_summary
from rflint.checks.base import Rule, layer_finding
from rflint.ir import INF, Analysis, Finding, Severity


def check(analysis: Analysis) -> Iterator[Finding]:
    names = axis_names(analysis.graph.ndim)
    for axis in analysis.causal_axes:
        first = next((lrf for lrf in analysis.layers if lrf.lookahead and lrf.lookahead[axis] > 0), None)
        if first is None:
            continue
        ahead = first.lookahead[axis]
        if ahead == INF:
            via = ", ".join(first.axes[axis].global_via[:2]) or first.layer.qualname
            what = f"reads the whole {names[axis]} axis, future included (through {via})"
        else:
            what = f"reads {display(ahead)} position{'s' * (ahead != 1)} ahead (lookahead {display(ahead)})"
        finding = layer_finding(
            RULE,
            analysis,
            first,
            f"{first.layer.qualname} ({op_summary(first.layer)}) is not causal along {names[axis]}: its field {what}",
            hint="pad only on the past side (F.pad(x, (k - 1) * d, 0) before an unpadded conv), or mask the op along time",
        )
        fields = dict(finding.receptive_field)
        fields.update(
            causal_axis=names[axis],
            lookahead=[display(x) for x in first.lookahead],
            history=[display(x) for x in first.history],
        )
        yield replace(finding, receptive_field=fields)


RULE = Rule(
    "RF104",
    "causal-lookahead",
    Severity.ERROR,
    "Layer whose field reads the future along an axis declared causal",
    check,
)
