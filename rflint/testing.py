"""Assertions for a user's own test suite::

    from rflint.testing import assert_refined

    def test_backbone_is_refined_for_cifar():
        assert_refined(build_model(), input_size=32)

Each raises ``AssertionError`` with the numbers and the offending layers, so a failing test
says what to change, and returns the :class:`rflint.api.Report` when it passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rflint.api import Report, analyze


def _size_text(values: Sequence[Any]) -> str:
    shown = ["inf" if v == float("inf") else str(v) for v in values]
    return shown[0] if len(set(shown)) == 1 else "x".join(shown)


def assert_no_unproductive_layers(model: Any, input_size: Any = None, input_shape: Any = None, **options: Any) -> Report:
    """Fail if any layer is unproductive (RF101) at this input size."""
    report = analyze(model, input_size, input_shape, **options)
    if report.unproductive:
        raise AssertionError(
            f"{report.name} @ {_size_text(report.input_size)}: {len(report.unproductive)} unproductive layer(s): "
            f"{', '.join(report.unproductive)} (their input already sees the whole input; "
            f"no layer is unproductive from {_size_text(report.i_min_unproductive)} px)"
        )
    return report


def assert_refined(model: Any, input_size: Any = None, input_shape: Any = None, **options: Any) -> Report:
    """Fail unless the architecture is refined for this input size (``I_min < I_res`` on every
    axis, Richter & Pal 2022) and has no unproductive layer."""
    report = assert_no_unproductive_layers(model, input_size, input_shape, **options)
    if not report.refined:
        raise AssertionError(
            f"{report.name} @ {_size_text(report.input_size)} is not refined: I_min {_size_text(report.i_min)} "
            f">= input size (run `rflint suggest` for a single edit that brings I_min below it)"
        )
    return report
