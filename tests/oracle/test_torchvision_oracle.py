"""rflint on torchvision models against the published numbers of the prior-art brief.

Sources (``/work/shared/reference/receptive-field-prior-art.md``):

- [B.1] rfa-toolbox's test suite (author-asserted VGG r_min lists);
- [B.2] rfa-toolbox 1.7.0 run on torchvision 0.29.1 models: the ResNet-18 per-layer table, the
  "final k>1 layer" r_min / r_max, rfa's I_min / I_max and the "pure>=" counts of flagged
  layers (k > 1 and input r_min >= I_res, the rule rflint's RF101 implements).

Where rflint deliberately differs from rfa-toolbox (global ``mean``, adaptive pooling to n > 1,
the k x J term of rfa's I_min), both values are kept side by side with a comment.
"""

from __future__ import annotations

import functools

import pytest
from published import RESNET18_TABLE
import torchvision  # noqa: F401  (a test dependency: fail loudly rather than skip)

from rflint.rf.display import display
from rflint.rf.status import is_unproductive
from rflint.engine.pipeline import lint
from rflint.results import ModelReport
from rflint.spec import ModelSpec
from rflint.ir import INF, Kind, LayerRF


@functools.cache
def report(name: str, size: int) -> ModelReport:
    return lint(ModelSpec(f"torchvision:{name}", input_size=(size,)))


def layers_by_qualname(rep: ModelReport) -> dict[str, LayerRF]:
    return {lrf.layer.qualname: lrf for lrf in rep.analysis.layers}


def square(values) -> int | float | None:
    """The single value of a square (same on every axis) receptive-field tuple."""
    shown = {display(v) for v in values}
    assert len(shown) == 1, f"not square: {values}"
    return shown.pop()


def final_growing_layer(rep: ModelReport) -> LayerRF:
    """rfa's "final k>1 layer": the last layer that grows the field and is still finite."""
    return [lrf for lrf in rep.analysis.layers if lrf.layer.grows_field and lrf.r_min[0] != INF][-1]


def unproductive(rep: ModelReport) -> list[str]:
    return [f.layer for f in rep.findings if f.code == "RF101"]


# --------------------------------------------------------------------------------------------
# ResNet-18 layer by layer

RESNET18 = RESNET18_TABLE  # [B.2], see tests/published.py


@pytest.mark.parametrize("size", [32, 224])
def test_resnet18_per_layer_fields_match_rfa_toolbox(size):
    by_name = layers_by_qualname(report("resnet18", size))
    got = {
        name: (square(by_name[name].r_min), square(by_name[name].r_max), square(by_name[name].input_r_min))
        for name in RESNET18
    }
    assert got == RESNET18


def test_resnet18_residual_adds_keep_r_min_11_and_grow_r_max():
    rep = report("resnet18", 224)
    adds = [lrf for lrf in rep.analysis.layers if lrf.layer.kind is Kind.MERGE]
    # [B.2] the 8 adds: r_min 11 (the path through every identity skip), r_max below
    assert [square(a.r_max) for a in adds] == [27, 43, 67, 99, 147, 211, 307, 435]
    assert {square(a.r_min) for a in adds} == {11}


# --------------------------------------------------------------------------------------------
# Final r_min / r_max and I_min of the listed models

# [B.2] "final k>1 layer r_min/r_max" and rfa's I_min / I_max at default settings
FINAL = {
    # name: (input size, r_min, r_max, rfa I_min, rfa I_max)
    "alexnet": (224, 195, 195, 195, 195),
    "vgg16": (224, 212, 212, 212, 212),
    "vgg19": (224, 268, 268, 268, 268),
    "resnet18": (224, 139, 435, 139, 435),
    "resnet50": (224, 75, 427, 96, 427),
    "mobilenet_v2": (224, 163, 491, 163, 491),
    "mobilenet_v3_small": (224, 303, 639, 303, 639),
    "mobilenet_v3_large": (224, 263, 595, 263, 595),
    "efficientnet_b0": (224, 235, 851, 299, 851),
    "mnasnet1_0": (224, 219, 843, 283, 843),
    "densenet121": (224, 103, 2071, 103, 2071),
    "googlenet": (224, 123, 379, 123, 379),
    "inception_v3": (299, 143, 1247, 239, 1311),
    "convnext_tiny": (224, 224, 1688, 224, 1688),
}


