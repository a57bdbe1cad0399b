"""RF105 dead-input-positions: input positions that no output ever reads."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction

from rflint.rf.display import axis_names, op_summary
from rflint.checks.base import Rule
from rflint.ir import Analysis, Finding, Severity


def _examples(dead: tuple[int, ...]) -> str:
    shown = ", ".join(str(i) for i in dead[:4])
    return shown + (", ..." if len(dead) > 4 else "")


def check(analysis: Analysis) -> Iterator[Finding]:
    from rflint.rf.reads import dead_positions  # the per-phase math: only when a model is checked, not on a cache hit

    names = axis_names(analysis.graph.ndim)
    by_name = {lrf.layer.name: lrf for lrf in analysis.layers}
    for found in dead_positions(analysis.graph):
        frac = Fraction(len(found.dead), found.size)
        layer = found.culprit
        who = f"{layer.qualname} ({op_summary(layer)}) skips them" if layer is not None else "no op reads them"
        yield Finding(
            code=RULE.code,
            name=RULE.name,
            severity=RULE.severity,
            message=f"{frac} of the input positions along {names[found.axis]} ({len(found.dead)} of {found.size}: "
            f"{_examples(found.dead)}) never affect any output: {who}",
            model=analysis.graph.name,
            layer=layer.qualname if layer is not None and layer.name in by_name else "",
            source=(layer.definition or layer.source) if layer is not None else None,
            input_size=analysis.graph.input_size,
            receptive_field={
                "axis": names[found.axis],
                "dead_fraction": round(float(frac), 6),
                "dead_positions": len(found.dead),
                "positions": found.size,
                "first_dead": list(found.dead[:8]),
            },
            hint="make the kernel at least as large as its stride (or add a path that reads the skipped positions), "
            "or downsample the input before the model",
        )


RULE = Rule(
    "RF105",
    "dead-input-positions",
    Severity.WARN,
    "Input positions that no path to any output reads",
    check,
)
