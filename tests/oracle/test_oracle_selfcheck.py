"""The autograd oracle (tests/oracle.py) on hand-built networks whose receptive fields are known
by hand, so that the oracle itself is checked before it is used to check rflint.

Expected numbers are hand computations with r_l = r_{l-1} + (k_eff - 1) * J_{l-1}, shown next to
each case.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from oracle import OracleError, PrecisionError, linear_functionals, linearize, measure_support
from torch import nn
from torchvision.ops import SqueezeExcitation


def conv(cin, cout, k, s=1, d=1, p=None, dim=2):
    cls = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dim]
    if p is None:
        p = tuple(di * (ki - 1) // 2 for ki, di in zip(_t(k), _t(d))) if dim == 2 else d * (k - 1) // 2
    return cls(cin, cout, k, stride=s, dilation=d, padding=p)


def _t(v):
    return v if isinstance(v, tuple) else (v, v)


class Residual(nn.Module):
    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, x):
        return x + self.body(x)


def test_five_3x3_convs_have_support_11():
    model = nn.Sequential(*[conv(3 if i == 0 else 8, 8, 3) for i in range(5)])
    assert measure_support(model, (1, 3, 64, 64)) == (11, 11)  # [hand] 1 + 5 * 2


def test_stem_conv7_stride2_and_maxpool3_stride2_have_support_11():
    model = nn.Sequential(conv(3, 8, 7, 2), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
    assert measure_support(model, (1, 3, 64, 64)) == (11, 11)  # [hand] 7 + (3 - 1) * 2


def test_dilated_3x3_has_support_5():
    assert measure_support(conv(3, 4, 3, d=2), (1, 3, 64, 64)) == (5, 5)  # [hand] 2 * (3 - 1) + 1


def test_residual_block_support_is_the_longest_path():
    # [hand] stem 3x3 -> 3; residual body of two 3x3 -> 3 + 2 + 2 = 7 = r_max (the skip path gives 3)
    model = nn.Sequential(conv(3, 8, 3), Residual(nn.Sequential(conv(8, 8, 3), nn.ReLU(), conv(8, 8, 3))))
    assert measure_support(model, (1, 3, 64, 64)) == (7, 7)


def test_strided_chain_support_matches_hand_numbers():
    # [hand] k/s 3/1, 3/2, 3/1, 3/2, 3/1 -> 3, 5, 9, 13, 21 (the brief's B.1 chain)
    model = nn.Sequential(conv(3, 4, 3), conv(4, 4, 3, 2), conv(4, 4, 3), conv(4, 4, 3, 2), conv(4, 4, 3))
    assert measure_support(model, (1, 3, 96, 96)) == (21, 21)


def test_non_square_kernels_and_strides_are_measured_per_axis():
    # [hand] (3,5) stride (1,2) -> (3,5), J (1,2); then 3x3 -> (3 + 2, 5 + 2 * 2) = (5, 9)
    model = nn.Sequential(conv(3, 4, (3, 5), (1, 2)), conv(4, 4, 3))
    assert measure_support(model, (1, 3, 64, 64)) == (5, 9)


@pytest.mark.parametrize("dim", [1, 3])
def test_conv1d_and_conv3d_supports_have_one_number_per_axis(dim):
    model = nn.Sequential(conv(2, 4, 3, 2, dim=dim), conv(4, 4, 3, dim=dim))  # [hand] 3 + 2 * 2 = 7
    shape = (1, 2) + (64,) * dim
    assert measure_support(model, shape) == (7,) * dim


def test_support_grows_the_input_until_it_stays_off_the_border():
    # [hand] 20 3x3 convs -> 41; the starting input (16 px) is far too small
    model = nn.Sequential(*[conv(3 if i == 0 else 4, 4, 3) for i in range(20)])
    assert measure_support(model, (1, 3, 16, 16), margin=8) == (41, 41)


def test_measuring_axes_together_or_apart_gives_the_same_support():
    model = nn.Sequential(conv(3, 4, 7, 2), nn.MaxPool2d(3, 2, 1), conv(4, 4, (3, 5)), conv(4, 4, 3, 2), conv(4, 4, 3))
    # [hand] 7; 7 + 2*2 = 11 (J 4); (11 + 2*4, 11 + 4*4) = (19, 27); (19 + 8, 27 + 8) = (27, 35) (J 8);
    # (27 + 16, 35 + 16) = (43, 51)
    apart = measure_support(model, (1, 3, 64, 64))
    together = measure_support(model, (1, 3, 64, 64), per_axis=False)
    assert apart == together == (43, 51)


class FunctionalNet(nn.Module):
    """ReLU, max pooling and sigmoid written as functional calls inside forward."""

    def __init__(self):
        super().__init__()
        self.a = conv(3, 4, 3)
        self.b = conv(4, 4, 3)

    def forward(self, x):
        x = F.relu(self.a(x), inplace=True)
        x = F.max_pool2d(x, 3, 2, 1)
        return torch.sigmoid(self.b(x)).relu()


def test_functional_relu_and_max_pool_are_linearised_too():
    # [hand] 3; pool 3/2 -> 5 (J 2); 3x3 -> 5 + 2 * 2 = 9
    assert measure_support(FunctionalNet(), (1, 3, 64, 64)) == (9, 9)


def test_functional_patches_are_undone_after_the_block():
    before = F.relu, F.max_pool2d, torch.sigmoid, torch.Tensor.relu
    with linear_functionals():
        assert F.relu(torch.tensor([-1.0])).item() == -1.0
    assert (F.relu, F.max_pool2d, torch.sigmoid, torch.Tensor.relu) == before
    assert F.relu(torch.tensor([-1.0])).item() == 0.0


class ChannelsLastNormBlock(nn.Module):
    """A ConvNeXt-style block: depthwise 7x7, LayerNorm over channels, GELU, layer scale."""

    def __init__(self, dim=8):
        super().__init__()
        self.dw = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.pw = nn.Linear(dim, dim)
        self.act = nn.GELU()
        self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), 1e-6))

    def forward(self, x):
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.act(self.pw(self.norm(y))).permute(0, 3, 1, 2)
        return x + self.layer_scale * y


def test_layer_norm_gelu_and_layer_scale_do_not_hide_the_field():
    # [hand] stem 4x4/4 -> 4 (J 4); two blocks with 7x7 depthwise: 4 + 6*4 + 6*4 = 52
    model = nn.Sequential(nn.Conv2d(3, 8, 4, 4), ChannelsLastNormBlock(), ChannelsLastNormBlock())
    assert measure_support(model, (1, 3, 128, 128)) == (52, 52)


def test_squeeze_excitation_gate_is_held_constant():
    # [hand] 3x3 -> 3, SE (global gate, held constant), 3x3 -> 5. Left in, the gate's global
    # pooling would make the support the whole input.
    model = nn.Sequential(conv(3, 8, 3), SqueezeExcitation(8, 4), nn.Hardswish(), conv(8, 8, 3), nn.Hardsigmoid())
    assert measure_support(model, (1, 3, 64, 64)) == (5, 5)


def test_layer_inside_the_model_can_be_selected_by_qualname_input_or_output():
    model = nn.Sequential(conv(3, 4, 3), conv(4, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    assert measure_support(model, (1, 3, 64, 64), "1") == (5, 5)  # [hand] 3 + 2
    assert measure_support(model, (1, 3, 64, 64), "2", at="input") == (5, 5)
    assert measure_support(model, (1, 3, 64, 64), "0") == (3, 3)
    with pytest.raises(OracleError):
        measure_support(model, (1, 3, 64, 64))  # the output has no spatial axes
    with pytest.raises(OracleError):
        measure_support(model, (1, 3, 64, 64), "nope")


def test_models_built_on_the_meta_device_are_materialised():
    with torch.device("meta"):
        model = nn.Sequential(conv(3, 4, 5), conv(4, 4, 3, 2), conv(4, 4, 3))
    assert measure_support(model, (1, 3, 64, 64)) == (11, 11)  # [hand] 5; 7 (J 2); 7 + 4 = 11


def test_the_original_model_is_not_modified():
    model = nn.Sequential(conv(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2))
    weight = model[0].weight.detach().clone()
    measure_support(model, (1, 3, 32, 32))
    assert torch.equal(model[0].weight, weight)
    assert isinstance(model[1], nn.ReLU) and isinstance(model[2], nn.MaxPool2d)


def test_linearised_copy_is_float64_positive_and_in_eval_mode():
    model = nn.Sequential(conv(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.5))
    net = linearize(model)
    assert not net.training
    assert net[0].weight.dtype == torch.float64 and bool((net[0].weight > 0).all())
    assert isinstance(net[2], nn.Identity) and isinstance(net[3], nn.AvgPool2d)


def test_a_model_that_kills_the_gradient_is_reported():
    class Zero(nn.Module):
        def forward(self, x):
            return x * 0

    with pytest.raises(OracleError, match="zero input gradient"):
        measure_support(Zero(), (1, 3, 16, 16))


class ShiftedBranches(nn.Module):
    """Two 3x3 branches padded differently: one centred (padding 1), one padded on the left only."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(3, 4, 3, padding=0)

    def forward(self, x):
        return self.a(x) + self.b(F.pad(x, (2, 0, 2, 0)))


