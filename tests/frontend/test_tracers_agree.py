"""torch.fx and the torch.export fallback give the same answer on the same model: every op the
zoos use is known under both tracers (no RF001 under one only), the fields and bounds agree, and
the layers keep their module paths under export (so suppressions and baselines keep matching
when rflint has to fall back)."""

from __future__ import annotations

import functools

import pytest
import torch
import torchvision
from torch import nn

from rflint.rf.algebra import analyse
from rflint.rf.display import display
from rflint.frontend.export import graph_from_export
from rflint.frontend.fx import trace_graph
from rflint.ir import Kind


def tv(name: str, **kwargs):
    return lambda: torchvision.models.get_model(name, weights=None, **kwargs)


def timm_model(name: str):
    def build():
        import timm

        return timm.create_model(name, pretrained=False)

    return build


def monai_unet():
    from monai.networks.nets import UNet

    return UNet(spatial_dims=2, in_channels=1, out_channels=2, channels=(8, 16, 32), strides=(2, 2), num_res_units=1)


def smp_unet():
    import segmentation_models_pytorch as smp

    return smp.Unet("resnet18", encoder_weights=None, classes=2)


class Dropout2dNet(nn.Module):
    """nn.Dropout2d lowers to aten.feature_dropout under export."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.drop, self.c2 = nn.Conv2d(3, 8, 3), nn.Dropout2d(0.1), nn.Conv2d(8, 8, 3)

    def forward(self, x):
        return self.c2(self.drop(self.c1(x)))


MODELS = {
    "dropout2d": (Dropout2dNet, (1, 3, 32, 32)),
    "resnet18": (tv("resnet18"), (1, 3, 64, 64)),
    "mobilenet_v3_small": (tv("mobilenet_v3_small"), (1, 3, 64, 64)),
    "efficientnet_b0": (tv("efficientnet_b0"), (1, 3, 64, 64)),
    "convnext_tiny": (tv("convnext_tiny"), (1, 3, 64, 64)),
    "vit_b_16": (tv("vit_b_16", image_size=64), (1, 3, 64, 64)),
    "deeplabv3_mobilenet_v3_large": (tv("deeplabv3_mobilenet_v3_large", weights_backbone=None), (1, 3, 64, 64)),
    "r2plus1d_18": (tv("r2plus1d_18"), (1, 3, 8, 32, 32)),
    "timm_resnet50d": (timm_model("resnet50d"), (1, 3, 64, 64)),
    "timm_efficientnet_b0": (timm_model("efficientnet_b0"), (1, 3, 64, 64)),
    "monai_unet": (monai_unet, (1, 1, 32, 32)),
    "smp_unet": (smp_unet, (1, 3, 64, 64)),
}


@functools.cache
def both(name: str):
    build, shape = MODELS[name]
    with torch.device("meta"):
        model = build().eval()
    return analyse(trace_graph(model, input_shape=shape)), analyse(graph_from_export(model, input_shape=shape))


def numbers(values) -> list:
    return [display(v) for v in values]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_no_op_is_unknown_under_either_tracer(name):
    fx_a, ex_a = both(name)
    assert [l.layer.op for l in fx_a.layers if l.layer.kind is Kind.UNKNOWN] == []
    assert [l.layer.op for l in ex_a.layers if l.layer.kind is Kind.UNKNOWN] == []


@pytest.mark.parametrize("name", sorted(MODELS))
def test_bounds_and_global_context_agree(name):
    fx_a, ex_a = both(name)
    assert (numbers(ex_a.i_min), numbers(ex_a.i_min_unproductive), numbers(ex_a.i_max)) == (
        numbers(fx_a.i_min),
        numbers(fx_a.i_min_unproductive),
        numbers(fx_a.i_max),
    )
    assert bool(ex_a.global_via) == bool(fx_a.global_via)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_window_layers_keep_their_module_paths_and_fields(name):
    fx_a, ex_a = both(name)

    def windows(a):
        return {
            l.layer.qualname: (numbers(l.r_min), numbers(l.r_max), numbers(l.jump))
            for l in a.layers
            if l.layer.kind is Kind.WINDOW and l.layer.module_type
        }

    assert windows(ex_a) == windows(fx_a)
