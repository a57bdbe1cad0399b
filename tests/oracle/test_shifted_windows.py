"""Shifted-window attention written out by hand (channels-last, ``torch.roll``, window partition
and reverse by view + permute, attention as ``q @ k.transpose(-2, -1)``), against the oracle.

After a window partition the batch dim holds the window index (the outer piece of each axis)
and the rows the offset inside the window (the inner piece). ``win @ win.transpose(-2, -1)``
then carries the inner pieces twice (rows and columns): only the columns are a repeat, not the
rows (they complement the window index in the batch dim). Read the other way, the rows are
lost, ``window_reverse`` cannot rebuild the axis and the field collapses: MONAI's SwinUNETR read
r_max 56..112 at stage 4 where the oracle measures 420..532, with no RF001.

Every number below is the oracle's (tests/oracle.py: positive weights, no activations,
float64); rflint must equal it on one period of neighbouring units (the window).
"""

from __future__ import annotations

import functools
import warnings

import pytest
import torch
from oracle import measure_units_at, unit_intervals
from torch import nn

from rflint.rf.display import display
from rflint.engine.pipeline import lint_module
from rflint.ir import Analysis, Kind
from rflint.spec import ModelSpec


def window_partition(x: torch.Tensor, ws: int) -> torch.Tensor:
    b, h, w, c = x.shape
    x = x.view(b, h // ws, ws, w // ws, ws, c)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, ws * ws, c)


def window_reverse(win: torch.Tensor, ws: int, b: int, h: int, w: int) -> torch.Tensor:
    x = win.view(b, h // ws, w // ws, ws, ws, win.shape[-1])
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(b, h, w, -1)


class OneWindow(nn.Module):
    """The issue's model: a 1x1 conv, then single-head attention (x as q, k and v) inside 7x7
    windows, cyclically shifted by ``shift`` before and shifted back after."""

    def __init__(self, shift: int = 3, ws: int = 7, roll_inside: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 1)
        self.shift, self.ws, self.roll_inside = shift, ws, roll_inside

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        b, _, h, w = x.shape
        x = x.permute(0, 2, 3, 1)
        if self.shift:
            x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
        win = window_partition(x, self.ws)
        if self.roll_inside:  # a cyclic shift of the in-window offsets (wraps inside each window)
            win = win.view(-1, self.ws, self.ws, win.shape[-1]).roll(self.roll_inside, 1).flatten(1, 2)
        win = (win @ win.transpose(-2, -1)).softmax(-1) @ win
        x = window_reverse(win, self.ws, b, h, w)
        if self.shift:
            x = torch.roll(x, shifts=(self.shift, self.shift), dims=(1, 2))
        return x.permute(0, 3, 1, 2)


class ChannelsFirst(nn.Module):
    """A channels-last feature extractor's output as [N, C, H, W] (what the oracle reads)."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).permute(0, 3, 1, 2)


def analyse(model: nn.Module, shape: tuple[int, ...]) -> Analysis:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lint_module(model, ModelSpec(type(model).__name__, input_shape=shape)).analysis


# ---------------------------------------------------------------------------------------------
# the 2-D model


@pytest.mark.parametrize("shift", [0, 3])
def test_attention_inside_one_window_sees_the_window_with_or_without_the_shift(shift):
    model = OneWindow(shift).eval()
    a = analyse(model, (1, 2, 70, 70))
    out = a.layers[-1]
    assert not [lrf for lrf in a.layers if lrf.layer.kind is Kind.UNKNOWN]
    assert out.layer.out_size == (70, 70)  # window_reverse rebuilds the axis (not 10)
    assert [display(x) for x in out.r_max] == [7, 7]
    assert [display(x) for x in out.r_min] == [7, 7]
    # by hand: rolled index q holds pixel q + s; output o is rolled index o - s, whose window
    # starts at 7 floor((o - s) / 7) in rolled indices: pixels [7 floor((o - s) / 7) + s, ... + 6]
    torch.manual_seed(0)
    got = unit_intervals(model, (1, 2, 70, 70), list(range(28, 35)), axis=0)
    assert got == [(7 * ((o - shift) // 7) + shift, 7 * ((o - shift) // 7) + shift + 6) for o in range(28, 35)]


def test_a_roll_inside_the_windows_wraps_within_each_window():
    model = OneWindow(shift=0, roll_inside=2).eval()
    a = analyse(model, (1, 2, 70, 70))
    out = a.layers[-1]
    assert not [lrf for lrf in a.layers if lrf.layer.kind is Kind.UNKNOWN]
    # every unit still reads its own 7x7 window (the roll only permutes the window's rows)
    assert [display(x) for x in out.r_max] == [7, 7] and [display(x) for x in out.r_min] == [7, 7]
    torch.manual_seed(0)
    assert unit_intervals(model, (1, 2, 70, 70), list(range(28, 35)), axis=0) == [(28, 34)] * 7


# ---------------------------------------------------------------------------------------------
# shifted-window models from three libraries, stage by stage


def monai_swinunetr_stage(stage: int) -> nn.Module:
    from monai.networks.nets import SwinUNETR

    net = SwinUNETR(in_channels=1, out_channels=2, feature_size=12, spatial_dims=2, depths=(2, 2, 2, 2), num_heads=(3, 3, 3, 3))
    vit = net.swinViT

    class Stages(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.vit = vit

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.vit.patch_embed(x)
            for layers in (self.vit.layers1, self.vit.layers2, self.vit.layers3, self.vit.layers4)[:stage]:
                x = layers[0](x.contiguous())
            return x

    return Stages()


def torchvision_swin(v2: bool, blocks: int) -> nn.Module:
    from torchvision.models import swin_transformer as tv

    extra = {"block": tv.SwinTransformerBlockV2, "downsample_layer": tv.PatchMergingV2} if v2 else {}
    net = tv.SwinTransformer(
        patch_size=[4, 4], embed_dim=8, depths=[2, 2, 2], num_heads=[1, 1, 1], window_size=[7, 7], stochastic_depth_prob=0.0, **extra
    )
    return ChannelsFirst(net.features[:blocks])


def timm_swin(stages: int) -> nn.Module:
    from timm.models.swin_transformer import SwinTransformer

    net = SwinTransformer(
        img_size=224, patch_size=4, embed_dim=8, depths=(2,) * stages, num_heads=(1,) * stages, window_size=7,
        dynamic_img_size=True, strict_img_size=False, num_classes=0, drop_path_rate=0.0,
    )

    class Body(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net.layers(self.net.patch_embed(x))

    return ChannelsFirst(Body())


#: name -> (builder, rflint's and the oracle's starting shape, the total stride). Oracle figures
#: (measured on the window's 7 units, see the test): MONAI stage 1..4: 28..42, 84..112, 196..252,
#: 420..532 (the issue's stage 4); torchvision swin_t / swin_v2_t after stage 2 and 3: 56..84,
#: 168..224; timm swin stage 1..3: 56, 168, 392 (timm merges patches at the start of a stage).
MODELS = {
    "monai_swinunetr_stage1": (functools.partial(monai_swinunetr_stage, 1), (1, 1, 128, 64), 32),
    "monai_swinunetr_stage2": (functools.partial(monai_swinunetr_stage, 2), (1, 1, 256, 64), 32),
    "monai_swinunetr_stage3": (functools.partial(monai_swinunetr_stage, 3), (1, 1, 512, 64), 32),
    "monai_swinunetr_stage4": (functools.partial(monai_swinunetr_stage, 4), (1, 1, 512, 64), 32),
    "torchvision_swin_stage2": (functools.partial(torchvision_swin, False, 3), (1, 3, 512, 64), 32),
    "torchvision_swin_stage3": (functools.partial(torchvision_swin, False, 5), (1, 3, 1024, 64), 32),
    "torchvision_swin_v2_stage2": (functools.partial(torchvision_swin, True, 3), (1, 3, 512, 64), 32),
    "torchvision_swin_v2_stage3": (functools.partial(torchvision_swin, True, 5), (1, 3, 1024, 64), 32),
    "timm_swin_stage1": (functools.partial(timm_swin, 1), (1, 3, 256, 64), 32),
    "timm_swin_stage2": (functools.partial(timm_swin, 2), (1, 3, 512, 64), 32),
    "timm_swin_stage3": (functools.partial(timm_swin, 3), (1, 3, 1024, 64), 32),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_shifted_window_stage_fields_equal_the_oracle(name):
    build, start, multiple = MODELS[name]
    torch.manual_seed(0)
    model = build().eval()
    a = analyse(model, start)
    assert not [lrf.layer.qualname for lrf in a.layers if lrf.layer.kind is Kind.UNKNOWN]
    units = min(a.layers[-1].axes[0].period, 16)
    supports, shape = measure_units_at(model, start, None, axis=0, units=units, multiple=multiple, margin=16)
    field = analyse(model, shape).layers[-1].axes[0]  # at the size the oracle settled on
    said = f"{name} at {shape}: rflint {display(field.r_narrow)}..{display(field.r_max)} (period {field.period}), oracle {supports}"
    assert field.period <= units, said  # every phase measured
    assert (display(field.r_narrow), display(field.r_max)) == (min(supports), max(supports)), said


def test_timm_window_reverse_is_followed_not_opaque():
    # timm keeps window_reverse opaque to torch.fx (its int arguments); rflint lowers it as the
    # view + permute + view it is, so the model has no unknown op and the axes are rebuilt
    import timm

    with torch.device("meta"):
        model = timm.create_model("swin_tiny_patch4_window7_224", depths=(2, 2), num_heads=(1, 1), embed_dim=8)
    a = analyse(model.eval(), (1, 3, 224, 224))
    reverses = [lrf for lrf in a.layers if lrf.layer.op.endswith("window_reverse")]
    assert reverses and all(lrf.layer.out_size in ((56, 56), (28, 28)) for lrf in reverses)
    assert not [lrf.layer.qualname for lrf in a.layers if lrf.layer.kind is Kind.UNKNOWN]