def test_misaligned_branches_make_the_support_wider_than_r_max():
    # The oracle's documented limit: each branch sees 3 pixels (r_max = 3), but branch a reads
    # [i-1, i+1] and branch b [i-2, i], so their union spans 4 pixels. Tests that compare the
    # oracle with rflint must explain such cases instead of dropping them.
    assert measure_support(ShiftedBranches(), (1, 3, 64, 64)) == (4, 4)


def test_float32_and_float64_give_the_same_support():
    model = nn.Sequential(
        conv(3, 8, 7, 2), nn.MaxPool2d(3, 2, 1), conv(8, 8, 3, p=1), nn.Conv2d(8, 8, 5, padding=2, groups=8)
    )
    # [hand] 7; 11 (J 4); 11 + 2*4 = 19; 19 + 4*4 = 35
    shape = (1, 3, 96, 96)
    assert (
        measure_support(model, shape, dtype=torch.float32)
        == measure_support(model, shape, dtype=torch.float64)
        == (35, 35)
    )
    assert measure_support(model, shape) == (35, 35)  # float32 first, the default


def test_float32_underflow_is_detected_and_the_default_falls_back_to_float64():
    # 45 single-channel 9x9 convs: the edge of the field gets (1/9)^45 ~ 1e-43 of the gradient,
    # at the bottom of float32's range. [hand] 1 + 45 * 8 = 361
    model = nn.Sequential(*[nn.Conv2d(1, 1, 9, padding=4) for _ in range(45)])
    with pytest.raises(PrecisionError):
        measure_support(model, (1, 1, 16, 16), start=440, axes=[0], dtype=torch.float32)
    assert measure_support(model, (1, 1, 16, 16), start=440, axes=[0]) == (361, 0)
