"""RF102 critical-layer: the layer that pushes r_min past the input size."""

from __future__ import annotations

from collections.abc import Iterator

from rflint.rf.status import critical_axes, is_critical
from rflint.rf.display import op_summary
from rflint.checks.base import Rule, dense_words, layer_finding, per_axis
from rflint.ir import Analysis, Finding, LayerRF, Severity


def critical_runs(analysis: Analysis) -> list[list[LayerRF]]:
    """The critical layers in runs: consecutive field-growing layers (in graph order) that are
    all critical. Parallel branches of one block (RepLKNet's 31x31 and 5x5 kernels, block after
    block behind identity shortcuts) cross the border together; one finding per run names the
    border once instead of once per branch. Any field-growing layer that is not critical (ok
    or unproductive) ends a run; pointwise layers, merges and norms do not."""
    size = analysis.graph.input_size
    runs: list[list[LayerRF]] = []
    current: list[LayerRF] = []
    for lrf in analysis.layers:
        if not lrf.layer.grows_field:
            continue
        if is_critical(lrf, size):
            current.append(lrf)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return runs


def check(analysis: Analysis) -> Iterator[Finding]:
    size = analysis.graph.input_size
    for run in critical_runs(analysis):
        lrf = run[0]
        _, what = dense_words(lrf)
        passes = (
            f"every unit of its output, corners included, sees past the whole input"
            f"{per_axis(critical_axes(lrf, size), lrf.reach, '>', size, what)}"
            if lrf.reach
            else f"its own receptive field passes the input size{per_axis(critical_axes(lrf, size), lrf.r_min, '>', size, what)}"
        )
        head = f"{lrf.layer.qualname} ({op_summary(lrf.layer)}) is critical"
        if len(run) > 1:
            head = f"{lrf.layer.qualname} ({op_summary(lrf.layer)}) is the first of {len(run)} critical layers in a row (up to {run[-1].layer.qualname})"
        yield layer_finding(RULE, analysis, lrf, f"{head}: {passes}", hint="layers after this one may add no new context")


RULE = Rule(
    "RF102",
    "critical-layer",
    Severity.INFO,
    "Layer whose own receptive field grows past the input size",
    check,
)
