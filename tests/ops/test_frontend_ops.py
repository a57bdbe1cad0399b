"""The torch.fx frontend lowers each op family to the right receptive-field geometry.

Every expected number here is hand-computed from r_l = r_{l-1} + (k_eff - 1) * J_{l-1},
J_l = J_{l-1} * s_l, on the small model in the same test.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rflint.rf.algebra import analyse
from rflint.rf.display import display
from rflint.errors import ShapeError, TraceError
from rflint.frontend.fx import trace_graph
from rflint.ir import Kind


def analysed(model: nn.Module, size=(32,), shape=None):
    graph = trace_graph(model, input_size=size, input_shape=shape)
    return analyse(graph)


def by_qualname(analysis):
    return {lrf.layer.qualname: lrf for lrf in analysis.layers}


def rf(lrf):
    """(r_min, r_max) per axis as plain numbers."""
    return [display(x) for x in lrf.r_min], [display(x) for x in lrf.r_max]


class Functional(nn.Module):
    """Functional conv and pooling calls, not modules."""

    def __init__(self) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.zeros(8, 3, 3, 3))
        self.w2 = nn.Parameter(torch.zeros(8, 8, 5, 5))

    def forward(self, x):
        x = F.conv2d(x, self.w1, padding=1)  # r 3, J 1
        x = F.max_pool2d(x, 2, 2)  # r 4, J 2
        x = F.conv2d(x, self.w2, stride=1, padding=2)  # r 4 + 4*2 = 12
        x = F.avg_pool2d(x, kernel_size=3, stride=2)  # r 12 + 2*2 = 16, J 4
        return x


def test_functional_conv_and_pool_calls_are_windows():
    a = by_qualname(analysed(Functional()))
    convs = [lrf for q, lrf in a.items() if lrf.layer.op in ("conv2d", "max_pool2d", "avg_pool2d")]
    assert [display(lrf.r_min[0]) for lrf in convs] == [3, 4, 12, 16]
    assert display(convs[-1].jump[0]) == 4


class DilatedChain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, padding=2, dilation=2)  # k_eff 5 -> r 5 (rfa-toolbox: 3, it ignores dilation)
        self.c2 = nn.Conv2d(4, 4, 3, stride=2, padding=1)  # r 7, J 2
        self.c3 = nn.Conv2d(4, 4, 3, padding=2, dilation=2)  # r 7 + 4*2 = 15

    def forward(self, x):
        return self.c3(self.c2(self.c1(x)))


def test_dilation_uses_effective_kernel():
    a = by_qualname(analysed(DilatedChain()))
    assert display(a["c1"].r_max[0]) == 5  # rfa-toolbox gives 3 here (ignores dilation)
    assert display(a["c3"].r_max[0]) == 15


class NonSquare(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, (3, 5), stride=(1, 2))  # r (3,5), J (1,2)
        self.c2 = nn.Conv2d(4, 4, (3, 3))  # r (5, 9)

    def forward(self, x):
        return self.c2(self.c1(x))


def test_non_square_kernels_and_inputs_are_per_axis():
    analysis = analysed(NonSquare(), size=(40, 64))
    a = by_qualname(analysis)
    assert rf(a["c2"]) == ([5, 9], [5, 9])
    assert a["c1"].layer.out_size == (38, 30)
    assert analysis.graph.input_size == (40, 64)


def test_conv1d_and_conv3d_models_work():
    m1 = nn.Sequential(nn.Conv1d(2, 4, 5), nn.MaxPool1d(2), nn.Conv1d(4, 4, 3))  # 5, 6, 6 + 2*2 = 10
    a1 = analysed(m1, size=(100,))
    assert [display(l.r_min[0]) for l in a1.layers if l.layer.kind is Kind.WINDOW] == [5, 6, 10]
    m3 = nn.Sequential(nn.Conv3d(1, 2, 3, stride=2), nn.Conv3d(2, 2, 3))  # 3, 3 + 2*2 = 7 on every axis
    a3 = analysed(m3, size=(16,))
    assert rf(a3.layers[-1]) == ([7, 7, 7], [7, 7, 7])


class Residual(nn.Module):
    """Brief A.3 multipath oracle: L4 has r_min 9 / r_max 11, L5 13 / 15."""

    def __init__(self) -> None:
        super().__init__()
        self.l1 = nn.Conv2d(3, 4, 3, padding=1)
        self.l2 = nn.Conv2d(4, 4, 3, stride=2, padding=1)
        self.l3 = nn.Conv2d(4, 4, 5, stride=2, padding=2)
        self.l4 = nn.Conv2d(4, 4, 3, padding=1)
        self.l5 = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        x = self.l1(x)
        return self.l5(self.l4(self.l2(x) + self.l3(x)))


def test_add_merges_paths_into_min_and_max():
    a = by_qualname(analysed(Residual()))
    assert rf(a["l4"]) == ([9, 9], [11, 11])  # brief A.3 [TEST]
    assert rf(a["l5"]) == ([13, 13], [15, 15])
    assert a["add"].layer.kind is Kind.MERGE


class ConcatBranches(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(3, 4, 5, padding=2)

    def forward(self, x):
        return torch.cat([self.a(x), self.b(x)], dim=1)


def test_cat_of_k3_and_k5_branches_gives_3_and_5():
    a = analysed(ConcatBranches())
    cat = [l for l in a.layers if l.layer.op == "cat"][0]
    assert rf(cat) == ([3, 3], [5, 5])  # brief C.5: rfa-toolbox agrees here


class Upsampling(nn.Module):
    def __init__(self, up: nn.Module) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, stride=2, padding=1)  # r 3, J 2
        self.up = up
        self.c2 = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return self.c2(self.up(self.c1(x)))


@pytest.mark.parametrize(
    "up, expected_jump, expected_r",
    [
        # nearest x2: J 2 -> 1; next 3x3: 3 + 2*1 = 5
        (nn.Upsample(scale_factor=2, mode="nearest"), 1, 5),
        # bilinear reads 2 input taps at J 2: r 3 + 1*2 = 5, J 1; next 3x3: 7
        (nn.Upsample(scale_factor=2, mode="bilinear"), 1, 7),
        # transposed conv k2 s2: ceil(2/2) = 1 tap, J 1; rfa-toolbox treats it as a stride-2 conv (J 4, r 13)
        (nn.ConvTranspose2d(4, 4, 2, stride=2), 1, 5),
        # transposed conv k4 s2: 2 taps -> r 3 + 2 = 5, J 1; next 3x3: 7
        (nn.ConvTranspose2d(4, 4, 4, stride=2, padding=1), 1, 7),
    ],
)
def test_upsampling_divides_the_jump(up, expected_jump, expected_r):
    a = by_qualname(analysed(Upsampling(up)))
    assert display(a["up"].jump[0]) == expected_jump
    assert display(a["c2"].r_max[0]) == expected_r
    assert a["up"].layer.kind is Kind.UPSAMPLE


def test_functional_interpolate_to_a_size():
    class M(nn.Module):
        def forward(self, x):
            return F.interpolate(x, size=(64, 64), mode="nearest")

    class Wrap(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c = nn.Conv2d(3, 3, 3, padding=1)
            self.m = M()

        def forward(self, x):
            return self.m(self.c(x))

    a = analysed(Wrap())
    interp = [l for l in a.layers if l.layer.op == "interpolate"][0]
    assert interp.layer.stride == (Fraction(1, 2), Fraction(1, 2))
    assert display(interp.jump[0]) == 0.5


class AdaptiveMiddle(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(3, 4, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(8)  # 32 -> 8: a window of 4 with stride 4
        self.c2 = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return self.c2(self.pool(self.c(x)))


def test_adaptive_pooling_to_more_than_one_is_a_window_not_global():
    a = by_qualname(analysed(AdaptiveMiddle(), size=(32,)))
    # r 3 + (4-1)*1 = 6, J 4; next 3x3: 6 + 2*4 = 14 (rfa-toolbox: inf, it makes any adaptive pool global)
    assert rf(a["pool"]) == ([6, 6], [6, 6])
    assert display(a["c2"].r_max[0]) == 14
    # at 30 px the bins are uneven: max bin ceil((i+1)*30/8) - floor(i*30/8) = 5 -> r 3 + 4 = 7
    b = by_qualname(analysed(AdaptiveMiddle(), size=(30,)))
    assert display(b["pool"].r_max[0]) == 7


class Classifier(nn.Module):
    def __init__(self, head: str) -> None:
        super().__init__()
        self.c = nn.Conv2d(3, 8, 3, padding=1)
        self.head = head
        self.fc = nn.Linear(8 * 16 * 16 if head == "flatten" else 8, 10)

    def forward(self, x):
        x = self.c(x)
        if self.head == "mean":
            x = x.mean((2, 3))
        elif self.head == "amax":
            x = torch.amax(x, dim=(-2, -1))
        else:
            x = torch.flatten(x, 1)
        return self.fc(x)


@pytest.mark.parametrize("head, global_op", [("mean", "mean"), ("amax", "amax"), ("flatten", "Linear")])
def test_global_heads_make_the_field_the_whole_input(head, global_op):
    a = analysed(Classifier(head), size=(16,))
    assert [l.layer.op for l in a.layers if l.layer.kind is Kind.GLOBAL] == [global_op]
    assert [display(x) for x in a.layers[-1].r_min] == [None, None]
    assert display(a.i_max[0]) == 3  # global layers do not count towards I_max


class ChannelsLastMLP(nn.Module):
    """ConvNeXt-style block: permute to channels-last, Linear over channels (pointwise)."""

    def __init__(self) -> None:
        super().__init__()
        self.dw = nn.Conv2d(4, 4, 7, padding=3, groups=4)
        self.norm = nn.LayerNorm(4)
        self.fc = nn.Linear(4, 16)
        self.fc2 = nn.Linear(16, 4)

    def forward(self, x):
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.fc2(self.fc(self.norm(y))).permute(0, 3, 1, 2)
        return x + y


def test_linear_over_channels_is_pointwise_but_over_tokens_is_global():
    a = by_qualname(analysed(ChannelsLastMLP(), size=(16,), shape=(1, 4, 16, 16)))
    assert a["fc"].layer.kind is Kind.POINTWISE
    assert rf(a["add"]) == ([1, 1], [7, 7])

    class TokenMixer(nn.Module):  # MLP-Mixer: a Linear across the flattened H*W tokens
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 4, stride=4)
            self.mix = nn.Linear(16, 16)

        def forward(self, x):
            t = self.stem(x).flatten(2)  # (B, C, H*W)
            return self.mix(t)

    b = by_qualname(analysed(TokenMixer(), size=(16,)))
    assert b["mix"].layer.kind is Kind.GLOBAL


class SqueezeExcite(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(3, 8, 3, padding=1)
        self.fc1 = nn.Conv2d(8, 2, 1)
        self.fc2 = nn.Conv2d(2, 8, 1)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x):
        x = self.c(x)
        s = torch.sigmoid(self.fc2(torch.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))
        return self.c2(x * s)


def test_squeeze_excitation_gate_does_not_make_later_layers_infinite():
    a = by_qualname(analysed(SqueezeExcite(), size=(16,)))
    c2 = a["c2"]
    assert rf(c2) == ([5, 5], [5, 5])
    assert all(ax.has_global for ax in c2.axes)


def test_pixel_shuffle_and_strided_slicing():
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c = nn.Conv2d(3, 12, 3, padding=1)
            self.ps = nn.PixelShuffle(2)  # J 1 -> 1/2
            self.c2 = nn.Conv2d(3, 3, 3, padding=1)  # r 3 + 2 * 1/2 = 4

        def forward(self, x):
            y = self.c2(self.ps(self.c(x)))
            return y[:, :, ::2, ::2]  # J 1/2 -> 1

    a = analysed(M(), size=(8,))
    last = a.layers[-1]
    assert last.layer.op == "getitem" and last.layer.kind is Kind.WINDOW  # a stride, no growth
    assert display(last.jump[0]) == 1
    # [hand] after pixel_shuffle the 3x3 reads fine units o-1..o+1 = two coarse units for every o:
    # 3 + 1 = 4 px on every unit (no averaging involved)
    assert display(last.r_max[0]) == 4 and display(last.r_min[0]) == 4


def test_multihead_attention_over_tokens_is_global():
    class ViTish(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Conv2d(3, 8, 4, stride=4)
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

        def forward(self, x):
            t = self.proj(x).flatten(2).transpose(1, 2)  # (B, HW, C)
            return self.attn(t, t, t)[0]

    a = analysed(ViTish(), size=(16,))
    attn = [l for l in a.layers if l.layer.op == "MultiheadAttention"][0]
    assert attn.layer.kind is Kind.GLOBAL


class Mystery(nn.Module):
    """A leaf module rflint has no rule for."""

    def forward(self, x):
        return x


def test_unknown_leaf_module_is_reported_not_treated_as_identity():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), Mystery(), nn.Conv2d(4, 4, 3))
    graph = trace_graph(model, input_size=(16,), leaf_modules=(f"{__name__}.Mystery",))
    a = analyse(graph)
    unknown = [l for l in a.layers if l.layer.kind is Kind.UNKNOWN]
    assert [l.layer.qualname for l in unknown] == ["1"]
    assert "Mystery" in unknown[0].layer.op
    assert a.layers[-1].uncertain  # numbers after an unknown op are lower bounds


def test_window_partition_reshape_is_followed_not_reported_unknown():
    class Windows(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c = nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x):
            x = self.c(x)
            b, c, h, w = x.shape
            return x.view(b, c, h // 4, 4, w // 4, 4)  # cuts H and W into windows

    a = analysed(Windows(), size=(16,))
    last = a.layers[-1]
    assert last.layer.kind is Kind.RESHAPE  # moves data only: the field is the conv's
    assert rf(last) == ([3, 3], [3, 3])


def test_data_dependent_control_flow_is_a_trace_error():
    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c = nn.Conv2d(3, 3, 3)

        def forward(self, x):
            if x.sum() > 0:
                return self.c(x)
            return x

    with pytest.raises(TraceError, match="torch.fx could not trace"):
        trace_graph(Branchy(), input_size=(16,))


def test_input_smaller_than_the_stem_is_a_shape_error():
    with pytest.raises(ShapeError, match="does not run on input shape"):
        trace_graph(nn.Sequential(nn.Conv2d(3, 4, 7), nn.Conv2d(4, 4, 7)), input_size=(8,))


def test_input_size_rank_must_match_the_model():
    with pytest.raises(ShapeError, match="2-d"):
        trace_graph(nn.Sequential(nn.Conv2d(3, 4, 3)), input_size=(8, 8, 8))


class Factorised(nn.Module):
    """Inception-style 1x7 / 7x1 factorised convolutions."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 9, stride=1)  # r 9 on both axes
        self.wide = nn.Conv2d(4, 4, (1, 7), padding=(0, 3))  # grows W only: r (9, 15)

    def forward(self, x):
        return self.wide(self.stem(x))


