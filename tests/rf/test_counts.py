"""The numbers users cross-check against torch: parameters, MACs, the shown hyper-parameters.

Oracles: parameters are ``sum(p.numel())`` of the real model (models without biases or norms,
so every parameter is a conv or linear weight; models with them are compared against the
weights of their conv and linear layers, since rflint counts weights only); MACs are half of
torch's own ``FlopCounterMode`` total (it counts a multiply-accumulate as two flops, a
transposed conv once per input position and kernel tap, as fvcore does).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from rflint.rf.algebra import analyse
from rflint.rf.display import display
from rflint.engine.pipeline import lint_module
from rflint.frontend.export import graph_from_export
from rflint.frontend.fx import trace_graph
from rflint.views import inspection as view
from rflint.report.common import RenderContext
from rflint.rf.sizes import graph_cost
from rflint.spec import ModelSpec


def weights(model: nn.Module) -> int:
    """The oracle: every conv / linear weight element of the real (CPU) model."""
    kinds = (nn.modules.conv._ConvNd, nn.Linear)
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, kinds))


def flop_macs(model: nn.Module, shape: tuple[int, ...]) -> int:
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(shape))
    return counter.get_total_flops() // 2


def inspected(model: nn.Module, size: int, **spec: object) -> dict:
    report = lint_module(model, ModelSpec("m", (size,), name="m", **spec))
    rows = view.layer_rows(report, True, RenderContext())
    return {"summary": view.summary(report), "rows": {r["layer"]: r for r in rows}, "report": report}


class UNet3D(nn.Module):
    """Rep3D's shape: a 3-D encoder with a transposed-conv decoder (no biases, no norms)."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Conv3d(1, 8, 3, padding=1, bias=False)
        self.down = nn.Conv3d(8, 16, 2, stride=2, bias=False)
        self.dw = nn.Conv3d(16, 16, 7, padding=3, groups=16, bias=False)
        self.up = nn.ConvTranspose3d(16, 8, 2, stride=2, bias=False)
        self.head = nn.Conv3d(16, 2, 1, bias=False)

    def forward(self, x):
        e = self.enc(x)
        return self.head(torch.cat([e, self.up(self.dw(self.down(e)))], 1))


class Decoders(nn.Module):
    """Every transposed-conv geometry: kernel 4 stride 2 padding 1 (DCGAN), grouped with an
    output padding, dilated at stride 1."""

    def __init__(self):
        super().__init__()
        self.a = nn.ConvTranspose2d(8, 8, 4, stride=2, padding=1, bias=False)
        self.b = nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1, groups=2, bias=False)
        self.c = nn.ConvTranspose2d(4, 4, 3, stride=1, dilation=2, bias=False)

    def forward(self, x):
        return self.c(self.b(self.a(x)))


def test_conv_transpose_2x2_stride_2_counts_its_whole_kernel():
    model = nn.Sequential(nn.ConvTranspose2d(8, 4, 2, 2, bias=False))
    got = inspected(model, 16)
    assert got["summary"]["params_total"] == sum(p.numel() for p in model.parameters()) == 128
    row = got["rows"]["0"]
    # shown as written in the code: kernel 2, stride 2, dilation 1 (not 1 / 0.5 / 1)
    assert (row["kernel"], row["stride"], row["dilation"]) == ([2, 2], [2, 2], [1, 1])
    # hand count: 16 x 16 input positions x 4 taps x 8 in x 4 out = 32768
    assert row["macs"] == 16 * 16 * 4 * 8 * 4 == flop_macs(model, (1, 8, 16, 16))


def test_3d_unet_with_transposed_decoder_matches_torch_parameters_and_flops():
    model = UNet3D()
    got = inspected(model, 16)
    assert got["summary"]["params_total"] == sum(p.numel() for p in model.parameters())
    assert got["summary"]["macs_total"] == flop_macs(model, (1, 1, 16, 16, 16))
    assert got["rows"]["up"]["kernel"] == [2, 2, 2] and got["rows"]["up"]["stride"] == [2, 2, 2]


def test_grouped_padded_and_dilated_transposed_convs_match_torch():
    model = Decoders()
    got = inspected(model, 9)
    assert got["summary"]["params_total"] == sum(p.numel() for p in model.parameters())
    assert got["summary"]["macs_total"] == flop_macs(model, (1, 8, 9, 9))
    c = got["rows"]["c"]
    assert (c["kernel"], c["stride"], c["dilation"]) == ([3, 3], [1, 1], [2, 2])
    # a stride-1 transposed conv with dilation 2 reads 2 * (3 - 1) + 1 = 5 inputs per output
    assert c["r_min"][0] - got["rows"]["b"]["r_min"][0] == (5 - 1) * got["rows"]["b"]["jump"][0]


def test_graph_cost_of_the_traced_graph_agrees_with_inspect():
    model = UNet3D()
    report = inspected(model, 16)["report"]
    macs, params = graph_cost(report.analysis.graph)
    assert (macs, params) == (flop_macs(model, (1, 1, 16, 16, 16)), sum(p.numel() for p in model.parameters()))


