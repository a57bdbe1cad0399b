"""The ONNX frontend: layer parameters read from exported files, receptive fields equal to hand
computation, unknown ops kept visible, unsafe external data refused, and no torch needed.

Expected receptive fields use r_l = r_{l-1} + (k_eff - 1) * J_{l-1}, J_l = J_{l-1} * s_l
(Araujo et al. 2019), computed by hand next to each model; upsampling by f reads ``taps`` input
positions (1 nearest, 2 linear) at jump J / f, a transposed conv ceil(k_eff / s) positions.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from fractions import Fraction
from pathlib import Path

import pytest

import onnx
import torch
from onnx import TensorProto, helper
from torch import nn

from rflint.rf.algebra import analyse
from rflint.rf.display import display
from rflint.errors import ShapeError, TargetError
from rflint.frontend.onnx import graph_from_onnx
from rflint.ir import Kind

EXPORTERS = [pytest.param(False, id="torchscript"), pytest.param(True, id="dynamo")]


def export(model: nn.Module, path: Path, size: int = 32, dynamo: bool = False, **kwargs) -> Path:
    """Export ``model`` at ``size`` x ``size`` with 3 channels (quietly)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.randn(1, 3, size, size),), str(path), dynamo=dynamo, **kwargs)
    return path


def windows(graph):
    """(op, r_min, r_max) per field-growing layer, in graph order, r as display numbers."""
    analysis = analyse(graph)
    return [
        (lrf.layer.op, [display(x) for x in lrf.r_min], [display(x) for x in lrf.r_max])
        for lrf in analysis.layers
        if lrf.layer.kind in (Kind.WINDOW, Kind.UPSAMPLE)
    ]


def r_max_of(graph, ops=("Conv",)):
    return [r_max[0] for op, _, r_max in windows(graph) if op in ops]


# --------------------------------------------------------------------------- receptive fields


@pytest.mark.parametrize("dynamo", EXPORTERS)
def test_vgg_like_chain(tmp_path, dynamo):
    # k/s: 3/1, 3/2, 3/1, 3/2, 3/1 -> r: 3, 3+2*1=5, 5+2*2=9, 9+2*2=13, 13+2*4=21
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, 1, 1), nn.ReLU(), nn.Conv2d(4, 4, 3, 2, 1), nn.ReLU(), nn.Conv2d(4, 4, 3, 1, 1),
        nn.Conv2d(4, 4, 3, 2, 1), nn.Conv2d(4, 4, 3, 1, 1),
    )
    graph = graph_from_onnx(export(model, tmp_path / "vgg.onnx", dynamo=dynamo))
    assert graph.tracer == "onnx"
    assert graph.input_size == (32, 32)
    assert [(r_min, r_max) for _, r_min, r_max in windows(graph)] == [
        ([3, 3], [3, 3]), ([5, 5], [5, 5]), ([9, 9], [9, 9]), ([13, 13], [13, 13]), ([21, 21], [21, 21])
    ]
    convs = [layer for layer in graph.layers if layer.op == "Conv"]
    assert [c.stride for c in convs][1] == (Fraction(2), Fraction(2))
    assert [c.out_size for c in convs] == [(32, 32), (16, 16), (16, 16), (8, 8), (8, 8)]
    assert (convs[0].in_channels, convs[0].out_channels, convs[0].padding) == (3, 4, (1, 1))


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, 2, 1)
        self.conv1 = nn.Conv2d(8, 8, 3, 1, 1)
        self.conv2 = nn.Conv2d(8, 8, 3, 1, 1)
        self.head = nn.Conv2d(8, 8, 3, 1, 1)

    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))) + x)
        return self.head(x)


