"""The receptive-field algebra on hand-built graphs, checked against hand-computed oracles.

No torch here: graphs are built from ``ir.Layer`` records directly. Every expected number says
where it comes from:

- [B.1] rfa-toolbox's own test suite (values asserted by the author of Richter et al. 2021),
  as listed in /work/shared/reference/receptive-field-prior-art.md, section B.1;
- [A.3] the multipath / tuple oracles of the same brief, section A.3 (also rfa-toolbox tests);
- [B.2] rfa-toolbox 1.7.0 run on torchvision models (brief, section B.2);
- [hand] computed by hand in the comment next to it with r_l = r_{l-1} + (k_eff - 1) * J_{l-1}.

Where rflint deliberately differs from rfa-toolbox (dilation, transposed conv, upsampling), the
rfa value is kept next to rflint's, so that the difference stays visible.
"""

from __future__ import annotations

import random
from fractions import Fraction

import pytest
from published import RESNET18_TABLE  # [B.2], shared with the torchvision tests

from rflint.rf import algebra
from rflint.rf.algebra import analyse
from rflint.rf.display import display
from rflint.rf.status import is_critical, is_unproductive, layer_status
from rflint.ir import INF, Graph, Kind, Layer, LayerRF, Status, Taps

# --------------------------------------------------------------------------------------------
# A tiny builder: layers are named, each reads the previous layer unless told otherwise.


def _axes(value, ndim):
    return tuple(value) if isinstance(value, tuple) else (value,) * ndim


class Net:
    """Builds an ``ir.Graph`` layer by layer; ``net.conv(...)`` returns the new layer's name."""

    def __init__(self, ndim: int = 2, input_size: tuple[int, ...] | None = None):
        self.ndim = ndim
        self.input_size = input_size or (224,) * ndim
        self.layers: list[Layer] = [Layer("x", "x", "input", Kind.INPUT)]
        self.last = "x"

    def add(self, layer: Layer) -> str:
        self.layers.append(layer)
        self.last = layer.name
        return layer.name

    def _name(self, name):
        return name or f"n{len(self.layers)}"

    def conv(self, k=3, s=1, d=1, name=None, inputs=None, op="Conv2d", p=0) -> str:
        """A convolution with kernel k, stride s, dilation d and ``p`` padding before index 0."""
        name = self._name(name)
        return self.add(
            Layer(
                name,
                name,
                op,
                Kind.WINDOW,
                inputs=tuple(inputs) if inputs else (self.last,),
                kernel=_axes(k, self.ndim),
                stride=tuple(Fraction(x) for x in _axes(s, self.ndim)),
                dilation=_axes(d, self.ndim),
                padding=_axes(p, self.ndim),
            )
        )

    def upsample(self, factor=2, taps=None, name=None, inputs=None, op="upsample_nearest") -> str:
        """An upsampling layer: ``taps`` (an ``ir.Taps`` for every axis) says which input units
        each output unit reads; the default is nearest by ``factor`` (unit o reads o // factor)."""
        name = self._name(name)
        taps = taps or Taps(1, factor, (0,) * factor, (0,) * factor)
        return self.add(
            Layer(
                name,
                name,
                op,
                Kind.UPSAMPLE,
                inputs=tuple(inputs) if inputs else (self.last,),
                stride=tuple(Fraction(taps.shift, taps.period) for _ in range(self.ndim)),
                taps=(taps,) * self.ndim,
            )
        )

    def shift(self, offset, name=None, inputs=None) -> str:
        """A crop / pad / shift: output unit o reads input unit o + offset."""
        name = self._name(name)
        return self.add(
            Layer(name, name, "pad", Kind.RESHAPE, inputs=tuple(inputs) if inputs else (self.last,), taps=(Taps.shifted(offset),) * self.ndim)
        )

    def simple(self, kind: Kind, name=None, inputs=None, op=None, **kw) -> str:
        name = self._name(name)
        return self.add(
            Layer(name, name, op or kind.value, kind, inputs=tuple(inputs) if inputs else (self.last,), **kw)
        )

    def graph(self) -> Graph:
        return Graph(tuple(self.layers), self.input_size)

    def analyse(self) -> dict[str, LayerRF]:
        return {lrf.layer.name: lrf for lrf in analyse(self.graph()).layers}


