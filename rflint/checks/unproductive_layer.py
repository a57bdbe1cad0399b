"""RF101 unproductive-layer: the border layer of Richter et al. (2021)."""

from __future__ import annotations

from collections.abc import Iterator

from rflint.rf.status import is_unproductive, unproductive_axes
from rflint.rf.display import op_summary
from rflint.checks.base import Rule, layer_finding, per_axis
from rflint.checks.base import dense_words
from rflint.ir import Analysis, Finding, Severity


def check(analysis: Analysis) -> Iterator[Finding]:
    size = analysis.graph.input_size
    for lrf in analysis.layers:
        if is_unproductive(lrf, size):
            axes = unproductive_axes(lrf, size)
            where, what = dense_words(lrf)
            yield layer_finding(
                RULE,
                analysis,
                lrf,
                f"{lrf.layer.qualname} ({op_summary(lrf.layer)}) is unproductive: its input already sees the whole "
                f"input{' ' + where if where else ''}"
                f"{per_axis(axes, lrf.reach_in or lrf.input_r_min, '>=', size, 'input ' + what)}",
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
