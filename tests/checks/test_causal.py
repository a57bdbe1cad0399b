"""Causal axes: per layer and axis, lookahead (how far past ``J * i`` unit ``i`` reads) and history
(how far before), and RF104 on the first layer that reads the future along a declared axis.

The oracle (tests/oracle.py via tests/unit_oracle.py) gives each unit's input-gradient support;
on units whose support is clear of both borders, lookahead = max_i (hi_i - J i) and history =
max_i (J i - lo_i), with J the distance between neighbouring units' fields.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch.nn.functional as F
from torch import nn
from oracle import measure_support
from unit_oracle import unit_fields

from rflint.engine.pipeline import lint_module
from rflint.errors import UsageError
from rflint.spec import ModelSpec


class TCN(nn.Module):
    """Dilated k=3 convs (d = 1, 2, 4, 8); ``centred`` lists the layers padded on both sides
    (the others are padded on the past side only, by 2d: causal)."""

    def __init__(self, centred: tuple[int, ...] = ()):
        super().__init__()
        self.centred = centred
        self.convs = nn.ModuleList([nn.Conv1d(2, 2, 3, dilation=d) for d in (1, 2, 4, 8)])

    def forward(self, x):
        for i, conv in enumerate(self.convs):
            d = conv.dilation[0]
            x = conv(F.pad(x, (d, d) if i in self.centred else (2 * d, 0)))
        return x


class StridedCausal(nn.Module):
    """k=4 stride-2 convs padded by 3 on the past side: unit i reads [2i - 3, 2i] of its input."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv1d(2, 2, 4, stride=2)
        self.b = nn.Conv1d(2, 2, 4, stride=2)

    def forward(self, x):
        return self.b(F.pad(self.a(F.pad(x, (3, 0))), (3, 0)))


