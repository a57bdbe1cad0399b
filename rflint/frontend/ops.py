"""One table of op semantics: what every op does to the receptive field. Pure Python.

The frontends (torch.fx, torch.export, ONNX) only *normalise* their nodes into an
:class:`OpCall` (a canonical op name, hyper-parameters under torch's functional names, the
layouts and shapes of the operands and the output shapes) and hand it to :func:`lower`, which
dispatches through :data:`OPS`. The answer, a :class:`Lowered`, says per input axis which input
units an output unit reads (:class:`~rflint.ir.Taps`), which axes become global, and the output
layouts. Adding an op is one entry here; a frontend only learns to name it.

Canonical parameter names (where an op has them):
``kernel_size``, ``stride``, ``padding`` (low-side padding per spatial dim, or "same",
"valid", "same_upper", "same_lower"), ``dilation``, ``groups``, ``in_channels``,
``out_channels``, ``dim`` / ``dims``, ``keepdim``, ``mode``, ``align_corners``, ``scale`` (input
units per output unit, per axis), ``factor``, ``pads`` ((before, after) per tensor dim),
``items`` (an index tuple), ``equation``, ``shifts``.

An op that has no entry, or whose arguments rflint cannot follow, is lowered to
``Kind.UNKNOWN`` (rule RF001) with a note saying why, never to a silent 1x1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

from rflint.algebra import PathClass, through
from rflint.frontend import layout as L
from rflint.ir import Kind, Taps

# ---------------------------------------------------------------------------------------------
# records


@dataclass(frozen=True)
class Operand:
    """One tensor argument: its layout (None when it does not depend on the model input: a
    weight, a constant) and its shape (None when unknown)."""

    layout: L.Layout | None
    shape: tuple[int, ...] | None

    @property
    def dependent(self) -> bool:
        return self.layout is not None

    def layout_or_plain(self) -> L.Layout | None:
        """The layout, or for a constant one whose dims carry no axis."""
        if self.layout is not None:
            return self.layout
        return tuple(L._plain(s) for s in self.shape) if self.shape is not None else None


@dataclass(frozen=True)
class OpCall:
    """A node, normalised: what every handler in :data:`OPS` reads."""

    op: str
    params: Mapping[str, Any]
    inputs: tuple[Operand, ...]
    outputs: tuple[tuple[int, ...] | None, ...]
    ndim: int
    label: str = ""
    module: Any = None

    def param(self, name: str, default: Any = None) -> Any:
        value = self.params.get(name, default)
        return default if value is None else value

    @property
    def dependent(self) -> list[Operand]:
        return [o for o in self.inputs if o.dependent]

    @property
    def first(self) -> L.Layout:
        return self.dependent[0].layout  # type: ignore[return-value]

    @property
    def out_shape(self) -> tuple[int, ...] | None:
        return self.outputs[0] if self.outputs else None

    @property
    def name(self) -> str:
        return self.label or self.op


@dataclass(frozen=True)
class Lowered:
    """What one op does: its kind, per-axis taps (None entries: unchanged), axes made global,
    axes that gain a global side path, the layout of each output, and the hyper-parameters
    shown to people (and edited by the refinement advisor)."""

    kind: Kind
    layouts: tuple[L.Layout | None, ...]
    taps: tuple[Taps | None, ...] | None = None
    global_axes: tuple[bool, ...] = ()
    side_global: tuple[bool, ...] = ()
    kernel: tuple[int, ...] = ()
    stride: tuple[Fraction, ...] = ()
    dilation: tuple[int, ...] = ()
    padding: tuple[int, ...] = ()
    in_channels: int | None = None
    out_channels: int | None = None
    groups: int = 1
    note: str = ""


Handler = Callable[[OpCall], Lowered]


# ---------------------------------------------------------------------------------------------
# building answers


@dataclass
class Effects:
    """Per input axis: the taps to apply (composed in order) or None for global; and the axes
    that gain a global side path."""

    taps: dict[int, Taps | None] = field(default_factory=dict)
    side: set[int] = field(default_factory=set)

    def add(self, axis: int, taps: Taps | None) -> None:
        if axis in self.taps and self.taps[axis] is None:
            return
        if taps is None:
            self.taps[axis] = None
        elif axis in self.taps:
            self.taps[axis] = compose(self.taps[axis], taps)  # type: ignore[arg-type]
        else:
            self.taps[axis] = taps

    def merge(self, other: Mapping[int, Taps | None]) -> None:
        """Effects of mixing (:func:`layout.mix`): per axis, global wins over block taps."""
        for a, t in other.items():
            if t is None or a not in self.taps:
                self.add(a, t)

    @property
    def empty(self) -> bool:
        return not self.taps and not self.side

    def lowered(self, call: OpCall, kind: Kind, layouts: Sequence[L.Layout | None], **display: Any) -> Lowered:
        n = call.ndim
        glob = tuple(self.taps.get(a, 0) is None for a in range(n))
        taps = tuple(self.taps.get(a) for a in range(n))
        return Lowered(
            kind,
            tuple(layouts),
            taps=taps if any(t is not None for t in taps) else None,
            global_axes=glob if any(glob) else (),
            side_global=tuple(a in self.side for a in range(n)) if self.side else (),
            **display,
        )


def compose(first: Taps, then: Taps) -> Taps:
    """The taps of ``then`` applied to the output of ``first``."""
    c = through(PathClass(first.shift, first.period, first.lo, first.hi, (1,) * first.period), then)
    if c is None:
        return Taps(then.shift, then.period, (1,) * then.period, (0,) * then.period)
    return Taps(c.shift, c.period, c.lo, c.hi)


def unknown(call: OpCall, note: str) -> Lowered:
    """An op whose effect rflint cannot model: paths pass through, marked as lower bounds."""
    layouts = []
    for k, shape in enumerate(call.outputs):
        lay = call.first if call.dependent else None
        if lay is not None and shape is not None:
            lay = L.resize(lay, shape) if len(lay) == len(shape) else _opaque(shape)
        elif shape is not None:
            lay = _opaque(shape)
        layouts.append(lay)
    return Lowered(Kind.UNKNOWN, tuple(layouts), note=note)


def _opaque(shape: Sequence[int]) -> L.Layout:
    return tuple(L._plain(s) for s in shape)


def _same_rank(lay: L.Layout, shape: tuple[int, ...] | None) -> L.Layout:
    if shape is None:
        return lay
    return L.resize(lay, shape) if len(lay) == len(shape) else _opaque(shape)


def _all_outputs(call: OpCall, lay: L.Layout) -> tuple[L.Layout | None, ...]:
    return tuple(_same_rank(lay, s) if s is not None else lay for s in call.outputs) or (lay,)


def _per_dim(value: Any, n: int) -> tuple:
    if isinstance(value, (tuple, list)):
        value = tuple(value)
        return value if len(value) == n else value * n if len(value) == 1 else value
    return (value,) * n


# ---------------------------------------------------------------------------------------------
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
    return tuple(int(p) for p in _per_dim(padding or 0, n))


def _window(
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
    out_lay = list(_same_rank(lay, call.out_shape))
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


def _axis_values(call: OpCall, values: Sequence[Any], n: int, fill: Any) -> tuple:
    """Values for the last ``n`` tensor dims, placed on the axes those dims carry."""
    lay = call.first
    out = [fill] * call.ndim
    for i in range(n):
        ref = L.dim_axis(lay[len(lay) - n + i])
        if ref not in (None, False):
            out[ref.axis] = values[i]
    return tuple(out)


def _conv_like(call: OpCall, kernel: Sequence[int], n: int, kind: Kind = Kind.WINDOW) -> Lowered:
    stride = tuple(int(s) for s in _per_dim(call.param("stride", kernel if call.op == "pool" else 1), n))
    dilation = tuple(int(d) for d in _per_dim(call.param("dilation", 1), n))
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

    low = _window(
        call,
        taps,
        n,
        kind,
        kernel=_axis_values(call, kernel, n, 1),
        stride=_axis_values(call, [Fraction(s) for s in stride], n, Fraction(1)),
        dilation=_axis_values(call, dilation, n, 1),
        padding=_axis_values(call, lead, n, 0),
        in_channels=call.params.get("in_channels"),
        out_channels=call.params.get("out_channels"),
        groups=int(call.param("groups", 1)),
    )
    return _plain_window(low, call.ndim)


def _plain_window(low: Lowered, ndim: int) -> Lowered:
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


def _conv(call: OpCall) -> Lowered:
    kernel = tuple(int(k) for k in call.params["kernel_size"])
    low = _conv_like(call, kernel, len(kernel))
    if call.params.get("circular") and low.kind is not Kind.UNKNOWN:  # padding_mode="circular" reads the far border
        side = _axis_values(call, [True] * len(kernel), len(kernel), False)
        low = replace(low, side_global=side)
    return low


def _pool(call: OpCall) -> Lowered:
    n = len(call.params["kernel_size"]) if isinstance(call.params["kernel_size"], (tuple, list)) else call.param("n", len(call.first) - 2)
    kernel = tuple(int(k) for k in _per_dim(call.params["kernel_size"], n))
    return _conv_like(call, kernel, n)


def transposed_taps(k: int, s: int, p: int, d: int) -> Taps:
    """Output ``o`` of a transposed conv reads input ``j`` when ``o + p - s j`` is a tap
    ``0, d, ..., d (k - 1)``: per phase ``o mod s``, the hull of those ``j``."""
    lo, hi = [], []
    for o in range(s):
        js = [j for j in range(-(-(o + p - d * (k - 1)) // s), (o + p) // s + 1) if (o + p - s * j) % d == 0]
        lo.append(min(js) if js else 1)
        hi.append(max(js) if js else 0)
    return Taps(1, s, tuple(lo), tuple(hi))


def _conv_transpose(call: OpCall) -> Lowered:
    kernel = tuple(int(k) for k in call.params["kernel_size"])
    n = len(kernel)
    stride = tuple(int(s) for s in _per_dim(call.param("stride", 1), n))
    dilation = tuple(int(d) for d in _per_dim(call.param("dilation", 1), n))
    padding = call.param("padding", 0)
    if isinstance(padding, str):
        return unknown(call, f"transposed convolution with padding {padding!r}")
    lead = tuple(int(p) for p in _per_dim(padding, n))
    per_axis = [transposed_taps(k, s, p, d) for k, s, p, d in zip(kernel, stride, lead, dilation)]
    reads = [max(max(h - l + 1, 0) for l, h in zip(t.lo, t.hi)) for t in per_axis]
    return _window(
        call,
        lambda i, _size: per_axis[i],
        n,
        Kind.UPSAMPLE if any(s > 1 for s in stride) else Kind.WINDOW,
        kernel=_axis_values(call, reads, n, 1),
        stride=_axis_values(call, [Fraction(1, s) for s in stride], n, Fraction(1)),
        dilation=_axis_values(call, [1] * n, n, 1),
        in_channels=call.params.get("in_channels"),
        out_channels=call.params.get("out_channels"),
        groups=int(call.param("groups", 1)),
    )


def bin_taps(size_in: int, size_out: int) -> Taps:
    """Adaptive pooling from ``size_in`` to ``size_out``: bin ``i`` is
    ``[floor(i H / n), ceil((i + 1) H / n) - 1]``, a pattern that repeats every ``n / gcd``."""
    g = math.gcd(size_in, size_out)
    period, shift = size_out // g, size_in // g
    lo = tuple(i * size_in // size_out for i in range(period))
    hi = tuple(-(-(i + 1) * size_in // size_out) - 1 for i in range(period))
    return Taps(shift, period, lo, hi)


def _adaptive(call: OpCall) -> Lowered:
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
        [_same_rank(lay, out_shape)],
        kernel=_axis_values(call, kernel, n, 1) if windowed else (),
        stride=_axis_values(call, stride, n, Fraction(1)) if windowed else (),
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


def _interpolate(call: OpCall) -> Lowered:
    lay = call.first
    n = len(lay) - 2
    out_shape = call.out_shape
    mode = str(call.param("mode", "nearest"))
    if out_shape is None:
        return unknown(call, "interpolation to an unknown size")
    scales = _per_dim(call.param("scale", None), n)
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
    return _window(
        call,
        lambda i, _size: per_axis[i],
        n,
        kind,
        kernel=_axis_values(call, reads, n, 1),
        stride=_axis_values(call, stride, n, Fraction(1)),
        dilation=(1,) * call.ndim,
    )


_RESAMPLE_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "trilinear", "cubic", "bicubic", "area")


def _pixel_shuffle(call: OpCall) -> Lowered:
    """Depth-to-space by ``factor``: output unit ``o`` reads input unit ``o // factor``."""
    r = int(call.params["factor"])
    lay = call.first
    effects = Effects()
    for d in range(len(lay) - 2, len(lay)):
        ref = L.dim_axis(lay[d])
        if ref is False or (ref is not None and (ref.step != 1 or ref.upsample != 1)):
            return unknown(call, "pixel_shuffle over a dimension that mixes spatial and other data")
        if ref is not None:
            effects.add(ref.axis, Taps(1, r, (0,) * r, (0,) * r))
    out = _same_rank(lay, call.out_shape)
    out = tuple(L._plain(L.dim_size(dim)) if d == len(out) - 3 else dim for d, dim in enumerate(out))
    return effects.lowered(call, Kind.UPSAMPLE, [out], kernel=(1,) * call.ndim, stride=(Fraction(1, r),) * call.ndim)


