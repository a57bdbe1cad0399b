"""The multipath receptive-field algebra. Pure Python: knows nothing about torch or rules.

For one path (Araujo et al. 2019; Richter et al. 2021)::

    r_l = r_{l-1} + (k_eff - 1) * J_{l-1}        k_eff = d * (k - 1) + 1
    J_l = J_{l-1} * s_l

A graph has many paths from the input to a layer (a ResNet-50 has 2^16, a DenseNet-121
astronomically many). Two paths with the same cumulative jump ``J`` transform identically
from then on, and the transfer is monotone in ``r``, so it is enough to keep, per axis and per
distinct jump, the smallest and the largest ``r``. That makes propagation linear in
(layers x distinct jumps) and still exact for ``r_min`` and ``r_max``.

Paths through a global op (global pooling, attention, a linear layer over a spatial axis) are
kept apart as a flag instead of as ``r = inf``: a squeeze-and-excitation gate multiplies a
local path by a global one, and letting the global path win would make every later layer
"infinite" and hide the local growth that the rules are about.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from fractions import Fraction

from rflint.ir import INF, Analysis, AxisRF, Graph, Kind, Layer, LayerRF, Number, Status


@dataclass(frozen=True)
class AxisPaths:
    """All paths reaching a tensor along one axis: jump -> (smallest r, largest r)."""

    by_jump: Mapping[Fraction, tuple[Fraction, Fraction]]
    has_global: bool = False

    @cached_property  # a pointwise layer's output paths are its input's: summarise once
    def summary(self) -> AxisRF:
        if not self.by_jump:  # reached only through global ops: the whole input
            return AxisRF(INF, INF, INF, INF, has_global=True)
        lows = [lo for lo, _ in self.by_jump.values()]
        highs = [hi for _, hi in self.by_jump.values()]
        return AxisRF(min(lows), max(highs), min(self.by_jump), max(self.by_jump), self.has_global)


INPUT_PATHS = AxisPaths({1: (1, 1)})  # ints stay ints; only upsampling makes Fractions


def _exact(x: Fraction | int) -> Fraction | int:
    """An int where the value is whole: int arithmetic and hashing are several times faster
    than Fraction's, and almost every jump and field in a CNN is whole."""
    return x.numerator if isinstance(x, Fraction) and x.denominator == 1 else x


def union(paths: Iterable[AxisPaths]) -> AxisPaths:
    """Merge (add, cat, mul, ...): the union of the inputs' path sets."""
    merged: dict[Fraction, tuple[Fraction, Fraction]] = {}
    has_global = False
    for p in paths:
        has_global |= p.has_global
        for j, (lo, hi) in p.by_jump.items():
            if j in merged:
                old_lo, old_hi = merged[j]
                merged[j] = (min(lo, old_lo), max(hi, old_hi))
            else:
                merged[j] = (lo, hi)
    return AxisPaths(merged, has_global)


def window(paths: AxisPaths, k_eff: int, stride: Fraction | int) -> AxisPaths:
    """A sliding window (conv, pool, upsampling expressed as taps and 1/factor)."""
    grow, stride = k_eff - 1, _exact(stride)
    if grow == 0 and stride == 1:
        return paths
    return AxisPaths(
        {_exact(j * stride): (lo + grow * j, hi + grow * j) for j, (lo, hi) in paths.by_jump.items()},
        paths.has_global,
    )


def make_global(paths: AxisPaths) -> AxisPaths:
    """A global op: every output position sees the whole input along this axis."""
    return AxisPaths({}, has_global=True)


def merge_inputs(inputs: list[tuple[AxisPaths, ...]], ndim: int) -> tuple[AxisPaths, ...]:
    """The union of the inputs' paths per axis (most layers have one input: nothing to do)."""
    return inputs[0] if len(inputs) == 1 else tuple(union(inp[a] for inp in inputs) for a in range(ndim))


def apply(layer: Layer, merged: tuple[AxisPaths, ...], ndim: int) -> tuple[AxisPaths, ...]:
    """What ``layer`` does to the (already merged) paths reaching it."""
    if layer.kind in (Kind.WINDOW, Kind.UPSAMPLE):
        k_eff = layer.k_eff or (1,) * ndim
        stride = layer.stride or (1,) * ndim
        return tuple(window(merged[a], k_eff[a], stride[a]) for a in range(ndim))
    if layer.kind is Kind.GLOBAL:
        axes = layer.global_axes or (True,) * ndim
        return tuple(make_global(p) if g else p for p, g in zip(merged, axes))
    return merged  # pointwise, merge, reshape, unknown: paths pass through unchanged


