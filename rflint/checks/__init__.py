"""The rule registry: every rule rflint knows, in one ordered tuple.

A rule is one small module exporting ``RULE``; adding a rule means a module, a line here,
a page in ``rules/`` and a test (``tests/project/test_registry.py`` fails if a page or rule is missing).
"""

from __future__ import annotations

from rflint.checks.base import Rule
from rflint.checks.causal_lookahead import RULE as CAUSAL_LOOKAHEAD
from rflint.checks.checkerboard_overlap import RULE as CHECKERBOARD_OVERLAP
from rflint.checks.dead_input_positions import RULE as DEAD_INPUT_POSITIONS
from rflint.checks.critical_layer import RULE as CRITICAL_LAYER
from rflint.checks.input_below_minimum_resolution import RULE as INPUT_BELOW_MINIMUM_RESOLUTION
from rflint.checks.unknown_op import RULE as UNKNOWN_OP
from rflint.checks.unproductive_layer import RULE as UNPRODUCTIVE_LAYER
from rflint.checks.unused_suppression import RULE as UNUSED_SUPPRESSION

ALL_RULES: tuple[Rule, ...] = (
    UNKNOWN_OP,
    UNUSED_SUPPRESSION,
    UNPRODUCTIVE_LAYER,
    CRITICAL_LAYER,
    INPUT_BELOW_MINIMUM_RESOLUTION,
    CAUSAL_LOOKAHEAD,
    DEAD_INPUT_POSITIONS,
    CHECKERBOARD_OVERLAP,
)

RULES_BY_CODE: dict[str, Rule] = {rule.code: rule for rule in ALL_RULES}

__all__ = ["ALL_RULES", "RULES_BY_CODE", "Rule"]
