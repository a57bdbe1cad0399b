"""RF106 checkerboard-overlap: a transposed conv whose outputs sum uneven numbers of inputs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from rflint.rf.display import axis_names, op_summary
from rflint.checks.base import Rule, layer_finding
from rflint.ir import Analysis, Finding, Severity


def check(analysis: Analysis) -> Iterator[Finding]:
    from rflint.rf.overlap import uneven_overlaps  # the per-phase math: only when a model is checked, not on a cache hit

    names = axis_names(analysis.graph.ndim)
    by_name = {lrf.layer.name: lrf for lrf in analysis.layers}
    for found in uneven_overlaps(analysis.graph):
        lrf = by_name.get(found.layer.name)
        if lrf is None:
            continue
        counts = ", ".join(str(c) for c in found.counts)
        chain = "" if found.chain_end == found.layer.qualname else f" (still after {found.chain_end})"
        period = len(found.own)
        why = (
            f"kernel {found.kernel} is not divisible by stride {period}"
            if "transpose" in found.layer.op.lower()
            else f"its {period} phases read different numbers of inputs"
        )
        finding = layer_finding(
            RULE,
            analysis,
            lrf,
            f"{found.layer.qualname} ({op_summary(found.layer)}) makes neighbouring outputs sum different numbers of "
            f"inputs along {names[found.axis]}: {counts} per phase{chain}; {why} (checkerboard artifacts)",
            hint=f"use a kernel divisible by the stride ({2 * period} for stride {period}), "
            "or resize (nearest or bilinear) and then convolve",
        )
        fields = {**finding.receptive_field, "axis": names[found.axis], "phase_counts": list(found.counts), "own_phase_counts": list(found.own)}
        yield replace(finding, receptive_field=fields)


RULE = Rule(
    "RF106",
    "checkerboard-overlap",
    Severity.INFO,
    "Transposed convolution whose neighbouring outputs sum different numbers of inputs",
    check,
)
