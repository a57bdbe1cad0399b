"""Which tensor dimension carries which spatial axis of the model input. Pure Python.

Receptive fields are per *input* axis (H, W), but ops act on tensor dimensions, and models move
the spatial axes around: ConvNeXt permutes to channels-last for its MLP, ViT flattens H and W
into one token dimension and attends over it, Swin cuts H into windows. To know what a
``Linear``, a ``mean`` or a ``softmax`` does to the receptive field, rflint tracks, for every
tensor, each dimension as a product of *components* ``Comp(axis, size, step)``: ``axis`` is the
input axis the component indexes (None for channels, batch and other non-spatial data), and
``step`` how many units of the axis's grid one index of the component moves.

- A reshape that merges dims concatenates their components (ViT's H*W token dim carries both axes).
- A reshape that cuts an axis ``H -> (H/b, b)`` keeps both pieces: the outer one with step ``b``,
  the inner one with step 1; merging them back (in that order) restores the axis. The field state
  stays indexed by the whole axis, so ops on one piece become periodic taps on the axis
  (:func:`mix` for attention inside a window, :func:`window_taps` for a window over blocks).
- When the inner piece ends up among the channels while the outer one stays positional
  (space-to-depth: ``pixel_unshuffle``, YOLO's Focus, TResNet's stem, a patchify reshape),
  :func:`reshape` *collapses* it: a window of ``b`` with stride ``b``, after which the outer piece
  is the axis and the inner one is channel data.
- A spatial dim followed by channel components in one dim (``(H, r) -> H*r``, depth-to-space)
  is an upsampling; :func:`dim_axis` reports it so that window ops read it as such.
- Concatenating extra positions to a token dim (ViT's class token: 1 + H*W tokens) leaves a dim
  that is no product of axes: it becomes one :class:`Tokens` component that remembers the axes
  it holds. Attention over it is still global, a sliding window over it is unknown, and slicing
  the extra positions off again (``x[:, 1:]`` in CoaT) restores the axes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from math import prod
from typing import NamedTuple

from rflint.ir import Taps


@dataclass(frozen=True)
class Tokens:
    """The positions of ``inner`` (a dim made of axis components) plus extra positions, such as
    a class token: no product of axes, but the axes are still there."""

    inner: tuple


class Comp(NamedTuple):
    """One factor of a tensor dim: ``size`` positions of input axis ``axis`` (None: not spatial;
    a :class:`Tokens`: axes plus extra positions), ``step`` axis units apart."""

    axis: int | Tokens | None
    size: int
    step: int = 1


Dim = tuple[Comp, ...]
Layout = tuple[Dim, ...]


@dataclass(frozen=True)
class AxisRef:
    """What a window op sees in one tensor dim: ``axis``'s grid, one index every ``step`` units,
    and ``upsample`` channel positions per unit merged after it (depth-to-space, 1 if none)."""

    axis: int
    step: int = 1
    upsample: int = 1


def initial(shape: Sequence[int], ndim: int) -> Layout:
    """Layout of the model input: leading dims (batch, channels) are non-spatial."""
    lead = len(shape) - ndim
    return tuple(_plain(s) for s in shape[:lead]) + tuple((Comp(a, s),) for a, s in enumerate(shape[lead:]))


def _plain(size: int) -> Dim:
    """A non-spatial dim of ``size`` positions (no component for a unit dim)."""
    return (Comp(None, size),) if size != 1 else ()


def dim_size(dim: Dim) -> int:
    return prod(c.size for c in dim)


def axes_of(dim: Dim) -> frozenset[int]:
    """The input axes a tensor dim indexes (empty for channels)."""
    axes: set[int] = set()
    for c in dim:
        if isinstance(c.axis, Tokens):
            axes |= axes_of(c.axis.inner)
        elif c.axis is not None:
            axes.add(c.axis)
    return frozenset(axes)


@lru_cache(maxsize=4096)
def dim_axis(dim: Dim) -> AxisRef | None | bool:
    """The axis a window op slides over in ``dim``: an :class:`AxisRef`; None if the dim carries
    no axis; False if it mixes an axis with other data in a way no window can follow (two axes,
    extra token positions, channels before the axis)."""
    spatial = [c for c in dim if c.size != 1 and c.axis is not None]
    if not spatial:
        return None if not axes_of(dim) else _unit_axis(dim)
    if len(spatial) != 1 or isinstance(spatial[0].axis, Tokens):
        return False
    first = next(i for i, c in enumerate(dim) if c.size != 1)
    comp = spatial[0]
    if dim[first] is not comp:
        return False  # channel-major: no spatial meaning
    after = prod(c.size for c in dim[first + 1 :])
    return AxisRef(comp.axis, comp.step, after)


def _unit_axis(dim: Dim) -> AxisRef | None:
    units = [c.axis for c in dim if isinstance(c.axis, int)]
    return AxisRef(units[0]) if len(units) == 1 else None


def spatial_axis(dim: Dim) -> int | None | bool:
    """The single axis a dim is exactly (one whole-grid component), None if it carries none,
    False if it mixes an axis with other data or holds only a piece of one."""
    ref = dim_axis(dim)
    if ref is None or ref is False:
        return ref
    return ref.axis if ref.step == 1 and ref.upsample == 1 else False


def axis_sizes(layout: Layout, ndim: int) -> tuple[int, ...] | None:
    """Feature-map size per input axis: the product of its pieces."""
    sizes: dict[int, int] = {}
    for dim in layout:
        for c in dim:
            if isinstance(c.axis, int):
                sizes[c.axis] = sizes.get(c.axis, 1) * c.size
    if len(sizes) != ndim:
        return None
    return tuple(sizes[a] for a in range(ndim))


def resize(layout: Layout, shape: Sequence[int]) -> Layout:
    """Same dims, new sizes: for ops that keep each dim's meaning (conv, pool, interpolate)."""
    out: list[Dim] = []
    for dim, s in zip(layout, shape):
        if len(dim) == 1 and isinstance(dim[0].axis, Tokens) and dim_size(dim[0].axis.inner) == s:
            out.append(dim[0].axis.inner)  # the extra positions were sliced off again
        elif len(dim) == 1:
            out.append((dim[0]._replace(size=s),) if s != 1 or dim[0].axis is not None else ())
        elif dim_size(dim) == s:
            out.append(dim)
        elif not dim:
            out.append(_plain(s))
        else:  # rescale the first non-unit component (the positional one), keep the others
            rest = dim_size(dim) // max(1, next(c.size for c in dim if c.size != 1))
            first = next(i for i, c in enumerate(dim) if c.size != 1)
            new = dim[first]._replace(size=max(1, s // max(1, rest)))
            out.append(dim[:first] + (new,) + dim[first + 1 :])
    return tuple(out)


def permute(layout: Layout, dims: Sequence[int]) -> Layout:
    n = len(layout)
    return tuple(layout[d % n] for d in dims)


def transpose(layout: Layout, d0: int, d1: int) -> Layout:
    dims = list(range(len(layout)))
    n = len(layout)
    dims[d0 % n], dims[d1 % n] = dims[d1 % n], dims[d0 % n]
    return permute(layout, dims)


def broadcast(layouts: Sequence[Layout], shape: Sequence[int]) -> Layout:
    """Elementwise ops: right-align the inputs; each output dim takes the first input dim that
    is not broadcast (size > 1)."""
    out: list[Dim] = []
    rank = len(shape)
    for k, s in enumerate(shape):
        chosen: Dim = ()
        for lay in layouts:
            idx = len(lay) - rank + k
            if 0 <= idx < len(lay) and dim_size(lay[idx]) == s and lay[idx]:
                chosen = lay[idx]
                break
        if not chosen and s != 1:
            for lay in layouts:  # fall back to any same-position dim (sizes differ after broadcast)
                idx = len(lay) - rank + k
                if 0 <= idx < len(lay) and lay[idx]:
                    chosen = lay[idx]
                    break
        out.append(chosen if chosen else _plain(s))
    return resize(tuple(out), shape)


def reduce(layout: Layout, dims: Sequence[int], keepdim: bool) -> Layout:
    """The layout after a reduction (mean, sum, amax, ...) over ``dims`` (see :func:`mix` for
    what it does to the axes)."""
    n = len(layout)
    norm = {d % n for d in dims}
    if keepdim:
        return tuple(tuple(Comp(c.axis, 1, c.step) for c in dim) if i in norm else dim for i, dim in enumerate(layout))
    return tuple(dim for i, dim in enumerate(layout) if i not in norm)


# ---------------------------------------------------------------------------------------------
# mixing positions: what global ops over some dims do to each axis


def _pieces(layout: Layout, axis: int) -> list[tuple[int, Comp]]:
    return [(d, c) for d, dim in enumerate(layout) for c in dim if c.axis == axis and c.size != 1]


def mix(layout: Layout, dims: Sequence[int]) -> dict[int, Taps | None]:
    """Per input axis touched, what mixing every position of ``dims`` does: None = global (the
    whole axis, or its coarsest piece, is mixed), else the block taps of mixing only the finer
    pieces (attention inside a window: each unit sees its whole window)."""
    n = len(layout)
    chosen = {d % n for d in dims}
    out: dict[int, Taps | None] = {}
    for d in chosen:
        for c in layout[d]:
            if isinstance(c.axis, Tokens):
                for a in axes_of(c.axis.inner):
                    out[a] = None
            elif c.axis is not None and c.size != 1 and out.get(c.axis, 0) is not None:
                out[c.axis] = 0  # placeholder: decided below
    for a in [a for a, v in out.items() if v is not None]:
        pieces = _pieces(layout, a)
        mixed = [c for d, c in pieces if d in chosen]
        coarsest = max(c.step for _, c in pieces)
        out[a] = None if any(c.step == coarsest for c in mixed) else block_taps([c for _, c in pieces], mixed)
    return out


def block_taps(pieces: Sequence[Comp], mixed: Sequence[Comp]) -> Taps:
    """Unit ``o`` of an axis made of ``pieces`` (index ``o // step % size`` each) sees every unit
    that differs from it in the ``mixed`` pieces only."""
    top = max(mixed, key=lambda c: c.step)
    period = top.step * top.size
    lo, hi = [], []
    for o in range(period):
        base = o - sum((o // c.step % c.size) * c.step for c in mixed)
        lo.append(base)
        hi.append(base + sum((c.size - 1) * c.step for c in mixed))
    return Taps(period, period, tuple(lo), tuple(hi))


def window_taps(ref: AxisRef, taps: Taps) -> Taps:
    """A window's taps over the grid of ``ref``, as taps on the whole axis: over a piece with
    step ``b`` (blocks of ``b`` units), unit ``q b + r`` reads ``(t) b + r`` for every tap ``t``."""
    if ref.step == 1:
        return taps
    b = ref.step
    lo, hi = [], []
    for o in range(taps.period * b):
        q, r = divmod(o, b)
        qq, p = divmod(q, taps.period)
        lo.append((taps.lo[p] + qq * taps.shift) * b + r)
        hi.append((taps.hi[p] + qq * taps.shift) * b + r)
    return Taps(taps.shift * b, taps.period * b, tuple(lo), tuple(hi))


def dedupe(layout: Layout) -> tuple[Layout, dict[int, Taps | None]]:
    """Positions of an axis carried by two dims (a matmul of queries and keys: rows are the
    queries' positions, columns the keys'): every unit of the first dim already sees every
    position of the second, so the second is mixed and becomes non-spatial.

    A repeat is judged per *piece*, not per axis: after a window partition the batch dim holds
    the window index (the outer piece) and the rows the offset inside the window (the inner
    one). Those are complementary pieces of one axis, not a repeat; only the key dim, which
    holds the in-window offsets a second time, is."""
    seen: list[Comp] = []
    repeated: list[int] = []
    for d, dim in enumerate(layout):
        comps = [c for c in dim if c.size != 1 and c.axis is not None]
        if any(_overlaps(c, s) for c in comps for s in seen):
            repeated.append(d)
        seen.extend(comps)
    if not repeated:
        return layout, {}
    effects = mix(layout, repeated)
    out = tuple(_plain(dim_size(dim)) if d in repeated else dim for d, dim in enumerate(layout))
    return out, effects


def _overlaps(a: Comp, b: Comp) -> bool:
    """Whether two components index some of the same positions of an axis: pieces of one axis
    are complementary when one's whole span fits inside a single step of the other (window
    index and in-window offset); a :class:`Tokens` component overlaps whatever shares an axis."""
    if isinstance(a.axis, Tokens) or isinstance(b.axis, Tokens):
        axes_a = axes_of((a,)) if isinstance(a.axis, Tokens) else {a.axis}
        axes_b = axes_of((b,)) if isinstance(b.axis, Tokens) else {b.axis}
        return bool(axes_a & axes_b)
    if a.axis != b.axis:
        return False
    return not (a.step * a.size <= b.step or b.step * b.size <= a.step)


def roll_taps(layout: Layout, d: int, shift: int) -> tuple[int, Taps] | None | bool:
    """What ``torch.roll`` by ``shift`` along tensor dim ``d`` reads, on the axis that dim's
    piece belongs to: ``(axis, taps)``; None when the dim carries no axis; False when rflint
    cannot follow it (several axes in one dim, extra token positions, channels merged in).

    A roll of a whole axis (or of its coarsest piece) is a shift whose wrapped units reach the
    far border; the caller adds that as a global side path. A roll of a finer piece (inside a
    window) wraps within each block: per-phase taps with the block as period, widened to the
    monotone hull the algebra composes (an upper bound on what each unit reads)."""
    spatial = [c for c in layout[d] if c.size != 1 and c.axis is not None]
    if not spatial:
        return None
    if len(spatial) != 1 or isinstance(spatial[0].axis, Tokens) or len(layout[d]) != 1:
        return False
    c = spatial[0]
    coarsest = max(p.step for _, p in _pieces(layout, c.axis))
    if c.step == coarsest:
        return c.axis, Taps.shifted(-shift * c.step)
    period = c.step * c.size
    reads = []
    for o in range(period):
        q = o // c.step % c.size
        reads.append(o + ((q - shift) % c.size - q) * c.step)
    # the algebra composes taps whose ends grow with the unit; a wrap inside a block is a
    # permutation, so each phase gets the smallest monotone hull that holds what it reads
    lo = tuple(min(reads[p:]) for p in range(period))
    hi = tuple(max(reads[: p + 1]) for p in range(period))
    return c.axis, Taps(period, period, lo, hi)


def with_extra_positions(dim: Dim, size: int) -> Dim:
    """``dim`` grown to ``size`` positions by concatenating positions that carry no axis."""
    if not axes_of(dim):
        return _plain(size)
    inner = dim[0].axis.inner if len(dim) == 1 and isinstance(dim[0].axis, Tokens) else dim
    return (Comp(Tokens(tuple(inner)), size),)


# ---------------------------------------------------------------------------------------------
# reshapes


@dataclass(frozen=True)
class Reshaped:
    """A reshape's result: the new layout, and per axis the taps of a space-to-depth it did."""

    layout: Layout
    taps: dict[int, Taps]


def reshape(layout: Layout, shape: Sequence[int]) -> Reshaped | None:
    """Layout after view / reshape / flatten / unflatten / squeeze / unsqueeze.

    Input components and output dims are grouped into minimal blocks of equal size. A block
    with one output dim merges its components; a block with several splits them in order,
    cutting an axis into an outer piece (step = the inner size) and an inner one. Adjacent
    pieces of one axis are merged back. Returns None when a component cannot be split along
    the requested sizes (extra token positions cut apart)."""
    comps = _merge_pieces([c for dim in layout for c in dim if c.size != 1])
    targets = [k for k, s in enumerate(shape) if s != 1]
    out: list[list[Comp]] = [[] for _ in shape]
    ci = oj = 0
    while ci < len(comps) or oj < len(targets):
        if ci >= len(comps) or oj >= len(targets):
            return None
        block_c, block_o = [comps[ci]], [targets[oj]]
        pc, po = comps[ci].size, shape[targets[oj]]
        ci, oj = ci + 1, oj + 1
        while pc != po:
            if pc < po:
                if ci >= len(comps):
                    return None
                block_c.append(comps[ci])
                pc *= comps[ci].size
                ci += 1
            else:
                if oj >= len(targets):
                    return None
                block_o.append(targets[oj])
                po *= shape[targets[oj]]
                oj += 1
        if len(block_o) == 1:
            out[block_o[0]] = list(block_c)
        else:
            assigned = _split(block_c, [shape[k] for k in block_o])
            if assigned is None:
                return None
            for k, dim in zip(block_o, assigned):
                out[k] = dim
    merged = tuple(tuple(_merge_pieces(dim)) for dim in out)
    merged = _reattach_unit_axes(layout, shape, merged)
    return _collapse(merged)


def _collapse(layout: Layout) -> Reshaped:
    """Space-to-depth: an axis's step-1 piece among channel components while a coarser piece
    stays positional becomes channel data, and the coarse piece the axis's new grid."""
    taps: dict[int, Taps] = {}
    out = [list(dim) for dim in layout]
    axes = {c.axis for dim in layout for c in dim if isinstance(c.axis, int)}
    for a in sorted(axes):
        pieces = [(d, i, c) for d, dim in enumerate(out) for i, c in enumerate(dim) if c.axis == a and c.size != 1]
        if len(pieces) != 2:
            continue
        (d0, i0, c0), (d1, i1, c1) = sorted(pieces, key=lambda p: -p[2].step)
        channels = any(c.axis is None and c.size != 1 for c in out[d1])
        positional = not any(c.axis is None and c.size != 1 for c in out[d0])
        if c1.step != 1 or c0.step != c1.size or not channels or not positional or d0 == d1:
            continue
        b = c1.size
        taps[a] = Taps.window(b, b, 0)
        out[d0][i0] = Comp(a, c0.size, 1)
        out[d1][i1] = Comp(None, b, 1)
    return Reshaped(tuple(tuple(dim) for dim in out), taps)


def _reattach_unit_axes(layout: Layout, shape: Sequence[int], out: Layout) -> Layout:
    """Size-1 spatial components (a 1x1 feature map) carry no data, so the block matching above
    drops them; put them back on the trailing size-1 output dims, right-aligned, so that a
    channel shuffle on a 1x1 map keeps H and W (ShuffleNet's last stage at 32 px)."""
    units = [c for dim in layout for c in dim if c.size == 1 and c.axis is not None]
    units = [c for c in units if not any(c.axis == o.axis for d in out for o in d)]
    free = [k for k, s in enumerate(shape) if s == 1 and not out[k]]
    if not units or len(units) > len(free):
        return out
    result = list(out)
    for k, comp in zip(free[len(free) - len(units) :], units):
        result[k] = (comp,)
    return tuple(result)


def _merge_pieces(comps: list[Comp]) -> list[Comp]:
    """Adjacent pieces of one axis, outer then inner (window index, offset in window), back into
    one component: after a window partition is undone, the axis is whole again."""
    merged: list[Comp] = []
    for c in comps:
        if merged and isinstance(c.axis, int) and merged[-1].axis == c.axis and merged[-1].step == c.step * c.size:
            merged[-1] = Comp(c.axis, merged[-1].size * c.size, c.step)
        elif merged and c.axis is None and merged[-1].axis is None:
            merged[-1] = Comp(None, merged[-1].size * c.size)
        else:
            merged.append(c)
    return merged


def _split(comps: list[Comp], sizes: list[int]) -> list[list[Comp]] | None:
    """Assign components to output dims in order, cutting a component into an outer and an
    inner piece where a dim needs fewer positions than it holds."""
    comps = list(comps)
    result: list[list[Comp]] = []
    for need in sizes:
        dim: list[Comp] = []
        while need > 1:
            if not comps:
                return None
            c = comps[0]
            if c.size <= need and need % c.size == 0:
                dim.append(c)
                need //= c.size
                comps.pop(0)
            elif c.size % need == 0 and not isinstance(c.axis, Tokens):
                inner = c.size // need
                dim.append(Comp(c.axis, need, c.step * inner))
                comps[0] = Comp(c.axis, inner, c.step)
                need = 1
            else:
                return None
        result.append(dim)
    return result if not comps else None
