"""Op-table handlers for ops that move data (pads, crops, slices, reshapes, permutes,
broadcasts) and that merge or split tensors (elementwise ops, concatenation, stacking, splits)."""

from __future__ import annotations

from fractions import Fraction

from rflint.ops import layout as L
from rflint.ops.call import (
    Effects,
    Lowered,
    OpCall,
    opaque,
    same_rank,
    unknown,
)
from rflint.ir import Kind, Taps

# ---------------------------------------------------------------------------------------------
# moving data: pads, crops, slices, reshapes


def pad(call: OpCall) -> Lowered:
    """``pads`` holds (before, after) per tensor dim; padding ``b`` before index 0 shifts the
    output grid by ``-b``, a negative pad crops. Circular padding also reads the far border."""
    lay = call.first
    pads = call.params["pads"]
    effects = Effects()
    out = list(same_rank(lay, call.out_shape))
    constant = str(call.param("mode", "constant")) == "constant"
    for d, (before, _after) in enumerate(pads):
        if not before and not _after:
            continue
        ref = L.dim_axis(lay[d])
        if ref is None:
            continue
        if ref is False and constant and before >= 0 and _after >= 0 and call.out_shape and _token_dim(lay[d]):
            # constant positions added to a token dim (CoaT pads a class-token slot): extra
            # positions that carry no axis, as a concatenated class token
            out[d] = L.with_extra_positions(lay[d], call.out_shape[d])
            continue
        if ref is False or ref.step != 1 or ref.upsample != 1:
            return unknown(call, "padding of a dimension that mixes spatial and other data")
        if before:
            effects.add(ref.axis, Taps.shifted(-int(before)))
        if str(call.param("mode", "constant")) == "circular":
            effects.side.add(ref.axis)
    return effects.lowered(call, Kind.RESHAPE, [tuple(out)])


def _token_dim(dim: L.Dim) -> bool:
    """A dim of whole axes merged as tokens (ViT's H*W), or tokens with extra positions."""
    spatial = [c for c in dim if c.size != 1 and c.axis is not None]
    return bool(spatial) and all(isinstance(c.axis, L.Tokens) or c.step == 1 for c in spatial) and (
        len(L.axes_of(dim)) > 1 or any(isinstance(c.axis, L.Tokens) for c in spatial)
    ) and not any(c.axis is None and c.size != 1 for c in dim)


def index(call: OpCall) -> Lowered:
    """Tensor indexing with ints (drop a dim: that unit's field), slices (``start::step`` reads
    unit ``step j + start``: a stride with an offset), None (new dim), ``...`` and tensors
    (positions picked by data: global along that dim)."""
    lay = call.first
    items = list(call.params["items"])
    n_real = sum(1 for i in items if i is not None and i is not Ellipsis)
    if Ellipsis in items:
        pos = items.index(Ellipsis)
        items[pos : pos + 1] = [slice(None)] * (len(lay) - n_real)
    items += [slice(None)] * (len(lay) - sum(1 for i in items if i is not None))
    effects = Effects()
    out: list[L.Dim] = []
    d = 0
    for it in items:
        if it is None:
            out.append(())
            continue
        dim = lay[d]
        d += 1
        size = L.dim_size(dim)
        ref = L.dim_axis(dim)
        if it == "tensor":
            if ref is not None:
                effects.merge(L.mix(lay, [d - 1]))
            out.append(dim)
            continue
        plain = isinstance(ref, L.AxisRef) and ref.step == 1 and ref.upsample == 1
        if isinstance(it, int):
            if ref is not None and size > 1:
                if plain:
                    effects.add(ref.axis, Taps.shifted(it % size))
                else:  # one of several tokens (a class token), or a piece: at most all of them
                    effects.merge(L.mix(lay, [d - 1]))
            continue
        start, stop, step = it.indices(size)
        if ref is not None and (start, step) != (0, 1):
            if plain:
                effects.add(ref.axis, Taps(step, 1, (start,), (start,)))
            elif not (step == 1 and isinstance(dim[0].axis, L.Tokens)):  # slicing extra token positions off keeps the axes
                effects.merge(L.mix(lay, [d - 1]))
        out.append(dim)
    lay_out = same_rank(tuple(out), call.out_shape)
    strided = any(t is not None and t.shift != 1 for t in effects.taps.values())
    stride = tuple(Fraction(effects.taps[a].shift) if effects.taps.get(a) is not None else Fraction(1) for a in range(call.ndim))
    return effects.lowered(
        call,
        Kind.WINDOW if strided else Kind.RESHAPE,
        [lay_out],
        kernel=(1,) * call.ndim if strided else (),
        stride=stride if strided else (),
        dilation=(1,) * call.ndim if strided else (),
    )