def _pixel_unshuffle(call: OpCall) -> Lowered:
    """Space-to-depth by ``factor``: each output unit holds a ``factor`` wide block."""
    r = int(call.params["factor"])
    lay = call.first
    effects = Effects()
    for d in range(len(lay) - 2, len(lay)):
        ref = L.dim_axis(lay[d])
        if ref is False or (ref is not None and (ref.step != 1 or ref.upsample != 1)):
            return unknown(call, "pixel_unshuffle over a dimension that mixes spatial and other data")
        if ref is not None:
            effects.add(ref.axis, Taps.window(r, r, 0))
    out = _same_rank(lay, call.out_shape)
    out = tuple(L._plain(L.dim_size(dim)) if d == len(out) - 3 else dim for d, dim in enumerate(out))
    return effects.lowered(call, Kind.RESHAPE, [out], kernel=(r,) * call.ndim, stride=(Fraction(r),) * call.ndim)


def _unfold(call: OpCall) -> Lowered:
    """``F.unfold`` (im2col): windows over the last two dims, their grid flattened into one dim."""
    lay = call.first
    kernel = tuple(int(k) for k in _per_dim(call.params["kernel_size"], 2))
    low = _conv_like(call, kernel, 2)
    if low.kind is Kind.UNKNOWN:
        return low
    refs = [L.dim_axis(lay[-2]), L.dim_axis(lay[-1])]
    out_shape = call.out_shape
    if out_shape is None or any(r is False for r in refs):
        return unknown(call, "unfold over dimensions rflint cannot follow")
    stride = tuple(int(s) for s in _per_dim(call.param("stride", 1), 2))
    dil = tuple(int(d) for d in _per_dim(call.param("dilation", 1), 2))
    pad = tuple(int(p) for p in _per_dim(call.param("padding", 0), 2))
    grid = [
        (L.dim_size(lay[-2 + i]) + 2 * pad[i] - dil[i] * (kernel[i] - 1) - 1) // stride[i] + 1 for i in range(2)
    ]
    tokens = tuple(L.Comp(r.axis, g) for r, g in zip(refs, grid) if r is not None)
    out = tuple(lay[: len(lay) - 3]) + (L._plain(out_shape[-2]), tokens)
    return replace(low, layouts=(out,))