def test_a_1x7_conv_is_judged_only_on_the_axis_it_grows_along():
    from rflint.rf.status import is_critical, is_unproductive

    analysis = analysed(Factorised(), size=(32,))
    wide = by_qualname(analysis)["wide"]
    assert rf(wide) == ([9, 15], [9, 15])
    # input r_min is 9 on W: unproductive at 9 px wide whatever the height (H does not grow)
    assert is_unproductive(wide, (100, 9)) and not is_unproductive(wide, (9, 10))
    assert is_critical(wide, (100, 14))
    # I_min per axis counts a layer only on the axes it grows along: W gets 15, H only the stem's 9
    assert [display(x) for x in analysis.i_min] == [9, 15]
    assert [display(x) for x in analysis.i_min_unproductive] == [2, 10]


def test_inception_v3_minimum_resolution_without_unproductive_layers_is_144():
    # Oracle: brute force over every square size (is_unproductive at each) gives 144; counting
    # the 1x7 convs on H as well (a bug) gave 240.
    from rflint.rf.status import is_unproductive
    from rflint.engine.pipeline import lint
    from rflint.spec import ModelSpec

    analysis = lint(ModelSpec("torchvision:inception_v3", input_size=(299,))).analysis
    assert [display(x) for x in analysis.i_min_unproductive] == [144, 144]
    brute = next(s for s in range(1, 400) if not any(is_unproductive(l, (s, s)) for l in analysis.layers))
    assert brute == 144
    assert [display(x) for x in analysis.i_min] == [239, 239]  # brief B.2: rfa-toolbox I_min 239