def r_mins(rfs: dict[str, LayerRF], names) -> list:
    return [display(rfs[n].axes[0].r_min) for n in names]


def r_maxs(rfs: dict[str, LayerRF], names) -> list:
    return [display(rfs[n].axes[0].r_max) for n in names]


def chain(specs, ndim=2) -> tuple[Net, list[str]]:
    net = Net(ndim)
    names = [net.conv(k, s) for k, s in specs]
    return net, names


# --------------------------------------------------------------------------------------------
# Single paths


def test_chain_of_five_3x3_convs_grows_by_two_per_layer():
    net, names = chain([(3, 1)] * 5)
    rfs = net.analyse()
    assert r_mins(rfs, names) == [3, 5, 7, 9, 11]  # [B.1] rfa test: 3, 5, 7, 9, 11
    assert r_maxs(rfs, names) == [3, 5, 7, 9, 11]
    assert rfs["x"].r_min == (1, 1)  # the input sees one pixel [A.2] r_0 = 1


def test_strided_chain_multiplies_later_growth_by_the_jump():
    net, names = chain([(3, 1), (3, 2), (3, 1), (3, 2), (3, 1)])
    rfs = net.analyse()
    assert r_mins(rfs, names) == [3, 5, 9, 13, 21]  # [B.1] k/s 3/1,3/2,3/1,3/2,3/1
    # [hand] jumps 1, 2, 2, 4, 4
    assert [display(rfs[n].jump[0]) for n in names] == [1, 2, 2, 4, 4]


def test_pointwise_convs_do_not_grow_the_field_but_their_strides_count():
    net, names = chain([(1, 1), (1, 2), (1, 1), (3, 2), (1, 1)])
    rfs = net.analyse()
    assert r_mins(rfs, names) == [1, 1, 1, 5, 5]  # [B.1] k/s 1/1,1/2,1/1,3/2,1/1


def test_dilation_uses_the_effective_kernel():
    net = Net()
    d = net.conv(3, 1, d=2)
    after = net.conv(3, 1)
    rfs = net.analyse()
    # [hand] k_eff = 2 * (3 - 1) + 1 = 5. rfa-toolbox ignores dilation and gives 3 [brief C.5].
    rflint_value, rfa_value = 5, 3
    assert display(rfs[d].r_min[0]) == rflint_value != rfa_value
    assert display(rfs[after].r_min[0]) == 7  # [hand] 5 + 2 * 1


def test_non_square_kernel_strides_and_dilations_are_tracked_per_axis():
    net = Net()
    a = net.conv((3, 5), (1, 2), d=(1, 2))  # [hand] k_eff (3, 9): r (3, 9), J (1, 2)
    b = net.conv((3, 3), 1)  # [hand] (3 + 2*1, 9 + 2*2) = (5, 13)
    rfs = net.analyse()
    assert tuple(map(display, rfs[a].r_min)) == (3, 9)
    assert tuple(map(display, rfs[b].r_min)) == (5, 13)
    assert tuple(map(display, rfs[b].jump)) == (1, 2)


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_conv1d_conv2d_and_conv3d_give_one_number_per_spatial_axis(ndim):
    net = Net(ndim)
    names = [net.conv(3, s) for s in (1, 2, 1)]
    rfs = net.analyse()
    # [hand] 3; 3 + 2 = 5 (J becomes 2); 5 + 2*2 = 9
    assert [tuple(map(display, rfs[n].r_min)) for n in names] == [(3,) * ndim, (5,) * ndim, (9,) * ndim]


# --------------------------------------------------------------------------------------------
# Several paths


def test_multipath_oracle_keeps_the_smallest_and_largest_field():
    net = Net()
    l1 = net.conv(3, 1, name="L1")
    l2 = net.conv(3, 2, name="L2", inputs=[l1])
    l3 = net.conv(5, 2, name="L3", inputs=[l1])
    l4 = net.conv(3, 1, name="L4", inputs=[l2, l3])  # a window fed by two paths, as in rfa
    l5 = net.conv(3, 1, name="L5", inputs=[l4])
    rfs = net.analyse()
    # [A.3] rfa test: L1 3; L2 5; L3 7; L4 r_min 9, r_max 11; L5 13 / 15
    assert r_mins(rfs, [l1, l2, l3, l4, l5]) == [3, 5, 7, 9, 13]
    assert r_maxs(rfs, [l1, l2, l3, l4, l5]) == [3, 5, 7, 11, 15]
    # L4's input is the union of L2 (5) and L3 (7): its input r_min is 5
    assert display(rfs[l4].input_r_min[0]) == 5