def _tensor_unfold(call: OpCall) -> Lowered:
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
    out = list(_same_rank(lay, tuple(out_shape[:-1])) if out_shape else lay)
    out.append(L._plain(size))
    return effects.lowered(call, Kind.WINDOW if ref is not None else Kind.RESHAPE, [tuple(out)], kernel=(), stride=())


# ---------------------------------------------------------------------------------------------
# moving data: pads, crops, slices, reshapes


def _pad(call: OpCall) -> Lowered:
    """``pads`` holds (before, after) per tensor dim; padding ``b`` before index 0 shifts the
    output grid by ``-b``, a negative pad crops. Circular padding also reads the far border."""
    lay = call.first
    pads = call.params["pads"]
    effects = Effects()
    for d, (before, _after) in enumerate(pads):
        if not before and not _after:
            continue
        ref = L.dim_axis(lay[d])
        if ref is None:
            continue
        if ref is False or ref.step != 1 or ref.upsample != 1:
            return unknown(call, "padding of a dimension that mixes spatial and other data")
        if before:
            effects.add(ref.axis, Taps.shifted(-int(before)))
        if str(call.param("mode", "constant")) == "circular":
            effects.side.add(ref.axis)
    return effects.lowered(call, Kind.RESHAPE, [_same_rank(lay, call.out_shape)])


