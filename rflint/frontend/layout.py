"""Which tensor dimension carries which spatial axis of the model input. Pure Python.

Receptive fields are per *input* axis (H, W), but ops act on tensor dimensions, and models move
the spatial axes around: ConvNeXt permutes to channels-last for its MLP, ViT flattens H and W
into one token dimension and attends over it, ShuffleNet reshapes channels. To know what a
``Linear``, a ``mean`` or a ``softmax`` does to the receptive field, rflint tracks, for every
tensor, each dimension as a product of *components* ``(axis, size)``: ``axis`` is the input
axis the component indexes, or ``None`` for channels, batch and other non-spatial data.

- A reshape that merges dims concatenates their components (ViT's H*W token dim carries both axes).
- A reshape that splits a dim along component boundaries undoes a merge exactly.
- A reshape that cuts *inside* a spatial component (window partition in Swin / MaxViT) cannot be
  expressed as a receptive field: :func:`reshape` returns ``None`` and the op is reported unknown.
- Concatenating extra positions to a token dim (ViT's class token: 1 + H*W tokens) leaves a dim
  that is no product of axes: it becomes one :class:`Tokens` component that remembers the axes
  it holds. Attention over it is still global, a sliding window over it is unknown, and slicing
  the extra positions off again (``x[:, 1:]`` in CoaT) restores the axes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import prod


@dataclass(frozen=True)
class Tokens:
    """The positions of ``inner`` (a dim made of axis components) plus extra positions, such as
    a class token: no product of axes, but the axes are still there."""

    inner: tuple[tuple[int | None, int], ...]


Comp = tuple[int | Tokens | None, int]  # (input axis, tokens holding axes, or None; size)
Dim = tuple[Comp, ...]
Layout = tuple[Dim, ...]


def initial(shape: Sequence[int], ndim: int) -> Layout:
    """Layout of the model input: leading dims (batch, channels) are non-spatial."""
    lead = len(shape) - ndim
    return tuple(((None, s),) for s in shape[:lead]) + tuple(
        ((a, s),) for a, s in enumerate(shape[lead:])
    )


def axes_of(dim: Dim) -> frozenset[int]:
    """The input axes a tensor dim indexes (empty for channels)."""
    axes: set[int] = set()
    for a, _ in dim:
        if isinstance(a, Tokens):
            axes |= axes_of(a.inner)
        elif a is not None:
            axes.add(a)
    return frozenset(axes)


def with_extra_positions(dim: Dim, size: int) -> Dim:
    """``dim`` grown to ``size`` positions by concatenating positions that carry no axis."""
    if not axes_of(dim):
        return ((None, size),) if size != 1 else ()
    inner = dim[0][0].inner if len(dim) == 1 and isinstance(dim[0][0], Tokens) else dim
    return ((Tokens(inner), size),)


def spatial_axis(dim: Dim) -> int | None | bool:
    """The single axis a dim is, ``None`` if it carries none, ``False`` if it mixes an axis with
    other data (then a sliding window over it has no receptive-field meaning)."""
    axes = axes_of(dim)
    if not axes:
        return None
    others = [c for c in dim if c[1] != 1 and c[0] is None]
    if len(axes) == 1 and not others and not any(isinstance(a, Tokens) for a, _ in dim):
        return next(iter(axes))
    return False


def axis_sizes(layout: Layout, ndim: int) -> tuple[int, ...] | None:
    """Feature-map size per input axis, when each axis is still one component."""
    sizes: dict[int, int] = {}
    for dim in layout:
        for a, s in dim:
            if isinstance(a, int):  # an axis cut into windows has several pieces: multiply them
                sizes[a] = sizes.get(a, 1) * s
    if len(sizes) != ndim:
        return None
    return tuple(sizes[a] for a in range(ndim))


def resize(layout: Layout, shape: Sequence[int]) -> Layout:
    """Same dims, new sizes: for ops that keep each dim's meaning (conv, pool, interpolate)."""
    out: list[Dim] = []
    for dim, s in zip(layout, shape):
        if len(dim) == 1 and isinstance(dim[0][0], Tokens) and prod(c[1] for c in dim[0][0].inner) == s:
            out.append(dim[0][0].inner)  # the extra positions were sliced off again
        elif len(dim) == 1:
            out.append(((dim[0][0], s),))
        elif prod(c[1] for c in dim) == s:
            out.append(dim)
        elif not dim:
            out.append(((None, s),) if s != 1 else ())
        else:  # rescale the last component, keep the others
            rest = prod(c[1] for c in dim[:-1])
            out.append(dim[:-1] + ((dim[-1][0], max(1, s // max(1, rest))),))
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
            if 0 <= idx < len(lay) and prod(c[1] for c in lay[idx]) == s and lay[idx]:
                chosen = lay[idx]
                break
        if not chosen and s != 1:
            for lay in layouts:  # fall back to any same-position dim (sizes differ after broadcast)
                idx = len(lay) - rank + k
                if 0 <= idx < len(lay) and lay[idx]:
                    chosen = lay[idx]
                    break
        out.append(chosen if chosen else (((None, s),) if s != 1 else ()))
    return resize(tuple(out), shape)


def reduce(layout: Layout, dims: Sequence[int], keepdim: bool) -> tuple[Layout, frozenset[int]]:
    """A reduction (mean, sum, amax, ...) over ``dims``: returns the new layout and the input
    axes that were reduced over (those become global)."""
    n = len(layout)
    norm = {d % n for d in dims}
    reduced = frozenset().union(*(axes_of(layout[d]) for d in norm)) if norm else frozenset()
    if keepdim:
        return tuple(tuple((a, 1) for a, _ in dim) if i in norm else dim for i, dim in enumerate(layout)), reduced
    return tuple(dim for i, dim in enumerate(layout) if i not in norm), reduced


def reshape(layout: Layout, shape: Sequence[int], *, cut_axes: bool = False) -> Layout | None:
    """Layout after view / reshape / flatten / unflatten / squeeze / unsqueeze.

    Input components and output dims are grouped into minimal blocks of equal size. A block
    with one output dim merges its components; a block that splits components along their
    boundaries assigns them in order; a block that would cut a spatial component returns None,
    unless ``cut_axes``: then the pieces keep their axis (window index and offset in window),
    so that undoing the partition later restores the axis. The caller reports such a cut as an
    op of unknown receptive-field effect; keeping the axes lets local paths around it survive.
    """
    comps = _merge_pieces([c for dim in layout for c in dim if c[1] != 1])
    targets = [k for k, s in enumerate(shape) if s != 1]
    out: list[Dim] = [() for _ in shape]
    ci = oj = 0
    while ci < len(comps) or oj < len(targets):
        if ci >= len(comps) or oj >= len(targets):
            return None
        block_c, block_o = [comps[ci]], [targets[oj]]
        pc, po = comps[ci][1], shape[targets[oj]]
        ci, oj = ci + 1, oj + 1
        while pc != po:
            if pc < po:
                if ci >= len(comps):
                    return None
                block_c.append(comps[ci])
                pc *= comps[ci][1]
                ci += 1
            else:
                if oj >= len(targets):
                    return None
                block_o.append(targets[oj])
                po *= shape[targets[oj]]
                oj += 1
        if len(block_o) == 1:
            out[block_o[0]] = tuple(block_c)
        elif all(a is None for a, _ in block_c):
            for k in block_o:
                out[k] = ((None, shape[k]),)
        else:
            assigned = _split(block_c, [shape[k] for k in block_o], cut_axes)
            if assigned is None:
                return None
            for k, dim in zip(block_o, assigned):
                out[k] = dim
    return _reattach_unit_axes(layout, shape, tuple(out))


def _reattach_unit_axes(layout: Layout, shape: Sequence[int], out: Layout) -> Layout:
    """Size-1 spatial components (a 1x1 feature map) carry no data, so the block matching above
    drops them; put them back on the trailing size-1 output dims, right-aligned, so that a
    channel shuffle on a 1x1 map keeps H and W (ShuffleNet's last stage at 32 px)."""
    units = [(a, s) for dim in layout for a, s in dim if s == 1 and a is not None]
    units = [c for c in units if not any(c[0] == a for d in out for a, _ in d)]
    free = [k for k, s in enumerate(shape) if s == 1 and not out[k]]
    if not units or len(units) > len(free):
        return out
    result = list(out)
    for k, comp in zip(free[len(free) - len(units) :], units):
        result[k] = (comp,)
    return tuple(result)


def _merge_pieces(comps: list[Comp]) -> list[Comp]:
    """Adjacent pieces of one axis (window index, offset in window) back into one component:
    after a window partition is undone, the axis is whole again and can be cut anew."""
    merged: list[Comp] = []
    for a, s in comps:
        if merged and isinstance(a, int) and merged[-1][0] == a:
            merged[-1] = (a, merged[-1][1] * s)
        else:
            merged.append((a, s))
    return merged


def _split(comps: list[Comp], sizes: list[int], cut_axes: bool = False) -> list[Dim] | None:
    """Assign components to output dims in order; non-spatial components may be cut (spatial
    ones only with ``cut_axes``)."""
    comps = list(comps)
    result: list[Dim] = []
    for need in sizes:
        dim: list[Comp] = []
        while need > 1:
            if not comps:
                return None
            a, s = comps[0]
            if s <= need and need % s == 0:
                dim.append((a, s))
                need //= s
                comps.pop(0)
            elif (a is None or cut_axes and isinstance(a, int)) and s % need == 0:
                dim.append((a, need))
                comps[0] = (a, s // need)
                need = 1
            else:
                return None
        result.append(tuple(dim))
    return result if not comps else None
