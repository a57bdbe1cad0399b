"""One op table, three frontends: the same tiny model traced by torch.fx, torch.export and read
from its ONNX export must give the same fields, op by op of the table.

Each model exercises one entry of :data:`rflint.ops.table.OPS` (a test checks that every
entry is covered or listed as not expressible in a model); its hand-derived numbers say what the
entry must do, and the three frontends must agree on every field-shaping layer (kind, r_min,
r_max, r_narrow, jump) and on the model's I_min / I_max.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rflint.rf.algebra import analyse
from rflint.rf.display import display
from rflint.frontend.export import graph_from_export
from rflint.frontend.fx import trace_graph
from rflint.frontend.onnx import graph_from_onnx
from rflint.ops.table import OPS
from rflint.ir import Kind

SHAPE = (1, 3, 32, 32)


class Op(nn.Module):
    """A conv stem, then ``fn``, then a 3x3 conv: every op sits between two field-growing layers."""

    def __init__(self, fn, channels: int = 4, out_channels: int | None = None) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, channels, 3, padding=1)
        self.fn = fn
        self.head = nn.Conv2d(out_channels or channels, 4, 3, padding=1)

    def forward(self, x):
        return self.head(self.fn(self.stem(x)))


class Lambda(nn.Module):
    def __init__(self, fn) -> None:
        super().__init__()
        self.f = fn

    def forward(self, x):
        return self.f(x)


def space_to_depth(x):
    b, c, h, w = x.shape
    x = x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, c * 4, h // 2, w // 2)


def window_attention(x):
    b, c, h, w = x.shape
    t = x.view(b, c, h // 4, 4, w // 4, 4).permute(0, 2, 4, 3, 5, 1).reshape(-1, 16, c)  # windows of 4x4
    t = (t @ t.transpose(1, 2)).softmax(-1) @ t
    return t.view(b, h // 4, w // 4, 4, 4, c).permute(0, 5, 1, 3, 2, 4).reshape(b, c, h, w)


#: op-table entry -> (module, what the hand derivation says of the op's layer)
MODELS: dict[str, nn.Module] = {
    "conv": Op(nn.Conv2d(4, 4, 5, stride=2, padding=2)),  # 3 + 4 = 7, J 2, head 7 + 2*2 = 11
    "pool": Op(nn.MaxPool2d(3, 2, 1)),  # 3 + 2 = 5, J 2, head 9
    "conv_transpose": Op(nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1)),  # phases of 1 and 2 inputs
    "adaptive_pool": Op(nn.AdaptiveAvgPool2d(8)),  # bins of 4 (uneven bins: see below; ONNX cannot export them)
    "interpolate": Op(nn.Upsample(scale_factor=2, mode="bilinear")),
    "pixel_shuffle": Op(nn.PixelShuffle(2), channels=16, out_channels=4),
    "pixel_unshuffle": Op(nn.PixelUnshuffle(2), channels=4, out_channels=16),
    "pad": Op(Lambda(lambda x: F.pad(x, (2, 0, 1, 0))[..., :-1, :-2])),  # shifts by (-1, -2): same sizes
    "index": Op(Lambda(lambda x: x[..., 1::2, ::2])),  # stride 2, offset 1 on H
    "reshape": Op(Lambda(space_to_depth), channels=4, out_channels=16),  # a 2x2 block per unit
    "permute": Op(Lambda(lambda x: x.permute(0, 1, 3, 2))),  # H and W swap (square: same numbers)
    "reduce": Op(Lambda(lambda x: x - x.mean((2, 3), keepdim=True))),  # a global side path
    "along": Op(Lambda(lambda x: x.softmax(-1))),  # global on W
    "matmul": Op(Lambda(window_attention)),  # attention inside 4x4 windows
    "norm": Op(nn.GroupNorm(2, 4)),  # per-image statistics: a global side path
    "pointwise": Op(nn.ReLU()),
    "cat": Op(Lambda(lambda x: torch.cat([x, F.avg_pool2d(x, 3, 1, 1)], 1)), out_channels=8),
}

#: entries no small model exercises in all three frontends, and why
NOT_IN_ALL_FRONTENDS = {
    "tensor_unfold": "Tensor.unfold has no ONNX op",
    "unfold": "F.unfold exports to ONNX as a loop of slices",
    "roll": "exported to ONNX as slices and a concat (a roll is a cyclic shift)",
    "expand": "covered by the reduce model's broadcast",
    "linear": "covered by test_onnx's token mixer and the zoo",
    "einsum": "covered by test_frontend_ops and the zoo (MaxViT)",
    "attention": "scaled_dot_product_attention is covered by the zoo (ViT)",
    "multihead_attention": "covered by test_onnx's TinyViT",
    "transpose": "covered by the matmul model (t.transpose)",
    "stack": "covered by test_frontend_ops",
    "split": "covered by the zoo (ShuffleNet chunk)",
    "identity": "every dropout / clone",
    "global_spatial": "grid_sample: covered by test_onnx",
    "window_attention": "torchvision's opaque Swin function: fx only, covered by the zoo",
    "patch_merging": "torchvision's opaque Swin function: fx only, covered by the zoo",
    "window_reverse": "timm's opaque window / grid reverse: fx only, tests/frontend/test_shifted_windows.py and the zoo",
    "custom": "declared ops: tests/ops/test_custom_ops.py",
}


def fields(graph) -> tuple:
    """(kind, r_min, r_max, r_narrow, jump) of every field-shaping layer, and I_min / I_max."""
    analysis = analyse(graph)
    rows = [
        (lrf.layer.kind.value, *[tuple(display(getattr(a, k)) for a in lrf.axes) for k in ("r_min", "r_max", "r_narrow", "j_max")])
        for lrf in analysis.layers
        if lrf.layer.kind in (Kind.WINDOW, Kind.UPSAMPLE, Kind.GLOBAL) or lrf.layer.taps is not None
    ]
    last = analysis.layers[-1]
    return rows, [display(x) for x in analysis.i_min], [display(x) for x in analysis.i_max], [display(x) for x in last.r_max]


def onnx_graph(model: nn.Module, path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.randn(*SHAPE),), str(path), dynamo=False, opset_version=17)
    return graph_from_onnx(path)


@pytest.mark.parametrize("entry", sorted(MODELS))
def test_fx_export_and_onnx_give_the_same_fields(entry, tmp_path):
    model = MODELS[entry].eval()
    fx_fields = fields(trace_graph(model, input_shape=SHAPE))
    assert fields(graph_from_export(model, input_shape=SHAPE))[1:] == fx_fields[1:], "torch.export differs from fx"
    assert fields(onnx_graph(model, tmp_path / "m.onnx"))[1:] == fx_fields[1:], "ONNX differs from fx"
    fx_last = fx_fields[0][-1]
    assert fields(graph_from_export(model, input_shape=SHAPE))[0][-1] == fx_last
    assert fields(onnx_graph(model, tmp_path / "m2.onnx"))[0][-1] == fx_last


def test_every_table_entry_is_covered_or_says_why_not():
    assert set(MODELS) | set(NOT_IN_ALL_FRONTENDS) == set(OPS)


def last_field(entry: str):
    analysis = analyse(trace_graph(MODELS[entry].eval(), input_shape=SHAPE))
    return analysis.layers[-1].axes


@pytest.mark.parametrize(
    ("entry", "r_min", "r_max", "narrow", "jump"),
    [
        ("conv", 11, 11, 11, 2),  # [hand] 3 + 4*1 = 7 (J 2), + 2*2 = 11
        ("pool", 9, 9, 9, 2),  # [hand] 3 + 2 = 5 (J 2), + 2*2 = 9
        # [hand] k3 s2 p1: even outputs read one stem unit, odd two; then a 3x3 on the fine grid
        # reads 2 or 3 stem units: 3 + 1 = 4 .. 3 + 2 = 5 (J 1/2)
        ("conv_transpose", 4, 5, 4, 0.5),
        ("pad", 5, 5, 5, 1),  # [hand] a shift changes no size: 3 + 2 = 5
        ("reshape", 8, 8, 8, 2),  # [hand] a 2x2 block holds stem units 2q, 2q+1: 4 px (J 2); the 3x3 over blocks: 4 + 2*2 = 8
    ],
)
def test_hand_derived_fields_of_table_entries(entry, r_min, r_max, narrow, jump):
    axes = last_field(entry)
    assert (display(axes[0].r_min), display(axes[0].r_max), display(axes[0].r_narrow), display(axes[0].j_max)) == (
        r_min,
        r_max,
        narrow,
        jump,
    )


def test_uneven_adaptive_bins_make_neighbouring_units_differ():
    # AdaptiveAvgPool2d(7) on the 32-wide stem map: bin i covers stem units
    # floor(32 i / 7) .. ceil(32 (i + 1) / 7) - 1, 5 or 6 of them; the head's 3x3 reads 3 bins.
    # [independent brute force] the union of the stem fields (3 px each, J 1) over those units.
    def bins(i):
        return range(32 * i // 7, -(-32 * (i + 1) // 7))

    widths = []
    for q in range(1, 6):  # interior units
        units = [u for i in (q - 1, q, q + 1) for u in bins(i)]
        widths.append(max(units) + 1 - (min(units) - 1) + 1)
    axes = analyse(trace_graph(Op(nn.AdaptiveAvgPool2d(7)).eval(), input_shape=SHAPE)).layers[-1].axes
    assert (display(axes[0].r_max), display(axes[0].r_narrow)) == (max(widths), min(widths))
    assert max(widths) > min(widths)
