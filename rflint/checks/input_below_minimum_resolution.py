"""RF103 input-below-minimum-resolution: the architecture is not refined for this input size
(Richter & Pal, 2022: refined architectures have I_min < I_res)."""

from __future__ import annotations

from collections.abc import Iterator

from rflint.algebra import display
from rflint.checks.base import Rule, fmt_axes
from rflint.ir import Analysis, Finding, Severity


def check(analysis: Analysis) -> Iterator[Finding]:
    size = analysis.graph.input_size
    if not any(m >= s for m, s in zip(analysis.i_min, size)):
        return
    margin = [display(m - s) for m, s in zip(analysis.i_min, size)]
    yield Finding(
        code=RULE.code,
        name=RULE.name,
        severity=RULE.severity,
        message=f"input size {fmt_axes(size)} is not above I_min {fmt_axes(analysis.i_min)} "
        f"(smallest input at which no layer is critical; margin {fmt_axes(m - s for m, s in zip(analysis.i_min, size))}): "
        "the architecture is not refined for this resolution",
        model=analysis.graph.name,
        layer="",
        source=None,
        input_size=size,
        receptive_field={
            "i_min": [display(x) for x in analysis.i_min],
            "i_min_unproductive": [display(x) for x in analysis.i_min_unproductive],
            "i_max": [display(x) for x in analysis.i_max],
            "margin": margin,
        },
        hint="run `rflint suggest` for a single edit (stride, kernel) that brings I_min below the input size",
    )


RULE = Rule(
    "RF103",
    "input-below-minimum-resolution",
    Severity.WARN,
    "Input resolution is not above the architecture's minimum resolution I_min",
    check,
)
