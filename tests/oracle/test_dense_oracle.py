"""Fields as intervals, proven against the autograd oracle on dense-prediction, 3D and video models.

For every model, at several layers (intermediate ones and the output), on every spatial axis,
rflint's ``r_max`` must equal the widest field over one period of neighbouring units as the
oracle measures it (tests/oracle.py: positive weights, no activations, float64, gates held,
global context held), and ``r_narrow`` the narrowest. Behind upsampling, transposed convolutions
and uneven adaptive pools the units of a period differ; elsewhere the period is 1 and both are
the same number.

rflint analyses each model once at a size where every feature map is well defined; the oracle
grows one axis at a time (the others stay small), in multiples of the network's total stride so
that resizing back to the input size keeps its factor.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
import torchvision
from oracle import measure_units_at
from torch import nn

from rflint.rf.display import display
from rflint.engine.pipeline import lint_module
from rflint.ir import Analysis, LayerRF
from rflint.spec import ModelSpec


@dataclass(frozen=True)
class Case:
    build: Callable[[], nn.Module]
    shape: tuple[int, ...]  # rflint's input shape
    thin: tuple[int, ...]  # the oracle's starting shape (the unmeasured axes stay at this size)
    hooks: tuple[str, ...]  # module qualnames whose output is measured; "" = the model's output
    multiple: int = 1
    axes: tuple[int, ...] | None = None  # default: every spatial axis


def monai(name: str, **kwargs) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import monai.networks.nets as nets

        return getattr(nets, name)(**kwargs)

    return build


def smp(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import segmentation_models_pytorch as smp

        return getattr(smp, name)("resnet18", encoder_weights=None, classes=2)

    return build


def tv(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        builder = torchvision.models.get_model_builder(name)
        extra = {"weights_backbone": None} if "weights_backbone" in inspect.signature(builder).parameters else {}
        return builder(weights=None, **extra)

    return build


def fpn_backbone() -> nn.Module:
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone

    return resnet_fpn_backbone(backbone_name="resnet18", weights=None, trainable_layers=5)


CASES: dict[str, Case] = {
    # torchvision segmentation: dilated backbones, ASPP (global image pooling held), bilinear x8
    "fcn_resnet50": Case(tv("fcn_resnet50"), (1, 3, 128, 128), (1, 3, 64, 64), ("backbone.layer2", ""), 8),
    "deeplabv3_mobilenet_v3_large": Case(
        tv("deeplabv3_mobilenet_v3_large"), (1, 3, 128, 128), (1, 3, 64, 64), ("classifier.0", ""), 16
    ),
    "lraspp_mobilenet_v3_large": Case(tv("lraspp_mobilenet_v3_large"), (1, 3, 128, 128), (1, 3, 64, 64), ("",), 16),
    # torchvision video: (N, C, T, H, W)
    "r3d_18": Case(tv("r3d_18"), (1, 3, 16, 64, 64), (1, 3, 16, 32, 32), ("layer2", "layer3"), 8),
    "mc3_18": Case(tv("mc3_18"), (1, 3, 16, 64, 64), (1, 3, 16, 32, 32), ("layer3",), 8),
    "r2plus1d_18": Case(tv("r2plus1d_18"), (1, 3, 16, 64, 64), (1, 3, 16, 32, 32), ("layer3",), 8),
    # S3D's features alone: its head pools 2x7x7, so the whole net runs only on 224 px frames,
    # which the oracle's thin inputs (other axes small) are not
    "s3d": Case(lambda: tv("s3d")().features, (1, 3, 16, 112, 112), (1, 3, 16, 32, 32), ("7",), 16),
    # MONAI: transposed convs k3 s2 p1 output_padding 1 inside nested skip connections; 2D and 3D
    "monai_unet_2d": Case(
        monai("UNet", spatial_dims=2, in_channels=1, out_channels=2, channels=(8, 16, 32, 64), strides=(2, 2, 2), num_res_units=1),
        (1, 1, 64, 64), (1, 1, 32, 32), ("model.1.submodule.2", ""), 8,
    ),
    "monai_unet_3d": Case(
        monai("UNet", spatial_dims=3, in_channels=1, out_channels=2, channels=(4, 8, 16), strides=(2, 2), num_res_units=1),
        (1, 1, 32, 32, 32), (1, 1, 16, 16, 16), ("",), 4,
    ),
    "monai_attention_unet_2d": Case(
        monai("AttentionUnet", spatial_dims=2, in_channels=1, out_channels=2, channels=(8, 16, 32), strides=(2, 2)),
        (1, 1, 64, 64), (1, 1, 32, 32), ("",), 4,
    ),
    "monai_attention_unet_3d": Case(
        monai("AttentionUnet", spatial_dims=3, in_channels=1, out_channels=2, channels=(4, 8, 16), strides=(2, 2)),
        (1, 1, 32, 32, 32), (1, 1, 16, 16, 16), ("",), 4,
    ),
    "monai_basic_unet": Case(
        monai("BasicUNet", spatial_dims=2, in_channels=1, out_channels=2, features=(8, 8, 16, 32, 64, 8)),
        (1, 1, 64, 64), (1, 1, 32, 32), ("",), 16,
    ),
    "monai_segresnet": Case(
        monai("SegResNet", spatial_dims=2, in_channels=1, out_channels=2, init_filters=8, blocks_down=(1, 2, 2), blocks_up=(1, 1)),
        (1, 1, 64, 64), (1, 1, 32, 32), ("",), 4,
    ),
    "monai_dynunet_anisotropic": Case(
        monai(
            "DynUNet", spatial_dims=3, in_channels=1, out_channels=2, kernel_size=[[3, 3, 1], [3, 3, 3], [3, 3, 3]],
            strides=[[1, 1, 1], [2, 2, 1], [2, 2, 2]], upsample_kernel_size=[[2, 2, 1], [2, 2, 2]],
        ),
        (1, 1, 32, 32, 16), (1, 1, 16, 16, 16), ("",), 4,
    ),
    # segmentation-models-pytorch over a ResNet-18 encoder
    "smp_unet": Case(smp("Unet"), (1, 3, 128, 128), (1, 3, 64, 64), ("decoder", ""), 32),
    "smp_fpn": Case(smp("FPN"), (1, 3, 128, 128), (1, 3, 64, 64), ("",), 32),
    "smp_deeplabv3plus": Case(smp("DeepLabV3Plus"), (1, 3, 128, 128), (1, 3, 64, 64), ("",), 16),
    # a torchvision FPN over ResNet-18: top-down merges of upsampled coarser levels
    "torchvision_fpn": Case(fpn_backbone, (1, 3, 128, 128), (1, 3, 64, 64), ("fpn.layer_blocks.0", "fpn.layer_blocks.2"), 32),
}


@functools.cache
def built(name: str) -> nn.Module:
    with torch.device("meta"):
        return CASES[name].build().eval()


@functools.cache
def analysis(name: str, shape: tuple[int, ...] | None = None) -> Analysis:
    case = CASES[name]
    return lint_module(built(name), ModelSpec(name, input_shape=shape or case.shape)).analysis


@functools.cache
def materialised(name: str) -> nn.Module:
    """The model built for real (CPU): buffers computed in ``__init__`` (frozen batch norms,
    position indices) hold values, which a meta-built copy would not."""
    torch.manual_seed(0)
    return CASES[name].build().eval()


def layer_at(a: Analysis, hook: str) -> LayerRF:
    """rflint's layer for a hook: the last layer inside module ``hook`` ("" = the last layer)."""
    if not hook:
        return a.layers[-1]
    inside = [lrf for lrf in a.layers if lrf.layer.qualname == hook or lrf.layer.qualname.startswith(hook + ".")]
    assert inside, f"no layer inside {hook}"
    return inside[-1]