def propagate_layer(
    layer: Layer, state: dict[str, tuple[AxisPaths, ...]], uncertain: dict[str, bool], ndim: int
) -> LayerRF | None:
    """One step of :func:`propagate`: record the paths reaching ``layer`` in ``state`` and
    return its result, or ``None`` if it does not depend on the input."""
    inputs = [state[name] for name in layer.inputs if name in state]
    if layer.kind is Kind.INPUT:
        paths, input_r_min = (INPUT_PATHS,) * ndim, (1,) * ndim
    elif not inputs:
        return None
    else:
        merged = merge_inputs(inputs, ndim)
        paths = apply(layer, merged, ndim)
        input_r_min = tuple(p.summary.r_min for p in merged)
    state[layer.name] = paths
    unsure = layer.kind is Kind.UNKNOWN or any(uncertain.get(n, False) for n in layer.inputs)
    uncertain[layer.name] = unsure
    return LayerRF(layer, tuple(p.summary for p in paths), input_r_min, unsure)


def propagate(graph: Graph) -> tuple[LayerRF, ...]:
    """Receptive field of every layer that depends on the input, in graph order.

    Layers whose inputs do not depend on the model input (constants, shape arithmetic) are
    left out: they have no receptive field.
    """
    state: dict[str, tuple[AxisPaths, ...]] = {}
    uncertain: dict[str, bool] = {}
    steps = (propagate_layer(layer, state, uncertain, graph.ndim) for layer in graph.layers)
    return tuple(r for r in steps if r is not None)


def _finite(x: Number) -> bool:
    return x != INF


def resolution_bounds(
    layers: Iterable[LayerRF], ndim: int
) -> tuple[tuple[Number, ...], tuple[Number, ...], tuple[Number, ...]]:
    """``(i_min_unproductive, i_min, i_max)`` per axis.

    - ``i_min_unproductive``: smallest input size at which no field-growing layer has an input
      r_min >= the input size (so no layer is unproductive): max input r_min + 1.
    - ``i_min``: smallest input size at which no field-growing layer has its own r_min above the
      input size (so no layer is even critical): max own r_min. This is rfa-toolbox's default
      ``input_resolution_range`` lower bound without its feature-map term, and the number
      Richter & Pal (2022) bring below the training resolution.
    - ``i_max``: the largest finite r_max of any layer.
    """
    layers = list(layers)
    i_min_u, i_min, i_max = [], [], []
    for a in range(ndim):
        growing = [lrf for lrf in layers if lrf.layer.grows_on(a)]  # a 1x7 conv counts on W only
        ins = [lrf.input_r_min[a] for lrf in growing if _finite(lrf.input_r_min[a])]
        owns = [lrf.axes[a].r_min for lrf in growing if _finite(lrf.axes[a].r_min)]
        maxes = [lrf.axes[a].r_max for lrf in layers if _finite(lrf.axes[a].r_max)]
        i_min_u.append(max(ins, default=Fraction(0)) + 1)
        i_min.append(max(owns, default=Fraction(1)))
        i_max.append(max(maxes, default=Fraction(1)))
    return tuple(i_min_u), tuple(i_min), tuple(i_max)


def analyse(graph: Graph) -> Analysis:
    """Propagate receptive fields through ``graph`` and compute its resolution bounds."""
    layers = propagate(graph)
    i_min_u, i_min, i_max = resolution_bounds(layers, graph.ndim)
    return Analysis(graph, layers, i_min_u, i_min, i_max)


def _growing_axes(lrf: LayerRF) -> list[int]:
    return [a for a in range(len(lrf.axes)) if lrf.layer.grows_on(a)]


def is_unproductive(lrf: LayerRF, input_size: tuple[int, ...]) -> bool:
    """The border-layer test of Richter et al. (2021): the layer grows the field, yet its
    input already sees at least the whole input (non-strict, as in the paper) on every axis
    the layer grows along (a 1x7 conv is judged on W only)."""
    axes = _growing_axes(lrf)
    return bool(axes) and all(
        _finite(lrf.input_r_min[a]) and lrf.input_r_min[a] >= input_size[a] for a in axes
    )


def is_critical(lrf: LayerRF, input_size: tuple[int, ...]) -> bool:
    """The layer itself pushes r_min past the input size on every axis it grows along, but is
    not yet unproductive: it still adds some context, at the border."""
    axes = _growing_axes(lrf)
    return (
        bool(axes)
        and not is_unproductive(lrf, input_size)
        and all(_finite(lrf.axes[a].r_min) and lrf.axes[a].r_min > input_size[a] for a in axes)
    )


def layer_status(lrf: LayerRF, input_size: tuple[int, ...]) -> Status:
    """One word for a layer at one input size, for tables and pictures."""
    if lrf.layer.kind is Kind.UNKNOWN:
        return Status.UNKNOWN
    if lrf.layer.kind is Kind.GLOBAL:
        return Status.GLOBAL
    if is_unproductive(lrf, input_size):
        return Status.UNPRODUCTIVE
    if is_critical(lrf, input_size):
        return Status.CRITICAL
    return Status.OK


def display(x: Number) -> int | float | None:
    """A receptive-field number for people and JSON: an int where exact, ``None`` for
    infinite, otherwise a float rounded to 3 places (fractional after upsampling)."""
    if x == INF:
        return None
    frac = Fraction(x)
    if frac.denominator == 1:
        return int(frac)
    return round(float(frac), 3)
