"""RF102 critical-layer: the layer that pushes r_min past the input size."""

from __future__ import annotations

from collections.abc import Iterator

from rflint.algebra import is_critical
from rflint.checks.base import Rule, fmt_axes, layer_finding
from rflint.ir import Analysis, Finding, Severity


def check(analysis: Analysis) -> Iterator[Finding]:
    size = analysis.graph.input_size
    for lrf in analysis.layers:
        if is_critical(lrf, size):
            yield layer_finding(
                RULE,
                analysis,
                lrf,
                f"{lrf.layer.qualname} is critical: its receptive field {fmt_axes(lrf.r_min)} "
                f"exceeds input size {fmt_axes(size)} (input receptive field {fmt_axes(lrf.input_r_min)})",
                hint="layers after this one may add no new context",
            )


RULE = Rule(
    "RF102",
    "critical-layer",
    Severity.INFO,
    "Layer whose own receptive field grows past the input size",
    check,
)
