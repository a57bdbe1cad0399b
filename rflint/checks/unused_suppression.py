"""RF100 unused-suppression: a ``# noqa: RF...`` or ``# rflint: ignore[...]`` comment that
suppressed nothing (ruff's RUF100).

The analysis of one model knows nothing about comments, so ``check`` yields nothing; the rule
is computed after suppressions are applied, by :func:`rflint.project.suppressions.unused_suppressions`,
which reads the source files. It is registered here so that ``rflint rule RF100`` and rule
selection (``select``, ``ignore``, ``[tool.rflint.rules]``) know it like any other rule.
"""

from __future__ import annotations

from collections.abc import Iterator

from rflint.checks.base import Rule
from rflint.ir import Analysis, Finding, Severity


def check(analysis: Analysis) -> Iterator[Finding]:
    """Nothing to find in the analysis alone: see :func:`rflint.project.suppressions.unused_suppressions`."""
    return iter(())


RULE = Rule(
    "RF100",
    "unused-suppression",
    Severity.WARN,
    "Suppression comment that suppresses no rflint finding",
    check,
)