@pytest.mark.parametrize("name", sorted(FINAL))
def test_final_field_growing_layer_matches_rfa_toolbox(name):
    size, r_min, r_max, _, _ = FINAL[name]
    last = final_growing_layer(report(name, size))
    assert (square(last.r_min), square(last.r_max)) == (r_min, r_max)


# rfa's default I_min is max(own r_min of every node, k x J_max of every node); rflint's i_min is
# max own r_min of the field-growing layers, without the k x J feature-map term (rflint keeps that
# term out of I_min on purpose; see status.resolution_bounds). They agree wherever the feature-map
# term does not bind.
I_MIN_DIFFERS = {
    # ResNet-50: rfa's 96 is k x J = 3 x 32 of layer4.0.conv2 (stride 2 on the 3x3, torchvision's
    # v1.5); the largest own r_min is layer4.2.conv2's 75 (the final k>1 layer above).
    "resnet50": 75,
}


@pytest.mark.parametrize("name", sorted(FINAL))
def test_i_min_and_i_max_match_rfa_toolbox_where_the_definitions_agree(name):
    size, _, _, rfa_i_min, rfa_i_max = FINAL[name]
    analysis = report(name, size).analysis
    expected_i_min = I_MIN_DIFFERS.get(name, rfa_i_min)
    assert (square(analysis.i_min), square(analysis.i_max)) == (expected_i_min, rfa_i_max)


def test_resnet50_i_min_without_the_feature_map_term_is_the_largest_own_r_min():
    rep = report("resnet50", 224)
    rfa_i_min = 96  # [B.1] rfa input_resolution_range(resnet50) = ((96,96),(427,427)); [B.2] the same
    rflint_i_min = square(rep.analysis.i_min)
    assert rflint_i_min == 75 == square(final_growing_layer(rep).r_min)
    # rfa's 96 is kernel x cumulative stride (feature map <= kernel), not a receptive field
    layer = layers_by_qualname(rep)["layer4.0.conv2"]
    assert layer.layer.k_eff[0] * square(layer.jump) == rfa_i_min


# --------------------------------------------------------------------------------------------
# The VGG lists of rfa-toolbox's tests

# [B.1] r_min per node: the input, every conv / max-pool of ``features``, then 3 dense layers (inf)
VGG_R_MIN = {
    "vgg11": [1, 3, 4, 8, 10, 18, 26, 30, 46, 62, 70, 102, 134, 150],
    "vgg13": [1, 3, 5, 6, 10, 14, 16, 24, 32, 36, 52, 68, 76, 108, 140, 156],
    "vgg16": [1, 3, 5, 6, 10, 14, 16, 24, 32, 40, 44, 60, 76, 92, 100, 132, 164, 196, 212],
    "vgg19": [1, 3, 5, 6, 10, 14, 16, 24, 32, 40, 48, 52, 68, 84, 100, 116, 124, 156, 188, 220, 252, 268],
}


@pytest.mark.parametrize("name", sorted(VGG_R_MIN))
def test_vgg_r_min_lists_match_rfa_toolbox_tests(name):
    layers = report(name, 224).analysis.layers
    nodes = [lrf for lrf in layers if lrf.layer.kind is Kind.INPUT]
    nodes += [
        lrf for lrf in layers if lrf.layer.op in ("Conv2d", "MaxPool2d") and lrf.layer.qualname.startswith("features.")
    ]
    dense = [lrf for lrf in layers if lrf.layer.op == "Linear"]
    assert [square(lrf.r_min) for lrf in nodes] == VGG_R_MIN[name]
    assert [square(lrf.r_min) for lrf in dense] == [None, None, None]  # [B.1] inf x 3


