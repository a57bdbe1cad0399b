"""Op-table handlers for ops that mix positions along dims: reductions, softmax and scans,
sorting, rolls, linear layers, matmuls, einsum, attention, normalisation statistics, and the
library blocks torchvision keeps opaque (Swin's windowed attention and patch merging), plus
user-declared ops."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

from rflint.ops import layout as L
from rflint.ops.call import (
    Effects,
    Lowered,
    OpCall,
    Operand,
    all_outputs,
    axis_values,
    compose,
    dims_of,
    global_spatial,
    identity,
    mixing,
    per_dim,
    same_rank,
    unknown,
)
from rflint.ir import Kind, Taps

from rflint.ops.windows import conv_like, window

def reduce(call: OpCall) -> Lowered:
    lay = call.first
    dims = dims_of(call, lay)
    effects = Effects()
    effects.merge(L.mix(lay, dims))
    out = L.reduce(lay, dims, bool(call.param("keepdim", False)))
    return mixing(call, effects, [same_rank(out, s) for s in call.outputs] or [out])


def along(call: OpCall) -> Lowered:
    """softmax, a prefix scan (cumsum: unit i reads [0, i]), sort, topk, flip, gather, ... along
    a dim: every output position depends on every position of that dim (a scan on its far
    side only, which is still the whole axis for the widest unit)."""
    lay = call.first
    effects = Effects()
    effects.merge(L.mix(lay, dims_of(call, lay)))
    return mixing(call, effects, all_outputs(call, lay))


def roll(call: OpCall) -> Lowered:
    """A cyclic shift: interior units read ``o - shift``; units within ``shift`` of the border
    read the far border, which is kept as a global side path (so r_max stays the interior
    units' field while the global reach is reported). A roll of a piece of an axis (inside a
    window, or of the window index) is followed on the whole axis (:func:`layout.roll_taps`)."""
    lay = call.first
    shifts = call.params["shifts"]
    dims = call.params.get("dims")
    shifts = list(shifts) if isinstance(shifts, (tuple, list)) else [shifts]
    if dims is None:
        return along(replace(call, params={"dims": None}))
    dims = list(dims) if isinstance(dims, (tuple, list)) else [dims]
    effects = Effects()
    for shift, d in zip(shifts, dims):
        rolled = L.roll_taps(lay, int(d) % len(lay), int(shift))
        if rolled is None:
            continue
        if rolled is False:  # cannot follow the positions: every position of the dim, at most
            effects.merge(L.mix(lay, [int(d)]))
            continue
        axis, taps = rolled
        effects.add(axis, taps)
        if taps.period == 1:  # the wrapped units read the far border
            effects.side.add(axis)
    return effects.lowered(call, Kind.RESHAPE, [lay])


def linear(call: OpCall) -> Lowered:
    """A linear layer acts on the last dim: global over the axes that dim carries."""
    lay = call.first
    effects = Effects()
    effects.merge(L.mix(lay, [len(lay) - 1]))
    out_shape = call.out_shape
    width = out_shape[-1] if out_shape else call.params.get("out_channels")
    out = tuple(lay[:-1]) + (L._plain(int(width)) if width else (),)
    return mixing(call, effects, [out], in_channels=call.params.get("in_channels"), out_channels=call.params.get("out_channels"))


def matmul(call: OpCall) -> Lowered:
    """``a @ b`` contracts a's last dim with b's second-to-last: those positions are mixed."""
    a, b = call.inputs[0], call.inputs[1]
    a_l, b_l = a.layout_or_plain(), b.layout_or_plain()
    out_shape = call.out_shape
    if a_l is None or b_l is None or out_shape is None:
        return unknown(call, f"{call.name} with operands of unknown shape")
    effects = Effects()
    if a.dependent:
        effects.merge(L.mix(a_l, [len(a_l) - 1]))
    if b.dependent and len(b_l) >= 2:
        effects.merge(L.mix(b_l, [len(b_l) - 2]))
    rank = len(out_shape)
    if rank < 2:
        return mixing(call, effects, [()])
    batch = L.broadcast([a_l[:-2] if len(a_l) > 2 else (), b_l[:-2] if len(b_l) > 2 else ()], out_shape[: rank - 2])
    rows = a_l[-2] if len(a_l) >= 2 else ()
    cols = b_l[-1] if len(b_l) >= 2 else ()
    out, dup = L.dedupe(L.resize(tuple(batch) + (rows, cols), out_shape))
    effects.merge(dup)
    return mixing(call, effects, [out])


def einsum_specs(equation: str, ranks: list[int]) -> tuple[list[str], str]:
    """Operand and output label strings of an einsum, with ``...`` expanded to unique labels."""
    lhs, arrow, rhs = equation.replace(" ", "").partition("->")
    specs = lhs.split(",")
    free = iter("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    width = max((rank - (len(sp) - 3) for sp, rank in zip(specs, ranks) if "..." in sp), default=0)
    ellipsis = "".join(next(free) for _ in range(width))
    specs = [sp.replace("...", ellipsis[len(ellipsis) - (rank - (len(sp) - 3)) :]) for sp, rank in zip(specs, ranks)]
    if not arrow:
        counts = {c: lhs.count(c) for c in "".join(specs)}
        rhs = ellipsis + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ellipsis))
    return specs, rhs.replace("...", ellipsis)


def einsum(call: OpCall) -> Lowered:
    """Labels summed over (absent from the output) mix every position of the dims they name;
    output labels keep their operand's dim."""
    ranks = [len(o.shape) if o.shape is not None else 0 for o in call.inputs]
    specs, out_spec = einsum_specs(call.params["equation"], ranks)
    dims: dict[str, L.Dim] = {}
    effects = Effects()
    for spec, operand in zip(specs, call.inputs):
        if not operand.dependent:
            continue
        lay = operand.layout
        summed = [d for d, label in enumerate(spec) if label not in out_spec]
        effects.merge(L.mix(lay, summed))
        for label, dim in zip(spec, lay):
            if label in out_spec and dim and label not in dims:
                dims[label] = dim
    out_shape = call.out_shape or tuple(1 for _ in out_spec)
    out, dup = L.dedupe(L.resize(tuple(dims.get(label, ()) for label in out_spec), out_shape))
    effects.merge(dup)
    return mixing(call, effects, [out])