def _index(call: OpCall) -> Lowered:
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
    lay_out = _same_rank(tuple(out), call.out_shape)
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


def _reshape(call: OpCall) -> Lowered:
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


def _permute(call: OpCall) -> Lowered:
    return Lowered(Kind.RESHAPE, (L.permute(call.first, call.params["dims"]),))


def _transpose(call: OpCall) -> Lowered:
    lay = call.first
    d0, d1 = call.param("dim0", 0), call.param("dim1", 1)
    return Lowered(Kind.RESHAPE, (L.transpose(lay, d0, d1),))


def _expand(call: OpCall) -> Lowered:
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
# mixing along dims: reductions, softmax, scans, sorting, attention, linear layers


def _dims_of(call: OpCall, lay: L.Layout) -> list[int]:
    dims = call.params.get("dims", call.params.get("dim"))
    if dims is None:
        return list(range(len(lay)))
    return [int(d) % len(lay) for d in (dims if isinstance(dims, (tuple, list)) else [dims])]


def _mixing(call: OpCall, effects: Effects, layouts: Sequence[L.Layout | None], **display: Any) -> Lowered:
    """GLOBAL when the op makes some axis global; a WINDOW of the block when it mixes only
    within blocks (attention inside windows: judged like a convolution of that width); else
    pointwise (or a merge)."""
    if any(t is None for t in effects.taps.values()):
        kind = Kind.GLOBAL
    elif effects.taps:
        kind = Kind.WINDOW
        widths = {a: max(h - l + 1 for l, h in zip(t.lo, t.hi)) for a, t in effects.taps.items() if t is not None}
        display = {"kernel": tuple(widths.get(a, 1) for a in range(call.ndim)), **display}
    else:
        kind = Kind.MERGE if len(call.dependent) > 1 else Kind.POINTWISE
    return effects.lowered(call, kind, layouts, **display)


