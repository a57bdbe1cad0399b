"""Receptive fields are a property of the architecture, not of the input size.

Except for adaptive pooling in the middle of a network (none in these models), every layer's
r_min, r_max and jump must be identical at 64 px and at 224 px. A frontend that loses track of
a spatial axis on small feature maps (a 1x1 map after a reshape, say) breaks this.
"""

from __future__ import annotations

import pytest

from rflint.engine.pipeline import lint
from rflint.spec import ModelSpec

MODELS = [
    "resnet18",
    "shufflenet_v2_x0_5",
    "mobilenet_v3_small",
    "efficientnet_b0",
    "densenet121",
    "googlenet",
    "convnext_tiny",
    "squeezenet1_1",
    "mnasnet0_5",
    "regnet_x_400mf",
]


def growing_fields(size: int, name: str) -> dict[str, tuple]:
    analysis = lint(ModelSpec(f"torchvision:{name}", input_size=(size,))).analysis
    return {
        lrf.layer.qualname: (lrf.r_min, lrf.r_max, lrf.jump, lrf.input_r_min)
        for lrf in analysis.layers
        if lrf.layer.grows_field
    }


@pytest.mark.parametrize("name", MODELS)
def test_receptive_fields_do_not_depend_on_input_size(name):
    small, large = growing_fields(64, name), growing_fields(224, name)
    assert small.keys() == large.keys()
    assert small == large