def reshape(call: OpCall) -> Lowered:
    if call.out_shape is None:
        return unknown(call, "reshape to an unknown shape")
    result = L.reshape(call.first, call.out_shape)
    if result is None:
        return unknown(call, "a reshape that cuts extra token positions apart")
    effects = Effects()
    for a, t in result.taps.items():
        effects.add(a, t)
    s2d = sorted(result.taps)
    display = {}
    if s2d:
        blocks = [result.taps[a].shift if a in result.taps else 1 for a in range(call.ndim)]
        display = {"kernel": tuple(blocks), "stride": tuple(Fraction(b) for b in blocks), "note": "space-to-depth"}
    return effects.lowered(call, Kind.RESHAPE, [result.layout], **display)


def permute(call: OpCall) -> Lowered:
    return Lowered(Kind.RESHAPE, (L.permute(call.first, call.params["dims"]),))


def transpose(call: OpCall) -> Lowered:
    lay = call.first
    d0, d1 = call.param("dim0", 0), call.param("dim1", 1)
    return Lowered(Kind.RESHAPE, (L.transpose(lay, d0, d1),))


def expand(call: OpCall) -> Lowered:
    """Broadcasting a size-1 dim (a 1x1 map spread over a grid: every unit reads unit 0);
    tiling a dim that already has positions repeats them (global along it)."""
    lay = call.first
    out_shape = call.out_shape
    if out_shape is None:
        return unknown(call, "expand to an unknown shape")
    lay = ((),) * (len(out_shape) - len(lay)) + tuple(lay)
    effects = Effects()
    out: list[L.Dim] = []
    for d, (dim, size) in enumerate(zip(lay, out_shape)):
        have = L.dim_size(dim)
        ref = L.dim_axis(dim)
        if have == size:
            out.append(dim)
        elif ref is None or ref is False:
            out.append(L._plain(size) if not L.axes_of(dim) else dim)
            if ref is False:
                effects.merge(L.mix(lay, [d]))
        elif have == 1:
            effects.add(ref.axis, Taps(0, 1, (0,), (0,)))
            out.append((L.Comp(ref.axis, size),))
        else:
            effects.merge(L.mix(lay, [d]))
            out.append((L.Comp(ref.axis, size),))
    return effects.lowered(call, Kind.RESHAPE, [tuple(out)])


# ---------------------------------------------------------------------------------------------
# merges, splits, elementwise


def pointwise(call: OpCall) -> Lowered:
    """Elementwise ops; with several input-dependent operands it is a merge of their paths."""
    deps = call.dependent
    merge = len(deps) > 1
    shapes = call.outputs or (None,)
    layouts = []
    for shape in shapes:
        if shape is None:
            layouts.append(deps[0].layout)
        elif not merge and len(deps[0].layout) == len(shape):
            layouts.append(L.resize(deps[0].layout, shape))
        else:
            layouts.append(L.broadcast([o.layout for o in deps], shape))
    return Lowered(Kind.MERGE if merge else Kind.POINTWISE, tuple(layouts))


def cat(call: OpCall) -> Lowered:
    """Concatenation merges paths. Along a token dim with extra positions that carry no axes (a
    class token) the dim becomes opaque; along a spatial axis, one input-dependent part after
    constant ones is shifted (padding by concatenation); two input-dependent parts side by side
    along an axis cannot be told apart by position."""
    lay = call.first
    out_shape = call.out_shape
    if out_shape is None or len(lay) != len(out_shape):
        return Lowered(Kind.MERGE if len(call.dependent) > 1 else Kind.POINTWISE, (lay,))
    dim = int(call.param("dim", 0)) % len(lay)
    effects = Effects()
    out = list(L.resize(lay, out_shape))
    ref = L.dim_axis(lay[dim])
    sizes = [o.shape[dim] if o.shape is not None and len(o.shape) > dim else 0 for o in call.inputs]
    if L.axes_of(lay[dim]) and L.dim_size(lay[dim]) != out_shape[dim]:
        if isinstance(ref, L.AxisRef) and ref.step == 1 and ref.upsample == 1 and len(call.dependent) == 1:
            index = next(i for i, o in enumerate(call.inputs) if o.dependent)
            before = sum(sizes[:index])
            if before:
                effects.add(ref.axis, Taps.shifted(-before))
            out[dim] = (L.Comp(ref.axis, out_shape[dim]),)
        elif all(L.axes_of(o.layout[dim]) == L.axes_of(lay[dim]) for o in call.dependent) and len(call.dependent) > 1 and not _token_like(call, dim):
            return unknown(call, "concatenation along a spatial axis")
        else:
            out[dim] = L.with_extra_positions(lay[dim], out_shape[dim])
    kind = Kind.MERGE if len(call.dependent) > 1 else Kind.POINTWISE
    return effects.lowered(call, kind, [tuple(out)])