def _reduce(call: OpCall) -> Lowered:
    lay = call.first
    dims = _dims_of(call, lay)
    effects = Effects()
    effects.merge(L.mix(lay, dims))
    out = L.reduce(lay, dims, bool(call.param("keepdim", False)))
    return _mixing(call, effects, [_same_rank(out, s) for s in call.outputs] or [out])


def _along(call: OpCall) -> Lowered:
    """softmax, a prefix scan (cumsum: unit i reads [0, i]), sort, topk, flip, gather, ... along
    a dim: every output position depends on every position of that dim (a scan on its far
    side only, which is still the whole axis for the widest unit)."""
    lay = call.first
    effects = Effects()
    effects.merge(L.mix(lay, _dims_of(call, lay)))
    return _mixing(call, effects, _all_outputs(call, lay))


def _roll(call: OpCall) -> Lowered:
    """A cyclic shift: interior units read ``o - shift``; units within ``shift`` of the border
    read the far border, which is kept as a global side path (so r_max stays the interior
    units' field while the global reach is reported)."""
    lay = call.first
    shifts = call.params["shifts"]
    dims = call.params.get("dims")
    shifts = list(shifts) if isinstance(shifts, (tuple, list)) else [shifts]
    if dims is None:
        return _along(replace(call, params={"dims": None}))
    dims = list(dims) if isinstance(dims, (tuple, list)) else [dims]
    effects = Effects()
    for shift, d in zip(shifts, dims):
        ref = L.dim_axis(lay[int(d) % len(lay)])
        if ref is None:
            continue
        if ref is False or ref.step != 1 or ref.upsample != 1:
            effects.merge(L.mix(lay, [int(d)]))
            continue
        effects.add(ref.axis, Taps.shifted(-int(shift)))
        effects.side.add(ref.axis)
    return effects.lowered(call, Kind.RESHAPE, [lay])


