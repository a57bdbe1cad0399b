"""Dense-task coverage: does *every* unit of a tensor, corners included, see the whole input?

Richter et al.'s criterion (a layer is unproductive when its input ``r_min`` >= the input size)
is about the centre unit of a classifier, which pools everything at the end. A segmentation,
detection or 3-D U-Net output keeps its spatial axes, and a corner unit whose field is 169
wide, centred on the corner, sees only ~85 pixels of the input: for that unit the layer still
adds context. So a dense model is judged per unit, with the real effective padding.

Per axis and per unit ``i`` of a tensor this module keeps, over every local path from the
input (a path through a global op is kept apart, as in :mod:`rflint.rf.algebra`):

    U_i = the latest start of any single path's interval      V_i = the earliest end

A single path's interval through an op whose unit ``o`` reads units ``a..b`` of its input is
``[u(a), v(b)]``, so ``U_out(o) = U(a)`` and ``V_out(o) = V(b)`` (the first and last tap that
reads anything), and a merge takes the max of the ``U`` and the min of the ``V``: both
propagate exactly, in one pass, per unit. Every single path of unit ``i`` covers the whole
input ``[0, N-1]`` iff ``U_i <= 0`` and ``V_i >= N-1``.

The number reported per layer and axis is the **corner reach**

    reach = min_i min(V_i + 1, N - U_i)

the input size up to which every unit still sees the whole input: ``reach >= N`` iff every
unit covers it (a unit that reads only padding, such as the border of an ``F.pad``, sees
nothing and is left out). Taps are clamped to the tensor (a padded position reads nothing, so a field
ends where its last real tap ends); when every unit covers the input the reach is taken from
the same propagation with the padded taps extrapolated along the grid (the Araujo et al.
effective padding), so that it also says by how much the corners overshoot.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from rflint.ir import INF, Graph, Kind, Layer, LayerRF, Number, Taps

#: per unit of one axis: (latest start, earliest end) of any single path, None: no local path
Units = tuple[tuple[Number | None, ...], tuple[Number | None, ...]]


def _value(arr: Sequence[Number | None], t: int, clamp: bool) -> Number | None:
    """``arr`` at unit ``t``; past the ends, None (clamped) or extended along the grid."""
    n = len(arr)
    if 0 <= t < n:
        return arr[t]
    if clamp or n == 0:
        return None
    end, other = (0, 1) if t < 0 else (n - 1, n - 2)
    if arr[end] is None:
        return None
    slope = abs(arr[end] - arr[other]) if 0 <= other < n and arr[other] is not None else 1
    return arr[end] + slope * (t - end)  # one grid step further out per padded unit


def _first(arr: Sequence[Number | None], a: int, b: int, clamp: bool, reverse: bool) -> Number | None:
    """The value at the first (``reverse``: last) tap in ``a..b`` that reads anything."""
    order = range(b, a - 1, -1) if reverse else range(a, b + 1)
    for t in order:
        value = _value(arr, t, clamp)
        if value is not None:
            return value
    return None


def through_taps(units: Units, taps: Taps | None, n_out: int, clamp: bool) -> Units | None:
    """The units of an op's output along one axis (None: no local path, or sizes unknown)."""
    lo_arr, hi_arr = units
    if taps is None or taps.is_identity:
        if len(lo_arr) == n_out:
            return units
        taps = Taps.shifted(0)  # unit o still reads unit o: a crop at the end, or a pad there
    out_lo: list[Number | None] = []
    out_hi: list[Number | None] = []
    for o in range(n_out):
        q, p = divmod(o, taps.period)
        a, b = taps.lo[p] + taps.shift * q, taps.hi[p] + taps.shift * q
        out_lo.append(_first(lo_arr, a, b, clamp, reverse=False))
        out_hi.append(_first(hi_arr, a, b, clamp, reverse=True))
    return tuple(out_lo), tuple(out_hi)


def merge(inputs: Sequence[Units | None]) -> Units | None:
    """A merge (add, cat, mul): every path of every input, so the latest start and earliest end."""
    live = [u for u in inputs if u is not None]
    if not live:
        return None
    if len(live) == 1:
        return live[0]
    n = len(live[0][0])
    if any(len(u[0]) != n for u in live):
        return None
    lo = tuple(_pick(max, [u[0][i] for u in live]) for i in range(n))
    hi = tuple(_pick(min, [u[1][i] for u in live]) for i in range(n))
    return lo, hi