def _token_like(call: OpCall, dim: int) -> bool:
    """Concatenating along a dim that already holds several axes (tokens) adds positions."""
    return any(len(L.axes_of(o.layout[dim])) > 1 or isinstance(L.dim_axis(o.layout[dim]), bool) for o in call.dependent)


def stack(call: OpCall) -> Lowered:
    lay = list(call.first)
    out_shape = call.out_shape or ()
    dim = int(call.param("dim", 0)) % max(1, len(out_shape))
    lay.insert(dim, L._plain(out_shape[dim]) if out_shape else ())
    return Lowered(Kind.MERGE if len(call.dependent) > 1 else Kind.POINTWISE, (tuple(lay),))


def split(call: OpCall) -> Lowered:
    """split / chunk / unbind: each output is a part along one dim. Parts of a spatial axis
    would each be offset differently, which one layer cannot say."""
    lay = call.first
    dim = call.params.get("dim")
    if dim is not None and len(call.outputs) > 1:
        ref = L.dim_axis(lay[int(dim) % len(lay)])
        if ref is not None and L.dim_size(lay[int(dim) % len(lay)]) > 1 and call.op != "unbind":
            return unknown(call, "splitting a spatial axis into parts")
    layouts = []
    for shape in call.outputs:
        if shape is None:
            layouts.append(None)
        elif len(shape) == len(lay):
            layouts.append(L.resize(lay, shape))
        elif dim is not None and len(shape) == len(lay) - 1:  # unbind: the dim is dropped
            d = int(dim) % len(lay)
            layouts.append(L.resize(lay[:d] + lay[d + 1 :], shape))
        else:
            reshaped = L.reshape(lay, shape)
            if reshaped is None and any(L.axes_of(d) for d in lay):
                return unknown(call, f"{call.name} to parts whose layout cannot be followed")
            layouts.append(reshaped.layout if reshaped is not None else opaque(shape))
    return Lowered(Kind.POINTWISE, tuple(layouts))


# ---------------------------------------------------------------------------------------------
# library window reassembly kept opaque to torch.fx (timm's window_reverse / grid_reverse)

#: the permutation that reassembles ``[B*nW, a, b, C]`` viewed as ``[B, H/a, W/b, a, b, C]``
#: (window: the window index outside, the offset inside) or as grid cells (grid: the cell
#: index inside, the offset across cells outside)
_REASSEMBLY = {"window": (0, 1, 3, 2, 4, 5), "grid": (0, 3, 1, 4, 2, 5)}


def window_reverse(call: OpCall) -> Lowered:
    """timm's ``window_reverse`` / ``grid_reverse``: a view to ``[-1, H/a, W/b, a, b, C]``, a
    permute and a view to ``[-1, H, W, C]``, followed on the layouts as those three ops (so a
    window index in the batch dim and in-window offsets in the rows rebuild the axes)."""
    lay, out_shape, in_shape = call.first, call.out_shape, call.inputs[0].shape
    (a, b), (h, w) = call.params["window"], call.params["image"]
    if out_shape is None or in_shape is None or len(in_shape) != 4 or h % a or w % b:
        return unknown(call, f"{call.name} with operands of unexpected shape")
    c = in_shape[-1]
    batch = in_shape[0] * a * b // (h * w)
    viewed = L.reshape(lay, (batch, h // a, w // b, a, b, c))
    if viewed is None or viewed.taps:
        return unknown(call, f"{call.name}: the windows cannot be followed")
    result = L.reshape(L.permute(viewed.layout, _REASSEMBLY[call.params["order"]]), out_shape)
    if result is None or result.taps:
        return unknown(call, f"{call.name}: the windows cannot be followed")
    return Lowered(Kind.RESHAPE, (result.layout,), note="window reassembly")