def test_explicit_merge_then_conv_equals_a_window_with_two_inputs():
    net = Net()
    l1 = net.conv(3, 1)
    l2 = net.conv(3, 2, inputs=[l1])
    l3 = net.conv(5, 2, inputs=[l1])
    cat = net.simple(Kind.MERGE, op="cat", inputs=[l2, l3])
    l4 = net.conv(3, 1, inputs=[cat])
    rfs = net.analyse()
    assert (display(rfs[cat].r_min[0]), display(rfs[cat].r_max[0])) == (5, 7)  # [hand] branches 5 and 7
    assert (display(rfs[l4].r_min[0]), display(rfs[l4].r_max[0])) == (9, 11)  # [A.3] same as L4


def test_tuple_oracle_takes_min_and_max_per_axis_independently():
    net = Net()
    first = net.conv((3, 3), (1, 2))
    a = net.conv((3, 3), 1, inputs=[first])
    b = net.conv((5, 5), 1, inputs=[first])
    merged = net.conv((3, 3), 1, inputs=[a, b])
    rfs = net.analyse()
    # [A.3] rfa test: (3,3); then (5,7) and (7,11); merge with k (3,3): r_min (7,11), r_max (9,15)
    assert tuple(map(display, rfs[first].r_min)) == (3, 3)
    assert tuple(map(display, rfs[a].r_min)) == (5, 7)
    assert tuple(map(display, rfs[b].r_min)) == (7, 11)
    assert tuple(map(display, rfs[merged].r_min)) == (7, 11)
    assert tuple(map(display, rfs[merged].r_max)) == (9, 15)


def test_residual_skip_keeps_r_min_at_the_block_input():
    net = Net()
    stem = net.conv(7, 2)  # [hand] 7, J 2
    c1 = net.conv(3, 1)  # 7 + 2*2 = 11
    c2 = net.conv(3, 1)  # 15
    add = net.simple(Kind.MERGE, op="add", inputs=[c2, stem])
    rfs = net.analyse()
    assert (display(rfs[c2].r_min[0]), display(rfs[add].r_min[0]), display(rfs[add].r_max[0])) == (15, 7, 15)
    assert display(rfs[c1].r_min[0]) == 11


def _reads(layer: Layer, o: int) -> tuple[int, int] | None:
    """The input units output unit ``o`` of a 1-d layer reads (None: a pass-through layer)."""
    taps = layer.axis_taps(1)[0]
    if taps is None:
        return None
    q, p = divmod(o, taps.period)
    return taps.lo[p] + taps.shift * q, taps.hi[p] + taps.shift * q


def _brute_force(layers: list[Layer], units: range) -> dict[str, tuple[int, int, int, int]]:
    """(r_min, r_max, narrowest, widest-unit union) per layer by explicit enumeration: every path
    from the input as a list of layers, every unit's field as a set of input positions (so it
    shares no code with the propagation; exponential, small graphs only)."""
    by_name = {layer.name: layer for layer in layers}
    paths: dict[str, list[list[str]]] = {}
    for layer in layers:
        if layer.kind is Kind.INPUT:
            paths[layer.name] = [[layer.name]]
        else:
            paths[layer.name] = [p + [layer.name] for name in layer.inputs for p in paths[name]]

    def field(path: list[str], o: int) -> set[int]:
        if len(path) == 1:
            return {o}
        reads = _reads(by_name[path[-1]], o)
        if reads is None:
            return field(path[:-1], o)
        return set().union(*(field(path[:-1], t) for t in range(reads[0], reads[1] + 1)))

    out = {}
    for name in paths:
        single = [field(p, o) for p in paths[name] for o in units]
        unions = [set().union(*(field(p, o) for p in paths[name])) for o in units]
        size = lambda f: max(f) - min(f) + 1  # noqa: E731
        out[name] = (min(map(size, single)), max(map(size, unions)), min(map(size, unions)))
    return out