def test_torchvision_models_count_every_conv_and_linear_weight():
    import torchvision

    for build, size in ((torchvision.models.resnet18, 64), (torchvision.models.mobilenet_v3_small, 64)):
        model = build()
        with torch.device("meta"):
            meta = build()
        got = inspected(meta, size)
        assert got["summary"]["params_total"] == weights(model), build.__name__


def test_fcn_decoder_transposed_convs_with_bias_count_weights_only():
    model = nn.Sequential(nn.Conv2d(3, 6, 3, bias=True), nn.ConvTranspose2d(6, 3, 4, 2, 1, bias=True))
    got = inspected(model, 16)
    assert got["summary"]["params_total"] == weights(model) == 6 * 3 * 9 + 6 * 3 * 16


# --------------------------------------------------------------------------- export defaults


class DefaultedPools(nn.Module):
    """Pools whose stride is left out (aten: ``stride=[]``, which means the kernel) and a
    reduction whose ``dim=[]`` means every dim; ``len(x)`` keeps torch.fx from tracing it."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        out = F.avg_pool2d(self.conv(x), 4) + len(x)
        out = F.max_pool2d(out, 2)
        return out.amax(dim=(-1, -2)) + torch.amax(out, dim=[]).reshape(1, 1)


def test_pools_without_stride_under_export_use_the_kernel_as_stride():
    model = DefaultedPools()
    ex = analyse(graph_from_export(model, input_size=(34,)))
    assert ex.graph.tracer == "export"
    rows = {l.layer.op: l for l in ex.layers}
    # by hand: conv 3 -> 3; avg 4 stride 4 -> 3 + 3 * 1 = 6, jump 4; max 2 stride 2 -> 6 + 1 * 4 = 10, jump 8
    assert rows["avg_pool2d"].layer.stride == (4, 4) and display(rows["avg_pool2d"].r_max[0]) == 6
    assert rows["max_pool2d"].layer.stride == (2, 2) and display(rows["max_pool2d"].r_max[0]) == 10
    assert display(rows["max_pool2d"].jump[0]) == 8
    assert rows["amax"].layer.global_axes == (True, True)


def test_pools_without_stride_agree_between_fx_and_export():
    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3)

        def forward(self, x):
            return F.max_pool2d(F.avg_pool2d(self.conv(x), 4), 2)

    fx = {l.layer.qualname: (l.r_max, l.jump) for l in analyse(trace_graph(Plain(), input_size=(34,))).layers}
    ex = {l.layer.qualname: (l.r_max, l.jump) for l in analyse(graph_from_export(Plain(), input_size=(34,))).layers}
    assert fx["avg_pool2d"] == ex["avg_pool2d"] and fx["max_pool2d"] == ex["max_pool2d"]


# --------------------------------------------------------------------------- grouped rows


class ChannelsFirstLayerNorm(nn.Module):
    """ConvNeXt's ``LayerNorm(data_format="channels_first")``, written with mean/sub/pow/div."""

    def __init__(self, c: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))
        self.eps = eps

    def forward(self, x):
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class ConvNeXtStem(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 4, 4)
        self.norm = ChannelsFirstLayerNorm(8)
        self.down = nn.Sequential(ChannelsFirstLayerNorm(8), nn.Conv2d(8, 16, 2, 2))

    def forward(self, x):
        return self.down(self.norm(self.stem(x)))


def test_a_hand_written_channels_first_layer_norm_is_one_row_with_exact_fields():
    report = inspected(ConvNeXtStem(), 64)["report"]
    every = view.layer_rows(report, False, RenderContext())
    grouped = view.group_merges(every)
    names = [r["layer"] for r in grouped]
    assert names == ["input", "stem", "norm", "down.0", "down.1"]
    for module in ("norm", "down.0"):
        members = [r for r in every if r["layer"].startswith(module + ".")]
        assert [r["op"] for r in members] == ["sub", "sub", "truediv"]
        row = next(r for r in grouped if r["layer"] == module)
        assert row["op"] == "3 ops: sub, truediv"
        for key in ("r_min", "r_max", "jump", "effective_padding", "feature_map", "status"):
            assert row[key] == members[-1][key]


def test_a_residual_add_per_block_is_not_grouped():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x):
            return x + self.conv(x)

    model = nn.Sequential(nn.Conv2d(3, 4, 1), Block(), Block())
    rows = view.layer_rows(inspected(model, 16)["report"], False, RenderContext())
    assert view.group_merges(rows) == rows


def test_an_onnx_export_of_the_decoders_counts_the_same(tmp_path):
    import warnings

    from rflint.frontend.onnx import graph_from_onnx

    model = Decoders().eval()
    path = tmp_path / "decoders.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(1, 8, 9, 9),), str(path), dynamo=False)
    macs, params = graph_cost(graph_from_onnx(str(path)))
    assert (macs, params) == (flop_macs(model, (1, 8, 9, 9)), sum(p.numel() for p in model.parameters()))
