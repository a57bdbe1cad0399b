"""Every output's field: one row per output of a multi-output model, against the oracle.

A torchvision FPN returns a dict of levels (``0``..``3`` and ``pool``; RetinaNet's P3..P7
with ``LastLevelP6P7``); each level gets r_min / r_max, jump (its stride) and offset (where
unit 0's field starts). The oracle (tests/oracle.py) measures each level on its own through
a wrapper that returns that entry: the widest and narrowest unit over one period, and where a
unit's field starts (``offset + i * jump`` for a unit at the start of a period).
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import warnings

import pytest
import torch
from oracle import measure_units_at, unit_intervals
from torch import nn

import rflint
from rflint.rf import tiling
from rflint.rf.display import display
from rflint.engine.pipeline import lint_module
from rflint.spec import ModelSpec


def fpn(kind: str) -> nn.Module:
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7

    if kind == "retinanet":  # RetinaNet's P3..P7: layers 2..4 and two stride-2 extra levels
        return resnet_fpn_backbone(
            backbone_name="resnet18", weights=None, trainable_layers=5, returned_layers=[2, 3, 4], extra_blocks=LastLevelP6P7(256, 256)
        )
    return resnet_fpn_backbone(backbone_name="resnet18", weights=None, trainable_layers=5)


class Pick(nn.Module):
    """One entry of a dict-returning model (what the oracle measures)."""

    def __init__(self, model: nn.Module, key: str) -> None:
        super().__init__()
        self.model, self.key = model, key

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[self.key]


@functools.cache
def model(kind: str) -> nn.Module:
    torch.manual_seed(0)
    return fpn(kind).eval()


@functools.cache
def fields(kind: str, shape: tuple[int, ...]) -> dict[str, tiling.OutputField]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = lint_module(model(kind), ModelSpec(kind, input_shape=shape)).analysis
    return {f.label: f for f in tiling.output_fields(a)}


LEVELS = {"fpn": ["0", "1", "2", "3", "pool"], "retinanet": ["0", "1", "2", "p6", "p7"]}
JUMPS = {"fpn": [4, 8, 16, 32, 64], "retinanet": [8, 16, 32, 64, 128]}


@pytest.mark.parametrize("kind", sorted(LEVELS))
def test_every_fpn_level_gets_its_own_row_with_its_stride(kind):
    got = fields(kind, (1, 3, 256, 256))
    assert list(got) == LEVELS[kind]
    assert [f.jump for f in got.values()] == [(j, j) for j in JUMPS[kind]]
    assert [f.feature_map for f in got.values()] == [(256 // j, 256 // j) for j in JUMPS[kind]]


PARAMS = [pytest.param(kind, level, id=f"{kind}-{level}") for kind in LEVELS for level in LEVELS[kind]]


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "level"), PARAMS)
def test_every_level_field_and_offset_equal_the_oracle(kind, level):
    start = (1, 3, 256, 64)
    net = Pick(model(kind), level)
    field = fields(kind, start)[level]
    units = min(field.period[0], 16)
    supports, shape = measure_units_at(net, start, None, axis=0, units=units, multiple=128, margin=16)
    field = fields(kind, shape)[level]  # at the size the oracle settled on
    said = f"{kind} {level} at {shape}: rflint {display(field.r_narrow[0])}..{display(field.r_max[0])}, oracle {supports}"
    assert field.period[0] <= units, said
    assert (display(field.r_narrow[0]), display(field.r_max[0])) == (min(supports), max(supports)), said
    # where the fields lie: unit i at the start of a period starts at offset + i * jump
    n = shape[2] // int(field.jump[0])
    first = (n // 2) // field.period[0] * field.period[0]
    (lo, _hi), = unit_intervals(net, shape, [first], axis=0)
    assert lo == display(field.offset[0]) + first * display(field.jump[0]), said


class DeepSupervision(nn.Module):
    """A main map and an auxiliary one from an earlier stage, as a tuple (hand-derived below)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(1, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 3, stride=2, padding=1)
        self.head = nn.Conv2d(4, 2, 5, padding=2)
        self.aux = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        a = self.a(x)
        return self.head(self.b(a)), {"aux": self.aux(a)}


def test_tuple_and_nested_dict_outputs_are_labelled_by_where_they_sit():
    report = rflint.analyze(DeepSupervision(), input_shape=(1, 1, 32, 32))
    rows = {f.label: f for f in report.outputs}
    # head: 3 (a) + 2 (b, jump 1) + 4 * 2 (head 5x5 at jump 2) = 13, jump 2, offset -1 - 1 - 4 = -6
    # aux: the 3x3 of a only: 3, jump 1, offset -1
    assert list(rows) == ["0", "1.aux"]
    assert (rows["0"].r_max, rows["0"].jump, rows["0"].offset) == ((13, 13), (2, 2), (-6, -6))
    assert (rows["1.aux"].r_max, rows["1.aux"].jump, rows["1.aux"].offset) == ((3, 3), (1, 1), (-1, -1))
    data = report.to_dict()
    assert [o["output"] for o in data["outputs"]] == ["0", "1.aux"] and data["outputs"][0]["offset"] == [-6, -6]


def test_inspect_shows_an_outputs_table_for_several_outputs(tmp_path):
    src = tmp_path / "net.py"
    src.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(__import__('pathlib').Path(__file__).parent)!r})\n"
        "from test_outputs import DeepSupervision as Net\n"
    )
    env = {**__import__("os").environ, "PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[1])}
    cmd = [sys.executable, "-m", "rflint", "inspect", f"{src}:Net", "--input-shape", "1,1,32,32"]
    text = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    assert "outputs" in text and "1.aux" in text and "Tiling halo" in text
    data = json.loads(subprocess.run([*cmd, "--output-format", "json"], capture_output=True, text=True, env=env, check=True).stdout)
    assert [o["jump"] for o in data["outputs"]] == [[2, 2], [1, 1]]
