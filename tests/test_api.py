"""The Python API: rflint.analyze, Report, rflint.testing (what a notebook or a user's pytest uses)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import rflint
from rflint.errors import ShapeError
from rflint.testing import assert_no_unproductive_layers, assert_refined


def conv_stack(n: int) -> nn.Module:
    """n 3x3 convs, stride 1, padding 1: r = 1 + 2 n (hand-derived). Its output keeps its
    spatial axes, so ``task="auto"`` judges it per unit; these tests pin Richter's numbers and
    ask for ``task="classification"`` (tests/checks/test_dense_task.py covers the dense judgement)."""
    return nn.Sequential(*[nn.Conv2d(3, 3, 3, padding=1) for _ in range(n)])


def test_analyze_a_module_instance_gives_the_hand_derived_numbers():
    with torch.device("meta"):
        model = conv_stack(4)
    report = rflint.analyze(model, input_size=32, task="classification")
    assert report.i_max == (9, 9)  # [hand] 1 + 2*4
    assert report.i_min == (9, 9)
    assert report.refined
    assert [l.r_max for l in report.layers if l.kind == "window"] == [(3, 3), (5, 5), (7, 7), (9, 9)]
    assert report.layer("3").input_r_min == (7, 7)
    assert report.findings == ()


def test_analyze_reports_unproductive_layers_and_refinement():
    with torch.device("meta"):
        model = conv_stack(10)  # r: 3 .. 21
    report = rflint.analyze(model, input_size=10, task="classification")
    # [hand] conv i (0-based) has input r_min 1 + 2 i: >= 10 from i = 5 on
    assert report.unproductive == ("5", "6", "7", "8", "9")
    assert not report.refined
    assert {f.code for f in report.findings} >= {"RF101", "RF103"}
    assert all(f.severity.value == "error" for f in report.errors)


def test_analyze_rules_selects_like_the_command_line():
    with torch.device("meta"):
        model = conv_stack(10)
    report = rflint.analyze(model, input_size=10, rules=["RF101"])
    assert {f.code for f in report.findings} == {"RF101"}


def test_analyze_accepts_a_target_string_and_per_axis_sizes():
    report = rflint.analyze("torchvision:resnet18", input_size=(32, 64))
    assert report.i_min == (139, 139)  # brief B.2: ResNet-18 final r_min 139
    assert report.input_size == (32, 64)
    # at 32 px layer4 is 1 px high, so the average pool is global on W only (2 px wide)
    assert report.layer("fc").r_max[0] == 435 and math.isinf(report.layer("fc").r_max[1])


def test_report_to_dict_repr_and_html():
    with torch.device("meta"):
        model = conv_stack(2)
    report = rflint.analyze(model, input_size=16, name="stack", task="classification")
    data = report.to_dict()
    assert data["model"] == "stack" and data["i_max"] == [5, 5] and data["refined"] is True
    assert [row["layer"] for row in data["layers"]][:2] == ["input", "0"]
    assert "I_min 5" in repr(report)
    html = report._repr_html_()
    assert "<table" in html and "stack" in html


def test_report_renders_in_rich():
    from rich.console import Console

    with torch.device("meta"):
        model = conv_stack(2)
    console = Console(record=True, width=120)
    console.print(rflint.analyze(model, input_size=16))
    assert "I_max 5" in console.export_text()


def test_bad_input_raises_an_rflint_error():
    with torch.device("meta"):
        model = nn.Conv2d(3, 3, 7)
    with pytest.raises(ShapeError):
        rflint.analyze(model, input_size=3)


def test_assert_refined_passes_and_fails_with_the_layers_named():
    with torch.device("meta"):
        small, deep = conv_stack(2), conv_stack(10)
    assert assert_refined(small, input_size=16, task="classification").refined
    with pytest.raises(AssertionError, match=r"unproductive layer\(s\): 5, 6, 7, 8, 9"):
        assert_no_unproductive_layers(deep, input_size=10, task="classification")
    with pytest.raises(AssertionError, match="not refined: I_min 21"):
        assert_refined(deep, input_size=21, task="classification")  # no unproductive layer at 21, but I_min 21 >= 21


def test_lazy_attributes_and_unknown_names():
    assert callable(rflint.analyze)
    assert rflint.testing.assert_refined is assert_refined
    with pytest.raises(AttributeError):
        rflint.no_such_thing  # noqa: B018
