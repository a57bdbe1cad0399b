"""The multipath receptive-field algebra. Pure Python: knows nothing about torch or rules.

A field is an **interval** of input positions, not only a size. For one path of convolutions
and poolings (Araujo et al., "Computing Receptive Fields of CNNs", Distill 2019), unit ``i``
of layer ``l`` sees the input interval ``[J_l i + u_l, J_l i + v_l]`` with

    J_l = J_{l-1} s_l      u_l = u_{l-1} - p_l J_{l-1}      v_l = v_{l-1} + (d_l (k_l - 1) - p_l) J_{l-1}

so ``r_l = v_l - u_l + 1 = r_{l-1} + (k_eff - 1) J_{l-1}`` (Richter et al. 2021) and ``-u_l`` is
the effective padding. Upsampling, transposed convolutions and uneven adaptive pools make the
interval depend on the unit's position beyond ``J i``; the dependence repeats with a period,
so a path is kept as a :class:`PathClass`: per phase of that period, the interval's ends.

A graph has many paths from the input to a layer (a ResNet-50 has 2^16, a DenseNet-121
astronomically many). Paths with the same jump transform alike from then on, and every
transfer is monotone, so it is enough to keep, per axis and per distinct jump, the smallest
start and the largest end over the paths (their union's hull: exact for ``r_max``) and a lower
bound on the smallest single path's size (exact for ``r_min`` wherever the period is 1, which
is every path of a classification network). That keeps propagation linear in
(layers x distinct jumps x period).

Paths through a global op (global pooling, attention, a linear layer over a spatial axis) are
kept apart as a flag instead of as ``r = inf``: a squeeze-and-excitation gate multiplies a
local path by a global one, and letting the global path win would make every later layer
"infinite" and hide the local growth that the rules are about.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property

from rflint.ir import INF, Analysis, AxisRF, Graph, Kind, Layer, LayerRF, Number, Taps
from rflint.rf.lookahead import extent
from rflint.rf.status import resolution_bounds

#: the largest period kept exactly; a longer one (sizes with no common factor) is widened
#: to a one-phase bound, which keeps r_max an upper bound and r_min a lower bound
MAX_PERIOD = 4096


#: at most this many single-path profiles are kept per class (the narrowest ones); past it,
#: ``r_min`` falls back to the per-phase lower bound
MAX_PROFILES = 8

Span = tuple[tuple[int, ...], tuple[int, ...]]  # (lo per phase, hi per phase)


@dataclass(frozen=True, slots=True)
class PathClass:
    """Every path to a tensor with one jump, along one axis.

    Unit ``o = period * q + p`` of the tensor sees, over all these paths, input units
    ``lo[p] + shift * q`` to ``hi[p] + shift * q`` (the union's hull); ``lo[p] > hi[p]`` marks a
    phase that reads nothing. For ``r_min``, the class keeps the single paths that can still
    become the narrowest (``profiles``, each a (lo, hi) per phase, moved so that it starts at 0;
    a path that contains another up to a shift never becomes narrower than it, so it is
    dropped) and, always valid, a per-phase lower bound on any single path's size
    (``size_min``). When a period is 1 (every path of a classification network) one profile is
    enough and the bound is exact.
    """

    shift: int
    period: int
    lo: tuple[int, ...]
    hi: tuple[int, ...]
    size_min: tuple[int, ...]
    profiles: tuple[Span, ...] = ()
    complete: bool = True  # no profile that could become the narrowest was dropped

    @property
    def jump(self) -> Fraction | int:
        return _exact(Fraction(self.shift, self.period))

    def empty(self, p: int) -> bool:
        return self.lo[p] > self.hi[p]

    @property
    def has_empty(self) -> bool:
        return any(l > h for l, h in zip(self.lo, self.hi))

    @property
    def sizes(self) -> tuple[int, ...]:
        """Per phase, the smallest single-path size (exact while ``complete``)."""
        if not self.complete or not self.profiles:
            return self.size_min
        out = []
        for p in range(self.period):
            exact = min((h[p] - l[p] + 1 for l, h in self.profiles if l[p] <= h[p]), default=self.size_min[p])
            out.append(max(exact, self.size_min[p]))
        return tuple(out)


INPUT_CLASS = PathClass(1, 1, (0,), (0,), (1,), (((0,), (0,)),))


@dataclass(frozen=True)
class AxisPaths:
    """All paths reaching a tensor along one axis: jump -> PathClass, plus the global ops
    (qualnames) on paths that made this axis global."""

    classes: Mapping[Fraction | int, PathClass]
    global_via: frozenset[str] = frozenset()

    @property
    def has_global(self) -> bool:
        return bool(self.global_via)

    @cached_property
    def r_min(self) -> Number:
        """The smallest single-path field (what a following layer's rules read)."""
        sizes = [s for c in self.classes.values() for p, s in enumerate(c.sizes) if not c.empty(p)]
        return min(sizes) if sizes else INF

    def summary(self, size: int | None = None) -> AxisRF:
        """The numbers reported for a layer (``size``: its feature-map size on this axis, which
        bounds the units to look at when jumps differ)."""
        key = (size,)
        cached = self._summaries.get(key)
        if cached is None:
            cached = self._summaries[key] = _summarise(self, size)
        return cached

    @cached_property
    def _summaries(self) -> dict:
        return {}


INPUT_PATHS = AxisPaths({1: INPUT_CLASS})


def _exact(x: Fraction | int) -> Fraction | int:
    """An int where the value is whole: int arithmetic and hashing are several times faster
    than Fraction's, and almost every jump in a CNN is whole."""
    return x.numerator if isinstance(x, Fraction) and x.denominator == 1 else x


# ---------------------------------------------------------------------------------------------
# one path class through one op


def _at(lo: tuple[int, ...], hi: tuple[int, ...], shift: int, t: int) -> tuple[int, int]:
    """(lo, hi) of unit ``t`` of a periodic span."""
    q, p = divmod(t, len(lo))
    return lo[p] + shift * q, hi[p] + shift * q


def _nonempty_range(lo: tuple[int, ...], hi: tuple[int, ...], a: int, b: int) -> tuple[int, int] | None:
    """The first and last unit in ``[a, b]`` that read something."""
    period = len(lo)
    if all(l <= h for l, h in zip(lo, hi)):
        return (a, b) if a <= b else None
    first = next((t for t in range(a, b + 1) if lo[t % period] <= hi[t % period]), None)
    if first is None:
        return None
    last = next(t for t in range(b, first - 1, -1) if lo[t % period] <= hi[t % period])
    return first, last


def _span_through(lo: tuple[int, ...], hi: tuple[int, ...], shift: int, taps: Taps, period: int) -> tuple[list[int], list[int], list[tuple[int, int] | None]]:
    """A periodic span after ``taps``: per output unit in one new period, the hull's ends and
    the input units it reads (None: nothing)."""
    out_lo, out_hi, reads = [], [], []
    for o in range(period):
        q, r = divmod(o, taps.period)
        span = _nonempty_range(lo, hi, taps.lo[r] + q * taps.shift, taps.hi[r] + q * taps.shift)
        reads.append(span)
        if span is None:
            out_lo.append(1), out_hi.append(0)
            continue
        out_lo.append(_at(lo, hi, shift, span[0])[0])
        out_hi.append(_at(lo, hi, shift, span[1])[1])
    return out_lo, out_hi, reads


def _normalised(lo: Sequence[int], hi: Sequence[int]) -> Span:
    """A profile moved so that its first non-empty phase starts at 0 (sizes do not depend on
    where a path is)."""
    base = next((l for l, h in zip(lo, hi) if l <= h), 0)
    return tuple(l - base for l in lo), tuple(h - base for h in hi)


def _contains(outer: Span, inner: Span) -> bool:
    """``outer`` holds ``inner`` at every phase, up to one shift: it is never the narrower."""
    for c in {outer[0][0] - inner[0][0], outer[1][0] - inner[1][0]}:
        if all(
            il > ih or (ol <= il + c and oh >= ih + c) for ol, oh, il, ih in zip(outer[0], outer[1], inner[0], inner[1])
        ):
            return True
    return False


def _prune(profiles: Sequence[Span], complete: bool) -> tuple[tuple[Span, ...], bool]:
    """Drop profiles that contain another; keep at most MAX_PROFILES (the narrowest)."""
    kept: list[Span] = []
    for p in sorted(set(profiles), key=lambda s: (min((h - l for l, h in zip(*s) if l <= h), default=0), s)):
        if not any(_contains(p, k) for k in kept):
            kept.append(p)
    if len(kept) > MAX_PROFILES:
        return tuple(kept[:MAX_PROFILES]), False
    return tuple(kept), complete


def through(c: PathClass, taps: Taps) -> PathClass | None:
    """The class after an op whose output unit ``o`` reads input units ``taps`` describes.

    The hull's ends and every kept profile are exact (the op's taps and ``lo``/``hi`` are
    monotone). The fallback bound: a single path's size grows at least by
    ``shift * floor((b - a) / period)`` over ``b - a`` input units.
    """
    g = math.gcd(taps.shift, c.period) if taps.shift else c.period
    period = taps.period * (c.period // g)
    shift = c.shift * taps.shift // g
    lo, hi, reads = _span_through(c.lo, c.hi, c.shift, taps, period)
    if all(span is None for span in reads):
        return None
    size = []
    for span in reads:
        if span is None:
            size.append(0)
            continue
        a, b = span
        grow = c.shift * ((b - a) // c.period)
        size.append(max(c.size_min[a % c.period], c.size_min[b % c.period]) + grow)
    profiles = [_normalised(*_span_through(pl, ph, c.shift, taps, period)[:2]) for pl, ph in c.profiles]
    profiles, complete = _prune(profiles, c.complete)
    return _reduce(PathClass(shift, period, tuple(lo), tuple(hi), tuple(size), profiles, complete))


def _periodic(values: Sequence[int], d: int, step: int, empty: Sequence[bool] | None = None) -> bool:
    return all(values[o + d] == values[o] + step for o in range(len(values) - d))


def _reduce(c: PathClass) -> PathClass:
    """The same class with its shortest period (merges expand periods to a common multiple;
    a stride after an upsampling folds phases together again)."""
    if c.period == 1:
        return c
    for d in range(1, c.period):
        if c.period % d or (c.shift * d) % c.period:
            continue
        step = c.shift * d // c.period
        if (
            _periodic(c.lo, d, step)
            and _periodic(c.hi, d, step)
            and _periodic(c.size_min, d, 0)
            and all(_periodic(l, d, step) and _periodic(h, d, step) for l, h in c.profiles)
        ):
            profiles, complete = _prune([_normalised(l[:d], h[:d]) for l, h in c.profiles], c.complete)
            return PathClass(step, d, c.lo[:d], c.hi[:d], c.size_min[:d], profiles, complete)
    if c.period > MAX_PERIOD:
        return _widen(c)
    return c


def _widen(c: PathClass) -> PathClass:
    """A one-phase bound of ``c`` (only for pathological periods): unit ``o`` sees at most
    ``[J o + min_p(lo_p - J p), J o + max_p(hi_p - J p)]``; no profile is kept."""
    jump = Fraction(c.shift, c.period)
    if jump.denominator != 1:
        return c
    live = [p for p in range(c.period) if not c.empty(p)]
    lo = min(math.floor(c.lo[p] - jump * p) for p in live)
    hi = max(math.ceil(c.hi[p] - jump * p) for p in live)
    return PathClass(int(jump), 1, (lo,), (hi,), (min(c.size_min[p] for p in live),), (), False)


def _expand_span(lo: tuple[int, ...], hi: tuple[int, ...], shift: int, period: int) -> Span:
    pairs = [_at(lo, hi, shift, o) for o in range(period)]
    return tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)


def _expand(c: PathClass, period: int) -> PathClass:
    """``c`` written with a longer period (a multiple of its own)."""
    if period == c.period:
        return c
    lo, hi = _expand_span(c.lo, c.hi, c.shift, period)
    size = tuple(c.size_min[o % c.period] for o in range(period))
    profiles = tuple(_normalised(*_expand_span(l, h, c.shift, period)) for l, h in c.profiles)
    return PathClass(c.shift * (period // c.period), period, lo, hi, size, profiles, c.complete)


def _union_class(a: PathClass, b: PathClass) -> PathClass:
    period = math.lcm(a.period, b.period)
    a, b = _expand(a, period), _expand(b, period)
    lo = tuple(_pick(min, x, y, a.empty(p), b.empty(p)) for p, (x, y) in enumerate(zip(a.lo, b.lo)))
    hi = tuple(_pick(max, x, y, a.empty(p), b.empty(p)) for p, (x, y) in enumerate(zip(a.hi, b.hi)))
    size = tuple(_pick(min, x, y, a.empty(p), b.empty(p)) for p, (x, y) in enumerate(zip(a.size_min, b.size_min)))
    profiles, complete = _prune(a.profiles + b.profiles, a.complete and b.complete)
    return _reduce(PathClass(a.shift, period, lo, hi, size, profiles, complete))


def _pick(fn, x: int, y: int, x_empty: bool, y_empty: bool) -> int:
    if x_empty:
        return y
    if y_empty:
        return x
    return fn(x, y)


# ---------------------------------------------------------------------------------------------
# whole tensors


def union(paths: Iterable[AxisPaths]) -> AxisPaths:
    """Merge (add, cat, mul, ...): the union of the inputs' path sets."""
    paths = list(paths)
    if len(paths) == 1:
        return paths[0]
    merged: dict[Fraction | int, PathClass] = {}
    via: frozenset[str] = frozenset()
    for p in paths:
        via |= p.global_via
        for j, c in p.classes.items():
            merged[j] = _union_class(merged[j], c) if j in merged else c
    return AxisPaths(merged, via)


def apply_taps(paths: AxisPaths, taps: Taps | None) -> AxisPaths:
    """An op that reads, per output unit, the input units ``taps`` gives."""
    if taps is None or taps.is_identity:
        return paths
    out: dict[Fraction | int, PathClass] = {}
    for c in paths.classes.values():
        new = through(c, taps)
        if new is None:
            continue
        j = new.jump
        out[j] = _union_class(out[j], new) if j in out else new
    return AxisPaths(out, paths.global_via)


def make_global(paths: AxisPaths, via: str) -> AxisPaths:
    """A global op: every output position sees the whole input along this axis."""
    return AxisPaths({}, paths.global_via | {via})


def add_global(paths: AxisPaths, via: str) -> AxisPaths:
    """A global side path (statistics over space): the local paths stay."""
    return AxisPaths(paths.classes, paths.global_via | {via})


def merge_inputs(inputs: list[tuple[AxisPaths, ...]], ndim: int) -> tuple[AxisPaths, ...]:
    """The union of the inputs' paths per axis (most layers have one input: nothing to do)."""
    return inputs[0] if len(inputs) == 1 else tuple(union(inp[a] for inp in inputs) for a in range(ndim))


def apply(layer: Layer, merged: tuple[AxisPaths, ...], ndim: int) -> tuple[AxisPaths, ...]:
    """What ``layer`` does to the (already merged) paths reaching it."""
    out = merged
    taps = layer.axis_taps(ndim)
    if any(t is not None for t in taps):
        out = tuple(apply_taps(p, t) for p, t in zip(out, taps))
    axes = layer.global_axes or ((True,) * ndim if layer.kind is Kind.GLOBAL and layer.taps is None else ())
    if any(axes):
        out = tuple(make_global(p, layer.qualname) if g else p for p, g in zip(out, axes))
    if layer.side_global:
        out = tuple(add_global(p, layer.qualname) if g else p for p, g in zip(out, layer.side_global))
    return out


# ---------------------------------------------------------------------------------------------
# summaries


def _units(classes: list[PathClass], size: int | None) -> list[int]:
    """The output units whose fields bound every unit's: one period when all paths share a
    jump (the pattern repeats), else both ends of the feature map (the union's extent is
    convex in the unit index once jumps differ)."""
    period = math.lcm(*(c.period for c in classes))
    if len({Fraction(c.shift, c.period) for c in classes}) == 1 or size is None:
        return list(range(period))
    span = min(size, period)
    return sorted(set(range(span)) | set(range(max(0, size - span), size)))


def _summarise(paths: AxisPaths, size: int | None) -> AxisRF:
    via = tuple(sorted(paths.global_via))
    if not paths.classes:  # reached only through global ops: the whole input
        return AxisRF(INF, INF, INF, INF, True, INF, INF, INF, via, 1, INF, INF)
    classes = list(paths.classes.values())
    widest, narrowest = 0, INF
    start = end = None
    jumps = [c.jump for c in classes]
    for o in _units(classes, size):
        ends = [_at(c.lo, c.hi, c.shift, o) for c in classes if not c.empty(o % c.period)]
        if not ends:
            continue
        lo, hi = min(e[0] for e in ends), max(e[1] for e in ends)
        widest, narrowest = max(widest, hi - lo + 1), min(narrowest, hi - lo + 1)
        if o == 0:
            start, end = lo, hi
    period = math.lcm(*(c.period for c in classes))
    lead, trail = _lead_trail(classes, period, Fraction(max(jumps)))
    sizes = [s for c in classes for p, s in enumerate(c.sizes) if not c.empty(p)]
    return AxisRF(
        min(sizes),
        widest,
        min(jumps),
        max(jumps),
        bool(via),
        narrowest,
        0 if start is None else start,
        0 if end is None else end,
        via,
        period,
        lead,
        trail,
    )


def _lead_trail(classes: list[PathClass], period: int, jump: Fraction) -> tuple[int, int]:
    """How far the first unit of a period reads before the pixels it stands for
    (``[floor(o J), ceil((o + 1) J) - 1]``), and the last unit after them: a tile whose core
    starts and ends on the period's grid needs exactly that much context (units in between
    read inside their neighbours' reach, as the ends grow with the unit)."""
    def ends(o: int) -> tuple[int, int] | None:
        spans = [_at(c.lo, c.hi, c.shift, o) for c in classes if not c.empty(o % c.period)]
        return (min(e[0] for e in spans), max(e[1] for e in spans)) if spans else None

    first = next((o for o in range(period) if ends(o) is not None), 0)
    last = next((o for o in range(period - 1, -1, -1) if ends(o) is not None), 0)
    lo = ends(first)[0] if ends(first) else 0
    hi = ends(last)[1] if ends(last) else 0
    return max(0, -lo), max(0, hi - (math.ceil(period * jump) - 1))


# ---------------------------------------------------------------------------------------------
# the graph


def propagate_layer(
    layer: Layer, state: dict[str, tuple[AxisPaths, ...]], uncertain: dict[str, bool], ndim: int
) -> LayerRF | None:
    """One step of :func:`propagate`: record the paths reaching ``layer`` in ``state`` and
    return its result, or ``None`` if it does not depend on the input."""
    inputs = [state[name] for name in layer.inputs if name in state]
    if layer.kind is Kind.INPUT:
        paths, merged = (INPUT_PATHS,) * ndim, None
    elif not inputs:
        return None
    else:
        merged = merge_inputs(inputs, ndim)
        paths = apply(layer, merged, ndim)
    state[layer.name] = paths
    unsure = layer.kind is Kind.UNKNOWN or any(uncertain.get(n, False) for n in layer.inputs)
    uncertain[layer.name] = unsure
    sizes = layer.out_size if layer.out_size is not None and len(layer.out_size) == ndim else (None,) * ndim
    axes = tuple(p.summary(n) for p, n in zip(paths, sizes))
    input_r_min = (1,) * ndim if merged is None else tuple(p.r_min for p in merged)
    ahead, behind = zip(*(extent(p.classes.values(), p.has_global) for p in paths))
    return LayerRF(layer, axes, input_r_min, unsure, tuple(ahead), tuple(behind))


def propagate(graph: Graph) -> tuple[LayerRF, ...]:
    """Receptive field of every layer that depends on the input, in graph order.

    Layers whose inputs do not depend on the model input (constants, shape arithmetic) are
    left out: they have no receptive field.
    """
    state: dict[str, tuple[AxisPaths, ...]] = {}
    uncertain: dict[str, bool] = {}
    steps = (propagate_layer(layer, state, uncertain, graph.ndim) for layer in graph.layers)
    return tuple(r for r in steps if r is not None)


def output_global_via(layers: Iterable[LayerRF]) -> tuple[str, ...]:
    """The global ops on paths that reach the model's outputs (the layers nothing reads)."""
    layers = list(layers)
    read = {name for lrf in layers for name in lrf.layer.inputs}
    sinks = [lrf for lrf in layers if lrf.layer.name not in read and lrf.layer.kind is not Kind.INPUT]
    return tuple(sorted({v for lrf in sinks for axis in lrf.axes for v in axis.global_via}))


def analyse(graph: Graph, task: str = "classification", causal_axes: tuple[int, ...] = ()) -> Analysis:
    """Propagate receptive fields through ``graph`` and compute its resolution bounds.

    ``task``: "classification" (Richter's centre-unit criterion), "dense" (every unit judged,
    :mod:`rflint.rf.coverage`) or "auto" (dense when an output keeps a spatial axis)."""
    from rflint.rf.coverage import keeps_spatial_axes, with_reaches

    layers = propagate(graph)
    source = "config"
    if task == "auto":
        task, source = ("dense" if keeps_spatial_axes(layers) else "classification"), "auto"
    if task == "dense":
        layers = with_reaches(graph, layers)
    i_min_u, i_min, i_max = resolution_bounds(layers, graph.ndim)
    return Analysis(graph, layers, i_min_u, i_min, i_max, output_global_via(layers), task, source, causal_axes)