def _pick(fn, values: Sequence[Number | None]) -> Number | None:
    live = [v for v in values if v is not None]
    return fn(live) if live else None


def reach(units: Units | None, size: int) -> Number:
    """The corner reach (module docstring); INF where no local path reaches the tensor."""
    if units is None:
        return INF
    out: Number = INF
    for lo, hi in zip(*units):
        if lo is not None and hi is not None:  # a unit that reads only padding is not judged
            out = min(out, min(hi + 1, size - lo))
    return out


def _apply(layer: Layer, merged: Units | None, axis: int, ndim: int, clamp: bool) -> Units | None:
    if merged is None:
        return None
    if layer.global_axes and axis < len(layer.global_axes) and layer.global_axes[axis]:
        return None
    if layer.kind is Kind.GLOBAL and layer.taps is None and not layer.global_axes:
        return None
    n_out = layer.out_size[axis] if layer.out_size is not None and len(layer.out_size) == ndim else None
    if n_out is None:
        return None
    return through_taps(merged, layer.axis_taps(ndim)[axis], n_out, clamp)


def propagate_units(graph: Graph, clamp: bool) -> dict[str, tuple[tuple[Units | None, Units | None], ...]]:
    """Per layer name and axis: (the merged input's units, the output's units)."""
    ndim = graph.ndim
    state: dict[str, tuple[Units | None, ...]] = {}
    out: dict[str, tuple[tuple[Units | None, Units | None], ...]] = {}
    for layer in graph.layers:
        if layer.kind is Kind.INPUT:
            own = tuple((tuple(range(n)), tuple(range(n))) for n in graph.input_size)
            state[layer.name] = own
            out[layer.name] = tuple((u, u) for u in own)
            continue
        inputs = [state[name] for name in layer.inputs if name in state]
        if not inputs:
            continue
        merged = tuple(merge([inp[a] for inp in inputs]) for a in range(ndim))
        own = tuple(_apply(layer, merged[a], a, ndim, clamp) for a in range(ndim))
        state[layer.name] = own
        out[layer.name] = tuple(zip(merged, own))
    return out


def reaches(graph: Graph) -> dict[str, tuple[tuple[Number, ...], tuple[Number, ...]]]:
    """Per layer name: (corner reach of its input, of its output), per axis (module docstring)."""
    size = graph.input_size
    clamped = propagate_units(graph, clamp=True)
    padded: dict | None = None
    result = {}
    for name, axes in clamped.items():
        ins, outs = [], []
        for a, (u_in, u_out) in enumerate(axes):
            for units, sink, pos in ((u_in, ins, 0), (u_out, outs, 1)):
                value = reach(units, size[a])
                if value != INF and value >= size[a]:
                    padded = padded if padded is not None else propagate_units(graph, clamp=False)
                    value = max(value, reach(padded[name][a][pos], size[a]))
                sink.append(value)
        result[name] = (tuple(ins), tuple(outs))
    return result


def with_reaches(graph: Graph, layers: Sequence[LayerRF]) -> tuple[LayerRF, ...]:
    """``layers`` with their corner reaches filled in (INF where a layer has none)."""
    found = reaches(graph)
    out = []
    for lrf in layers:
        ndim = len(lrf.axes)
        ins, outs = found.get(lrf.layer.name, ((INF,) * ndim, (INF,) * ndim))
        out.append(replace(lrf, reach_in=ins, reach=outs))
    return tuple(out)


def keeps_spatial_axes(layers: Iterable[LayerRF]) -> bool:
    """True when some output of the model (a layer nothing reads) keeps a spatial axis: a
    local field on an axis longer than one unit (a segmentation map, detection heads, an
    audio frame sequence); a classifier's outputs are global on every axis, or have no
    spatial axes left (a linear layer after a pool that left 1 x 2 pixels)."""
    layers = list(layers)
    read = {name for lrf in layers for name in lrf.layer.inputs}
    for lrf in layers:
        if lrf.layer.name in read or lrf.layer.kind is Kind.INPUT:
            continue
        size = lrf.layer.out_size
        for a, axis in enumerate(lrf.axes):
            if not axis.is_global and size is not None and a < len(size) and size[a] > 1:
                return True
    return False