@pytest.mark.parametrize("dynamo", EXPORTERS)
def test_residual_block_has_a_range(tmp_path, dynamo):
    # stem 3/2: r 3, J 2; conv1: 3+2*2 = 7; conv2: 11; add(conv2, stem): r in [3, 11];
    # head: [3+2*2, 11+2*2] = [7, 15]
    graph = graph_from_onnx(export(Residual(), tmp_path / "res.onnx", dynamo=dynamo))
    analysis = analyse(graph)
    by_qual = {lrf.layer.qualname: lrf for lrf in analysis.layers}
    assert [display(x) for x in by_qual["conv2"].r_max] == [11, 11]
    merge = next(lrf for lrf in analysis.layers if lrf.layer.kind is Kind.MERGE)
    assert ([display(x) for x in merge.r_min], [display(x) for x in merge.r_max]) == ([3, 3], [11, 11])
    head = by_qual["head"]
    assert ([display(x) for x in head.r_min], [display(x) for x in head.r_max]) == ([7, 7], [15, 15])


@pytest.mark.parametrize(
    ("up", "expected"),
    [
        # conv 3/2: r 3, J 2; conv 3/2: 3+2*2 = 7, J 4; then upsample x2 and conv 3/1
        (nn.Upsample(scale_factor=2, mode="nearest"), [3, 7, 7, 11]),  # 1 tap: r 7, J 2; 7+2*2
        (nn.Upsample(scale_factor=2, mode="bilinear"), [3, 7, 11, 15]),  # 2 taps: 7+1*4, J 2; 11+2*2
        (nn.ConvTranspose2d(4, 4, 4, 2, 1), [3, 7, 11, 15]),  # ceil(4/2) = 2 taps: as bilinear
    ],
    ids=["nearest", "bilinear", "conv_transpose"],
)
def test_upsampling(tmp_path, up, expected):
    model = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.Conv2d(4, 4, 3, 2, 1), up, nn.Conv2d(4, 4, 3, 1, 1))
    graph = graph_from_onnx(export(model, tmp_path / "up.onnx"))
    assert [r_max[0] for _, _, r_max in windows(graph)] == expected
    upsample = next(layer for layer in graph.layers if layer.kind is Kind.UPSAMPLE)
    assert upsample.stride == (Fraction(1, 2), Fraction(1, 2))
    assert upsample.out_size == (16, 16)


def test_dilation_and_pooling(tmp_path):
    # conv k3 d2: k_eff 5 -> r 5; maxpool 3/2: 5+2 = 7, J 2; conv 3: 7+2*2 = 11; avgpool 2/2: 11+1*2 = 13
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=2, dilation=2), nn.MaxPool2d(3, 2, 1), nn.Conv2d(4, 4, 3, padding=1), nn.AvgPool2d(2)
    )
    graph = graph_from_onnx(export(model, tmp_path / "pool.onnx"))
    assert [(op, r_max[0]) for op, _, r_max in windows(graph)] == [
        ("Conv", 5), ("MaxPool", 7), ("Conv", 11), ("AveragePool", 13)
    ]
    assert graph.layers[1].dilation == (2, 2)


def test_global_pool_then_classifier(tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))
    graph = graph_from_onnx(export(model, tmp_path / "cls.onnx"))
    kinds = {layer.op: layer.kind for layer in graph.layers}
    assert kinds["GlobalAveragePool"] is Kind.GLOBAL
    assert kinds["Gemm"] is Kind.POINTWISE  # the spatial axes are gone before the classifier
    gemm = next(layer for layer in graph.layers if layer.op == "Gemm")
    assert (gemm.in_channels, gemm.out_channels) == (4, 10)


