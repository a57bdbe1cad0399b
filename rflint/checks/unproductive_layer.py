"""RF101 unproductive-layer: the border layer of Richter et al. (2021)."""

from __future__ import annotations

from collections.abc import Iterator

from rflint.algebra import is_unproductive
from rflint.checks.base import Rule, fmt_axes, layer_finding
from rflint.ir import Analysis, Finding, Severity


def check(analysis: Analysis) -> Iterator[Finding]:
    size = analysis.graph.input_size
    for lrf in analysis.layers:
        if is_unproductive(lrf, size):
            yield layer_finding(
                RULE,
                analysis,
                lrf,
                f"{lrf.layer.qualname} is unproductive: input receptive field "
                f"{fmt_axes(lrf.input_r_min)} >= input size {fmt_axes(size)}",
                hint="remove the layer, move a downsampling layer later, or train at a larger resolution "
                "(see `rflint suggest`)",
            )


RULE = Rule(
    "RF101",
    "unproductive-layer",
    Severity.ERROR,
    "Layer whose input receptive field already covers the whole input",
    check,
)
