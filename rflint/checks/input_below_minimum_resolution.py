"""RF103 input-below-minimum-resolution: the architecture is not refined for this input size
(Richter & Pal, 2022: refined architectures have I_min < I_res)."""

from __future__ import annotations

from collections.abc import Iterator

from rflint.rf.display import axis_names, display, fmt_axes
from rflint.checks.base import Rule
from rflint.ir import Analysis, Finding, Severity


def margins(i_min: tuple, size: tuple[int, ...]) -> str:
    """Per axis in words: which axes fall short of being refined, by how many pixels; which
    are fine, with how many to spare. One wording in every dimensionality: refined means
    ``I_min < size``, so an axis is ``I_min - size + 1`` px short (``I_min 32 >= 32 (1 px
    short)``: 33 px would do) and has ``size - I_min - 1`` px to spare."""
    names = axis_names(len(size))
    short = [a for a in range(len(size)) if i_min[a] >= size[a]]
    fine = [a for a in range(len(size)) if i_min[a] < size[a]]

    def group(axes: list[int], word: str) -> str:
        labels = " and ".join(names[a] for a in axes)
        gaps = {display(i_min[a] - size[a] + 1 if word == "short" else size[a] - i_min[a] - 1) for a in axes}
        values = {(display(i_min[a]), size[a]) for a in axes}
        if len(values) == 1:
            (m, s), gap = values.pop(), gaps.pop()
            labels = "" if len(axes) == len(size) else f"{labels}: "
            return f"{labels}I_min {m} {'>=' if word == 'short' else '<'} {s} ({gap} px {'short' if word == 'short' else 'to spare'})"
        return "; ".join(group([a], word) for a in axes)

    text = group(short, "short")
    if fine and len(size) > 1:
        text += f"; refined on {group(fine, 'spare')}"
    return text


def check(analysis: Analysis) -> Iterator[Finding]:
    size = analysis.graph.input_size
    if not any(m >= s for m, s in zip(analysis.i_min, size)):
        return
    margin = [display(m - s) for m, s in zip(analysis.i_min, size)]
    yield Finding(
        code=RULE.code,
        name=RULE.name,
        severity=RULE.severity,
        message=f"the architecture is not refined for input size {fmt_axes(size)}: {margins(analysis.i_min, size)} "
        + ("(I_min: the smallest input at which no layer is critical)" if analysis.task != "dense" else
           "(I_min, dense task: the smallest input at which no layer is critical, judged at every unit, corners included)"),
        model=analysis.graph.name,
        layer="",
        source=None,
        input_size=size,
        receptive_field={
            "i_min": [display(x) for x in analysis.i_min],
            "i_min_unproductive": [display(x) for x in analysis.i_min_unproductive],
            "i_max": [display(x) for x in analysis.i_max],
            "margin": margin,
            "global_context": list(analysis.global_via),
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
