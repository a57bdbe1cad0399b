"""RF102 critical-layer: the layer that pushes r_min past the input size."""

from __future__ import annotations

from collections.abc import Iterator

from rflint.rf.algebra import critical_axes, is_critical, op_summary
from rflint.checks.base import Rule, layer_finding, per_axis
from rflint.ir import Analysis, Finding, Severity


def check(analysis: Analysis) -> Iterator[Finding]:
    size = analysis.graph.input_size
    for lrf in analysis.layers:
        if is_critical(lrf, size):
            yield layer_finding(
                RULE,
                analysis,
                lrf,
                f"{lrf.layer.qualname} ({op_summary(lrf.layer)}) is critical: its own receptive field passes the "
                f"input size{per_axis(critical_axes(lrf, size), lrf.r_min, '>', size, 'receptive field')}",
                hint="layers after this one may add no new context",
            )


RULE = Rule(
    "RF102",
    "critical-layer",
    Severity.INFO,
    "Layer whose own receptive field grows past the input size",
    check,
)