def test_space_to_depth_slices_cover_a_2x2_block():
    class Focus(nn.Module):  # YOLOv5's Focus / Swin's patch merging
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(12, 8, 3, padding=1)

        def forward(self, x):
            x = torch.cat([x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]], 1)
            return self.conv(x)

    a = by_qualname(analysed(Focus(), size=(16,), shape=(1, 3, 16, 16)))
    # each output position reads a 2x2 block: r 2, J 2; then a 3x3: 2 + 2*2 = 6
    assert rf(a["cat"]) == ([1, 1], [2, 2])  # x[::2] alone reads one pixel; the offset slices make 2
    assert rf(a["conv"]) == ([5, 5], [6, 6])


def test_swin_windows_and_patch_merging_have_rules():
    # torchvision keeps both functions opaque to fx (torch.fx.wrap); rflint has a rule for each.
    from rflint.engine.pipeline import lint
    from rflint.spec import ModelSpec

    analysis = lint(ModelSpec("torchvision:swin_t", input_size=(224,))).analysis
    assert not [l for l in analysis.layers if l.layer.kind is Kind.UNKNOWN]
    a = by_qualname(analysis)
    # [hand] patchify 4x4/4: r 4, J 4; each unit attends to its 7x7 window: 4 + 6*4 = 28
    assert rf(a["features.1.0.attn.shifted_window_attention"]) == ([28, 28], [28, 28])
    # [hand] the next block's windows are shifted by 3: a window holds units 7q+4 .. 7q+10, which
    # lie in two of the first block's windows, 7q .. 7q+13: 14 units, 56 px for the widest unit.
    # The single path that skips the first attention sees one window: 28. rflint <= 0.1 modelled
    # the windows as a sliding 7x7 and reported 52 for every unit.
    assert rf(a["features.1.1.attn.shifted_window_attention"]) == ([28, 28], [56, 56])
    # patch merging is a 2x2 stride-2 window: the jump doubles to 8
    assert display(a["features.2._patch_merging_pad"].jump[0]) == 8
    # the last stage's 7x7 map fits in one 7x7 window: the attention is global there
    assert a["features.7.0.attn.shifted_window_attention"].layer.kind is Kind.GLOBAL