@pytest.mark.parametrize("seed", range(20))
def test_propagation_matches_explicit_path_enumeration_on_random_graphs(seed):
    # [oracle] enumerate every path of a random DAG, and every unit's field as a set of input
    # positions: convolutions with asymmetric padding, shifts (crops), nearest and bilinear
    # upsampling and transposed convolutions make fields offset and position-dependent.
    rng = random.Random(seed)
    net = Net(ndim=1)
    jumps = {"x": Fraction(1)}
    for _ in range(12):
        kind = rng.choice(["conv", "conv", "merge", "up", "shift"])
        source = rng.choice(list(jumps))
        if kind == "conv":
            s = rng.choice([1, 1, 2])
            name = net.conv(rng.choice([1, 2, 3, 5]), s, d=rng.choice([1, 2]), p=rng.choice([0, 1, 2]), inputs=[source])
            jumps[name] = jumps[source] * s
        elif kind == "merge":  # a merge needs inputs on the same grid
            same = [n for n in jumps if jumps[n] == jumps[source]]
            name = net.simple(Kind.MERGE, op="add", inputs=rng.sample(same, k=min(len(same), rng.choice([2, 3]))))
            jumps[name] = jumps[source]
        elif kind == "up":
            taps = rng.choice([
                None,  # nearest x2
                Taps(1, 2, (-1, 0), (0, 1)),  # bilinear x2, align_corners=False
                Taps(1, 2, (0, 0), (0, 1)),  # transposed conv k3 s2 p1: phases read 1 and 2 inputs
            ])
            name = net.upsample(factor=2, taps=taps, inputs=[source])
            jumps[name] = jumps[source] / 2
        else:
            name = net.shift(rng.choice([-2, -1, 1, 3]), inputs=[source])
            jumps[name] = jumps[source]
    units = range(0, 32)  # every phase of a period up to 32, far from nothing (no borders here)
    brute = _brute_force(net.layers, units)
    rfs = net.analyse()
    for name, (r_min, r_max, narrow) in brute.items():
        axis = rfs[name].axes[0]
        assert (axis.r_min, axis.r_max, axis.r_narrow) == (r_min, r_max, narrow), name
        assert axis.j_max == jumps[name]


def test_densenet_like_graph_with_hundreds_of_merges_keeps_one_entry_per_distinct_jump(monkeypatch):
    # A dense block concatenates all earlier outputs: layer i has 2^i paths. Four blocks of 40
    # layers (hundreds of merges, ~2^160 paths) separated by stride-2 transitions.
    net = Net()
    widths = []
    stem = net.conv(7, 2)
    net.conv(3, 2)  # [hand] stem pool: 7 + 2*2 = 11, J 4
    block_in = net.last
    for block in range(4):
        feats = [block_in]
        for _ in range(40):
            cat = net.simple(Kind.MERGE, op="cat", inputs=list(feats))
            net.conv(1, 1, inputs=[cat])
            feats.append(net.conv(3, 1))
        out = net.simple(Kind.MERGE, op="cat", inputs=list(feats))
        if block < 3:
            net.conv(1, 1, inputs=[out])
            block_in = net.conv(2, 2)  # transition: avg pool 2/2
    seen: list[int] = []
    merge_inputs, apply = algebra.merge_inputs, algebra.apply

    def counting_merge(inputs, ndim):
        widths.append(len(inputs))
        return merge_inputs(inputs, ndim)

    def counting_apply(layer, merged, ndim):
        result = apply(layer, merged, ndim)
        seen.append(max(len(p.classes) for p in result))
        return result

    monkeypatch.setattr(algebra, "merge_inputs", counting_merge)
    monkeypatch.setattr(algebra, "apply", counting_apply)
    rfs = net.analyse()
    merges = sum(1 for layer in net.layers if layer.kind is Kind.MERGE)
    assert merges >= 160
    assert max(widths) == 41  # the last cat of a block reads 41 tensors
    # Every path to a given layer crosses the same stride-2 layers, so each layer keeps exactly one
    # (jump -> r_min, r_max) entry per axis, however many paths (up to ~2^40 per block) reach it.
    assert max(seen) == 1
    assert len(seen) == len(net.layers) - 1  # every layer but the input
    last = rfs[net.last].axes[0]
    # [hand] r_min: the path that skips every dense layer of a block (input -> concat). Stem 7,
    # pool 11 (J 4); each transition pool 2/2 adds 1*J: 11 + 4 = 15 (J 8), + 8 = 23 (J 16),
    # + 16 = 39 (J 32). r_max: every 3x3 of block b adds 2 * J_b: 40 * 2 * (4 + 8 + 16 + 32) = 4800
    # on top of the skip-only path: 39 + 4800 = 4839.
    assert (display(last.r_min), display(last.r_max)) == (39, 4839)
    assert stem in rfs


