"""When torch.fx cannot trace a model, rflint falls back to torch.export and gets the same numbers.

Expected receptive fields are computed by hand with the single-path recurrence
``r_l = r_{l-1} + (k_eff - 1) * J_{l-1}``, ``J_l = J_{l-1} * s`` (Araujo et al. 2019); an
upsampling layer is a window of ``taps`` input positions with stride ``1 / factor``.
"""

from __future__ import annotations

import json
import math
import textwrap
from fractions import Fraction
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from typer.testing import CliRunner

from rflint.rf.algebra import analyse
from rflint.rf.display import display
from rflint.cli import app
from rflint.engine.pipeline import lint
from rflint.spec import ModelSpec
from rflint.errors import TraceError
from rflint.frontend.export import graph_from_export, op_name
from rflint.frontend.fx import trace, trace_graph
from rflint.ir import Kind

SHAPE_FLOW = '''
import torch
from torch import nn


class ShapeFlow(nn.Module):
    """Python control flow on a shape: fx cannot trace it, export takes the branch of the shape."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3)
        self.big = nn.Conv2d(8, 8, 5, stride=2)
        self.small = nn.Conv2d(8, 8, 3)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = torch.relu(self.conv1(x))
        if x.shape[-1] > 16:
            x = self.big(x)
        else:
            x = self.small(x)
        return self.fc(self.pool(x).flatten(1))


def build_model():
    return ShapeFlow()
'''

BUILTIN = '''
import torch
import torch.nn.functional as F
from torch import nn


class Builtin(nn.Module):
    """Calls len() on a tensor, which torch.fx refuses; covers the aten ops export emits."""

    def __init__(self):
        super().__init__()
        self.conv_a = nn.Conv2d(3, 8, 3, padding=2, dilation=2)
        self.conv_c = nn.Conv2d(8, 8, 3, padding=1)
        self.up = nn.ConvTranspose2d(8, 8, 2, stride=2)

    def forward(self, x):
        n = len(x)
        a = self.conv_a(x)
        b, _ = F.max_pool2d(a, 2, stride=2, return_indices=True)
        c = self.conv_c(b)
        d = F.avg_pool2d(c, 3, stride=1, padding=1)
        u = F.interpolate(d, scale_factor=2, mode="bilinear")
        t = self.up(d)
        m = torch.cat([u, t], dim=1)
        s = m[:, :, ::2, ::2]
        return s.mean(dim=(2, 3)).reshape(n, -1)


def build_model():
    return Builtin()
'''

DATA_DEPENDENT = '''
from torch import nn


class DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        x = self.conv(x)
        if x.sum() > 0:
            return x * 2
        return x


def build_model():
    return DataDependent()
'''


def write(tmp_path: Path, name: str, source: str) -> str:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return str(path)


def by_qualname(analysis) -> dict:
    return {lrf.layer.qualname: lrf for lrf in analysis.layers}


def rf(lrf) -> tuple:
    """(r_min, r_max, jump) on the first axis, as plain numbers."""
    return display(lrf.r_min[0]), display(lrf.r_max[0]), display(lrf.jump[0])


# --------------------------------------------------------------------------- the fallback


def test_fx_really_fails_on_the_test_models(tmp_path):
    import importlib.util

    for name, src in (("shape_flow", SHAPE_FLOW), ("builtin", BUILTIN), ("data_dependent", DATA_DEPENDENT)):
        spec = importlib.util.spec_from_file_location(f"rflint_test_{name}", write(tmp_path, name, src))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        with pytest.raises(TraceError, match="torch.fx could not trace"):
            trace(module.build_model())


