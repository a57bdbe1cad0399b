"""RF101 unproductive-layer: the border layer of Richter et al. (2021)."""

from __future__ import annotations

from collections.abc import Iterator

from rflint.rf.algebra import is_unproductive, op_summary, unproductive_axes
from rflint.checks.base import Rule, layer_finding, per_axis
from rflint.ir import Analysis, Finding, Severity


def check(analysis: Analysis) -> Iterator[Finding]:
    size = analysis.graph.input_size
    for lrf in analysis.layers:
        if is_unproductive(lrf, size):
            axes = unproductive_axes(lrf, size)
            yield layer_finding(
                RULE,
                analysis,
                lrf,
                f"{lrf.layer.qualname} ({op_summary(lrf.layer)}) is unproductive: its input already sees the whole "
                f"input{per_axis(axes, lrf.input_r_min, '>=', size, 'input receptive field')}",
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
