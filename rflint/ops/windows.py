"""Op-table handlers for windows: convolutions, pooling, transposed convolutions, adaptive
pooling, interpolation, depth/space moves and unfolds. Each maps an :class:`~.opcall.OpCall`
to the input units every output unit reads, per axis (:class:`~rflint.ir.Taps`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from fractions import Fraction
from typing import Any

from rflint.rf.sizes import bin_taps
from rflint.ops import layout as L
from rflint.ops.call import (
    Effects,
    Lowered,
    OpCall,
    axis_values,
    compose,
    per_dim,
    same_rank,
    unknown,
)
from rflint.ir import Kind, Taps

# windows: conv, pool, transposed conv, adaptive pool, interpolation


def _lead_padding(padding: Any, n: int, kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int], sizes: Sequence[int | None]) -> tuple[int, ...] | None:
    """The padding before index 0 per spatial dim, for every way a frontend writes it."""
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return (0,) * n
        out = []
        for k, s, d, size in zip(kernel, stride, dilation, sizes):
            k_eff = d * (k - 1) + 1
            if mode == "same":
                total = k_eff - 1  # torch: only stride 1; the extra pixel goes after
            elif size is None:
                return None
            else:
                total = max((-(-size // s) - 1) * s + k_eff - size, 0)
            out.append(total - total // 2 if mode == "same_lower" else total // 2)
        return tuple(out)
    return tuple(int(p) for p in per_dim(padding or 0, n))


def window(
    call: OpCall,
    per_axis_taps: Callable[[int, int | None], Taps | None],
    n: int,
    kind: Kind = Kind.WINDOW,
    **display: Any,
) -> Lowered:
    """An op sliding over the last ``n`` dims of its first input: ``per_axis_taps(i, size)``
    gives the taps of the ``i``-th of them (its input size is ``size``)."""
    lay = call.first
    effects = Effects()
    out_lay = list(same_rank(lay, call.out_shape))
    for i in range(n):
        d = len(lay) - n + i
        ref = L.dim_axis(lay[d])
        if ref is None:
            continue  # e.g. a Conv1d over channels (ECA attention): no spatial effect
        if ref is False:
            return unknown(call, f"{call.name} slides over a dimension that mixes spatial and other data")
        taps = per_axis_taps(i, L.dim_size(lay[d]))
        if taps is None:
            continue
        if ref.upsample > 1:  # a depth-to-space dim: its units are channel groups of the grid
            if ref.step != 1:
                return unknown(call, f"{call.name} slides over a piece of an axis mixed with channels")
            taps = compose(Taps(1, ref.upsample, (0,) * ref.upsample, (0,) * ref.upsample), taps)
            out_lay[d] = (L.Comp(ref.axis, call.out_shape[d] if call.out_shape else L.dim_size(lay[d])),)
        taps = L.window_taps(ref, taps)
        effects.add(ref.axis, taps)
    return effects.lowered(call, kind, [tuple(out_lay)] * max(1, len(call.outputs)), **display)


def conv_like(call: OpCall, kernel: Sequence[int], n: int, kind: Kind = Kind.WINDOW) -> Lowered:
    stride = tuple(int(s) for s in per_dim(call.param("stride", kernel if call.op == "pool" else 1), n))
    dilation = tuple(int(d) for d in per_dim(call.param("dilation", 1), n))
    lay = call.first
    sizes = [L.dim_size(lay[len(lay) - n + i]) for i in range(n)]
    lead = _lead_padding(call.param("padding", 0), n, kernel, stride, dilation, sizes)
    if lead is None:
        return unknown(call, "padding of unknown size")

    def taps(i: int, _size: int | None) -> Taps | None:
        k_eff = dilation[i] * (kernel[i] - 1) + 1
        if k_eff == 1 and stride[i] == 1 and lead[i] == 0:
            return None
        return Taps.window(k_eff, stride[i], lead[i])

    low = window(
        call,
        taps,
        n,
        kind,
        kernel=axis_values(call, kernel, n, 1),
        stride=axis_values(call, [Fraction(s) for s in stride], n, Fraction(1)),
        dilation=axis_values(call, dilation, n, 1),
        padding=axis_values(call, lead, n, 0),
        in_channels=call.params.get("in_channels"),
        out_channels=call.params.get("out_channels"),
        groups=int(call.param("groups", 1)),
    )
    return plain_window(low, call.ndim)


def plain_window(low: Lowered, ndim: int) -> Lowered:
    """Drop taps that kernel / stride / dilation / padding already say (``Layer.axis_taps``
    derives them), so that the refinement advisor's edits of those fields take effect."""
    if low.taps is None or low.kind is not Kind.WINDOW:
        return low
    derived = []
    for a in range(ndim):
        k_eff = low.dilation[a] * (low.kernel[a] - 1) + 1
        s = low.stride[a]
        plain = k_eff == 1 and s == 1 and low.padding[a] == 0
        derived.append(None if plain else Taps.window(k_eff, int(s), low.padding[a]) if Fraction(s).denominator == 1 else False)
    return replace(low, taps=None) if tuple(derived) == low.taps else low