# --------------------------------------------------------------------------------------------
# Upsampling and transposed convolution (rflint differs from rfa-toolbox here on purpose)


def test_nearest_upsampling_halves_the_jump_so_a_following_3x3_adds_one_input_pixel():
    net = Net()
    up = net.upsample(factor=2)
    conv = net.conv(3, 1)
    rfs = net.analyse()
    # [hand] nearest x2: r stays 1, J = 1/2; a 3x3 then reads fine units o..o+2, i.e. coarse
    # units o//2 .. (o+2)//2: two of them for every o, so r = 2 for every unit.
    assert rfs[up].r_min[0] == 1 and rfs[up].jump[0] == Fraction(1, 2)
    assert (rfs[conv].r_min[0], rfs[conv].r_max[0], rfs[conv].axes[0].r_narrow) == (2, 2, 2)
    # rfa-toolbox treats nn.Upsample as a no-op (J stays 1): the 3x3 would get 3 [brief C.5].
    rfa_value = 3
    assert rfs[conv].r_min[0] != rfa_value


def test_behind_upsampling_neighbouring_units_see_different_amounts_and_r_max_is_the_widest():
    net = Net()
    net.conv(3, 2)  # [hand] r 3, J 2
    # bilinear x4, align_corners=False: source (o + 1/2)/4 - 1/2 = (2o - 3)/8, so phases 0..3 read
    # conv units [-1, 0], [-1, 0], [0, 1], [0, 1]: two units each, r = 3 + 2 = 5, J = 1/2
    bilinear = Taps(1, 4, (-1, -1, 0, 0), (0, 0, 1, 1))
    up = net.upsample(factor=4, taps=bilinear, op="upsample_bilinear")
    conv = net.conv(2, 1)  # [hand] reads up units o, o+1: phase 1 spans conv units -1..1 (7 px), the others 5
    rfs = net.analyse()
    assert rfs[up].r_min[0] == 5 and rfs[up].r_max[0] == 5 and rfs[up].jump[0] == Fraction(1, 2)
    axis = rfs[conv].axes[0]
    assert (axis.r_min, axis.r_narrow, axis.r_max) == (5, 5, 7)
    # rflint <= 0.1 reported the average over units, 11/2, which bounds neither the widest unit
    # (7) nor the narrowest (5).
    old_average = Fraction(11, 2)
    assert axis.r_narrow < old_average < axis.r_max


def test_transposed_conv_k2_s2_reads_one_input_tap_and_halves_the_jump():
    net = Net()
    # [hand] ConvTranspose2d(k=2, s=2, p=0): output o reads input j with o - 2j in {0, 1}: o // 2
    tconv = net.upsample(factor=2, taps=Taps(1, 2, (0, 0), (0, 0)), op="ConvTranspose2d")
    conv = net.conv(3, 1)
    rfs = net.analyse()
    assert rfs[tconv].r_min[0] == 1 and rfs[tconv].jump[0] == Fraction(1, 2)
    rflint_value = 2  # [hand] as after nearest x2
    # rfa-toolbox treats ConvTranspose2d as a k2 s2 *downsampling* conv [brief C.5]: r = 2, J = 2,
    # then the 3x3 gives 2 + 2 * 2 = 6 [hand, rfa's rule] where rflint gives 2.
    rfa_value = 6
    assert rfs[conv].r_max[0] == rflint_value
    assert rfa_value != rflint_value
    assert not rfs[tconv].layer.grows_field  # upsampling is never judged by the rules


def test_offset_branches_merge_into_their_union_not_the_larger_branch():
    # Issue 10's example: conv2x2(pad(x, (1, 0))) + conv2x2(pad(x, (0, 1))) reads [o-1, o+1].
    net = Net(ndim=1)
    left = net.conv(2, 1, p=1)  # [hand] reads [o-1, o]
    right = net.conv(2, 1, p=0, inputs=["x"])  # [hand] reads [o, o+1]
    add = net.simple(Kind.MERGE, op="add", inputs=[left, right])
    rfs = net.analyse()
    axis = rfs[add].axes[0]
    assert (axis.r_min, axis.r_max) == (2, 3)
    assert (axis.start, axis.end) == (-1, 1)  # unit 0 sees input -1..1: effective padding 1


