"""What a rule is, and helpers to describe receptive fields in findings."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from rflint.rf.display import axis_names, display
from rflint.ir import Analysis, Finding, LayerRF, Number, Severity


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule: a stable code, a kebab-case name, a default severity and a pure check.

    ``check`` sees only the analysis of one model at one input size and yields findings with
    the rule's default severity; configuration (select/ignore/severity overrides) is applied
    by the engine, so rules know nothing about config or output formats.
    """

    code: str
    name: str
    severity: Severity
    summary: str
    check: Callable[[Analysis], Iterable[Finding]]


def per_axis(axes: Sequence[int], values: Sequence[Number], op: str, size: Sequence[int], what: str) -> str:
    """`` (input receptive field 43 >= input size 32)`` when every axis agrees, else the axes
    that trigger the rule by name: `` on T: 19 >= 16``, `` on H: 40 > 32, W: 36 > 32``."""
    names = axis_names(len(size))
    pairs = {(display(values[a]), size[a]) for a in axes}
    if len(axes) == len(size) and len(pairs) == 1:
        ((value, s),) = pairs
        return f" ({what} {value} {op} input size {s})"
    return f" on {', '.join(f'{names[a]}: {display(values[a])} {op} {size[a]}' for a in axes)} ({what} {op} input size)"


def rf_fields(lrf: LayerRF) -> dict[str, object]:
    """The receptive-field numbers a finding carries for machine formats."""
    return {
        "r_min": [display(a.r_min) for a in lrf.axes],
        "r_max": [display(a.r_max) for a in lrf.axes],
        "input_r_min": [display(x) for x in lrf.input_r_min],
        "jump": [display(a.j_max) for a in lrf.axes],
        "kernel": list(lrf.layer.k_eff),
        "uncertain": lrf.uncertain,
        "r_narrow": [display(a.r_narrow) for a in lrf.axes],
        **({"reach_in": [display(x) for x in lrf.reach_in], "reach": [display(x) for x in lrf.reach]} if lrf.reach else {}),
    }


def dense_words(lrf: LayerRF) -> tuple[str, str]:
    """How RF101/RF102 word a layer's field: Richter's narrowest path for a classifier, the
    corner reach (:mod:`rflint.rf.coverage`) when every unit of a dense output is judged."""
    if lrf.reach:
        return "at every unit, corners included", "corner reach"
    return "", "receptive field"


def layer_finding(rule: Rule, analysis: Analysis, lrf: LayerRF, message: str, hint: str = "") -> Finding:
    """A finding anchored on one layer."""
    layer = lrf.layer
    return Finding(
        code=rule.code,
        name=rule.name,
        severity=rule.severity,
        message=message,
        model=analysis.graph.name,
        layer=layer.qualname,
        source=layer.definition or layer.source,
        input_size=analysis.graph.input_size,
        receptive_field=rf_fields(lrf),
        hint=hint,
        related=(layer.built_at,) if layer.built_at is not None else (),
    )