def test_shape_dependent_control_flow_takes_the_branch_of_the_input_size(tmp_path):
    target = write(tmp_path, "shape_flow", SHAPE_FLOW)
    report = lint(ModelSpec(target, input_size=(32,)))
    assert report.analysis.graph.tracer == "export"
    layers = by_qualname(report.analysis)
    # conv1 (k3): r = 3, output 30 > 16, so the 5x5 stride-2 branch: r = 3 + 4 * 1 = 7, J = 2
    assert rf(layers["conv1"]) == (3, 3, 1)
    assert rf(layers["big"]) == (7, 7, 2)
    assert "small" not in layers
    assert layers["big"].layer.source is not None and layers["big"].layer.source.file == target
    assert layers["pool"].layer.kind is Kind.GLOBAL

    report16 = lint(ModelSpec(target, input_size=(16,)))
    layers16 = by_qualname(report16.analysis)
    # output of conv1 is 14 <= 16: the 3x3 branch, r = 3 + 2 = 5
    assert rf(layers16["small"]) == (5, 5, 1)
    assert "big" not in layers16


def test_builtin_len_model_matches_hand_computed_fields(tmp_path):
    report = lint(ModelSpec(write(tmp_path, "builtin", BUILTIN), input_size=(32,)))
    a = report.analysis
    assert a.graph.tracer == "export"
    layers = by_qualname(a)
    ops = {lrf.layer.op: lrf for lrf in a.layers}
    # conv_a: k3 d2 -> k_eff 5: r 5, J 1
    assert rf(layers["conv_a"]) == (5, 5, 1)
    assert layers["conv_a"].layer.dilation == (2, 2)
    # max_pool2d k2 s2 (the with_indices variant): r 5 + 1 = 6, J 2
    assert rf(ops["max_pool2d"]) == (6, 6, 2)
    # conv_c k3: r 6 + 2*2 = 10, J 2
    assert rf(layers["conv_c"]) == (10, 10, 2)
    # avg_pool2d k3 s1: r 10 + 2*2 = 14, J 2
    assert rf(ops["avg_pool2d"]) == (14, 14, 2)
    # bilinear x2: 2 taps, stride 1/2: r 14 + 1*2 = 16, J 1
    upsample = next(lrf for lrf in a.layers if lrf.layer.kind is Kind.UPSAMPLE and lrf.layer.op.startswith("upsample"))
    assert rf(upsample) == (16, 16, 1)
    # ConvTranspose2d k2 s2: 1 tap, stride 1/2: r 14, J 1
    assert layers["up"].layer.kind is Kind.UPSAMPLE
    assert rf(layers["up"]) == (14, 14, 1)
    assert layers["up"].layer.stride == (Fraction(1, 2), Fraction(1, 2))
    # cat: union of both paths
    assert rf(ops["cat"]) == (14, 16, 1)
    # m[:, :, ::2, ::2] (aten.slice per dim): a stride of 2 without new context
    strided = [lrf for lrf in a.layers if lrf.layer.op == "slice" and lrf.layer.kind is Kind.WINDOW]
    assert [rf(lrf) for lrf in strided][-1] == (14, 16, 2) and not any(lrf.layer.grows_field for lrf in strided)
    # mean over H and W: global
    assert ops["mean"].layer.kind is Kind.GLOBAL
    assert not any(lrf.layer.kind is Kind.UNKNOWN for lrf in a.layers)


def test_unknown_aten_op_is_reported_unknown_not_identity():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            patches = F.unfold(self.conv(x), 2, stride=2) + len(x)  # len(): fx cannot trace this
            return F.fold(patches, (14, 14), 2, stride=2)  # col2im: no rule (yet)

    g = graph_from_export(Odd(), input_size=(16,))
    unknown = [layer for layer in g.layers if layer.kind is Kind.UNKNOWN]
    assert [layer.op for layer in unknown] == ["col2im"]
    assert "col2im" in unknown[0].note