# --------------------------------------------------------------------------------------------
# Unproductive layers (RF101) at small input sizes: the "pure>=" column of B.2

COUNTS = [
    # (model, input size, number of RF101 findings, first flagged layer or None); all [B.2] pure>=
    ("resnet18", 16, 8, "layer1.0.conv2"),  # all eight layerX.Y.conv2
    ("resnet18", 32, 3, "layer3.1.conv2"),
    ("resnet18", 64, 1, "layer4.1.conv2"),
    ("vgg16", 32, 10, "features.14"),  # the boundary case: input r_min exactly 32
    ("vgg16", 224, 0, None),
    ("vgg19", 224, 1, "features.36"),  # last pool: input 252, own 268
    ("mobilenet_v2", 32, 10, None),
    ("mobilenet_v2", 64, 6, None),
    ("mobilenet_v2", 224, 0, None),
    ("efficientnet_b0", 32, 10, None),
    ("efficientnet_b0", 224, 0, None),
    ("convnext_tiny", 32, 3, "features.7.0.block.0"),  # last-stage dwconvs, input r_min exactly 32
    ("convnext_tiny", 224, 0, None),
    ("resnet50", 32, 0, None),
    ("resnet50", 64, 0, None),
]


@pytest.mark.parametrize(("name", "size", "count", "first"), COUNTS)
def test_unproductive_layer_counts_match_rfa_toolbox_pure_rule(name, size, count, first):
    flagged = unproductive(report(name, size))
    assert len(flagged) == count
    if first is not None:
        assert flagged[0] == first


def test_resnet18_at_32_px_flags_exactly_the_second_convs_of_the_late_blocks():
    # [B.2] pure: layer3.1.conv2, layer4.0.conv2, layer4.1.conv2
    assert unproductive(report("resnet18", 32)) == ["layer3.1.conv2", "layer4.0.conv2", "layer4.1.conv2"]


def test_vgg16_at_64_px_flags_the_six_convs_and_pools_but_not_the_upsampling_adaptive_pool():
    analysis = report("vgg16", 64).analysis
    # [B.2] rfa pure>= @64: 6 k>1 conv/pool layers; rflint agrees.
    assert unproductive(report("vgg16", 64)) == [
        "features.21",
        "features.23",
        "features.24",
        "features.26",
        "features.28",
        "features.30",
    ]
    # ``avgpool`` is AdaptiveAvgPool2d((7, 7)) on a 2x2 map: it interpolates (bins of up to 2
    # cells, stride 2/7), so rflint lowers it as upsampling, which widens the field (212 + 32 =
    # 244 [hand]) but is never judged by the rules. rfa-toolbox makes every adaptive pool global.
    avgpool = layers_by_qualname(report("vgg16", 64))["avgpool"]
    assert avgpool.layer.kind is Kind.UPSAMPLE and square(avgpool.r_max) == 244
    assert square(analysis.i_max) == 244


def test_alexnet_at_32_px_has_five_unproductive_layers():
    # torchvision's AlexNet cannot run at 32 px (its last max-pool gets a 1x1 map), so rflint
    # cannot trace it there; rfa-toolbox traced at 399 px and evaluated 32. Do the same: the fields
    # do not depend on the trace size here (the adaptive pool at 224 is 6 -> 6, a no-op).
    rep = report("alexnet", 224)
    flagged = [lrf.layer.qualname for lrf in rep.analysis.layers if is_unproductive(lrf, (32, 32))]
    # [B.2] AlexNet @32: pure>= 5 (RFs 11, 19, 51, 67, 99, 131, 163, 195); rfa's is_border adds
    # features.3 through its feature-map rule (6)
    assert flagged == ["features.5", "features.6", "features.8", "features.10", "features.12"]
    assert [square(lrf.r_min) for lrf in rep.analysis.layers if lrf.layer.grows_field] == [
        11,
        19,
        51,
        67,
        99,
        131,
        163,
        195,
    ]


