"""RF105 dead input positions: rflint's positions that no output reads (rflint.rf.reads) equal the
oracle's (tests/oracle.py via tests/unit_oracle.py: positions with a zero gradient of the sum
of every output), over the union of all paths."""

from __future__ import annotations

import pytest
from torch import nn
from unit_oracle import read_positions

from rflint.engine.pipeline import lint_module
from rflint.rf.reads import dead_positions
from rflint.spec import ModelSpec


class Stem(nn.Module):
    def __init__(self, k=1, stride=2, dilation=1, padding=0):
        super().__init__()
        self.stem = nn.Conv2d(2, 4, k, stride=stride, dilation=dilation, padding=padding)
        self.body = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return self.body(self.stem(x))


class Sliced(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1))

    def forward(self, x):
        return self.body(x[..., ::2, ::2])


class Downsample(nn.Module):
    """A ResNet downsampling block: 3x3/2 main path, 1x1/2 shortcut (skips the odd pixels)."""

    def __init__(self, main=True):
        super().__init__()
        self.main = main
        self.conv = nn.Conv2d(2, 4, 3, stride=2, padding=1)
        self.shortcut = nn.Conv2d(2, 4, 1, stride=2)

    def forward(self, x):
        return self.shortcut(x) + (self.conv(x) if self.main else 0)


class TwoHeads(nn.Module):
    """One output reads the even pixels, the other the odd ones: together nothing is dead."""

    def __init__(self):
        super().__init__()
        self.even = nn.Conv2d(2, 2, 1, stride=2)
        self.odd = nn.Conv2d(2, 2, 1, stride=2)

    def forward(self, x):
        return self.even(x), self.odd(x[..., 1:, 1:])


CASES = {
    "stem_1x1_s2": (lambda: Stem(), (1, 2, 16, 16)),
    "stem_1x1_s2_odd_size": (lambda: Stem(), (1, 2, 15, 13)),
    "k2_s4": (lambda: Stem(k=2, stride=4), (1, 2, 16, 16)),
    "k3_s4": (lambda: Stem(k=3, stride=4, padding=1), (1, 2, 17, 16)),
    "dilated_k2_d2_s2": (lambda: Stem(k=2, stride=2, dilation=2), (1, 2, 16, 16)),
    "stride_on_h_only": (lambda: Stem(k=1, stride=(2, 1)), (1, 2, 16, 12)),
    "sliced": (Sliced, (1, 2, 16, 16)),
    "resnet_downsample": (Downsample, (1, 2, 16, 16)),
    "shortcut_alone": (lambda: Downsample(main=False), (1, 2, 16, 16)),
    "two_heads": (TwoHeads, (1, 2, 16, 16)),
    "stem_3x3_s2": (lambda: Stem(k=3, stride=2, padding=1), (1, 2, 16, 16)),
    # unpadded 3x3/2 at 16: units read [2i, 2i + 2] up to 14, pixel 15 is a border remainder
    "unpadded_3x3_s2_border_only": (lambda: Stem(k=3, stride=2), (1, 2, 16, 16)),
}


def has_gap(read: list[bool]) -> bool:
    """A position no output reads between two that are read: a dead phase, not a border."""
    first, last = read.index(True), len(read) - 1 - read[::-1].index(True)
    return not all(read[first : last + 1])



@pytest.mark.parametrize("name", CASES)
def test_dead_positions_equal_the_oracle(name):
    build, shape = CASES[name]
    graph = lint_module(build(), ModelSpec(name, shape[2:], shape)).analysis.graph
    found = {d.axis: d.dead for d in dead_positions(graph)}
    oracle = read_positions(build(), shape)
    for axis, read in enumerate(oracle):
        expected = tuple(i for i, r in enumerate(read) if not r) if has_gap(read) else ()
        assert found.get(axis, ()) == expected, axis


def test_a_border_remainder_alone_is_not_reported():
    build, shape = CASES["unpadded_3x3_s2_border_only"]
    assert [i for i, r in enumerate(read_positions(build(), shape)[0]) if not r] == [15]  # the oracle
    graph = lint_module(build(), ModelSpec("m", shape[2:], shape)).analysis.graph
    assert dead_positions(graph) == []


def test_the_warning_names_the_op_the_axis_and_the_fraction():
    r = lint_module(Stem(k=2, stride=4), ModelSpec("m", (16, 16), (1, 2, 16, 16)))
    findings = [f for f in r.findings if f.code == "RF105"]
    assert [f.receptive_field["axis"] for f in findings] == ["H", "W"]
    for f in findings:
        assert f.layer == "stem" and f.severity.value == "warn"
        assert f.message.startswith("1/2 of the input positions along")  # 2 of every 4 read
        assert "stem (Conv2d 2x2/4) skips them" in f.message
        assert f.receptive_field["dead_fraction"] == 0.5 and f.receptive_field["first_dead"][:4] == [2, 3, 6, 7]


def test_a_slice_feeding_everything_is_named():
    (f, g) = [f for f in lint_module(Sliced(), ModelSpec("m", (16, 16), (1, 2, 16, 16))).findings if f.code == "RF105"]
    assert "getitem" in f.message and f.receptive_field["dead_positions"] == 8


def test_a_resnet_shortcut_beside_a_3x3_main_path_is_not_dead():
    assert not [f for f in lint_module(Downsample(), ModelSpec("m", (16, 16), (1, 2, 16, 16))).findings if f.code == "RF105"]


def test_torchvision_resnet18_reads_every_pixel():
    import torchvision

    r = lint_module(torchvision.models.resnet18(), ModelSpec("r18", (64, 64), (1, 3, 64, 64)))
    assert not [f for f in r.findings if f.code == "RF105"]
    assert dead_positions(r.analysis.graph) == []