# --------------------------------------------------------------------------------------------
# Global operations


def test_global_layer_makes_the_field_infinite_downstream():
    net = Net()
    net.conv(3, 1)
    gap = net.simple(Kind.GLOBAL, op="adaptive_avg_pool2d")
    fc = net.simple(Kind.POINTWISE, op="Linear")
    rfs = net.analyse()
    for name in (gap, fc):
        assert rfs[name].r_min == (INF, INF) and rfs[name].r_max == (INF, INF)
        assert all(a.is_global and a.has_global for a in rfs[name].axes)
        assert display(rfs[name].r_min[0]) is None


def test_global_on_one_axis_leaves_the_other_axis_local():
    net = Net()
    net.conv(3, 1)
    g = net.simple(Kind.GLOBAL, op="mean", global_axes=(False, True))
    rfs = net.analyse()
    assert rfs[g].r_min == (3, INF)


def test_squeeze_excitation_gate_keeps_the_local_field_finite_and_flags_the_global_path():
    net = Net()
    net.conv(3, 1)
    local = net.conv(3, 1)  # [hand] 5
    pooled = net.simple(Kind.GLOBAL, op="adaptive_avg_pool2d", inputs=[local])
    fc1 = net.conv(1, 1, inputs=[pooled])
    gate = net.simple(Kind.POINTWISE, op="sigmoid", inputs=[fc1])
    scaled = net.simple(Kind.MERGE, op="mul", inputs=[local, gate])
    after = net.conv(3, 1, inputs=[scaled])
    rfs = net.analyse()
    axis = rfs[scaled].axes[0]
    assert (axis.r_min, axis.r_max, axis.has_global, axis.is_global) == (5, 5, True, False)
    axis = rfs[after].axes[0]
    assert (axis.r_min, axis.r_max, axis.has_global) == (7, 7, True)  # [hand] 5 + 2
    # rfa-toolbox's "inf" filter (meant for SE) drops the infinite entries in the same way [A.3]


def test_layers_that_do_not_depend_on_the_input_are_left_out():
    net = Net()
    const = net.add(Layer("c", "c", "get_attr", Kind.POINTWISE, inputs=()))
    net.conv(3, 1, inputs=["x"])
    net.simple(Kind.MERGE, op="add", inputs=[net.last, const])
    names = [lrf.layer.name for lrf in analyse(net.graph()).layers]
    assert "c" not in names and len(names) == 3


# --------------------------------------------------------------------------------------------
# Unproductive / critical layers and I_min / I_max


def vgg16_net() -> tuple[Net, list[str]]:
    """torchvision VGG16's features (conv 3/1, pool 2/2) with its qualnames, then the classifier."""
    net = Net(input_size=(32, 32))
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    idx, names = 0, []
    for v in cfg:
        if v == "M":
            names.append(net.conv(2, 2, name=f"features.{idx}", op="MaxPool2d"))
            idx += 1
        else:
            names.append(net.conv(3, 1, name=f"features.{idx}"))
            net.simple(Kind.POINTWISE, name=f"features.{idx + 1}", op="ReLU")
            idx += 2
    names.append(net.simple(Kind.GLOBAL, name="avgpool", op="AdaptiveAvgPool2d"))
    return net, names


def test_vgg16_r_min_list_matches_rfa_toolbox():
    net, names = vgg16_net()
    rfs = net.analyse()
    got = [1] + r_mins(rfs, names)
    # [B.1] VGG16: 1,3,5,6,10,14,16,24,32,40,44,60,76,92,100,132,164,196,212,inf x3 (dense)
    expected = [1, 3, 5, 6, 10, 14, 16, 24, 32, 40, 44, 60, 76, 92, 100, 132, 164, 196, 212, None]
    assert got == expected