PARAMS = [
    pytest.param(name, hook, axis, id=f"{name}-{hook or 'output'}-axis{axis}")
    for name, case in CASES.items()
    for hook in case.hooks
    for axis in (case.axes if case.axes is not None else range(len(case.shape) - 2))
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "hook", "axis"), PARAMS)
def test_widest_and_narrowest_unit_equal_the_oracle(name, hook, axis):
    case = CASES[name]
    field = layer_at(analysis(name), hook).axes[axis]
    units = max(1, min(field.period, 16))
    supports, shape = measure_units_at(
        materialised(name), case.thin, hook or None, axis=axis, units=units, multiple=case.multiple, margin=16
    )
    # rflint at the size the oracle settled on (a resize to the input size can depend on it)
    field = layer_at(analysis(name, shape), hook).axes[axis]
    r_max, narrow = display(field.r_max), display(field.r_narrow)
    said = f"{name} {hook or 'output'} axis {axis} at {shape}: rflint {narrow}..{r_max} (period {field.period}), oracle {supports}"
    assert narrow <= min(supports) and max(supports) <= r_max, said  # always bounds
    if field.period <= units and field.j_min == field.j_max:  # every phase measured: exact
        assert (r_max, narrow) == (max(supports), min(supports)), said


@pytest.mark.parametrize("name", sorted(CASES))
def test_no_op_is_left_unknown(name):
    unknown = [lrf.layer.qualname for lrf in analysis(name).layers if lrf.layer.kind.value == "unknown"]
    assert unknown == []
