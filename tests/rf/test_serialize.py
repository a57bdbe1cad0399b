"""Reports survive JSON exactly (the cache and `rflint diff` depend on it)."""

from __future__ import annotations

import json
import math
from fractions import Fraction

from rflint.engine.pipeline import lint
from rflint.ir import INF, AxisRF, Kind, Layer
from rflint.results import ModelReport
from rflint.serialize import from_data, to_data
from rflint.spec import ModelSpec


def roundtrip(tp, value):
    return from_data(tp, json.loads(json.dumps(to_data(value))))


def test_numbers_keep_their_type():
    rf = AxisRF(Fraction(3, 2), INF, 4, Fraction(1, 2), has_global=True)
    back = roundtrip(AxisRF, rf)
    assert back == rf
    assert isinstance(back.r_min, Fraction) and math.isinf(back.r_max) and type(back.j_min) is int


def test_layer_with_enum_and_tuples():
    layer = Layer("n", "q", "Conv2d", Kind.WINDOW, ("a",), (3, 3), (Fraction(2), Fraction(1, 2)), (1, 1), (1, 0))
    assert roundtrip(Layer, layer) == layer


def test_a_whole_model_report_roundtrips():
    report = lint(ModelSpec("torchvision:resnet18", input_size=(32,)))
    back = roundtrip(ModelReport, report)
    assert back.analysis == report.analysis
    assert back.findings == report.findings
    assert back.spec == report.spec
