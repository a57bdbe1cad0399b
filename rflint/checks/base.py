"""What a rule is, and helpers to describe receptive fields in findings."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rflint.algebra import display
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


def fmt_axes(values: Iterable[Number]) -> str:
    """``139`` for a square field, ``139x75`` per axis otherwise, ``inf`` for global."""
    shown = ["inf" if v is None else str(v) for v in (display(x) for x in values)]
    return shown[0] if len(set(shown)) == 1 else "x".join(shown)


def rf_fields(lrf: LayerRF) -> dict[str, object]:
    """The receptive-field numbers a finding carries for machine formats."""
    return {
        "r_min": [display(a.r_min) for a in lrf.axes],
        "r_max": [display(a.r_max) for a in lrf.axes],
        "input_r_min": [display(x) for x in lrf.input_r_min],
        "jump": [display(a.j_max) for a in lrf.axes],
        "kernel": list(lrf.layer.k_eff),
        "uncertain": lrf.uncertain,
    }


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
    )
