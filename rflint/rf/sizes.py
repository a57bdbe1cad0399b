"""Feature-map sizes and compute on the IR, for graphs that were never traced.

An edit the advisor proposes (a stride 2 -> 1, a smaller kernel, a removed pool) changes every
feature map after it; re-tracing each candidate would cost a model build per candidate. The
traced graph records each layer's output size, so :func:`propagate_sizes` re-derives the sizes
of an edited copy from the windows' geometry, scaling the layers whose arithmetic it does not
know by the ratio the traced graph shows, and reports where the inputs of a merge stop
agreeing. The cost model counts multiply-accumulates of convolutions and linear layers only
(``positions * prod(kernel) * in_channels / groups * out_channels``); pooling, norms and
activations are free: it is meant for ratios between variants of one model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from fractions import Fraction

from rflint.ir import Graph, Kind, Layer, Taps

Size = tuple[int, ...] | None


# --------------------------------------------------------------------------------------------
# Feature-map sizes and compute


def bin_taps(size_in: int, size_out: int) -> Taps:
    """Adaptive pooling from ``size_in`` to ``size_out``: bin ``i`` is
    ``[floor(i H / n), ceil((i + 1) H / n) - 1]``, a pattern that repeats every ``n / gcd``."""
    g = math.gcd(size_in, size_out)
    period, shift = size_out // g, size_in // g
    lo = tuple(i * size_in // size_out for i in range(period))
    hi = tuple(-(-(i + 1) * size_in // size_out) - 1 for i in range(period))
    return Taps(shift, period, lo, hi)


def window_length(size: int, k_eff: int, stride: int | Fraction, pad: int, ceil: bool = False) -> int:
    """The output length of a sliding window (conv or pool) along one axis: PyTorch's
    ``pooling_output_shape`` (``floor((in + 2p - k_eff) / s) + 1``, or ``ceil`` with the last
    window starting inside the input or the left padding). The one formula for it: the shape
    rules of the frontends and the advisor's size engine both use it. ``stride`` may be a
    fraction > 1 (a window over an upsampled axis)."""
    span = size + 2 * pad - k_eff
    out = (-(-span // stride) if ceil else span // stride) + 1
    if ceil and (out - 1) * stride >= size + pad:
        out -= 1
    return int(out)


def _window_out(layer: Layer, size: tuple[int, ...]) -> tuple[int, ...]:
    """Output size of a conv / pool per axis (:func:`window_length`)."""
    ndim = len(size)
    k_eff = layer.k_eff or (1,) * ndim
    stride = layer.stride or (1,) * ndim
    pad = layer.padding or (0,) * ndim
    out = []
    for n, k, s, p in zip(size, k_eff, stride, pad):
        num, den = (s.numerator, s.denominator) if isinstance(s, Fraction) else (int(s), 1)
        if num < den:  # upsampling: stride 1/factor
            out.append(n * den // num)
        else:
            out.append(max(1, window_length(n, k, Fraction(num, den) if den != 1 else num, p)))
    return tuple(out)


def _scaled(orig_out: tuple[int, ...], orig_in: tuple[int, ...], new_in: tuple[int, ...]) -> tuple[int, ...]:
    """Fallback when the exact formula does not reproduce the traced size (ceil_mode,
    ``padding='same'``, interpolate to a size): keep the traced in/out ratio."""
    return tuple(max(1, math.ceil(o * n / i)) if i else o for o, i, n in zip(orig_out, orig_in, new_in))


@dataclass(frozen=True, slots=True)
class Sizes:
    """The result of :func:`propagate_sizes`: the graph with new ``out_size`` fields, and the
    merges whose inputs no longer agree (an invalid edit)."""

    graph: Graph
    conflicts: tuple[str, ...]
    #: the new output size per layer name (what the graph's ``out_size`` fields hold)
    sizes: dict[str, Size] = field(default_factory=dict)


def propagate_sizes(new: Graph, base: Graph, write_sizes: bool = True, stop_at_conflict: bool = False) -> Sizes:
    """Recompute every layer's ``out_size`` in ``new`` (an edited copy of ``base``).

    A layer whose inputs and own geometry are unchanged keeps the traced size. Otherwise a
    conv / pool uses ``floor((in + 2p - k_eff) / s) + 1`` when that formula reproduces the
    traced size of the base graph, and the base in/out ratio when it does not; an adaptive
    pool keeps its fixed output size; other layers follow the input they have the size of
    (global ops keep their size). Merges whose inputs had equal sizes in ``base`` must still
    have equal sizes, else they are reported in ``conflicts``.

    With ``write_sizes=False`` the layers' ``out_size`` fields are left as traced (rewriting
    frozen records is the slow part) and only ``Sizes.sizes`` holds the new sizes; the layers
    whose receptive-field geometry depends on the size (adaptive pooling) are updated anyway.
    ``stop_at_conflict`` returns at the first conflict (with a partial result).
    """
    base_by = base.by_name()
    new_size: dict[str, Size] = {}
    old_size: dict[str, Size] = {}
    layers: list[Layer] = []
    conflicts: list[str] = []
    for layer in new.layers:
        old = base_by.get(layer.name)
        orig_out = old.out_size if old else layer.out_size
        if layer.kind is Kind.INPUT:
            out: Size = new.input_size
            old_size[layer.name] = base.input_size
            new_size[layer.name] = out
            layers.append(layer if layer.out_size == out or not write_sizes else replace(layer, out_size=out))
            continue
        ins = [n for n in layer.inputs if new_size.get(n) is not None]
        same_geometry = layer is old or old is not None and (old.kind, old.kernel, old.stride, old.padding) == (
            layer.kind,
            layer.kernel,
            layer.stride,
            layer.padding,
        )
        changed_inputs = [n for n in ins if new_size[n] != old_size.get(n)]
        if orig_out is None or (same_geometry and not changed_inputs):
            out = orig_out
        else:
            # the input whose traced size is the one this layer was computed from
            ref = next((n for n in ins if old_size.get(n) == orig_out), ins[0] if ins else None)
            if ref is None:
                out = orig_out
            else:
                n_in, o_in = new_size[ref], old_size.get(ref) or new_size[ref]
                out = _layer_out(layer, old, n_in, o_in, orig_out)
        if layer.kind is Kind.MERGE and len(ins) > 1:
            equal_before = len({old_size.get(n) for n in ins}) == 1
            if equal_before and len({new_size[n] for n in ins}) > 1:
                conflicts.append(layer.qualname)
                if stop_at_conflict:  # the edit is invalid: the rest of the graph does not matter
                    return Sizes(new, tuple(conflicts), new_size)
        old_size[layer.name] = orig_out
        new_size[layer.name] = out
        if "adaptive" in layer.op.lower() and ins and out is not None and new_size[ins[0]] != old_size.get(ins[0]):
            layer = _adaptive_geometry(layer, new_size[ins[0]], out)
        layers.append(layer if layer.out_size == out or not write_sizes else replace(layer, out_size=out))
    return Sizes(replace(new, layers=tuple(layers)), tuple(conflicts), new_size)


def _adaptive_geometry(layer: Layer, size_in: tuple[int, ...], size_out: tuple[int, ...]) -> Layer:
    """Adaptive pooling lowered at a new input size, as the op table lowers it: global on an
    axis pooled to 1, else the taps of its bins (:func:`bin_taps`)."""

    if len(size_in) != len(size_out):
        return layer
    kernel, stride, glob, taps = [], [], [], []
    for n, m in zip(size_in, size_out):
        if m == 1 and n > 1:
            kernel.append(1), stride.append(Fraction(1)), glob.append(True), taps.append(None)
        elif m == n:
            kernel.append(1), stride.append(Fraction(1)), glob.append(False), taps.append(None)
        else:
            t = bin_taps(n, m)
            kernel.append(max(h - l + 1 for l, h in zip(t.lo, t.hi)))
            stride.append(Fraction(n, m))
            glob.append(False)
            taps.append(t)
    has_taps = any(t is not None for t in taps)
    upsamples = any(s < 1 for s in stride)
    kind = (Kind.UPSAMPLE if upsamples else Kind.WINDOW) if has_taps else (Kind.GLOBAL if any(glob) else Kind.POINTWISE)
    return replace(
        layer,
        kind=kind,
        kernel=tuple(kernel) if has_taps else (),
        stride=tuple(stride) if has_taps else (),
        dilation=(1,) * len(kernel) if has_taps else (),
        global_axes=tuple(glob) if any(glob) else (),
        taps=tuple(taps) if has_taps else None,
    )


def _layer_out(
    layer: Layer, old: Layer | None, n_in: tuple[int, ...], o_in: tuple[int, ...], orig_out: tuple[int, ...]
) -> tuple[int, ...]:
    if len(n_in) != len(orig_out):
        return orig_out
    windowed = (Kind.WINDOW, Kind.UPSAMPLE)
    if layer.kind in windowed or (old is not None and old.kind in windowed and layer.kernel):
        if "adaptive" in layer.op.lower():
            return orig_out
        exact = old is None or _window_out(old, o_in) == orig_out
        if exact:
            return _window_out(layer, n_in)
        if old is not None and layer.stride != old.stride:  # ratio of the new stride to the old
            ratio = tuple(Fraction(o) / Fraction(n) for o, n in zip(old.stride, layer.stride))
            return tuple(max(1, math.ceil(o * n / i * r)) for o, i, n, r in zip(orig_out, o_in, n_in, ratio))
        return _scaled(orig_out, o_in, n_in)
    if layer.kind is Kind.GLOBAL or all(o == 1 for o in orig_out):
        return orig_out
    if orig_out == o_in:
        return n_in
    return _scaled(orig_out, o_in, n_in)


def is_conv_or_linear(layer: Layer) -> bool:
    op = layer.op.lower()
    return ("conv" in op or "linear" in op) and layer.in_channels is not None and layer.out_channels is not None


def is_transposed(layer: Layer) -> bool:
    """A transposed convolution (``ConvTranspose2d``, ``conv_transpose3d``, ONNX ``ConvTranspose``)."""
    return "transpose" in layer.op.lower() and "conv" in layer.op.lower()


def layer_cost(layer: Layer, out_size: Size = None, in_size: Size = None) -> tuple[int, int]:
    """``(MACs, parameters)`` of one conv or linear layer (bias not counted); 0 for others.

    A layer that is global on an axis (a linear layer over a flattened feature map) runs once
    along that axis. A transposed convolution multiplies every *input* position by its whole
    kernel (as fvcore and torch's FlopCounterMode count it): ``in_size`` when the caller knows
    it, else the output size times the stride (``1 / factor``), rounded up."""
    if not is_conv_or_linear(layer):
        return 0, 0
    out_size = out_size if out_size is not None else layer.out_size
    k = math.prod(layer.kernel) if layer.kernel else 1
    groups = max(1, layer.groups)
    params = k * (layer.in_channels // groups) * layer.out_channels
    positions = 1
    if out_size and is_transposed(layer):
        stride = layer.stride or (Fraction(1),) * len(out_size)
        reads = in_size if in_size is not None and len(in_size) == len(out_size) else tuple(
            math.ceil(o * Fraction(s)) for o, s in zip(out_size, stride)
        )
        positions = math.prod(reads)
    elif out_size:
        glob = layer.global_axes if layer.kind is Kind.GLOBAL and layer.global_axes else (False,) * len(out_size)
        positions = math.prod(n for n, g in zip(out_size, glob) if not g)
    return positions * params, params


def graph_cost(graph: Graph, sizes: dict[str, Size] | None = None) -> tuple[int, int]:
    """``(MACs, parameters)`` of a graph. A module used at several places has its parameters
    counted once and its MACs at every use. ``sizes`` overrides the layers' ``out_size``."""
    macs = 0
    params: dict[str, int] = {}
    by_name = graph.by_name()

    def size_of(layer: Layer | None) -> Size:
        if layer is None:
            return None
        return sizes.get(layer.name, layer.out_size) if sizes is not None else layer.out_size

    for layer in graph.layers:
        source = by_name.get(layer.inputs[0]) if layer.inputs else None
        m, p = layer_cost(layer, size_of(layer), size_of(source) if is_transposed(layer) else None)
        macs += m
        key = layer.qualname if layer.module_type else layer.name
        params[key] = max(params.get(key, 0), p)
    return macs, sum(params.values())