# --------------------------------------------------------------------------------------------
# Deliberate differences from rfa-toolbox


def test_mnasnet_mean_pooling_is_global_where_rfa_toolbox_stays_finite():
    by_name = layers_by_qualname(report("mnasnet1_0", 224))
    # [brief C.5] rfa treats x.mean([2, 3]) as a no-op: MnasNet's classifier keeps 219/843.
    rfa_classifier = (219, 843)
    classifier = by_name["classifier.1"]
    assert (square(classifier.r_min), square(classifier.r_max)) == (None, None)  # rflint: global
    assert by_name["mean"].layer.kind is Kind.GLOBAL
    last = final_growing_layer(report("mnasnet1_0", 224))
    assert (square(last.r_min), square(last.r_max)) == rfa_classifier  # the local field before the mean


def test_alexnet_adaptive_pool_to_6_is_a_window_not_global():
    by_name = layers_by_qualname(report("alexnet", 399))
    # At 399 px the features end in an 11x11 map; AdaptiveAvgPool2d(6) bins are up to
    # ceil(2 * 11 / 6) - floor(11 / 6) = 3 cells wide with a stride of 11/6: [hand]
    # 195 + (3 - 1) * 32 = 259. rfa-toolbox makes every adaptive pool global (inf) [brief C.4].
    rfa_value = None
    avgpool = by_name["avgpool"]
    assert avgpool.layer.kind is Kind.WINDOW and avgpool.layer.kernel == (3, 3)
    assert square(avgpool.r_max) == 259 != rfa_value
    # at 224 px the map is already 6x6: the pool is a no-op
    assert square(layers_by_qualname(report("alexnet", 224))["avgpool"].r_max) == 195


def test_efficientnet_b0_at_224_has_four_critical_depthwise_convs():
    from rflint.checks.critical_layer import critical_runs

    rep = report("efficientnet_b0", 224)
    by_name = layers_by_qualname(rep)
    (run,) = critical_runs(rep.analysis)
    critical = [lrf.layer.qualname for lrf in run]
    # [B.2] "at 224 four depthwise convs are critical (own r_min 299/235 > 224)"
    assert [square(by_name[n].r_min) for n in critical] == [299, 299, 299, 235]
    assert all(n.endswith("block.1.0") for n in critical)  # the depthwise conv of each MBConv
    # one after the other (only 1x1 convs and squeeze-excitation between them): one RF102 (issue 21)
    (finding,) = [f for f in rep.findings if f.code == "RF102"]
    assert finding.layer == critical[0] and f"is the first of 4 critical layers in a row (up to {critical[-1]})" in finding.message


# [A.5] rfa I_min of the base models at the training resolution 224 (the refinement criterion of
# Richter & Pal 2022 is I_min < I_res): ConvNeXt-T exactly 224 (the < / <= boundary case),
# MnasNet 283, MobileNetV3-L 263, MobileNetV3-S 303, EfficientNet-B0 299, VGG19 268; below 224:
# ResNet-18 139, VGG16 212, MobileNetV2 163 [B.2].
NOT_REFINED_AT_224 = [
    "convnext_tiny",
    "mnasnet1_0",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    "efficientnet_b0",
    "vgg19",
]
REFINED_AT_224 = ["resnet18", "vgg16", "mobilenet_v2"]


@pytest.mark.parametrize("name", NOT_REFINED_AT_224 + REFINED_AT_224)
def test_input_below_minimum_resolution_fires_exactly_when_i_min_is_not_below_224(name):
    rep = report(name, 224)
    fired = [f for f in rep.findings if f.code == "RF103"]
    assert len(fired) == (1 if name in NOT_REFINED_AT_224 else 0)
    if fired:
        assert fired[0].receptive_field["i_min"] == [FINAL[name][3]] * 2