def attention(call: OpCall) -> Lowered:
    """scaled_dot_product_attention(q, k, v): every query sees every key position."""
    q, k, v = (call.inputs + (Operand(None, None),) * 3)[:3]
    effects = Effects()
    for operand in (k, v):
        if operand.dependent and len(operand.layout) >= 2:
            effects.merge(L.mix(operand.layout, [len(operand.layout) - 2]))
    lay = q.layout if q.dependent else call.first
    return mixing(call, effects, [same_rank(lay, call.out_shape)])


def multihead_attention(call: OpCall) -> Lowered:
    """nn.MultiheadAttention(query, key, value): the sequence dim of key and value is mixed."""
    seq = 1 if call.param("batch_first", False) else 0
    effects = Effects()
    for operand in call.inputs[1:3]:
        if operand.dependent and len(operand.layout) > seq:
            effects.merge(L.mix(operand.layout, [seq]))
    lay = call.inputs[0].layout if call.inputs[0].dependent else call.first
    layouts = [same_rank(lay, call.outputs[0]) if call.outputs else lay] + [None] * (len(call.outputs) - 1)
    return mixing(call, effects, layouts)


def norm(call: OpCall) -> Lowered:
    """Normalisation: statistics over ``stats`` dims. Running statistics (BatchNorm in eval
    mode) are constants, so the op is pointwise; statistics over spatial dims (InstanceNorm,
    GroupNorm, LayerNorm over H and W) make every output depend on the whole map: a global
    side path beside the local one, like a squeeze-and-excitation gate."""
    lay = call.first
    effects = Effects()
    stats = [int(d) % len(lay) for d in call.param("stats", ())]
    for a in L.mix(lay, stats):
        effects.side.add(a)
    return effects.lowered(call, Kind.POINTWISE, all_outputs(call, lay))