def conv(call: OpCall) -> Lowered:
    kernel = tuple(int(k) for k in call.params["kernel_size"])
    low = conv_like(call, kernel, len(kernel))
    if call.params.get("circular") and low.kind is not Kind.UNKNOWN:  # padding_mode="circular" reads the far border
        side = axis_values(call, [True] * len(kernel), len(kernel), False)
        low = replace(low, side_global=side)
    return low


def pool(call: OpCall) -> Lowered:
    n = len(call.params["kernel_size"]) if isinstance(call.params["kernel_size"], (tuple, list)) else call.param("n", len(call.first) - 2)
    kernel = tuple(int(k) for k in per_dim(call.params["kernel_size"], n))
    return conv_like(call, kernel, n)


def transposed_taps(k: int, s: int, p: int, d: int) -> Taps:
    """Output ``o`` of a transposed conv reads input ``j`` when ``o + p - s j`` is a tap
    ``0, d, ..., d (k - 1)``: per phase ``o mod s``, the hull of those ``j``."""
    lo, hi = [], []
    for o in range(s):
        js = [j for j in range(-(-(o + p - d * (k - 1)) // s), (o + p) // s + 1) if (o + p - s * j) % d == 0]
        lo.append(min(js) if js else 1)
        hi.append(max(js) if js else 0)
    return Taps(1, s, tuple(lo), tuple(hi))


def conv_transpose(call: OpCall) -> Lowered:
    kernel = tuple(int(k) for k in call.params["kernel_size"])
    n = len(kernel)
    stride = tuple(int(s) for s in per_dim(call.param("stride", 1), n))
    dilation = tuple(int(d) for d in per_dim(call.param("dilation", 1), n))
    padding = call.param("padding", 0)
    if isinstance(padding, str):
        return unknown(call, f"transposed convolution with padding {padding!r}")
    lead = tuple(int(p) for p in per_dim(padding, n))
    per_axis = [transposed_taps(k, s, p, d) for k, s, p, d in zip(kernel, stride, lead, dilation)]
    # kernel and dilation as written (the taps above carry the field): parameters and MACs
    # count the whole kernel, and ``inspect`` shows what the code says
    return window(
        call,
        lambda i, _size: per_axis[i],
        n,
        Kind.UPSAMPLE if any(s > 1 for s in stride) else Kind.WINDOW,
        kernel=axis_values(call, kernel, n, 1),
        stride=axis_values(call, [Fraction(1, s) for s in stride], n, Fraction(1)),
        dilation=axis_values(call, dilation, n, 1),
        in_channels=call.params.get("in_channels"),
        out_channels=call.params.get("out_channels"),
        groups=int(call.param("groups", 1)),
    )


def adaptive(call: OpCall) -> Lowered:
    """Adaptive pooling: to 1 it is global; to ``n`` it reads each bin (uneven bins make
    neighbouring units read different widths); to more cells than the input has, it upsamples."""
    lay = call.first
    n = int(call.param("n", len(lay) - 2))
    out_shape = call.out_shape
    if out_shape is None:
        return unknown(call, "adaptive pooling to an unknown size")
    sizes_in = [L.dim_size(lay[len(lay) - n + i]) for i in range(n)]
    sizes_out = list(out_shape[len(out_shape) - n :])
    effects = Effects()
    kernel, stride = [1] * n, [Fraction(1)] * n
    for i in range(n):
        ref = L.dim_axis(lay[len(lay) - n + i])
        if ref is None or sizes_in[i] == sizes_out[i]:
            continue
        if ref is False or ref.step != 1 or ref.upsample != 1:
            return unknown(call, f"{call.name} over a dimension that mixes spatial and other data")
        if sizes_out[i] == 1:
            effects.add(ref.axis, None)
            continue
        taps = bin_taps(sizes_in[i], sizes_out[i])
        effects.add(ref.axis, taps)
        kernel[i] = max(h - l + 1 for l, h in zip(taps.lo, taps.hi))
        stride[i] = Fraction(sizes_in[i], sizes_out[i])
    windowed = [t for t in effects.taps.values() if t is not None]
    if not windowed:
        kind = Kind.GLOBAL if effects.taps else Kind.POINTWISE
    else:
        kind = Kind.UPSAMPLE if any(s < 1 for s in stride) else Kind.WINDOW
    return effects.lowered(
        call,
        kind,
        [same_rank(lay, out_shape)],
        kernel=axis_values(call, kernel, n, 1) if windowed else (),
        stride=axis_values(call, stride, n, Fraction(1)) if windowed else (),
        dilation=(1,) * call.ndim if windowed else (),
    )


def resample_taps(
    size_in: int,
    size_out: int,
    mode: str,
    *,
    align_corners: bool = False,
    scale: Fraction | None = None,
    coord: str | None = None,
    nearest: str = "floor",
) -> Taps | None:
    """The input units (with a non-zero weight) output unit ``o`` of an interpolation reads.

    The source coordinate is ``(o + 1/2) s - 1/2`` ("half_pixel", PyTorch's linear modes with
    ``align_corners=False``), ``o s`` ("asymmetric", PyTorch's ``nearest``) or
    ``o (in - 1) / (out - 1)`` ("align_corners"), with ``s`` the input units per output unit
    (``1 / scale_factor`` when the caller gave one, else ``in / out``). Nearest picks one unit,
    linear the two around the source (one when it falls on a unit), cubic four. Returns None for
    an unknown mode."""
    mode = mode.lower()
    if mode in ("area",):
        return bin_taps(size_in, size_out)
    if size_in == size_out and (scale is None or scale == 1):
        return None
    if coord is None:
        coord = "align_corners" if align_corners else ("asymmetric" if mode == "nearest" else "half_pixel")
    if coord == "align_corners":
        s = Fraction(size_in - 1, max(size_out - 1, 1))
    else:
        s = scale if scale is not None else Fraction(size_in, size_out)
    period, shift = s.denominator, s.numerator
    lo, hi = [], []
    for o in range(period):
        if coord == "align_corners":
            src = o * s
        elif coord == "asymmetric":
            src = o * s
        else:  # half_pixel, pytorch_half_pixel
            src = (o + Fraction(1, 2)) * s - Fraction(1, 2)
        base = math.floor(src)
        frac = src - base
        if mode in ("nearest",):
            if nearest == "floor":
                i = base
            elif nearest == "ceil":
                i = math.ceil(src)
            elif nearest == "round_prefer_ceil":
                i = math.floor(src + Fraction(1, 2))
            else:  # round_prefer_floor
                i = math.ceil(src - Fraction(1, 2))
            lo.append(i), hi.append(i)
        elif mode in ("nearest-exact",):
            i = math.floor((o + Fraction(1, 2)) * s)
            lo.append(i), hi.append(i)
        elif mode in ("linear", "bilinear", "trilinear"):
            lo.append(base), hi.append(base + (1 if frac else 0))
        elif mode in ("cubic", "bicubic"):
            lo.append(base - (1 if frac else 0)), hi.append(base + (2 if frac else 0))
        else:
            return None
    return Taps(shift, period, tuple(lo), tuple(hi))


def interpolate(call: OpCall) -> Lowered:
    lay = call.first
    n = len(lay) - 2
    out_shape = call.out_shape
    mode = str(call.param("mode", "nearest"))
    if out_shape is None:
        return unknown(call, "interpolation to an unknown size")
    scales = per_dim(call.param("scale", None), n)
    per_axis = []
    for i in range(n):
        size_in, size_out = L.dim_size(lay[2 + i]), out_shape[2 + i]
        scale = Fraction(scales[i]).limit_denominator(1 << 16) if scales[i] is not None else None
        taps = resample_taps(
            size_in,
            size_out,
            mode,
            align_corners=bool(call.param("align_corners", False)),
            scale=scale,
            coord=call.params.get("coord"),
            nearest=call.param("nearest_mode", "floor"),
        )
        if taps is None and (size_in != size_out or mode.lower() not in _RESAMPLE_MODES):
            return unknown(call, f"interpolation mode {mode!r}")
        per_axis.append(taps)
    reads = [max(h - l + 1 for l, h in zip(t.lo, t.hi)) if t else 1 for t in per_axis]
    stride = [Fraction(t.shift, t.period) if t else Fraction(1) for t in per_axis]
    kind = Kind.UPSAMPLE if any(t is not None for t in per_axis) else Kind.POINTWISE
    return window(
        call,
        lambda i, _size: per_axis[i],
        n,
        kind,
        kernel=axis_values(call, reads, n, 1),
        stride=axis_values(call, stride, n, Fraction(1)),
        dilation=(1,) * call.ndim,
    )


_RESAMPLE_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "trilinear", "cubic", "bicubic", "area")


def pixel_shuffle(call: OpCall) -> Lowered:
    """Depth-to-space by ``factor``: output unit ``o`` reads input unit ``o // factor``."""
    r = int(call.params["factor"])
    return _last_two_dims(call, Taps(1, r, (0,) * r, (0,) * r), Kind.UPSAMPLE, kernel=1, stride=Fraction(1, r))


def pixel_unshuffle(call: OpCall) -> Lowered:
    """Space-to-depth by ``factor``: each output unit holds a ``factor`` wide block."""
    r = int(call.params["factor"])
    return _last_two_dims(call, Taps.window(r, r, 0), Kind.RESHAPE, kernel=r, stride=Fraction(r))


def _last_two_dims(call: OpCall, taps: Taps, kind: Kind, kernel: int, stride: Fraction) -> Lowered:
    """pixel_(un)shuffle: the same taps on the last two dims, channels rescaled."""
    lay = call.first
    effects = Effects()
    for d in range(len(lay) - 2, len(lay)):
        ref = L.dim_axis(lay[d])
        if ref is False or (ref is not None and (ref.step != 1 or ref.upsample != 1)):
            return unknown(call, f"{call.op} over a dimension that mixes spatial and other data")
        if ref is not None:
            effects.add(ref.axis, taps)
    out = same_rank(lay, call.out_shape)
    out = tuple(L._plain(L.dim_size(dim)) if d == len(out) - 3 else dim for d, dim in enumerate(out))
    return effects.lowered(call, kind, [out], kernel=(kernel,) * call.ndim, stride=(stride,) * call.ndim)


def unfold(call: OpCall) -> Lowered:
    """``F.unfold`` (im2col): windows over the last two dims, their grid flattened into one dim."""
    lay = call.first
    kernel = tuple(int(k) for k in per_dim(call.params["kernel_size"], 2))
    low = conv_like(call, kernel, 2)
    if low.kind is Kind.UNKNOWN:
        return low
    refs = [L.dim_axis(lay[-2]), L.dim_axis(lay[-1])]
    out_shape = call.out_shape
    if out_shape is None or any(r is False for r in refs):
        return unknown(call, "unfold over dimensions rflint cannot follow")
    stride = tuple(int(s) for s in per_dim(call.param("stride", 1), 2))
    dil = tuple(int(d) for d in per_dim(call.param("dilation", 1), 2))
    pad = tuple(int(p) for p in per_dim(call.param("padding", 0), 2))
    grid = [
        (L.dim_size(lay[-2 + i]) + 2 * pad[i] - dil[i] * (kernel[i] - 1) - 1) // stride[i] + 1 for i in range(2)
    ]
    tokens = tuple(L.Comp(r.axis, g) for r, g in zip(refs, grid) if r is not None)
    out = tuple(lay[: len(lay) - 3]) + (L._plain(out_shape[-2]), tokens)
    return replace(low, layouts=(out,))


def tensor_unfold(call: OpCall) -> Lowered:
    """``x.unfold(dim, size, step)``: windows along one dim, the offsets in a new last dim."""
    lay = call.first
    dim = int(call.params["dim"]) % len(lay)
    size, step = int(call.params["size"]), int(call.params["step"])
    ref = L.dim_axis(lay[dim])
    effects = Effects()
    if ref is False:
        return unknown(call, "unfold over a dimension that mixes spatial and other data")
    if ref is not None:
        effects.add(ref.axis, L.window_taps(ref, Taps.window(size, step, 0)))
    out_shape = call.out_shape or ()
    out = list(same_rank(lay, tuple(out_shape[:-1])) if out_shape else lay)
    out.append(L._plain(size))
    return effects.lowered(call, Kind.WINDOW if ref is not None else Kind.RESHAPE, [tuple(out)], kernel=(), stride=())