def _linear(call: OpCall) -> Lowered:
    """A linear layer acts on the last dim: global over the axes that dim carries."""
    lay = call.first
    effects = Effects()
    effects.merge(L.mix(lay, [len(lay) - 1]))
    out_shape = call.out_shape
    width = out_shape[-1] if out_shape else call.params.get("out_channels")
    out = tuple(lay[:-1]) + (L._plain(int(width)) if width else (),)
    return _mixing(call, effects, [out], in_channels=call.params.get("in_channels"), out_channels=call.params.get("out_channels"))


def _matmul(call: OpCall) -> Lowered:
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
        return _mixing(call, effects, [()])
    batch = L.broadcast([a_l[:-2] if len(a_l) > 2 else (), b_l[:-2] if len(b_l) > 2 else ()], out_shape[: rank - 2])
    rows = a_l[-2] if len(a_l) >= 2 else ()
    cols = b_l[-1] if len(b_l) >= 2 else ()
    out, dup = L.dedupe(L.resize(tuple(batch) + (rows, cols), out_shape))
    effects.merge(dup)
    return _mixing(call, effects, [out])


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


def _einsum(call: OpCall) -> Lowered:
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
    return _mixing(call, effects, [out])


def _attention(call: OpCall) -> Lowered:
    """scaled_dot_product_attention(q, k, v): every query sees every key position."""
    q, k, v = (call.inputs + (Operand(None, None),) * 3)[:3]
    effects = Effects()
    for operand in (k, v):
        if operand.dependent and len(operand.layout) >= 2:
            effects.merge(L.mix(operand.layout, [len(operand.layout) - 2]))
    lay = q.layout if q.dependent else call.first
    return _mixing(call, effects, [_same_rank(lay, call.out_shape)])


def _multihead_attention(call: OpCall) -> Lowered:
    """nn.MultiheadAttention(query, key, value): the sequence dim of key and value is mixed."""
    seq = 1 if call.param("batch_first", False) else 0
    effects = Effects()
    for operand in call.inputs[1:3]:
        if operand.dependent and len(operand.layout) > seq:
            effects.merge(L.mix(operand.layout, [seq]))
    lay = call.inputs[0].layout if call.inputs[0].dependent else call.first
    layouts = [_same_rank(lay, call.outputs[0]) if call.outputs else lay] + [None] * (len(call.outputs) - 1)
    return _mixing(call, effects, layouts)


def _norm(call: OpCall) -> Lowered:
    """Normalisation: statistics over ``stats`` dims. Running statistics (BatchNorm in eval
    mode) are constants, so the op is pointwise; statistics over spatial dims (InstanceNorm,
    GroupNorm, LayerNorm over H and W) make every output depend on the whole map: a global
    side path beside the local one, like a squeeze-and-excitation gate."""
    lay = call.first
    effects = Effects()
    stats = [int(d) % len(lay) for d in call.param("stats", ())]
    for a in L.mix(lay, stats):
        effects.side.add(a)
    return effects.lowered(call, Kind.POINTWISE, _all_outputs(call, lay))


# ---------------------------------------------------------------------------------------------
# merges, splits, elementwise