class PooledOverTime(nn.Module):
    """A causal conv, then the mean over time added back: a global op along T."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 2, 3)

    def forward(self, x):
        x = self.conv(F.pad(x, (2, 0)))
        return x + x.mean(dim=-1, keepdim=True)


class Video(nn.Module):
    """Conv3d over (T, H, W): causal in time (past-side pad 2), centred in space; ``centred``
    pads time on both sides instead."""

    def __init__(self, centred: bool = False):
        super().__init__()
        self.centred = centred
        self.conv = nn.Conv3d(2, 2, 3, padding=(0, 1, 1))

    def forward(self, x):
        return self.conv(F.pad(x, (0, 0, 0, 0, 1, 1) if self.centred else (0, 0, 0, 0, 2, 0)))


def run(model, shape, causal=("T",)):
    return lint_module(model, ModelSpec("m", shape[2:], shape, causal=causal))


def oracle_extent(model, shape, hook, axis=0):
    """(lookahead, history) from the units whose support is clear of both borders."""
    fields = unit_fields(model, shape, hook, axis=axis)
    n = shape[2 + axis]
    inner = [(i, f) for i, f in enumerate(fields) if f is not None and 0 < f[0] and f[1] < n - 1]
    (i0, f0), (i1, f1) = inner[0], inner[1]
    jump = (f1[0] - f0[0]) // (i1 - i0)
    return max(f[1] - jump * i for i, f in inner), max(jump * i - f[0] for i, f in inner)


TCN_CASES = {
    "causal": ((), None),
    "centred": ((0, 1, 2, 3), ("convs.0", 1)),
    "third_centred": ((2,), ("convs.2", 4)),
}


@pytest.mark.parametrize("name", TCN_CASES)
@pytest.mark.parametrize("hook", [f"convs.{i}" for i in range(4)])
def test_lookahead_and_history_equal_the_oracle_on_tcns(name, hook):
    model = TCN(TCN_CASES[name][0])
    lrf = next(l for l in run(model, (1, 2, 96)).analysis.layers if l.layer.qualname == hook)
    assert (lrf.lookahead[0], lrf.history[0]) == oracle_extent(model, (1, 2, 96), hook)


def test_causal_tcn_history_is_the_hand_derived_sum_of_dilations():
    a = run(TCN(), (1, 2, 96)).analysis
    convs = [l for l in a.layers if l.layer.qualname.startswith("convs.")]
    assert [l.lookahead for l in convs] == [(0,)] * 4
    assert [l.history for l in convs] == [(2,), (6,), (14,), (30,)]  # 2 * (1 + 2 + 4 + 8) at the end


@pytest.mark.parametrize("name", TCN_CASES)
def test_rf104_flags_the_first_layer_that_reads_the_future(name):
    findings = [f for f in run(TCN(TCN_CASES[name][0]), (1, 2, 96)).findings if f.code == "RF104"]
    expected = TCN_CASES[name][1]
    if expected is None:
        assert findings == []
        return
    (finding,) = findings
    layer, ahead = expected
    assert finding.layer == layer and "Conv1d" in finding.message
    assert finding.receptive_field["lookahead"] == [ahead]
    assert f"lookahead {ahead})" in finding.message


def test_without_a_causal_axis_rf104_stays_silent():
    assert not [f for f in run(TCN((0,)), (1, 2, 96), causal=()).findings if f.code == "RF104"]


@pytest.mark.parametrize("hook", ["a", "b"])
def test_strided_causal_convs_read_no_future(hook):
    r = run(StridedCausal(), (1, 2, 128))
    lrf = next(l for l in r.analysis.layers if l.layer.qualname == hook)
    assert (lrf.lookahead[0], lrf.history[0]) == oracle_extent(StridedCausal(), (1, 2, 128), hook)
    assert lrf.lookahead == (0,)
    assert not [f for f in r.findings if f.code == "RF104"]


def test_a_global_op_along_time_reads_the_whole_axis():
    (finding,) = [f for f in run(PooledOverTime(), (1, 2, 64)).findings if f.code == "RF104"]
    assert "whole L axis" in finding.message and finding.receptive_field["lookahead"] == [None]


@pytest.mark.parametrize(("centred", "ahead"), [(False, 0), (True, 1)])
def test_video_time_axis_is_judged_on_its_own(centred, ahead):
    shape = (1, 2, 24, 6, 6)
    r = run(Video(centred), shape)
    lrf = next(l for l in r.analysis.layers if l.layer.qualname == "conv")
    assert lrf.lookahead[0] == ahead == oracle_extent(Video(centred), shape, "conv", axis=0)[0]
    assert lrf.lookahead[1:] == (1, 1)  # space is centred, and not declared causal
    assert bool([f for f in r.findings if f.code == "RF104"]) == centred


def test_axes_are_named_or_indexed():
    assert run(Video(True), (1, 2, 24, 6, 6), causal=("0",)).analysis.causal_axes == (0,)
    assert run(TCN(), (1, 2, 32), causal=("L",)).analysis.causal_axes == (0,)
    with pytest.raises(UsageError, match="causal axis 'T' is not an axis of this 2-D model"):
        lint_module(nn.Conv2d(2, 2, 3), ModelSpec("m", (8, 8), (1, 2, 8, 8), causal=("T",)))


def test_cli_and_config_turn_the_rule_on(tmp_path):
    (tmp_path / "tcn.py").write_text(
        "import torch.nn.functional as F\nfrom torch import nn\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.conv = nn.Conv1d(2, 2, 3, padding=1)\n"
        "    def forward(self, x):\n        return self.conv(x)\n",
        encoding="utf-8",
    )
    cmd = [sys.executable, "-m", "rflint", "check", "tcn.py:Net", "--input-shape", "1,2,32", "--no-cache"]
    out = subprocess.run([*cmd, "--isolated", "--causal", "T"], capture_output=True, text=True, cwd=tmp_path)
    assert "RF104 [tcn.py:Net] conv (Conv1d 3) is not causal along L" in out.stdout  # findings name their model
    (tmp_path / "rflint.toml").write_text("causal = [0]\n", encoding="utf-8")
    assert "RF104" in subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path).stdout
    bad = subprocess.run([*cmd, "--isolated", "--causal", "H"], capture_output=True, text=True, cwd=tmp_path)
    assert bad.returncode == 2 and "causal axis 'H'" in bad.stdout + bad.stderr and "Traceback" not in bad.stderr


class FeatureEncoder(nn.Module):
    """wav2vec 2.0's feature encoder (Baevski et al. 2020): kernels (10,3,3,3,3,2,2), strides
    (5,2,2,2,2,2,2), no padding; the paper: a 25 ms field every 20 ms at 16 kHz."""

    def __init__(self):
        super().__init__()
        layers, channels = [], 1
        for k, s in zip((10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2)):
            layers += [nn.Conv1d(channels, 4, k, stride=s, bias=False), nn.GELU()]
            channels = 4
        self.conv_layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.conv_layers(x)


def test_sample_rate_shows_wav2vec_fields_in_samples_and_ms(tmp_path):
    (tmp_path / "w2v.py").write_text("from test_causal import FeatureEncoder\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "rflint", "inspect", "w2v.py:FeatureEncoder", "--input-shape", "1,1,16000", "--isolated"]
    out = subprocess.run([*cmd, "--sample-rate", "16000", "--output-format", "json"], capture_output=True, text=True, cwd=tmp_path, env=env)
    shown = json.loads(out.stdout)
    last = shown["layers"][-1]
    assert shown["sample_rate"] == 16000
    assert (last["r_max"], last["r_max_ms"], last["jump"], last["jump_ms"]) == ([400], 25.0, [320], 20.0)
    assert last["r_max"] == [measure_support(FeatureEncoder(), (1, 1, 2000))[0]]  # the oracle: 400 samples
    assert last["lookahead_ms"] == 24.938  # 399 samples after J * i: a frame needs its whole window
    table = subprocess.run([*cmd, "--sample-rate", "16000"], capture_output=True, text=True, cwd=tmp_path, env=env).stdout
    assert "conv_layers.12: field 400 = 25 ms, jump 320 = 20 ms" in table


def test_without_a_sample_rate_or_on_images_there_are_no_ms_columns():
    from rflint.views.timebase import in_time

    a = run(FeatureEncoder(), (1, 1, 4000), causal=()).analysis
    assert in_time(a.layers[-1], None) == {}
    image = lint_module(nn.Conv2d(2, 2, 3), ModelSpec("m", (8, 8), (1, 2, 8, 8))).analysis
    assert in_time(image.layers[-1], 16000.0) == {}
