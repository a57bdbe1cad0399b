"""rflint's receptive fields against the autograd oracle (tests/oracle.py) on real models.

The oracle knows nothing about rflint: it linearises a copy of the model with positive weights,
back-propagates from the centre unit of a feature map and measures the extent of the input
gradient. For an aligned architecture (every branch centred alike, see tests/oracle.py) that
extent is the largest single-path field, rflint's ``r_max``. The comparison point is the last
spatial feature map before global pooling.

rflint's r_max is used only to choose the *starting* input size of the oracle (``start``):
if rflint were too small the oracle would still grow the input until the support clears the
border, and if it were too large the measurement would be unaffected.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import torchvision
from oracle import linearize, measure_support, measure_units, support_extent
from torch import nn

from rflint.rf.algebra import analyse
from rflint.rf.display import display
from rflint.engine.pipeline import lint
from rflint.spec import ModelSpec
from rflint.frontend.fx import trace_graph
from rflint.ir import Analysis, LayerRF

ROOT = Path(__file__).resolve().parents[2]
MARGIN = 32


def rflint_at(analysis: Analysis, module: str, at: str) -> LayerRF:
    """rflint's layer for the oracle's hook point: the input of module ``module`` (at="input"),
    or the last layer inside ``module`` (at="output")."""
    by_name = {lrf.layer.name: lrf for lrf in analysis.layers}
    if at == "input":
        (layer,) = [lrf for lrf in analysis.layers if lrf.layer.qualname == module]
        return by_name[layer.layer.inputs[0]]
    inside = [
        lrf for lrf in analysis.layers if lrf.layer.qualname == module or lrf.layer.qualname.startswith(module + ".")
    ]
    return inside[-1]


def as_ints(values) -> tuple:
    return tuple(display(v) for v in values)


@functools.cache
def analysis_of(target: str, size: int) -> Analysis:
    return lint(ModelSpec(target, input_size=(size,))).analysis


def build_torchvision(name: str) -> nn.Module:
    try:
        with torch.device("meta"):  # no weight init: the oracle sets every weight itself
            return torchvision.models.get_model(name, weights=None)
    except NotImplementedError:  # regnet_* cannot be built on meta
        return torchvision.models.get_model(name, weights=None)


def load_example(file: str) -> nn.Module:
    spec = importlib.util.spec_from_file_location(f"_example_{Path(file).stem}", ROOT / "examples" / file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_model()


# --------------------------------------------------------------------------------------------
# torchvision zoo

# name -> (hook module, "input" / "output", thin size of the unmeasured axis, rflint trace size).
# The hook is the global pooling module's input, or the last module before a functional global
# pool (``x.mean((2, 3))`` in MnasNet / ShuffleNetV2, ``F.adaptive_avg_pool2d`` in MobileNetV2 /
# DenseNet). The thin axis must survive the model's downsampling (Inception-v3 needs >= 75).
ZOO = {
    "alexnet": ("features", "output", 64, 224),
    "vgg11": ("avgpool", "input", 32, 224),
    "vgg16": ("avgpool", "input", 32, 224),
    "resnet18": ("avgpool", "input", 32, 224),
    "resnet34": ("avgpool", "input", 32, 224),
    "resnet50": ("avgpool", "input", 32, 224),
    "resnext50_32x4d": ("avgpool", "input", 32, 224),
    "wide_resnet50_2": ("avgpool", "input", 32, 224),
    "mobilenet_v2": ("features", "output", 32, 224),
    "mobilenet_v3_small": ("avgpool", "input", 32, 224),
    "mobilenet_v3_large": ("avgpool", "input", 32, 224),
    "efficientnet_b0": ("avgpool", "input", 32, 224),
    "mnasnet0_5": ("layers", "output", 32, 224),
    "mnasnet1_0": ("layers", "output", 32, 224),
    "densenet121": ("features", "output", 32, 224),
    "googlenet": ("avgpool", "input", 32, 224),
    "inception_v3": ("avgpool", "input", 80, 299),
    "convnext_tiny": ("avgpool", "input", 32, 224),
    "squeezenet1_0": ("classifier.3", "input", 32, 224),
    "squeezenet1_1": ("classifier.3", "input", 32, 224),
    "shufflenet_v2_x0_5": ("conv5", "output", 32, 224),
    "regnet_x_400mf": ("avgpool", "input", 32, 224),
    "regnet_y_400mf": ("avgpool", "input", 32, 224),
}

# float32 is not safe for DenseNet: its input gradient spans 1e-83 .. 1e3 (the 1x1 convs over
# ever wider concatenations shrink the longest path's share), so the oracle would fall back to
# float64 after a wasted float32 run; start in float64.
FLOAT64 = {"densenet121"}

# Every model above is aligned: each branch is padded by (k_eff - 1) / 2, or all branches share
# the same unpadded / even-kernel layers (Inception's valid 3x3 s2 reductions end every branch,
# ConvNeXt's 2x2 s2 downsampling is on every path), so the union of the path footprints spans
# exactly r_max. The misaligned case, where the oracle exceeds r_max, is pinned on a hand-built
# net in test_oracle_selfcheck.py (test_misaligned_branches_make_the_support_wider_than_r_max).

# Inception-v3 mixes 1x7 and 7x1 convolutions: measure W as well as H there.
BOTH_AXES = {"inception_v3"}


def check_against_oracle(
    model: nn.Module,
    analysis: Analysis,
    module: str,
    at: str,
    thin: int,
    dtype: torch.dtype | None = None,
    both_axes: bool = False,
) -> tuple[int, int]:
    """``(rflint r_max, oracle support)`` on axis 0 at the hook point (both axes must agree)."""
    lrf = rflint_at(analysis, module, at)
    r_max = as_ints(lrf.r_max)
    assert len(set(r_max)) == 1, f"these models are square: {r_max}"
    # By default only axis 0 (H) is measured: the models are symmetric under swapping H and W,
    # and one axis halves the CPU time.
    # start: the field plus the margins plus room for the centre unit to sit off-centre by up to
    # half the cumulative stride (32); too small a start only costs a second, larger run.
    start = int(r_max[0]) + 4 * MARGIN + 1
    axes = [0, 1] if both_axes else [0]
    support = measure_support(
        model, (1, 3, thin, thin), module, at=at, start=start, axes=axes, margin=MARGIN, dtype=dtype
    )
    if both_axes:
        assert support[0] == support[1], support
    return int(r_max[0]), support[0]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ZOO))
def test_r_max_before_global_pooling_equals_the_autograd_support(name):
    module, at, thin, size = ZOO[name]
    analysis = analysis_of(f"torchvision:{name}", size)
    dtype = torch.float64 if name in FLOAT64 else None
    model = build_torchvision(name)
    r_max, support = check_against_oracle(model, analysis, module, at, thin, dtype, both_axes=name in BOTH_AXES)
    assert support == r_max, f"{name}: rflint r_max {r_max}, autograd support {support}"


def test_zoo_covers_at_least_twenty_models():
    assert len(ZOO) >= 20


def test_resnet18_r_max_equals_the_autograd_support():
    # the one zoo model that also runs in the fast suite; [B.2] 435
    r_max, support = check_against_oracle(
        build_torchvision("resnet18"), analysis_of("torchvision:resnet18", 224), "avgpool", "input", 32
    )
    assert r_max == support == 435


# timm (a test dependency) adds other block designs: ResNet-D's average-pool shortcut (AvgPool 2/2
# with ceil_mode on the skip, 3x3 stride 2 on the main path: the skip's footprint [2i, 2i+1] lies
# inside the main path's [2i-1, 2i+1], so r_max is still the union's extent), timm's own SE
# module, ConvNeXt with a 4x4 patch stem, RegNetZ. name -> the global pooling module.
TIMM = {
    "resnet18d": "global_pool.pool",
    "resnet26d": "global_pool.pool",
    "efficientnet_b0": "global_pool.pool",
    "convnext_atto": "head.global_pool.pool",
    "regnetz_b16": "head.global_pool.pool",
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TIMM))
def test_timm_r_max_before_global_pooling_equals_the_autograd_support(name):
    import timm

    with torch.device("meta"):
        model = timm.create_model(name, pretrained=False)
    r_max, support = check_against_oracle(model, analysis_of(f"timm:{name}", 224), TIMM[name], "input", 32)
    assert support == r_max


# --------------------------------------------------------------------------------------------
# Cases where the size or the op matters


def test_alexnet_adaptive_pool_bin_of_three_is_seen_by_the_oracle():
    # At 399 px AlexNet's features end in an 11x11 map and AdaptiveAvgPool2d(6)'s centre bin (index
    # 3) spans cells 5..7: 3 cells, so 195 + 2 * 32 = 259 [hand]; rfa-toolbox says inf [brief C.4].
    # The oracle cannot grow the input here (that would change the bins), so it measures once at
    # 399 px and checks that the support is clear of the border.
    lrf = rflint_at(analysis_of("torchvision:alexnet", 399), "avgpool", "input")
    assert as_ints(lrf.r_max) == (195, 195)
    (pool,) = [x for x in analysis_of("torchvision:alexnet", 399).layers if x.layer.qualname == "avgpool"]
    net = linearize(build_torchvision("alexnet"))
    extents = support_extent(net, (1, 3, 399, 399), "avgpool")
    assert all(lo > 0 and hi < 398 for lo, hi in extents)
    assert tuple(hi - lo + 1 for lo, hi in extents) == as_ints(pool.r_max) == (259, 259)


@pytest.mark.slow
def test_dilated_resnet50_uses_the_effective_kernel():
    # replace_stride_with_dilation (the DeepLab backbone): layer4 keeps stride 1 (J stays 16) and
    # dilates the 3x3 of layer4.1 / layer4.2 by 2. [hand] Undilated, layer4's three 3x3 add
    # 2*16 + 2*32 + 2*32 = 160 to 267; dilated, 2*16 + 4*16 + 4*16 = 160 too: r_max stays 427
    # ([B.2] ResNet-50) and only the jump changes. rfa-toolbox ignores dilation [brief C.5]:
    # 267 + 3 * 2*16 = 363.
    rfa_value = 363
    kwargs = {"replace_stride_with_dilation": [False, False, True]}
    with torch.device("meta"):
        model = torchvision.models.resnet50(**kwargs)
    rep = lint(ModelSpec("torchvision:resnet50", input_size=(224,), kwargs=kwargs))
    r_max, support = check_against_oracle(model, rep.analysis, "avgpool", "input", 32)
    assert r_max == support == 427 != rfa_value
    last = rflint_at(rep.analysis, "avgpool", "input")
    assert as_ints(last.jump) == (16, 16)
    (conv,) = [x for x in rep.analysis.layers if x.layer.qualname == "layer4.2.conv2"]
    assert conv.layer.k_eff == (5, 5)


class TinyUNet(nn.Module):
    """Down by 4 (two stride-2 convs), up by 4 (a transposed conv k2 s2 and nearest x2), 3x3s."""

    def __init__(self) -> None:
        super().__init__()
        self.enc1 = nn.Conv2d(3, 8, 3, padding=1)
        self.down1 = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.down2 = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.mid = nn.Conv2d(8, 8, 3, padding=1)
        self.up1 = nn.ConvTranspose2d(8, 8, 2, stride=2)
        self.dec1 = nn.Conv2d(16, 8, 3, padding=1)
        self.dec2 = nn.Conv2d(16, 8, 3, padding=1)

    def forward(self, x):
        e1 = F.relu(self.enc1(x))
        d1 = F.relu(self.down1(e1))
        m = F.relu(self.mid(self.down2(d1)))
        u1 = torch.cat([self.up1(m), d1], 1)
        u1 = F.relu(self.dec1(u1))
        u2 = torch.cat([F.interpolate(u1, scale_factor=2, mode="nearest"), e1], 1)
        return self.dec2(u2)


def test_after_upsampling_r_max_is_the_widest_unit_and_r_narrow_the_narrowest():
    # After upsampling a unit sees a number of pixels that depends on its phase on the upsampling
    # grid. [hand, checked by the oracle] dec2's units at output positions 4c, 4c+1, 4c+2, 4c+3 see
    # 21, 25, 25, 21 pixels: two neighbouring dec1 units read the same pair of ``mid`` units or two
    # pairs one apart (one ``mid`` step = 4 input pixels). rflint's r_max is the widest (25), its
    # r_narrow the narrowest (21); rflint <= 0.1 reported their average, 23, which bounds neither.
    # (rfa-toolbox would treat the transposed conv as a stride-2 conv and the interpolation as a
    # no-op [brief C.5].)
    model = TinyUNet()
    analysis = analyse(trace_graph(model, input_shape=(1, 3, 64, 64)))
    (dec2,) = [x for x in analysis.layers if x.layer.qualname == "dec2"]
    supports = measure_units(model, (1, 3, 64, 64), "dec2", axis=0, units=4)
    assert sorted(supports) == [21, 21, 25, 25]
    assert as_ints(dec2.r_max) == (max(supports),) * 2
    assert display(dec2.axes[0].r_narrow) == min(supports)
    old_average = 23
    assert min(supports) < old_average < max(supports)


# --------------------------------------------------------------------------------------------
# The examples


@pytest.mark.parametrize("file", ["cifar_resnet.py", "cifar_resnet_refined.py"])
def test_example_models_r_max_equals_the_autograd_support(file):
    analysis = analysis_of(f"{ROOT / 'examples' / file}:build_model", 32)
    r_max, support = check_against_oracle(load_example(file), analysis, "pool", "input", 32)
    assert support == r_max