def test_vgg16_at_32_px_boundary_layer_with_input_r_min_equal_to_the_input_is_unproductive():
    net, names = vgg16_net()
    rfs = net.analyse()
    size = (32, 32)
    flagged = [n for n in names if is_unproductive(rfs[n], size)]
    # [B.2] VGG16 @32: 10 (pure >=), first features.14 (input r_min exactly 32, own r_min 40);
    # [B.1] rfa border count with dense filtered: 10
    assert len(flagged) == 10 and flagged[0] == "features.14"
    assert display(rfs["features.14"].input_r_min[0]) == 32 and display(rfs["features.14"].r_min[0]) == 40
    # the layer before it (input 24, own 32) is neither: 32 is not > 32
    assert not is_critical(rfs["features.12"], size) and not is_unproductive(rfs["features.12"], size)
    assert layer_status(rfs["features.12"], size) is Status.OK
    assert layer_status(rfs["features.14"], size) is Status.UNPRODUCTIVE
    assert layer_status(rfs["avgpool"], size) is Status.GLOBAL
    # at 33 px features.14 only pushes its own field past the input: critical, not unproductive
    assert is_critical(rfs["features.14"], (33, 33)) and not is_unproductive(rfs["features.14"], (33, 33))
    assert layer_status(rfs["features.14"], (33, 33)) is Status.CRITICAL


def test_unproductive_needs_every_axis_to_be_covered():
    net = Net(input_size=(8, 64))
    net.conv(9, 1)
    last = net.conv(3, 1)  # input r_min 9 >= 8 on H only
    rfs = net.analyse()
    assert not is_unproductive(rfs[last], (8, 64))
    assert is_unproductive(rfs[last], (8, 9))


def resnet18_net() -> Net:
    """rfa-toolbox's hand ResNet-18 (7x7/2 stem, 3x3/2 pool, 1x1/2 projections) with torchvision's
    qualnames."""
    net = Net()
    net.conv(7, 2, name="conv1")
    x = net.conv(3, 2, name="maxpool", op="MaxPool2d")
    for stage, stride in zip(range(1, 5), (1, 2, 2, 2)):
        for block in range(2):
            p = f"layer{stage}.{block}"
            s = stride if block == 0 else 1
            net.conv(3, s, name=f"{p}.conv1", inputs=[x])
            c2 = net.conv(3, 1, name=f"{p}.conv2")
            skip = x
            if block == 0 and stride != 1:
                skip = net.conv(1, s, name=f"{p}.downsample.0", inputs=[x])
            x = net.simple(Kind.MERGE, name=f"{p}.add", op="add", inputs=[c2, skip])
    net.simple(Kind.GLOBAL, name="avgpool", op="AdaptiveAvgPool2d")
    return net


# [B.2] r_max of the 8 residual adds in order; every add has r_min 11
RESNET18_ADD_R_MAX = [27, 43, 67, 99, 147, 211, 307, 435]


def test_hand_resnet18_reproduces_rfa_toolbox_per_layer_table():
    rfs = resnet18_net().analyse()
    got = {
        n: (display(rfs[n].r_min[0]), display(rfs[n].r_max[0]), display(rfs[n].input_r_min[0])) for n in RESNET18_TABLE
    }
    assert got == RESNET18_TABLE
    adds = [n for n in rfs if n.endswith(".add")]
    assert [display(rfs[n].r_max[0]) for n in adds] == RESNET18_ADD_R_MAX
    assert {display(rfs[n].r_min[0]) for n in adds} == {11}
    # [B.1] rfa hand graph: node "Stage3-Block1-Addition" (the last add, 0-based stages) r_max = 435
    assert display(rfs["layer4.1.add"].r_max[0]) == 435


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        # [B.2] ResNet-18 pure>= counts: @16 all eight conv2, @32 3, @64 1 (layer4.1.conv2)
        (16, [f"layer{s}.{b}.conv2" for s in range(1, 5) for b in range(2)]),
        (32, ["layer3.1.conv2", "layer4.0.conv2", "layer4.1.conv2"]),
        (64, ["layer4.1.conv2"]),
        (224, []),
    ],
)
def test_hand_resnet18_unproductive_layers_by_input_size(size, expected):
    rfs = resnet18_net().analyse()
    flagged = [n for n, lrf in rfs.items() if is_unproductive(lrf, (size, size))]
    assert flagged == expected


