"""The refinement advisor on hand-built graphs (no torch): edits, sizes, cost, ranking.

Expected receptive fields are computed by hand next to each assertion with
r_l = r_{l-1} + (k_eff - 1) * J_{l-1}, J_l = J_{l-1} * s_l (brief, section A.2); the ConvNeXt-like
numbers reproduce the brief's A.5 row (ConvNeXt-T stem 4 -> 2: I_min 224 -> 112).
"""

from __future__ import annotations

import time
from fractions import Fraction

import pytest

from rflint.advise import advisor

from rflint.rf import sizes
from rflint.advise.advisor import advise, hint_for_rf103
from rflint.advise.edits import Change, Edit, _runs, apply_edit, enumerate_edits
from rflint.rf.sizes import graph_cost, propagate_sizes
from rflint.rf.algebra import analyse
from rflint.ir import Graph, Kind, Layer


class Net:
    """Builds an ``ir.Graph`` with feature-map sizes and channels filled in, as the frontend does.

    ``conv`` / ``pool`` names double as module qualnames; sizes use floor((n + 2p - k) / s) + 1.
    """

    def __init__(self, size: int = 224, channels: int = 3):
        self.size = (size, size)
        self.layers: list[Layer] = [Layer("x", "x", "input", Kind.INPUT, out_size=self.size, out_channels=channels)]
        self.meta = {"x": (self.size, channels)}
        self.last = "x"

    def _add(self, layer: Layer, channels: int) -> str:
        self.layers.append(layer)
        self.meta[layer.name] = (layer.out_size, channels)
        self.last = layer.name
        return layer.name

    def conv(self, name, out, k=3, s=1, p=None, groups=1, inputs=None, op="Conv2d"):
        src = inputs or self.last
        (h, w), c_in = self.meta[src]
        p = (k - 1) // 2 if p is None else p
        size = ((h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)
        kind = Kind.WINDOW if (k > 1 or s > 1) else Kind.POINTWISE
        return self._add(
            Layer(
                name, name, op, kind, (src,), kernel=(k, k), stride=(Fraction(s),) * 2, dilation=(1, 1),
                padding=(p, p), out_size=size, in_channels=c_in, out_channels=out, groups=groups,
                module_type=f"torch.nn.{op}",
            ),
            out,
        )

    def dw(self, name, k=3, s=1):
        c = self.meta[self.last][1]
        return self.conv(name, c, k=k, s=s, groups=c)

    def pool(self, name, k=2, s=2, p=0, op="MaxPool2d"):
        (h, w), c = self.meta[self.last]
        size = ((h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)
        return self._add(
            Layer(name, name, op, Kind.WINDOW, (self.last,), kernel=(k, k), stride=(Fraction(s),) * 2,
                  dilation=(1, 1), padding=(p, p), out_size=size, module_type=f"torch.nn.{op}"),
            c,
        )

    def add(self, name, a, b):
        size, c = self.meta[a]
        return self._add(Layer(name, name, "add", Kind.MERGE, (a, b), out_size=size), c)

    def head(self, classes=10):
        c = self.meta[self.last][1]
        self._add(Layer("avgpool", "avgpool", "AdaptiveAvgPool2d", Kind.GLOBAL, (self.last,), global_axes=(True, True),
                        out_size=(1, 1), module_type="torch.nn.AdaptiveAvgPool2d"), c)
        self._add(Layer("fc", "fc", "Linear", Kind.POINTWISE, (self.last,), in_channels=c, out_channels=classes,
                        module_type="torch.nn.Linear"), classes)
        return self

    def graph(self) -> Graph:
        return Graph(tuple(self.layers), self.size, name="net")


def resnet_like(size=32) -> Graph:
    """ResNet-18's geometry: 7x7/2 stem, 3x3/2 max-pool, four stages of two basic blocks."""
    n = Net(size)
    n.conv("conv1", 64, k=7, s=2)
    n.pool("maxpool", k=3, s=2, p=1)
    for stage, width in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            x = n.last
            s = 2 if (stage > 1 and block == 0) else 1
            n.conv(f"layer{stage}.{block}.conv1", width, s=s, inputs=x)
            n.conv(f"layer{stage}.{block}.conv2", width)
            body = n.last
            skip = x
            if s == 2:
                skip = n.conv(f"layer{stage}.{block}.downsample.0", width, k=1, s=2, p=0, inputs=x)
            n.add(f"layer{stage}.{block}.add", body, skip)
    return n.head().graph()


def convnext_like(size=224) -> Graph:
    """ConvNeXt-T's geometry: 4x4/4 patchify stem, 2x2/2 downsampling convs between four stages of
    residual blocks (7x7 depthwise + two pointwise)."""
    n = Net(size)
    n.conv("features.0.0", 96, k=4, s=4, p=0)
    for stage, (width, depth) in enumerate(((96, 3), (192, 3), (384, 9), (768, 3))):
        idx = 2 * stage + 1
        if stage:
            n.conv(f"features.{idx - 1}.1", width, k=2, s=2, p=0)
        for b in range(depth):
            x = n.last
            n.dw(f"features.{idx}.{b}.block.0", k=7)
            n.conv(f"features.{idx}.{b}.block.3", 4 * width, k=1, p=0)
            n.conv(f"features.{idx}.{b}.block.5", width, k=1, p=0)
            n.add(f"features.{idx}.{b}.add", n.last, x)
    return n.head(1000).graph()


def mobilenet_like(size=224) -> Graph:
    """A MobileNet-style chain: stem 3x3/2, then inverted residual blocks (expand 1x1, depthwise,
    project 1x1) with a residual add when stride is 1 and width is kept."""
    n = Net(size)
    n.conv("features.0", 16, s=2)
    spec = [(16, 3, 1), (24, 3, 2), (24, 3, 1), (40, 5, 2), (40, 5, 1), (80, 3, 2), (80, 3, 1), (112, 3, 1),
            (160, 5, 2), (160, 5, 1)]
    width = 16
    for i, (out, k, s) in enumerate(spec, start=1):
        x = n.last
        n.conv(f"features.{i}.block.0", width * 4, k=1, p=0)
        n.dw(f"features.{i}.block.1", k=k, s=s)
        n.conv(f"features.{i}.block.2", out, k=1, p=0)
        if s == 1 and out == width:
            n.add(f"features.{i}.add", n.last, x)
        width = out
    n.conv("features.11", 960, k=1, p=0)
    return n.head(1000).graph()


# --------------------------------------------------------------------------------------------


def test_builder_reproduces_resnet18_fields():
    # [B.2] ResNet-18: last conv r_min 139, r_max 435 -> I_min 139, I_max 435
    a = analyse(resnet_like(224))
    assert a.i_min == (139, 139)
    assert a.i_max == (435, 435)


def test_stride_edit_changes_downstream_sizes_and_macs():
    g = mobilenet_like(224)
    edit = Edit("stride", (Change("features.9.block.1", "Conv2d", stride=(1, 1), old_kernel=(5, 5), old_stride=(2, 2)),))
    sized = apply_edit(g, edit)
    assert not sized.conflicts
    by = sized.graph.by_name()
    # 224 -> 112 (stem) -> 56 (features.2) -> 28 (.4) -> 14 (.6) -> 14 (features.9 now stride 1)
    assert by["features.9.block.1"].out_size == (14, 14)
    assert by["features.11"].out_size == (14, 14)
    # the 1x1 head conv does 4x the work on a 14x14 map instead of 7x7
    assert sizes.layer_cost(by["features.11"])[0] == 14 * 14 * 160 * 960
    assert graph_cost(sized.graph)[0] > graph_cost(g)[0]


def test_unchanged_graph_keeps_traced_sizes():
    g = resnet_like(32)
    sized = propagate_sizes(g, g)
    assert sized.graph == g and not sized.conflicts


def test_strided_resnet_block_changes_with_its_shortcut():
    g = resnet_like(224)
    edits = enumerate_edits(analyse(g))
    stride_edits = [e for e in edits if e.kind == "stride"]
    layer4 = next(e for e in stride_edits if "layer4.0.conv1" in e.qualnames)
    assert set(layer4.qualnames) == {"layer4.0.conv1", "layer4.0.downsample.0"}
    # changing only the conv (not the shortcut) breaks the residual add: reported as a conflict
    alone = Edit("stride", (Change("layer4.0.conv1", "Conv2d", stride=(1, 1), old_kernel=(3, 3), old_stride=(2, 2)),))
    assert apply_edit(g, alone).conflicts == ("layer4.0.add",)
    assert not apply_edit(g, layer4).conflicts


def test_moving_downsampling_into_a_residual_block_is_invalid():
    g = resnet_like(224)
    move = Edit(
        "move",
        (
            Change("layer4.0.conv1", "Conv2d", stride=(1, 1), old_stride=(2, 2), old_kernel=(3, 3)),
            Change("layer4.0.downsample.0", "Conv2d", stride=(1, 1), old_stride=(2, 2), old_kernel=(1, 1)),
            Change("layer4.1.conv2", "Conv2d", stride=(2, 2), old_stride=(1, 1), old_kernel=(3, 3)),
        ),
    )
    assert advisor.evaluate(analyse(g), move) is None


def test_convnext_stem_patchify_4_to_2_halves_i_min():
    # [A.5] ConvNeXt-T stem 4 -> 2: I_min 224 -> 112. By hand (skip paths give r_min):
    # base: stem r=4 J=4; downsamples r=8,16,32 (J=32); stage-4 dw r = 32 + 6*32 = 224.
    # refined: r=2 J=2; 4, 8, 16 (J=16); dw r = 16 + 6*16 = 112.
    base = analyse(convnext_like())
    assert base.i_min == (224, 224)
    patch = next(
        c for c in advise(base, top=None).performance if c.edit.kind == "patchify" and c.edit.qualnames == ("features.0.0",)
        and c.edit.changes[0].kernel == (2, 2)
    )
    assert patch.i_min == (112, 112)
    # four times the positions after the stem, nearly 4x the MACs (the stem itself is cheaper)
    assert 3.5 < patch.macs_ratio < 4.0
    assert patch.edit.text == "features.0.0: kernel 4 -> 2, stride 4 -> 2"


def test_convnext_best_edit_is_a_stage_kernel_shrink():
    # 7x7 -> 5x5 in the last stage: dw r = 32 + 4*32 = 160 < 224 at lower compute than any
    # stride change; every conv of the stage must change (each one alone still reaches 224).
    advice = advise(analyse(convnext_like()))
    best = advice.performance[0]
    assert best.edit.kind == "kernel"
    assert set(best.edit.qualnames) == {f"features.7.{b}.block.0" for b in range(3)}
    assert best.i_min == (160, 160)
    assert best.macs_ratio < 1
    assert all(not (c.edit.kind == "kernel" and len(c.edit.changes) == 1) for c in advice.performance)


def test_performance_ranking_is_by_compute_then_size_of_change():
    advice = advise(analyse(mobilenet_like()), top=None)
    assert advice.performance
    keys = [advisor.performance_key(c) for c in advice.performance]
    assert keys == sorted(keys)
    assert all(c.refined((224, 224)) for c in advice.performance)


def test_resnet_at_32_cuts_the_unproductive_tail():
    # [B.2] ResNet-18 @32: unproductive layer3.1.conv2, layer4.0.conv2, layer4.1.conv2 (input
    # r_min 43, 43, 75 >= 32). The last cut point before layer3.1.conv2 is layer3.0's add.
    base = analyse(resnet_like(32))
    advice = advise(base)
    assert advice.base_unproductive == 3
    assert not advice.performance  # no single edit brings I_min (139) below 32
    best = advice.efficiency[0]
    assert best.edit.kind == "cut"
    assert best.edit.text == "remove layer3.1, layer4 (the tail after layer3.0); fc reads 256 features"
    assert best.unproductive == 0
    # the cut also takes layer3.1.conv1, layer4.0.conv1 and layer4.1.conv1, whose input r_min is
    # 11 (the skip path, [B.2]) < 32: critical, not unproductive
    assert best.removed_productive == 3
    # by hand at 32 px (maps 16, 8, 8, 4, 2, 1): conv1 16*16*49*3*64; layer1 4 * 8*8*9*64*64;
    # layerN (N = 2, 3, 4 at map m = 4, 2, 1): m*m*9*c_in*c + 3 * m*m*9*c*c + m*m*c_in*c; fc 512*10
    def stage(m, c_in, c):
        return m * m * 9 * c_in * c + 3 * m * m * 9 * c * c + m * m * c_in * c

    conv1, layer1 = 16 * 16 * 49 * 3 * 64, 4 * 8 * 8 * 9 * 64 * 64
    total = conv1 + layer1 + stage(4, 64, 128) + stage(2, 128, 256) + stage(1, 256, 512) + 512 * 10
    removed = 2 * 2 * 2 * 9 * 256 * 256 + stage(1, 256, 512) + (512 - 256) * 10
    assert advice.base_macs == total
    assert best.macs == total - removed
    assert best.macs_ratio == pytest.approx(0.6458, abs=1e-4)


def test_refined_model_gets_nothing_to_change():
    # [B.2] ResNet-18 @224: I_min 139 < 224, no unproductive layer
    advice = advise(analyse(resnet_like(224)))
    assert advice.already_refined and advice.nothing_to_change
    assert advice.performance == () and advice.efficiency == ()
    assert hint_for_rf103(advice.base) is None


def test_hint_for_rf103_names_the_best_edit():
    base = analyse(convnext_like())
    hint = hint_for_rf103(base)
    assert hint is not None and hint.startswith("try features.7.0.block.0 .. features.7.2.block.0 (3 convs): kernel 7 -> 5")
    assert "I_min 224 -> 160" in hint


def test_feature_map_term_matches_rfa_convnext():
    # [A.5] rfa's k x J term for ConvNeXt-T: 7 x 32 = 224 (stage-4 depthwise)
    assert advisor.feature_map_term(analyse(convnext_like())) == (224, 224)


def test_advisor_is_fast():
    base = analyse(mobilenet_like())
    t0 = time.perf_counter()
    advice = advise(base)
    elapsed = time.perf_counter() - t0
    assert advice.evaluated + advice.invalid >= 25
    assert elapsed < 1.0


@pytest.mark.parametrize("make", [resnet_like, convnext_like, mobilenet_like])
def test_incremental_reanalysis_equals_full_analysis(make):
    g = make()
    base = analyse(g)
    re = advisor.Reanalyser(g)
    edits = enumerate_edits(base)
    assert edits
    for edit in edits:
        sized = apply_edit(g, edit)
        fast, full = re.analyse(sized.graph), analyse(sized.graph)
        assert fast == full, edit.text


def test_advisor_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, rflint.advise.advisor; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_runs_of_numbered_modules_are_shortened():
    assert _runs(["layer3.1", "layer4"]) == "layer3.1, layer4"
    assert _runs([f"features.{i}" for i in range(12, 19)] + ["head"]) == "features.12 .. features.18, head"
    assert _runs(["features.3", "features.4", "features.7"]) == "features.3, features.4, features.7"