class TokenMixer(nn.Module):
    """A linear layer over the flattened H*W axis (MLP-Mixer) and one over channels (ConvNeXt)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 4, 4)
        self.channel_mlp = nn.Linear(4, 4)
        self.token_mlp = nn.Linear(64, 64)

    def forward(self, x):
        x = self.conv(x)  # (1, 4, 8, 8)
        x = self.channel_mlp(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return self.token_mlp(x.flatten(2))


def test_linear_layers_are_global_only_over_the_axes_they_contract(tmp_path):
    graph = graph_from_onnx(export(TokenMixer(), tmp_path / "mixer.onnx"))
    matmuls = [layer for layer in graph.layers if layer.op == "MatMul"]
    assert [m.kind for m in matmuls] == [Kind.POINTWISE, Kind.GLOBAL]
    assert matmuls[1].global_axes == (True, True)


class SelfAttention(nn.Module):
    """Single-head self-attention over the 8 x 8 patch tokens, written out with matmuls."""

    def __init__(self) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, 4, 4, 4)

    def forward(self, x):
        t = self.patch(x).flatten(2).transpose(1, 2)  # (1, 64 tokens, 4 features)
        attn = (t @ t.transpose(1, 2)).softmax(-1)  # (1, 64, 64): contracts features only
        return attn @ t  # contracts the 64 tokens: every output sees the whole image


@pytest.mark.parametrize("opset", [11, 17])
def test_attention_is_global_where_it_mixes_tokens(tmp_path, opset):
    graph = graph_from_onnx(export(SelfAttention(), tmp_path / "attn.onnx", opset_version=opset))
    scores, mix = [layer for layer in graph.layers if layer.op == "MatMul"]
    softmax = next(layer for layer in graph.layers if layer.op == "Softmax")
    # q . k^T has a row per query and a column per key: a unit (a query position) already
    # depends on every key position, so the keys' dim is mixed here and becomes non-spatial;
    # the softmax over it then adds nothing (rflint <= 0.1 reported the softmax as the global op)
    assert scores.kind is Kind.GLOBAL and scores.global_axes == (True, True)
    assert softmax.kind is Kind.POINTWISE
    assert mix.kind is Kind.GLOBAL and mix.global_axes == (True, True)


class TinyViT(nn.Module):
    """Patch embedding, a class token (65 = 8 * 8 + 1 tokens) and torch's multi-head attention,
    whose export is full of shape arithmetic (``Shape -> Where -> Expand``)."""

    def __init__(self) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, 8, 4, 4)
        self.cls = nn.Parameter(torch.zeros(1, 1, 8))
        self.pos = nn.Parameter(torch.zeros(1, 65, 8))
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        t = self.patch(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls.expand(x.shape[0], -1, -1), t], dim=1) + self.pos
        t = self.attn(t, t, t, need_weights=False)[0]
        return self.head(t[:, 0])


def test_vit_like_attention_is_fully_understood(tmp_path):
    graph = graph_from_onnx(export(TinyViT(), tmp_path / "vit.onnx"))
    assert [layer.op for layer in graph.layers if layer.kind is Kind.UNKNOWN] == []
    assert any(layer.kind is Kind.GLOBAL and layer.global_axes == (True, True) for layer in graph.layers)
    analysis = analyse(graph)
    assert [display(x) for x in analysis.i_min] == [4, 4]  # only the 4x4 patch conv is local


def test_check_command_routes_onnx_files_to_this_frontend(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from rflint.cli import app

    monkeypatch.chdir(tmp_path)
    path = export(Residual(), tmp_path / "res.onnx")
    # at 8 px conv2's receptive field 11 exceeds the input (critical): rflint must say so
    # the residual block's output keeps its axes: Richter's criterion is asked for
    result = CliRunner().invoke(app, ["check", str(path), "-s", "8", "--task", "classification", "--output-format", "concise"])
    assert result.exit_code in (0, 1), result.output
    assert "rflint: error" not in result.stderr
    assert "conv2" in result.stdout


def test_reduction_over_one_axis_is_global_on_that_axis(tmp_path):
    class WidthPool(nn.Module):
        def forward(self, x):
            return x.mean(3, keepdim=True)

    graph = graph_from_onnx(export(nn.Sequential(nn.Conv2d(3, 4, 3), WidthPool()), tmp_path / "w.onnx"))
    reduce = next(layer for layer in graph.layers if layer.op == "ReduceMean")
    assert reduce.kind is Kind.GLOBAL
    assert reduce.global_axes == (False, True)


def test_onnx_matches_the_fx_frontend_on_resnet18(tmp_path):
    import torchvision
    from rflint.frontend.fx import trace_graph

    model = torchvision.models.resnet18(weights=None)
    onnx_graph = graph_from_onnx(export(model, tmp_path / "r18.onnx", size=224))
    fx_graph = trace_graph(model, input_size=(224,))
    a, b = analyse(onnx_graph), analyse(fx_graph)
    assert (a.i_min, a.i_max, a.i_min_unproductive) == (b.i_min, b.i_max, b.i_min_unproductive)
    fx_convs = {lrf.layer.qualname: (lrf.r_min, lrf.r_max) for lrf in b.layers if lrf.layer.op == "Conv2d"}
    onnx_convs = {lrf.layer.qualname: (lrf.r_min, lrf.r_max) for lrf in a.layers if lrf.layer.op == "Conv"}
    assert onnx_convs == fx_convs  # qualnames come from the initializer names: layer1.0.conv1, ...
    assert len(onnx_convs) == 20


# --------------------------------------------------------------------------- unknown ops


def _conv_node(name: str, inp: str, out: str, weight: str) -> object:
    return helper.make_node("Conv", [inp, weight], [out], name=name, kernel_shape=[3, 3], pads=[1, 1, 1, 1])


def _save(tmp_path: Path, nodes, name: str = "hand.onnx", initializers=(), opset_imports=None) -> Path:
    w = helper.make_tensor("w", TensorProto.FLOAT, [3, 3, 3, 3], [0.0] * 81)
    graph = helper.make_graph(
        nodes,
        "hand",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[w, *initializers],
    )
    imports = opset_imports or [helper.make_opsetid("", 17)]
    model = helper.make_model(graph, opset_imports=imports)
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def test_unknown_ops_are_kept_as_unknown_layers(tmp_path):
    nodes = [
        _conv_node("c1", "x", "a", "w"),
        helper.make_node("Mystery", ["a"], ["b"], name="mystery", domain="com.example"),
        helper.make_node("GridSample", ["b", "grid"], ["c"], name="warp"),
        _conv_node("c2", "c", "y", "w"),
    ]
    grid = helper.make_tensor("grid", TensorProto.FLOAT, [1, 16, 16, 2], [0.0] * 512)
    path = _save(tmp_path, nodes, initializers=[grid], opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    graph = graph_from_onnx(path)
    by_name = graph.by_name()
    assert by_name["mystery"].kind is Kind.UNKNOWN
    assert by_name["mystery"].op == "com.example.Mystery"
    assert "Mystery" in by_name["mystery"].note
    # grid_sample reads wherever its grid points: global over the spatial axes, not unknown
    assert by_name["warp"].kind is Kind.GLOBAL and by_name["warp"].op == "GridSample"
    last = analyse(graph).layers[-1]
    assert last.layer.name == "c2" and last.uncertain  # an unknown op lies on its path


def test_shape_arithmetic_does_not_become_layers(tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten())
    graph = graph_from_onnx(export(model, tmp_path / "flat.onnx", dynamo=True))
    assert not [layer for layer in graph.layers if layer.op in ("Shape", "Gather", "Concat", "Constant")]


# --------------------------------------------------------------------------- input geometry


def test_input_size_overrides_the_stored_size(tmp_path):
    path = export(nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1)), tmp_path / "m.onnx")
    assert graph_from_onnx(path, input_size=(64,)).layers[-1].out_size == (32, 32)
    assert graph_from_onnx(path, input_size=(64, 48)).layers[-1].out_size == (32, 24)
    assert graph_from_onnx(path, input_shape=(1, 3, 20, 20)).input_size == (20, 20)


def test_dynamic_spatial_size_needs_an_input_size(tmp_path):
    path = export(
        nn.Sequential(nn.Conv2d(3, 4, 3)), tmp_path / "dyn.onnx",
        input_names=["img"], dynamic_axes={"img": {0: "batch", 2: "h", 3: "w"}},
    )
    with pytest.raises(ShapeError, match="dynamic spatial size"):
        graph_from_onnx(path)
    assert graph_from_onnx(path, input_size=(20,)).layers[-1].out_size == (18, 18)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"input_size": (32, 32, 32)}, "3 axes but the ONNX model has 2 spatial axes"),
        ({"input_shape": (1, 3, 32)}, "3 dims but the ONNX model's input has 4"),
        ({"input_size": (0,)}, "non-positive"),
        ({"input_size": (4,)}, "input 4x4 is too small: Conv"),
    ],
)
def test_bad_geometry_is_a_shape_error(tmp_path, kwargs, pattern):
    path = export(nn.Sequential(nn.Conv2d(3, 4, 7)), tmp_path / "m.onnx")
    with pytest.raises(ShapeError, match=pattern):
        graph_from_onnx(path, **kwargs)


# --------------------------------------------------------------------------- safety


def _with_external_weight(tmp_path: Path, location: str) -> Path:
    """A one-conv model whose weight claims to live in ``location``."""
    path = _save(tmp_path, [_conv_node("c", "x", "y", "w")], name="ext.onnx")
    model = onnx.load(str(path))
    weight = model.graph.initializer[0]
    weight.ClearField("float_data")
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    del weight.external_data[:]
    entry = weight.external_data.add()
    entry.key, entry.value = "location", location
    onnx.save(model, str(path))
    return path


def test_external_data_inside_the_folder_is_fine_and_never_read(tmp_path):
    path = _with_external_weight(tmp_path, "weights.bin")  # the file does not even exist
    graph = graph_from_onnx(path)
    conv = graph.by_name()["c"]
    assert (conv.kernel, conv.out_channels) == ((3, 3), 3)


@pytest.mark.parametrize("location", ["../outside.bin", "sub/../../outside.bin", "/etc/passwd"])
def test_external_data_outside_the_folder_is_refused(tmp_path, location):
    folder = tmp_path / "model"
    folder.mkdir()
    path = _with_external_weight(folder, location)
    with pytest.raises(TargetError, match="points outside the model's folder"):
        graph_from_onnx(path)


def test_external_data_symlink_out_of_the_folder_is_refused(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (tmp_path / "secret.bin").write_bytes(b"\0" * 324)
    os.symlink(tmp_path / "secret.bin", folder / "weights.bin")
    path = _with_external_weight(folder, "weights.bin")
    with pytest.raises(TargetError, match="points outside"):
        graph_from_onnx(path)


@pytest.mark.parametrize(
    ("content", "pattern"),
    [(b"", "is empty"), (b"this is not protobuf \xff\xfe", "not a valid ONNX model")],
    ids=["empty", "garbage"],
)
def test_unreadable_files(tmp_path, content, pattern):
    path = tmp_path / "m.onnx"
    path.write_bytes(content)
    with pytest.raises(TargetError, match=pattern):
        graph_from_onnx(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(TargetError, match="no such file"):
        graph_from_onnx(tmp_path / "nope.onnx")
    (tmp_path / "dir.onnx").mkdir()
    with pytest.raises(TargetError, match="is a directory"):
        graph_from_onnx(tmp_path / "dir.onnx")


def test_reading_onnx_needs_no_torch(tmp_path):
    path = export(Residual(), tmp_path / "res.onnx")
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["torch"] = None  # any "import torch" now fails
        from rflint.frontend.onnx import graph_from_onnx
        from rflint.rf.algebra import analyse
        print(len(analyse(graph_from_onnx({str(path)!r})).layers))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip()) > 5
