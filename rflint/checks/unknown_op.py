"""RF001 unknown-op: an op whose effect on the receptive field rflint does not know."""

from __future__ import annotations

from collections.abc import Iterator

from rflint.checks.base import Rule, layer_finding
from rflint.ir import Analysis, Finding, Kind, Severity


def check(analysis: Analysis) -> Iterator[Finding]:
    for lrf in analysis.layers:
        if lrf.layer.kind is Kind.UNKNOWN:
            why = f" ({lrf.layer.note})" if lrf.layer.note else ""
            yield layer_finding(
                RULE,
                analysis,
                lrf,
                f"{lrf.layer.qualname} is an op rflint does not know: {lrf.layer.op}{why}; "
                "receptive fields after it are lower bounds",
                hint="mark it as a leaf module and describe its geometry, or report it to rflint",
            )


RULE = Rule("RF001", "unknown-op", Severity.WARN, "Op with an unknown receptive-field effect", check)