def test_a_scan_along_a_spatial_axis_is_global_not_pointwise():
    class Scan(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return torch.cummax(self.conv(x), dim=-1)[0] + len(x)

    a = analyse(graph_from_export(Scan(), input_size=(16,)))
    cummax = next(l for l in a.layers if l.layer.op == "cummax")
    # unit i of a prefix scan reads [0, i]: the widest unit sees the whole row (W); H stays 3
    assert cummax.layer.kind is Kind.GLOBAL and cummax.layer.global_axes == (False, True)
    assert rf(cummax)[:1] == (3,) and cummax.r_max[1] == math.inf


def test_aten_names_map_onto_the_fx_lowerings():
    aten = torch.ops.aten
    assert op_name(aten.max_pool2d_with_indices.default) == "max_pool2d"
    assert op_name(aten._adaptive_avg_pool2d.default) == "adaptive_avg_pool2d"
    assert op_name(aten.relu_.default) == "relu"
    assert op_name(aten._unsafe_view.default) == "view"
    assert op_name(aten.conv2d.default) == "conv2d"
    assert op_name(aten._native_batch_norm_legit_no_training.default) == "batch_norm"


# --------------------------------------------------------------------------- same numbers as fx


def assert_same_fields(module: nn.Module, size: int):
    fx_a = analyse(trace_graph(module, input_size=(size,)))
    ex_a = analyse(graph_from_export(module, input_size=(size,)))
    assert ex_a.graph.tracer == "export" and fx_a.graph.tracer == "fx"
    fx_l, ex_l = by_qualname(fx_a), by_qualname(ex_a)
    grow_fx = {q for q, lrf in fx_l.items() if lrf.layer.grows_field}
    grow_ex = {q for q, lrf in ex_l.items() if lrf.layer.grows_field}
    assert grow_fx == grow_ex and grow_fx
    for q in grow_fx:
        a, b = fx_l[q], ex_l[q]
        assert (a.r_min, a.r_max, a.jump, a.input_r_min) == (b.r_min, b.r_max, b.jump, b.input_r_min), q
        assert (a.layer.kernel, a.layer.stride, a.layer.dilation) == (b.layer.kernel, b.layer.stride, b.layer.dilation), q
    assert (fx_a.i_min, fx_a.i_min_unproductive, fx_a.i_max) == (ex_a.i_min, ex_a.i_min_unproductive, ex_a.i_max)
    return fx_l, ex_l


def test_resnet18_per_layer_fields_equal_fx():
    import torchvision
    with torch.device("meta"):
        model = torchvision.models.resnet18()
    _, ex = assert_same_fields(model, 32)
    # published by rfa-toolbox / Richter et al. for ResNet-18: r_min 139 and r_max 435 at layer4.1.conv2
    conv = ex["layer4.1.conv2"]
    assert (display(conv.r_min[0]), display(conv.r_max[0])) == (139, 435)
    assert conv.layer.module_type == "torch.nn.modules.conv.Conv2d"
    assert conv.layer.source is not None and conv.layer.source.file.endswith("resnet.py")


def test_convnext_block_equal_fx_and_channels_last_linear_is_pointwise():
    from torchvision.models.convnext import CNBlock as cnblock
    block = cnblock(8, layer_scale=1e-6, stochastic_depth_prob=0.0)
    fx_l, ex_l = assert_same_fields(block, 16)
    # the 7x7 depthwise conv is the only field-growing layer: r = 7
    assert rf(ex_l["block.0"]) == (7, 7, 1)
    for q in ("block.3", "block.5"):  # the MLP's Linear layers, applied channels-last
        assert ex_l[q].layer.kind is fx_l[q].layer.kind is Kind.POINTWISE


# --------------------------------------------------------------------------- the CLI


def test_inspect_json_names_the_export_tracer(tmp_path):
    result = CliRunner().invoke(app, ["inspect", write(tmp_path, "shape_flow", SHAPE_FLOW), "-s", "32", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["tracer"] == "export"
    rows = {row["layer"]: row for row in data["layers"]}
    assert rows["big"]["r_min"] == [7, 7]


def test_data_dependent_control_flow_exits_2_naming_both_tracers(tmp_path):
    result = CliRunner().invoke(app, ["check", write(tmp_path, "data_dependent", DATA_DEPENDENT), "-s", "32"])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("rflint: error:")
    assert "torch.fx could not trace" in lines[0] and "control flow" in lines[0]
    assert "torch.export could not trace" in lines[0] and "data-dependent" in lines[0]
    assert "Traceback" not in result.output