def _pointwise(call: OpCall) -> Lowered:
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


def _cat(call: OpCall) -> Lowered:
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


def _stack(call: OpCall) -> Lowered:
    lay = list(call.first)
    out_shape = call.out_shape or ()
    dim = int(call.param("dim", 0)) % max(1, len(out_shape))
    lay.insert(dim, L._plain(out_shape[dim]) if out_shape else ())
    return Lowered(Kind.MERGE if len(call.dependent) > 1 else Kind.POINTWISE, (tuple(lay),))


def _split(call: OpCall) -> Lowered:
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
        else:
            reshaped = L.reshape(lay, shape)
            layouts.append(reshaped.layout if reshaped is not None else _opaque(shape))
    return Lowered(Kind.POINTWISE, tuple(layouts))


def _identity(call: OpCall) -> Lowered:
    return Lowered(Kind.POINTWISE, _all_outputs(call, call.first))


def _global_spatial(call: OpCall) -> Lowered:
    """Ops whose sampling positions come from data (grid_sample, deformable convolution):
    global over every spatial axis of the input."""
    lay = call.first
    effects = Effects()
    effects.merge(L.mix(lay, [d for d, dim in enumerate(lay) if L.axes_of(dim)]))
    return effects.lowered(call, Kind.GLOBAL, _all_outputs(call, lay))


# ---------------------------------------------------------------------------------------------
# library blocks kept opaque by torchvision / timm, and user-declared ops


def _channels_last_hw(call: OpCall) -> list[tuple[int, L.AxisRef | None | bool, int]]:
    lay = call.first
    return [(d, L.dim_axis(lay[d]), L.dim_size(lay[d])) for d in (len(lay) - 3, len(lay) - 2)]


def _window_attention(call: OpCall) -> Lowered:
    """torchvision's ``shifted_window_attention`` on ``[B, H, W, C]``: each position attends to
    the window that holds it after the cyclic shift (Swin masks the windows that wrap, so the
    far border is not reached); one window over the whole map is global."""
    window = _per_dim(call.params["window_size"], 2)
    shift = _per_dim(call.param("shift_size", 0), 2)
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
    return _mixing(call, effects, [_same_rank(call.first, call.out_shape)], note="windowed self-attention")


def _patch_merging(call: OpCall) -> Lowered:
    """torchvision's ``_patch_merging_pad``: a 2x2 space-to-depth of ``[B, H, W, C]``."""
    effects = Effects()
    for _d, ref, _size in _channels_last_hw(call):
        if ref is None:
            continue
        if ref is False or ref.step != 1 or ref.upsample != 1:
            return unknown(call, "patch merging over a dimension that mixes spatial and other data")
        effects.add(ref.axis, Taps.window(2, 2, 0))
    return effects.lowered(
        call, Kind.RESHAPE, [_same_rank(call.first, call.out_shape)], kernel=(2,) * call.ndim,
        stride=(Fraction(2),) * call.ndim, note="2x2 space-to-depth",
    )


