"""Dense-task coverage: a layer of a model whose outputs keep spatial axes is judged per unit.

rflint's corner reach (``min_i min(V_i + 1, N - U_i)`` over the units of a tensor, ``U``/``V``
the latest start and earliest end of any single path's interval, rflint.rf.coverage) is checked
against the autograd oracle (tests/oracle.py via tests/unit_oracle.py): every unit's input
gradient support, borders included. On single-path models the support *is* the path's
interval; on a two-path model the oracle measures each path alone (the other multiplied by 0)
and takes the latest start and earliest end.
"""

from __future__ import annotations

import json

import pytest
import torch.nn.functional as F
from torch import nn
from unit_oracle import corner_reach, unit_fields

from rflint.rf.status import is_critical, is_unproductive
from rflint.engine.pipeline import lint_module
from rflint.ir import INF
from rflint.spec import ModelSpec


class Plain(nn.Module):
    """Eight 3x3 'same' convs: a corner unit of the last one sees 9 of its 17 pixels inside."""

    def __init__(self):
        super().__init__()
        self.convs = nn.Sequential(*[nn.Conv2d(2, 2, 3, padding=1) for _ in range(8)])

    def forward(self, x):
        return self.convs(x)


class Strided(nn.Module):
    """Strides, a nearest upsample, a transposed conv, asymmetric padding and a crop: every
    kind of position change on one path."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(2, 2, 3, stride=2, padding=1)
        self.b = nn.Conv2d(2, 2, 3, padding=1)
        self.c = nn.Conv2d(2, 2, 3, stride=2)
        self.up = nn.ConvTranspose2d(2, 2, 4, stride=2, padding=1)
        self.d = nn.Conv2d(2, 2, 3)
        self.e = nn.Conv2d(2, 2, 5, padding=2)

    def forward(self, x):
        x = self.c(self.b(self.a(x)))
        x = F.interpolate(self.up(x), scale_factor=2, mode="nearest")
        x = self.d(F.pad(x, (2, 0, 1, 0)))[..., 1:, :-1]
        return self.e(x)


class TwoPaths(nn.Module):
    """A deep path (stride 2, upsample) and a shallow one, added, then a 3x3 conv; ``keep``
    zeroes one path for the oracle (None keeps both, as rflint sees it)."""

    def __init__(self, keep: str | None = None):
        super().__init__()
        self.keep = keep
        self.down = nn.Conv2d(2, 2, 3, stride=2, padding=1)
        self.mid = nn.Conv2d(2, 2, 5, padding=2)
        self.skip = nn.Conv2d(2, 2, 3, padding=(0, 1))
        self.out = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x):
        deep = F.interpolate(self.mid(self.down(x)), scale_factor=2, mode="nearest")
        shallow = F.pad(self.skip(x), (0, 0, 1, 1))
        deep = deep * 0.0 if self.keep == "shallow" else deep
        shallow = shallow * 0.0 if self.keep == "deep" else shallow
        return self.out(deep + shallow)


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(*[nn.Conv2d(3, 3, 3, padding=1) for _ in range(10)])
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 4))

    def forward(self, x):
        return self.head(self.features(x))


def analysed(model: nn.Module, shape: tuple[int, ...], task: str = "auto"):
    return lint_module(model, ModelSpec("m", shape[2:], shape, task=task)).analysis


def layer(analysis, qualname: str):
    return next(lrf for lrf in analysis.layers if lrf.layer.qualname == qualname)


@pytest.mark.parametrize("shape", [(1, 2, 20, 14), (1, 2, 9, 31)])
@pytest.mark.parametrize("hook", [f"convs.{i}" for i in range(8)])
def test_corner_reach_equals_the_oracle_on_same_convs(shape, hook):
    a = analysed(Plain(), shape)
    assert a.task == "dense" and a.task_source == "auto"
    lrf = layer(a, hook)
    for axis in range(2):
        n = shape[2 + axis]
        oracle = corner_reach(unit_fields(Plain(), shape, hook, axis=axis), n)
        if oracle < n:  # below the input size the reach is measured, not extrapolated
            assert lrf.reach[axis] == oracle
        else:  # the corner covers the whole input: the reach says so (and by how much)
            assert lrf.reach[axis] >= n


def test_corner_reach_of_same_convs_is_the_hand_derived_half_field():
    # conv l (1-based) has field 2l + 1 centred on its unit: a corner sees l + 1 pixels
    a = analysed(Plain(), (1, 2, 64, 64))
    assert [layer(a, f"convs.{i}").reach for i in range(8)] == [(i + 2, i + 2) for i in range(8)]


@pytest.mark.parametrize("hook", ["a", "b", "c", "up", "d", "e"])
def test_corner_reach_equals_the_oracle_through_strides_upsampling_pads_and_crops(hook):
    shape = (1, 2, 40, 36)
    a = analysed(Strided(), shape)
    lrf = layer(a, hook)
    for axis in range(2):
        n = shape[2 + axis]
        oracle = corner_reach(unit_fields(Strided(), shape, hook, axis=axis), n)
        assert (lrf.reach[axis] == oracle) if oracle < n else (lrf.reach[axis] >= n)


def test_input_reach_is_the_reach_of_the_layer_before():
    a = analysed(Strided(), (1, 2, 40, 36))
    assert layer(a, "b").reach_in == layer(a, "a").reach


@pytest.mark.parametrize("shape", [(1, 2, 16, 16), (1, 2, 24, 12)])
def test_two_paths_take_the_latest_start_and_the_earliest_end_of_each_path(shape):
    a = analysed(TwoPaths(), shape)
    lrf = layer(a, "out")
    for axis in range(2):
        n = shape[2 + axis]
        deep = unit_fields(TwoPaths("deep"), shape, "out", axis=axis)
        shallow = unit_fields(TwoPaths("shallow"), shape, "out", axis=axis)
        latest = [(max(d[0], s[0]), min(d[1], s[1])) for d, s in zip(deep, shallow)]
        assert lrf.reach[axis] == corner_reach(latest, n)
        # the union of the paths (what one oracle run sees) reaches further: not the criterion
        assert corner_reach(unit_fields(TwoPaths(), shape, "out", axis=axis), n) >= lrf.reach[axis]


class Wide(nn.Module):
    def __init__(self):
        super().__init__()
        self.convs = nn.Sequential(*[nn.Conv2d(2, 2, 5, padding=2) for _ in range(6)])

    def forward(self, x):
        return self.convs(x)


def test_a_layer_is_unproductive_only_when_every_unit_sees_the_whole_input():
    shape = (1, 2, 8, 8)
    a = analysed(Plain(), shape)
    flagged = [lrf.layer.qualname for lrf in a.layers if is_unproductive(lrf, (8, 8))]
    # hand: convs.i's input (convs.{i-1}'s output) has corner reach i + 1; it covers 8 from i = 7
    assert flagged == ["convs.7"]
    for lrf in a.layers:
        if lrf.layer.qualname.startswith("convs."):
            fields = unit_fields(Plain(), shape, lrf.layer.qualname, at="input")
            every_unit_covers = all(f is not None and f[0] == 0 and f[1] == 7 for f in fields)
            assert is_unproductive(lrf, (8, 8)) == every_unit_covers


def test_critical_is_the_layer_whose_corners_first_see_past_the_input():
    a = analysed(Wide(), (1, 2, 8, 8))
    # hand: 5x5 'same' conv i has corner reach 2i + 3: 3, 5, 7, 9, 11, 13; its input 2i + 1
    assert [lrf.reach[0] for lrf in a.layers if lrf.layer.qualname.startswith("convs.")] == [3, 5, 7, 9, 11, 13]
    assert [lrf.layer.qualname for lrf in a.layers if is_critical(lrf, (8, 8))] == ["convs.3"]  # 9 > 8, input 7
    assert [lrf.layer.qualname for lrf in a.layers if is_unproductive(lrf, (8, 8))] == ["convs.4", "convs.5"]


def test_dense_i_min_is_the_largest_corner_reach():
    a = analysed(Plain(), (1, 2, 32, 32))
    assert a.i_min == (9, 9)  # convs.7: corner reach 9 (field 17 centred on the corner)
    assert a.i_min_unproductive == (9, 9)  # convs.7's input: corner reach 8
    c = analysed(Plain(), (1, 2, 32, 32), task="classification")
    assert c.i_min == (17, 17) and c.i_min_unproductive == (16, 16)  # r_min 17, input r_min 15 + 1


def test_auto_keeps_a_classifier_on_richters_criterion_with_unchanged_numbers():
    auto = lint_module(Classifier(), ModelSpec("m", (16, 16), (1, 3, 16, 16)))
    explicit = lint_module(Classifier(), ModelSpec("m", (16, 16), (1, 3, 16, 16), task="classification"))
    assert auto.analysis.task == "classification" and auto.analysis.task_source == "auto"
    assert auto.findings == explicit.findings
    assert (auto.analysis.i_min, auto.analysis.i_min_unproductive) == ((21, 21), (20, 20))  # 3 + 2 * 9, 19 + 1
    assert all(not lrf.reach for lrf in auto.analysis.layers)
    assert sum(f.code == "RF101" for f in auto.findings) == 2  # features.8 (input 17), features.9 (19)


def test_forcing_dense_on_a_classifier_judges_every_unit():
    r = lint_module(Classifier(), ModelSpec("m", (16, 16), (1, 3, 16, 16), task="dense"))
    assert r.analysis.task == "dense" and r.analysis.task_source == "config"
    assert not [f for f in r.findings if f.code == "RF101"]  # corner reach 10 < 16 at the last conv's input
    assert layer(r.analysis, "features.9").reach_in == (10, 10)


def test_global_only_layers_are_not_judged_in_dense_mode():
    r = lint_module(Classifier(), ModelSpec("m", (16, 16), (1, 3, 16, 16), task="dense"))
    assert layer(r.analysis, "head.2").reach == (INF, INF)


def run_cli(args, tmp_path):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "rflint", *args], capture_output=True, text=True, cwd=tmp_path)


def write_models(tmp_path):
    path = tmp_path / "models.py"
    path.write_text(
        "from torch import nn\n"
        "class Seg(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.convs = nn.Sequential(*[nn.Conv2d(2, 2, 3, padding=1) for _ in range(10)])\n"
        "    def forward(self, x):\n"
        "        return self.convs(x)\n",
        encoding="utf-8",
    )
    return path


def test_every_report_says_which_task_was_used(tmp_path):
    write_models(tmp_path)
    common = ["models.py:Seg", "--input-shape", "1,2,10,10", "--isolated"]
    full = run_cli(["check", *common, "--no-cache", "--output-format", "full"], tmp_path)
    assert "dense task, auto: an output keeps spatial axes" in " ".join(full.stdout.split())
    rows = json.loads(run_cli(["check", *common, "--no-cache", "--output-format", "json"], tmp_path).stdout)
    assert rows and all(r["task"] == "dense" for r in rows)
    sarif = json.loads(run_cli(["check", *common, "--no-cache", "--output-format", "sarif"], tmp_path).stdout)
    assert sarif["runs"][0]["properties"]["models"]["models.py:Seg"]["task"] == "dense"
    shown = json.loads(run_cli(["inspect", *common, "--output-format", "json"], tmp_path).stdout)
    assert (shown["task"], shown["task_source"]) == ("dense", "auto")
    forced = json.loads(run_cli(["inspect", *common, "--task", "classification", "--output-format", "json"], tmp_path).stdout)
    assert (forced["task"], forced["task_source"]) == ("classification", "config")


def test_the_config_chooses_the_task_and_a_bad_one_is_one_line_exit_2(tmp_path):
    write_models(tmp_path)
    (tmp_path / "rflint.toml").write_text('task = "classification"\n', encoding="utf-8")
    out = run_cli(["check", "models.py:Seg", "--input-shape", "1,2,12,12", "--no-cache", "--output-format", "json"], tmp_path)
    rows = json.loads(out.stdout)
    assert {r["task"] for r in rows} == {"classification"} and any(r["code"] == "RF101" for r in rows)
    (tmp_path / "rflint.toml").write_text('task = "segmentation"\n', encoding="utf-8")
    bad = run_cli(["check", "models.py:Seg", "--input-shape", "1,2,12,12", "--no-cache"], tmp_path)
    assert bad.returncode == 2 and "task" in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_the_python_api_takes_the_task():
    import rflint

    dense = rflint.analyze(Plain(), input_shape=(1, 2, 8, 8))
    assert dense.analysis.task == "dense" and dense.unproductive == ("convs.7",)
    classic = rflint.analyze(Plain(), input_shape=(1, 2, 8, 8), task="classification")
    assert classic.unproductive == ("convs.4", "convs.5", "convs.6", "convs.7")  # input r_min 9, 11, 13, 15 >= 8
    with pytest.raises(rflint.ArgumentError, match="task must be one of auto, classification, dense, not 'segmentation'"):
        rflint.analyze(Plain(), input_shape=(1, 2, 8, 8), task="segmentation")


def basic_unet() -> nn.Module:
    import monai.networks.nets as nets

    return nets.BasicUNet(spatial_dims=2, in_channels=1, out_channels=2, features=(8, 8, 16, 32, 64, 8))


@pytest.mark.parametrize("hook", ["down_2", ""])
def test_monai_basic_unet_corner_reach_against_the_oracle(hook):
    """MONAI's BasicUNet: its encoder (double convs and max pools) is one path, so the reach
    equals the oracle's exactly; at the output the decoder's skip concatenations add shorter
    paths, so the reach (every path) is at most what the union of the paths covers."""
    shape = (1, 1, 32, 32)
    a = analysed(basic_unet(), shape)
    assert a.task == "dense"
    lrf = a.layers[-1] if not hook else next(l for l in reversed(a.layers) if l.layer.qualname.startswith(hook + "."))
    fields = unit_fields(basic_unet(), shape, hook or None, axis=0)
    oracle = corner_reach(fields, 32)
    if hook:
        assert (lrf.reach[0] == oracle) if oracle < 32 else lrf.reach[0] >= 32
    else:
        assert lrf.reach[0] <= oracle
