"""Fields as intervals on hand-built models: where a unit's field lies, not only how wide it is.

Each case is a few lines that once gave a silently wrong number (issue 10): paths assumed to be
centred, so offset branches merged into the larger size instead of the union; crops, asymmetric
("TF same") padding, even kernels and shifted slices that move a field without widening it;
space-to-depth written with slices or with view/permute. For every case the hand-derived
interval of unit ``i`` (``[start + J*i, end + J*i]`` in input pixels) is written next to the model
and checked three ways: rflint's ``start``/``end``/``r_max``/``r_min``/jump, the autograd
oracle's gradient support of several units (``tests/oracle.py``: ``unit_intervals``), on both
axes (with different numbers on each where the model allows).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from oracle import unit_intervals
from torch import nn

from rflint.rf.algebra import analyse
from rflint.rf.display import display
from rflint.frontend.fx import trace_graph

SHAPE = (1, 2, 48, 40)


class OffsetBranches(nn.Module):
    """Two 2x2 convs, one padded top-left, one bottom-right, added: each reads 2 pixels per axis,
    one pixel apart, so the sum reads 3 (rflint <= 0.1: 2, the larger branch)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(2, 2, 2)
        self.b = nn.Conv2d(2, 2, 2)

    def forward(self, x):
        return self.a(F.pad(x, (1, 0, 1, 0))) + self.b(F.pad(x, (0, 1, 0, 1)))


class TfSame(nn.Module):
    """TensorFlow's "same" for a 3x3 stride-2 conv on an even size pads only after: unit i reads
    2i..2i+2 (start 0, not -1); then a 3x3 conv with padding 1 reads 2i-2..2i+4."""

    def __init__(self) -> None:
        super().__init__()
        self.down = nn.Conv2d(2, 2, 3, stride=2)
        self.conv = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x):
        return self.conv(self.down(F.pad(x, (0, 1, 0, 1))))


class EvenKernels(nn.Module):
    """Two 4x4 convs with padding 1: each reads one pixel more after the unit than before
    (i-1..i+2), so two read i-2..i+4: r 7, centre 1 pixel after the unit."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(2, 2, 4, padding=1)
        self.c2 = nn.Conv2d(2, 2, 4, padding=1)

    def forward(self, x):
        return self.c2(self.c1(x))


class Crop(nn.Module):
    """A crop of 3 rows and 2 columns, then an unpadded 3x3: unit i reads rows i+3..i+5 and
    columns i+2..i+4."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3)

    def forward(self, x):
        return self.conv(x[:, :, 3:, 2:])


class ShiftedSum(nn.Module):
    """``x[1:] + x[:-1]`` on both axes (a 2x2 box by slices), then a 3x3 conv with padding 1:
    unit i reads i-1..i+2, r 4 (rflint <= 0.1 saw two identity paths: 3)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x):
        y = x[:, :, 1:, :] + x[:, :, :-1, :]
        y = y[:, :, :, 1:] + y[:, :, :, :-1]
        return self.conv(y)


class Focus(nn.Module):
    """YOLOv5's Focus: the four 2x2 phases by strided slices, concatenated on channels, then a
    3x3 conv with padding 1: a 2x2/2 block, so unit i reads 2i-2..2i+3, r 6, J 2."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 2, 3, padding=1)

    def forward(self, x):
        y = torch.cat([x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]], 1)
        return self.conv(y)


class SpaceToDepth(nn.Module):
    """TResNet's stem: space-to-depth by view/permute with block 4, then a 3x3 conv with padding 1:
    a 4x4/4 block, so unit i reads 4i-4..4i+7, r 12, J 4."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(32, 2, 3, padding=1)

    def forward(self, x):
        n, c, h, w = x.shape
        x = x.view(n, c, h // 4, 4, w // 4, 4).permute(0, 3, 5, 1, 2, 4).reshape(n, c * 16, h // 4, w // 4)
        return self.conv(x)


@dataclass(frozen=True)
class Case:
    model: type[nn.Module]
    r_max: tuple[int, int]  # per axis (H, W), hand-derived
    r_min: tuple[int, int]  # the narrowest single path (one slice of Focus: 3 taps 2 apart = 5)
    start: tuple[int, int]  # unit 0's interval, in input pixels
    end: tuple[int, int]
    jump: tuple[int, int]


CASES = {
    "offset_branches": Case(OffsetBranches, (3, 3), (2, 2), (-1, -1), (1, 1), (1, 1)),
    "tf_same": Case(TfSame, (7, 7), (7, 7), (-2, -2), (4, 4), (2, 2)),
    "even_kernels": Case(EvenKernels, (7, 7), (7, 7), (-2, -2), (4, 4), (1, 1)),
    "crop": Case(Crop, (3, 3), (3, 3), (3, 2), (5, 4), (1, 1)),
    "shifted_sum": Case(ShiftedSum, (4, 4), (3, 3), (-1, -1), (2, 2), (1, 1)),
    "focus": Case(Focus, (6, 6), (5, 5), (-2, -2), (3, 3), (2, 2)),
    "space_to_depth": Case(SpaceToDepth, (12, 12), (12, 12), (-4, -4), (7, 7), (4, 4)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_rflint_places_each_field_where_the_hand_derivation_does(name):
    case = CASES[name]
    last = analyse(trace_graph(case.model().eval(), input_shape=SHAPE)).layers[-1]
    got = [(display(a.r_max), display(a.r_min), display(a.start), display(a.end), display(a.j_max)) for a in last.axes]
    want = [(case.r_max[i], case.r_min[i], case.start[i], case.end[i], case.jump[i]) for i in range(2)]
    assert got == want


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("axis", [0, 1])
def test_the_oracle_finds_every_unit_where_rflint_puts_it(name, axis):
    case = CASES[name]
    torch.manual_seed(0)
    model = case.model().eval()
    last = analyse(trace_graph(model, input_shape=SHAPE)).layers[-1].axes[axis]
    units = [3, 4, 5, 6]  # away from the borders, consecutive (any offset per unit would show)
    measured = unit_intervals(model, SHAPE, units, axis=axis)
    predicted = [(display(last.start + last.j_max * i), display(last.end + last.j_max * i)) for i in units]
    assert measured == predicted