def _custom(call: OpCall) -> Lowered:
    """An op the user declared (``[tool.rflint.ops]``): a window, pointwise, global or an
    upsampling by ``stride``, over the last spatial dims of its first input."""
    kind = str(call.params["kind"])
    lay = call.first
    n = sum(1 for dim in lay if L.axes_of(dim)) or call.ndim
    if kind == "pointwise":
        return _identity(call)
    if kind == "global":
        return _global_spatial(call)
    kernel = tuple(int(k) for k in _per_dim(call.param("kernel_size", 1), n))
    if kind == "upsample":
        factor = tuple(int(s) for s in _per_dim(call.param("stride", 2), n))
        nearest = [Taps(1, f, (0,) * f, (0,) * f) for f in factor]
        per_axis = [compose(t, Taps.window(k, 1, k // 2)) if k > 1 else t for t, k in zip(nearest, kernel)]
        return _window(call, lambda i, _size: per_axis[i], n, Kind.UPSAMPLE, kernel=_axis_values(call, kernel, n, 1),
                       stride=_axis_values(call, [Fraction(1, f) for f in factor], n, Fraction(1)), dilation=(1,) * call.ndim)
    params = dict(call.params)
    params.setdefault("padding", "same" if all(int(s) == 1 for s in _per_dim(call.param("stride", 1), n)) else 0)
    return _conv_like(replace(call, params=params), kernel, n)


# ---------------------------------------------------------------------------------------------
# the table


OPS: dict[str, Handler] = {
    "conv": _conv,
    "conv_transpose": _conv_transpose,
    "pool": _pool,
    "adaptive_pool": _adaptive,
    "interpolate": _interpolate,
    "pixel_shuffle": _pixel_shuffle,
    "pixel_unshuffle": _pixel_unshuffle,
    "unfold": _unfold,
    "tensor_unfold": _tensor_unfold,
    "pad": _pad,
    "index": _index,
    "reshape": _reshape,
    "permute": _permute,
    "transpose": _transpose,
    "expand": _expand,
    "reduce": _reduce,
    "along": _along,
    "roll": _roll,
    "linear": _linear,
    "matmul": _matmul,
    "einsum": _einsum,
    "attention": _attention,
    "multihead_attention": _multihead_attention,
    "norm": _norm,
    "pointwise": _pointwise,
    "cat": _cat,
    "stack": _stack,
    "split": _split,
    "identity": _identity,
    "global_spatial": _global_spatial,
    "window_attention": _window_attention,
    "patch_merging": _patch_merging,
    "custom": _custom,
}


def lower(call: OpCall) -> Lowered:
    """The answer for one normalised node (RF001 when the op has no entry or cannot be followed)."""
    handler = OPS.get(call.op)
    if handler is None:
        return unknown(call, str(call.params.get("note") or f"no receptive-field rule for {call.name}"))
    if not call.dependent:
        return unknown(call, "no input-dependent operand")
    try:
        return handler(call)
    except Exception as exc:  # noqa: BLE001 - a lowering bug must not hide the layer: report it as unknown
        return unknown(call, f"could not lower {call.name}: {type(exc).__name__}: {str(exc)[:200]}")


# ---------------------------------------------------------------------------------------------
# user-registered module classes


#: module class -> handler, from :func:`register_op` (Python) or ``[tool.rflint.ops]`` (config)
CUSTOM_MODULES: dict[type, Callable[[OpCall], Lowered]] = {}


def register_op(cls: type, handler: Callable[[OpCall], Lowered] | Mapping[str, Any]) -> None:
    """Declare the receptive-field semantics of a module class rflint cannot trace through
    (a custom CUDA kernel, a box filter built on integral images, a library block).

    ``handler`` is either a function from :class:`OpCall` (``call.module`` is the instance,
    ``call.first`` the input layout) to :class:`Lowered` — build it with :func:`declared` —, or
    a mapping as in ``[tool.rflint.ops]``: ``{"kind": "window", "kernel": 9}``. The class is
    traced as a leaf from then on and never reported as RF001.
    """
    CUSTOM_MODULES[cls] = handler if callable(handler) else declared(handler)


def declared(spec: Mapping[str, Any]) -> Callable[[OpCall], Lowered]:
    """A handler for a declaration ``{"kind": ..., "kernel": ..., "stride": ..., "dilation": ...}``;
    a string value names an attribute of the module instance to read (``kernel = "box_size"``)."""
    kind = str(spec.get("kind", "window"))

    def handler(call: OpCall) -> Lowered:
        params: dict[str, Any] = {"kind": kind}
        for key, name in (("kernel", "kernel_size"), ("stride", "stride"), ("dilation", "dilation"), ("padding", "padding")):
            if key not in spec:
                continue
            value = spec[key]
            if isinstance(value, str) and call.module is not None and value not in ("same", "valid"):
                value = getattr(call.module, value)
                value = tuple(int(v) for v in value) if isinstance(value, (tuple, list)) else int(value)
            params[name] = value
        return _custom(replace(call, op="custom", params=params))

    return handler