def test_i_min_and_i_max_on_six_3x3_and_a_1x1():
    net = Net()
    for _ in range(6):
        net.conv(3, 1)  # [hand] 3, 5, 7, 9, 11, 13
    net.conv(1, 1)
    a = analyse(net.graph())
    # [B.1] rfa input_resolution_range: ((13,13),(13,13)); lower_bound=True: ((11,11),(13,13)).
    rfa_default_min, rfa_lower_bound_min, rfa_max = 13, 11, 13
    # rflint.i_min = max own r_min of field-growing layers: the same as rfa's default lower end
    # (rfa also takes max k*J = 3 here, which does not bind).
    assert tuple(map(display, a.i_min)) == (rfa_default_min,) * 2
    # rflint.i_min_unproductive = max input r_min + 1 = 12. rfa's lower_bound mode returns the max
    # input r_min itself (11); at 11 px the last 3x3 (input r_min 11 >= 11) is still unproductive
    # under rfa's own non-strict is_border, so the smallest size with no unproductive layer is 12.
    assert tuple(map(display, a.i_min_unproductive)) == (rfa_lower_bound_min + 1,) * 2
    last = analyse(net.graph()).layers[-2]  # the last 3x3
    assert is_unproductive(last, (11, 11)) and not is_unproductive(last, (12, 12))
    assert tuple(map(display, a.i_max)) == (rfa_max,) * 2


def test_i_min_and_i_max_per_axis_with_3x5_kernels():
    net = Net()
    for _ in range(6):
        net.conv((3, 5), 1)
    net.conv(1, 1)
    a = analyse(net.graph())
    # [B.1] rfa with (3,5) kernels: ((13,25),(13,25))
    assert tuple(map(display, a.i_min)) == (13, 25)
    assert tuple(map(display, a.i_max)) == (13, 25)
    assert tuple(map(display, a.i_min_unproductive)) == (12, 22)  # [hand] inputs (11, 21) + 1


def test_i_max_ignores_global_layers_and_i_min_ignores_pointwise_layers():
    net = Net()
    net.conv(5, 1)  # 5
    net.conv(1, 2)  # 5, J 2 (no growth: does not count for I_min)
    net.conv(3, 1)  # 5 + 2*2 = 9
    net.simple(Kind.GLOBAL, op="adaptive_avg_pool2d")
    a = analyse(net.graph())
    assert tuple(map(display, a.i_min)) == (9, 9)
    assert tuple(map(display, a.i_max)) == (9, 9)
    assert tuple(map(display, a.i_min_unproductive)) == (6, 6)  # [hand] input r_min of the 3x3 is 5


def test_uncertainty_from_an_unknown_op_flows_downstream_only():
    net = Net()
    before = net.conv(3, 1)
    unknown = net.simple(Kind.UNKNOWN, op="my_op")
    after = net.conv(3, 1)
    side = net.conv(3, 1, inputs=[before])
    rfs = net.analyse()
    assert [rfs[n].uncertain for n in (before, unknown, after, side)] == [False, True, True, False]
    assert layer_status(rfs[unknown], (224, 224)) is Status.UNKNOWN
    # the unknown op itself passes the field through unchanged (it is reported, not guessed)
    assert display(rfs[after].r_min[0]) == 5


@pytest.mark.parametrize(
    ("value", "shown"),
    [(Fraction(7), 7), (Fraction(11, 2), 5.5), (Fraction(1, 3), 0.333), (INF, None)],
)
def test_display_turns_numbers_into_json_friendly_values(value, shown):
    assert display(value) == shown
    assert type(display(value)) is type(shown)


def test_path_count_in_dense_graph_is_exponential_so_the_brute_force_would_not_finish():
    # Documents why the per-jump summary matters: 2^i paths reach the i-th layer of a dense block.
    net = Net(ndim=1)
    feats = ["x"]
    for _ in range(10):
        feats.append(net.conv(3, 1, inputs=list(feats)))
    count: dict[str, int] = {"x": 1}
    for layer in net.layers[1:]:
        count[layer.name] = sum(count[n] for n in layer.inputs)
    assert count[feats[-1]] == 2**9  # [hand] each of the 9 earlier layers is on or off the path
    rfs = net.analyse()
    # [hand] shortest path: input -> last (3); longest: through all 10 layers (1 + 10*2 = 21)
    assert (rfs[feats[-1]].axes[0].r_min, rfs[feats[-1]].axes[0].r_max) == (3, 21)