# ---------------------------------------------------------------------------------------------
# library blocks kept opaque by torchvision / timm, and user-declared ops


def _channels_last_hw(call: OpCall) -> list[tuple[int, L.AxisRef | None | bool, int]]:
    lay = call.first
    return [(d, L.dim_axis(lay[d]), L.dim_size(lay[d])) for d in (len(lay) - 3, len(lay) - 2)]


def window_attention(call: OpCall) -> Lowered:
    """torchvision's ``shifted_window_attention`` on ``[B, H, W, C]``: each position attends to
    the window that holds it after the cyclic shift (Swin masks the windows that wrap, so the
    far border is not reached); one window over the whole map is global."""
    window = per_dim(call.params["window_size"], 2)
    shift = per_dim(call.param("shift_size", 0), 2)
    effects = Effects()
    for i, (d, ref, size) in enumerate(_channels_last_hw(call)):
        if ref is None:
            continue
        if ref is False or ref.step != 1 or ref.upsample != 1:
            return unknown(call, "windowed attention over a dimension that mixes spatial and other data")
        ws, s = int(window[i]), int(shift[i])
        if ws >= size:
            effects.add(ref.axis, None)
            continue
        s = s % ws if ws < size else 0
        lo = tuple(ws * ((o + s) // ws) - s for o in range(ws))
        effects.add(ref.axis, Taps(ws, ws, lo, tuple(x + ws - 1 for x in lo)))
    return mixing(call, effects, [same_rank(call.first, call.out_shape)], note="windowed self-attention")


def patch_merging(call: OpCall) -> Lowered:
    """torchvision's ``_patch_merging_pad``: a 2x2 space-to-depth of ``[B, H, W, C]``."""
    effects = Effects()
    for _d, ref, _size in _channels_last_hw(call):
        if ref is None:
            continue
        if ref is False or ref.step != 1 or ref.upsample != 1:
            return unknown(call, "patch merging over a dimension that mixes spatial and other data")
        effects.add(ref.axis, Taps.window(2, 2, 0))
    return effects.lowered(
        call, Kind.RESHAPE, [same_rank(call.first, call.out_shape)], kernel=(2,) * call.ndim,
        stride=(Fraction(2),) * call.ndim, note="2x2 space-to-depth",
    )


def custom(call: OpCall) -> Lowered:
    """An op the user declared (``[tool.rflint.ops]``): a window, pointwise, global or an
    upsampling by ``stride``, over the last spatial dims of its first input."""
    kind = str(call.params["kind"])
    lay = call.first
    n = sum(1 for dim in lay if L.axes_of(dim)) or call.ndim
    if kind == "pointwise":
        return identity(call)
    if kind == "global":
        return global_spatial(call)
    kernel = tuple(int(k) for k in per_dim(call.param("kernel_size", 1), n))
    if kind == "upsample":
        factor = tuple(int(s) for s in per_dim(call.param("stride", 2), n))
        nearest = [Taps(1, f, (0,) * f, (0,) * f) for f in factor]
        per_axis = [compose(t, Taps.window(k, 1, k // 2)) if k > 1 else t for t, k in zip(nearest, kernel)]
        return window(call, lambda i, _size: per_axis[i], n, Kind.UPSAMPLE, kernel=axis_values(call, kernel, n, 1),
                       stride=axis_values(call, [Fraction(1, f) for f in factor], n, Fraction(1)), dilation=(1,) * call.ndim)
    params = dict(call.params)
    params.setdefault("padding", "same" if all(int(s) == 1 for s in per_dim(call.param("stride", 1), n)) else 0)
    return conv_like(replace(call, params=params), kernel, n)
