"""RF102 critical-layer: the layer that pushes r_min past the input size."""

from __future__ import annotations

from collections.abc import Iterator

from rflint.algebra import critical_axes, is_critical, op_summary
from rflint.checks.base import Rule, dense_words, layer_finding, per_axis
from rflint.ir import Analysis, Finding, Severity


def check(analysis: Analysis) -> Iterator[Finding]:
    size = analysis.graph.input_size
    for lrf in analysis.layers:
        if is_critical(lrf, size):
            where, what = dense_words(lrf)
            passes = (
                f"every unit of its output, corners included, sees past the whole input"
                f"{per_axis(critical_axes(lrf, size), lrf.reach, '>', size, what)}"
                if lrf.reach
                else f"its own receptive field passes the input size{per_axis(critical_axes(lrf, size), lrf.r_min, '>', size, what)}"
            )
            yield layer_finding(
                RULE,
                analysis,
                lrf,
                f"{lrf.layer.qualname} ({op_summary(lrf.layer)}) is critical: {passes}",
                hint="layers after this one may add no new context",
            )


RULE = Rule(
    "RF102",
    "critical-layer",
    Severity.INFO,
    "Layer whose own receptive field grows past the input size",
    check,
)
