"""The refinement advisor: which single architecture edit makes ``I_min < I_res``. Pure Python.

Richter & Pal (2022) improve CNNs by a minimal change to downsampling, stride or kernel size,
chosen so that the architecture's minimal resolution ``I_min`` falls below the training
resolution. This module finds such changes on the IR, without torch and without re-tracing:

1. :func:`enumerate_edits` lists candidate single edits of an :class:`~rflint.ir.Graph`:

   - ``stride``: a downsampling layer's stride 2 -> 1. Layers that downsample the same feature
     map in parallel (a ResNet block's conv and its projection shortcut) change together;
   - ``move``: the same, with the downsampling moved to a later spatial layer (stride 1 -> 2);
   - ``remove-pool``: a non-overlapping pooling layer (kernel = stride) replaced by identity;
   - ``patchify``: a patchify conv (kernel = stride, ConvNeXt's stem) 4x4/4 -> 2x2/2 (or 1x1/1);
   - ``kernel``: a conv's kernel made smaller (7 -> 5 -> 3), one layer or a whole stage (all convs
     of one kind with the same kernel whose outputs have the same jump, i.e. the same
     resolution), with ``same`` padding kept;
   - ``cut``: the efficiency direction: the trailing run of blocks that holds the unproductive
     layers is removed and the head reads the last productive block.

   Edits touch modules (``Layer.module_type`` set) only, so that each can be applied to the real
   ``nn.Module`` and verified by :mod:`rflint.refine`. A module used at several places in the
   graph is edited everywhere it is used, as it would be in the model.

2. :func:`apply_edit` rewrites the graph (``dataclasses.replace`` on the frozen layers) and
   re-propagates the feature-map sizes (:func:`propagate_sizes`); an edit after which the inputs
   of an ``add`` / ``cat`` no longer agree in size is dropped as invalid.

3. :func:`advise` analyses every valid candidate with :func:`rflint.algebra.analyse`, estimates
   its compute (:func:`graph_cost`) and ranks the two directions:

   - *performance*: candidates with ``I_min < I_res`` on every axis, least compute increase
     first (a saving counts as no increase; ties: fewer modules changed, then the larger
     ``I_min``, i.e. the smaller change of the receptive field);
   - *efficiency*: candidates that leave fewer unproductive layers and cost less compute,
     fewest unproductive layers left first, then fewest productive field-growing layers removed.

The cost model counts multiply-accumulates of convolutions and linear layers only
(``positions * prod(kernel) * in_channels / groups * out_channels``, ``positions`` = product of
the output feature-map size, 1 when unknown); pooling, norms and activations are free. It is
meant for ratios between variants of one model, not as an absolute FLOP count.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction

from rflint.algebra import (
    AxisPaths,
    analyse,
    display,
    is_critical,
    is_unproductive,
    output_global_via,
    propagate_layer,
    resolution_bounds,
)
from rflint.ir import Analysis, Graph, Kind, Layer, LayerRF

Size = tuple[int, ...] | None

#: Kernel sizes a ``kernel`` edit may shrink to (odd, so that ``same`` padding exists).
SMALLER_KERNELS = (5, 3)
#: How many candidates per direction :func:`advise` keeps.
DEFAULT_TOP = 5

# --------------------------------------------------------------------------------------------
# Edits


@dataclass(frozen=True, slots=True)
class Change:
    """One module-level change. ``None`` fields are left as they are.

    ``remove`` replaces the module by an identity; ``in_channels`` (with ``remove`` False) means
    the module is rebuilt to read that many channels (the head after a ``cut``).
    """

    qualname: str
    op: str
    kernel: tuple[int, ...] | None = None
    stride: tuple[int, ...] | None = None
    padding: tuple[int, ...] | None = None
    remove: bool = False
    in_channels: int | None = None
    old_kernel: tuple[int, ...] = ()
    old_stride: tuple[int, ...] = ()

    def describe(self) -> str:
        if self.remove:
            return f"{self.qualname}: remove"
        parts = []
        if self.kernel is not None and self.kernel != self.old_kernel:
            parts.append(f"kernel {_fmt(self.old_kernel)} -> {_fmt(self.kernel)}")
        if self.stride is not None and self.stride != self.old_stride:
            parts.append(f"stride {_fmt(self.old_stride)} -> {_fmt(self.stride)}")
        if self.in_channels is not None:
            parts.append(f"in_channels -> {self.in_channels}")
        return f"{self.qualname}: {', '.join(parts)}"


@dataclass(frozen=True, slots=True)
class Edit:
    """A candidate single edit: one decision, possibly touching several modules (a ResNet
    block's conv and shortcut, every conv of a stage, a removed tail)."""

    kind: str  # stride | move | remove-pool | patchify | kernel | cut
    changes: tuple[Change, ...]
    label: str = ""  # in user terms; defaults to the changes, joined

    @property
    def text(self) -> str:
        return self.label or "; ".join(c.describe() for c in self.changes)

    @property
    def qualnames(self) -> tuple[str, ...]:
        return tuple(c.qualname for c in self.changes)


def _fmt(values: Sequence[int]) -> str:
    """``2`` for a square value, ``2x1`` per axis otherwise."""
    shown = [str(v) for v in values]
    return shown[0] if len(set(shown)) == 1 else "x".join(shown)


def _ints(values: Iterable[Fraction | int]) -> tuple[int, ...]:
    return tuple(int(v) for v in values)


# --------------------------------------------------------------------------------------------
# Feature-map sizes and compute


def _window_out(layer: Layer, size: tuple[int, ...]) -> tuple[int, ...]:
    """Output size of a conv / pool: ``floor((in + 2p - k_eff) / s) + 1`` per axis."""
    ndim = len(size)
    k_eff = layer.k_eff or (1,) * ndim
    stride = layer.stride or (1,) * ndim
    pad = layer.padding or (0,) * ndim
    out = []
    for n, k, s, p in zip(size, k_eff, stride, pad):
        num, den = (s.numerator, s.denominator) if isinstance(s, Fraction) else (int(s), 1)
        if num < den:  # upsampling: stride 1/factor
            out.append(n * den // num)
        else:  # floor((n + 2p - k) / (num/den)) + 1
            out.append(max(1, (n + 2 * p - k) * den // num + 1))
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
    axis pooled to 1, else the taps of its bins (:func:`rflint.frontend.op_windows.bin_taps`)."""
    from rflint.frontend.op_windows import bin_taps

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


def _is_conv_or_linear(layer: Layer) -> bool:
    op = layer.op.lower()
    return ("conv" in op or "linear" in op) and layer.in_channels is not None and layer.out_channels is not None


def layer_cost(layer: Layer, out_size: Size = None) -> tuple[int, int]:
    """``(MACs, parameters)`` of one conv or linear layer (bias not counted); 0 for others.

    A layer that is global on an axis (a linear layer over a flattened feature map) runs once
    along that axis."""
    if not _is_conv_or_linear(layer):
        return 0, 0
    out_size = out_size if out_size is not None else layer.out_size
    k = math.prod(layer.kernel) if layer.kernel else 1
    groups = max(1, layer.groups)
    params = k * (layer.in_channels // groups) * layer.out_channels
    positions = 1
    if out_size:
        glob = layer.global_axes if layer.kind is Kind.GLOBAL and layer.global_axes else (False,) * len(out_size)
        positions = math.prod(n for n, g in zip(out_size, glob) if not g)
    return positions * params, params


def graph_cost(graph: Graph, sizes: dict[str, Size] | None = None) -> tuple[int, int]:
    """``(MACs, parameters)`` of a graph. A module used at several places has its parameters
    counted once and its MACs at every use. ``sizes`` overrides the layers' ``out_size``."""
    macs = 0
    params: dict[str, int] = {}
    for layer in graph.layers:
        m, p = layer_cost(layer, sizes.get(layer.name, layer.out_size) if sizes is not None else layer.out_size)
        macs += m
        key = layer.qualname if layer.module_type else layer.name
        params[key] = max(params.get(key, 0), p)
    return macs, sum(params.values())


# --------------------------------------------------------------------------------------------
# Applying an edit to the IR


def _apply_change(layer: Layer, change: Change) -> Layer:
    ndim = len(layer.kernel) or len(layer.stride)
    if change.remove:
        return replace(
            layer,
            kind=Kind.POINTWISE,
            op="Identity",
            kernel=(1,) * ndim if ndim else (),
            stride=(Fraction(1),) * ndim if ndim else (),
            dilation=(1,) * ndim if ndim else (),
            padding=(0,) * ndim if ndim else (),
            in_channels=None,
            out_channels=None,
            module_type="torch.nn.modules.linear.Identity",
        )
    updates: dict[str, object] = {}
    if change.kernel is not None:
        updates["kernel"] = change.kernel
        # a 1x1 kernel adds no context: lower it the way the frontend lowers a 1x1 conv
        if all(k == 1 for k in change.kernel) and (change.stride is None or all(s == 1 for s in change.stride)):
            updates["kind"] = Kind.POINTWISE
    if change.stride is not None:
        updates["stride"] = tuple(Fraction(s) for s in change.stride)
    if change.padding is not None:
        updates["padding"] = change.padding
    if change.in_channels is not None:
        updates["in_channels"] = change.in_channels
    return replace(layer, **updates)


def apply_edit(graph: Graph, edit: Edit, write_sizes: bool = True, stop_at_conflict: bool = False) -> Sizes:
    """The graph with ``edit`` applied and sizes re-propagated (see :func:`propagate_sizes`)."""
    by_qual: dict[str, Change] = {c.qualname: c for c in edit.changes if not c.remove}
    removed = tuple(c.qualname for c in edit.changes if c.remove)

    def change_for(layer: Layer) -> Change | None:
        if removed and any(layer.qualname == p or layer.qualname.startswith(p + ".") for p in removed):
            return Change(layer.qualname, layer.op, remove=True)
        return by_qual.get(layer.qualname) if layer.module_type else None

    layers = []
    for layer in graph.layers:
        change = change_for(layer)
        layers.append(layer if change is None else _apply_change(layer, change))
    return propagate_sizes(replace(graph, layers=tuple(layers)), graph, write_sizes, stop_at_conflict)


# --------------------------------------------------------------------------------------------
# Enumerating candidates


def _editable(layer: Layer) -> bool:
    """A spatial module layer whose attributes :mod:`rflint.refine` knows how to change."""
    return (
        layer.kind is Kind.WINDOW
        and layer.taps is None  # explicit taps (a window over axis pieces) are not attribute edits
        and bool(layer.module_type)
        and bool(layer.kernel)
        and "adaptive" not in layer.op.lower()
        and "transpose" not in layer.op.lower()
        and all(Fraction(s).denominator == 1 for s in layer.stride)
    )


def _is_pool(layer: Layer) -> bool:
    return "pool" in layer.op.lower()


def _is_conv(layer: Layer) -> bool:
    return "conv" in layer.op.lower()


def _same_padding(layer: Layer) -> bool:
    dil = layer.dilation or (1,) * len(layer.kernel)
    return tuple(layer.padding) == tuple((k - 1) // 2 * d for k, d in zip(layer.kernel, dil))


def _input_size(layer: Layer, sizes: dict[str, Size]) -> Size:
    for n in layer.inputs:
        if sizes.get(n) is not None:
            return sizes[n]
    return None


def _stride_change(layer: Layer, stride: tuple[int, ...], **kw: object) -> Change:
    return Change(
        layer.qualname, layer.op, stride=stride, old_kernel=tuple(layer.kernel), old_stride=_ints(layer.stride), **kw
    )


def enumerate_edits(analysis: Analysis) -> list[Edit]:
    """Every candidate single edit of ``analysis.graph`` (see the module docstring)."""
    graph = analysis.graph
    sizes: dict[str, Size] = {l.name: (graph.input_size if l.kind is Kind.INPUT else l.out_size) for l in graph.layers}
    order = {l.name: i for i, l in enumerate(graph.layers)}
    jump = {lrf.layer.name: lrf.jump for lrf in analysis.layers}
    reached = {lrf.layer.name for lrf in analysis.layers}
    # one entry per module: the first place it is used
    modules: dict[str, Layer] = {}
    for layer in graph.layers:
        if layer.name in reached and _editable(layer):
            modules.setdefault(layer.qualname, layer)
    spatial = list(modules.values())
    edits: list[Edit] = []

    # downsampling groups: layers that turn the same input size into the same output size
    groups: dict[tuple, list[Layer]] = {}
    for layer in spatial:
        if any(s > 1 for s in layer.stride):
            key = (_input_size(layer, sizes), layer.out_size, tuple(layer.stride))
            groups.setdefault(key, []).append(layer)
    for (_, _, stride), members in groups.items():
        ones = tuple(1 for _ in stride)
        last = max(order[m.name] for m in members)
        edits.append(Edit("stride", tuple(_stride_change(m, ones) for m in members)))
        if len(members) == 1:
            m = members[0]
            if _is_pool(m) and tuple(m.kernel) == _ints(m.stride):
                edits.append(
                    Edit("remove-pool", (Change(m.qualname, m.op, remove=True, old_kernel=tuple(m.kernel), old_stride=_ints(m.stride)),))
                )
            if _is_conv(m) and tuple(m.kernel) == _ints(m.stride) and all(p == 0 for p in (m.padding or (0,))):
                for smaller in sorted({k // 2 for k in m.kernel} | {1}, reverse=True):
                    if smaller < 1 or smaller >= min(m.kernel):
                        continue
                    new_k = tuple(max(1, k // (max(m.kernel) // smaller)) for k in m.kernel)
                    edits.append(
                        Edit(
                            "patchify",
                            (
                                Change(
                                    m.qualname,
                                    m.op,
                                    kernel=new_k,
                                    stride=new_k,
                                    padding=(0,) * len(new_k),
                                    old_kernel=tuple(m.kernel),
                                    old_stride=_ints(m.stride),
                                ),
                            ),
                        )
                    )
        # move the downsampling to a later spatial layer of stride 1
        for later in spatial:
            if order[later.name] <= last or any(s != 1 for s in later.stride) or later in members:
                continue
            if not any(k > 1 for k in later.kernel):
                continue
            n_in = _input_size(later, sizes)
            if n_in is not None and any(n < 2 * s for n, s in zip(n_in, stride)):
                continue
            changes = tuple(_stride_change(m, ones) for m in members) + (_stride_change(later, _ints(stride)),)
            edits.append(Edit("move", changes))

    # kernel shrinks: one conv, or every conv of a stage (same kernel, same jump, same kind)
    stages: dict[tuple, list[Layer]] = {}
    for layer in spatial:
        if not _is_conv(layer) or not _same_padding(layer) or max(layer.kernel) <= min(SMALLER_KERNELS):
            continue
        if tuple(layer.kernel) == _ints(layer.stride):
            continue  # patchify: handled above
        depthwise = layer.groups > 1 and layer.groups == layer.in_channels
        # a stage: the convs that produce the same resolution (same output jump), the strided
        # first conv of the stage included
        stages.setdefault((tuple(layer.kernel), jump.get(layer.name), depthwise, layer.op), []).append(layer)
    for (kernel, _, _, _), members in stages.items():
        for k_new in SMALLER_KERNELS:
            if k_new >= max(kernel):
                continue
            new_k = tuple(min(k, k_new) for k in kernel)

            def shrink(m: Layer, new_k: tuple[int, ...] = new_k) -> Change:
                dil = m.dilation or (1,) * len(new_k)
                return Change(
                    m.qualname,
                    m.op,
                    kernel=new_k,
                    padding=tuple((k - 1) // 2 * d for k, d in zip(new_k, dil)),
                    old_kernel=tuple(m.kernel),
                    old_stride=_ints(m.stride),
                )

            for m in members:
                edits.append(Edit("kernel", (shrink(m),)))
            if len(members) > 1:
                edits.append(Edit("kernel", tuple(shrink(m) for m in members), label=_stage_label(members, kernel, new_k)))

    edits.extend(_cut_edits(analysis, order))
    return edits


def _stage_label(members: list[Layer], kernel: tuple[int, ...], new_k: tuple[int, ...]) -> str:
    names = [m.qualname for m in members]
    span = f"{names[0]} .. {names[-1]}" if len(names) > 2 else ", ".join(names)
    return f"{span} ({len(names)} convs): kernel {_fmt(kernel)} -> {_fmt(new_k)}"


# --------------------------------------------------------------------------------------------
# The efficiency direction: cut the unproductive tail


def _cut_points(analysis: Analysis, order: dict[str, int]) -> list[int]:
    """Indices (into ``analysis.layers``) of layers every input-to-output path goes through."""
    layers = [lrf.layer for lrf in analysis.layers]
    pos = {l.name: i for i, l in enumerate(layers)}
    reach = [0] * len(layers)
    for i, l in enumerate(layers):
        for n in l.inputs:
            if n in pos:
                reach[pos[n]] = max(reach[pos[n]], i)
    cuts = []
    furthest = 0
    for i in range(len(layers)):
        if furthest <= i:
            cuts.append(i)
        furthest = max(furthest, reach[i])
    return cuts


def _channels_at(layers: list, i: int, by_name: dict[str, Layer]) -> int | None:
    """Channels of layer ``i``'s output: its own out_channels, else its first input's."""
    seen = 0
    layer = layers[i]
    while layer is not None and seen < 10_000:
        if layer.out_channels is not None:
            return layer.out_channels
        layer = by_name.get(layer.inputs[0]) if layer.inputs else None
        seen += 1
    return None


def _cut_edits(analysis: Analysis, order: dict[str, int]) -> list[Edit]:
    size = analysis.graph.input_size
    lrfs = list(analysis.layers)
    layers = [lrf.layer for lrf in lrfs]
    unproductive = [i for i, lrf in enumerate(lrfs) if is_unproductive(lrf, size)]
    if not unproductive:
        return []
    first_bad = unproductive[0]
    cuts = _cut_points(analysis, order)
    # the head: the first layer (a cut point) after the unproductive run that makes the field
    # global on every axis, e.g. the global average pool before the classifier
    head = next(
        (i for i in cuts if i > unproductive[-1] and (layers[i].kind is Kind.GLOBAL or "adaptive" in layers[i].op.lower())),
        None,
    )
    if head is None:
        return []
    starts = [c for c in cuts if c < first_bad]
    if not starts:
        return []
    by_name = analysis.graph.by_name()
    edits = []
    # the latest cut point before the first unproductive layer (removes the least), and the
    # cut point before the first critical layer (removes the critical ones too)
    critical = [i for i, lrf in enumerate(lrfs) if is_critical(lrf, size) or is_unproductive(lrf, size)]
    chosen = {starts[-1]}
    before_critical = [c for c in starts if c < critical[0]]
    if before_critical:
        chosen.add(before_critical[-1])
    for start in sorted(chosen, reverse=True):
        edit = _cut_edit(analysis, layers, start, head, by_name)
        if edit is not None:
            edits.append(edit)
    return edits


def _cut_edit(analysis: Analysis, layers: list[Layer], start: int, head: int, by_name: dict[str, Layer]) -> Edit | None:
    removed = [l for l in layers[start + 1 : head] if l.module_type]
    if not removed or not any(l.grows_field for l in removed):
        return None
    removed_q = {l.qualname for l in removed}
    kept_q = {l.qualname for l in analysis.graph.layers if l.module_type and l.qualname not in removed_q}
    prefixes = _covering_prefixes(removed_q, kept_q)
    if prefixes is None:
        return None
    channels = _channels_at(layers, start, by_name)
    head_channels = _channels_at(layers, head, by_name)
    changes = [Change(p, "module", remove=True) for p in prefixes]
    anchor = _block_of(layers, start, prefixes)
    label = f"remove {_runs(prefixes)} (the tail after {anchor})"
    # the first conv / linear after the removed run reads `channels` instead of `head_channels`
    # per position (a linear layer over a flattened map reads positions x channels)
    reader = next((l for l in layers[head:] if _is_conv_or_linear(l)), None)
    if reader is not None and channels and head_channels and channels != head_channels:
        new_in = reader.in_channels * channels // head_channels
        changes.append(Change(reader.qualname, reader.op, in_channels=new_in, old_kernel=tuple(reader.kernel)))
        label += f"; {reader.qualname} reads {new_in} features"
    return Edit("cut", tuple(changes), label=label)


def _block_of(layers: list[Layer], start: int, removed: list[str]) -> str:
    """The outermost module that ends at layer ``start`` and holds nothing removed, to name the
    cut point in user terms ("the tail after layer3.0", not after its last activation)."""
    qual = layers[start].qualname
    parts = qual.split(".")
    for depth in range(1, len(parts)):
        block = ".".join(parts[:depth])
        inside = [i for i, l in enumerate(layers) if l.qualname == block or l.qualname.startswith(block + ".")]
        if any(p == block or p.startswith(block + ".") for p in removed):
            continue
        if inside and max(inside) == start:
            return block
    return qual


def _runs(paths: list[str]) -> str:
    """``features.12 .. features.18`` for a run of three or more numbered siblings."""
    out: list[str] = []
    i = 0
    while i < len(paths):
        parent, _, last = paths[i].rpartition(".")
        j = i
        while (
            last.isdigit()
            and j + 1 < len(paths)
            and paths[j + 1].rpartition(".")[0] == parent
            and paths[j + 1].rpartition(".")[2] == str(int(last) + (j + 1 - i))
        ):
            j += 1
        out.append(f"{paths[i]} .. {paths[j]}" if j - i >= 2 else ", ".join(paths[i : j + 1]))
        i = j + 1
    return ", ".join(out)


def _covering_prefixes(removed: set[str], kept: set[str]) -> list[str] | None:
    """The fewest module paths whose subtrees hold exactly the removed modules."""

    def prefixes(q: str) -> list[str]:
        parts = q.split(".")
        return [".".join(parts[: i + 1]) for i in range(len(parts))]

    def touches_kept(p: str) -> bool:
        return any(k == p or k.startswith(p + ".") or p.startswith(k + ".") for k in kept)

    chosen: list[str] = []
    for q in sorted(removed):
        best = next((p for p in prefixes(q) if not touches_kept(p)), None)
        if best is None:
            return None
        if best not in chosen and not any(best.startswith(c + ".") for c in chosen):
            chosen = [c for c in chosen if not c.startswith(best + ".")] + [best]
    order = {q: i for i, q in enumerate(sorted(removed))}
    return sorted(chosen, key=lambda p: min(i for q, i in order.items() if q == p or q.startswith(p + ".")))


# --------------------------------------------------------------------------------------------
# Evaluating and ranking


@dataclass(frozen=True)
class Candidate:
    """One evaluated edit."""

    edit: Edit
    analysis: Analysis
    macs: int
    params: int
    macs_ratio: float
    params_delta: int
    unproductive: int  # field-growing layers unproductive at I_res after the edit
    removed_productive: int = 0  # productive field-growing layers a cut removes
    verified: bool | None = None  # None: not verified; set by rflint.refine
    note: str = ""

    @property
    def i_min(self) -> tuple:
        return self.analysis.i_min

    @property
    def i_max(self) -> tuple:
        return self.analysis.i_max

    def refined(self, size: tuple[int, ...]) -> bool:
        return is_refined(self.analysis, size)


@dataclass(frozen=True)
class Advice:
    """Everything :func:`advise` found for one model at one input size."""

    base: Analysis
    base_macs: int
    base_params: int
    base_unproductive: int
    performance: tuple[Candidate, ...]
    efficiency: tuple[Candidate, ...]
    evaluated: int  # candidates analysed
    invalid: int  # candidates dropped because merges no longer agree in size
    seconds: float  # time to enumerate, apply, analyse and rank
    dropped: int = 0  # candidates that failed verification (rflint.refine)
    failures: tuple[Candidate, ...] = ()  # those candidates, with the reason in ``note``
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def input_size(self) -> tuple[int, ...]:
        return self.base.graph.input_size

    @property
    def already_refined(self) -> bool:
        return is_refined(self.base, self.input_size)

    @property
    def nothing_to_change(self) -> bool:
        return self.already_refined and self.base_unproductive == 0


def is_refined(analysis: Analysis, size: tuple[int, ...] | None = None) -> bool:
    """Richter & Pal's criterion: ``I_min < I_res`` on every axis."""
    size = size or analysis.graph.input_size
    return all(m < s for m, s in zip(analysis.i_min, size))


def count_unproductive(analysis: Analysis) -> int:
    size = analysis.graph.input_size
    return sum(1 for lrf in analysis.layers if is_unproductive(lrf, size))


class Reanalyser:
    """``analyse`` for many edited copies of one graph, reusing the unchanged prefix.

    An edit changes the receptive fields only from the first layer whose geometry it changes
    on, so the path sets of the layers before it are taken from the base graph. The loop is
    :func:`rflint.algebra.propagate`'s, built from the same step (:func:`~rflint.algebra.propagate_layer`); the tests check
    that it gives exactly ``analyse(graph)``.
    """

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.state: dict[str, tuple[AxisPaths, ...]] = {}
        self.uncertain: dict[str, bool] = {}
        #: per layer index: how many LayerRF results the layers before it produced
        self.before: list[int] = []
        self.results = self._run(graph, 0, {}, {}, [])

    def _run(
        self,
        graph: Graph,
        start: int,
        state: dict[str, tuple[AxisPaths, ...]],
        uncertain: dict[str, bool],
        results: list[LayerRF],
    ) -> list[LayerRF]:
        ndim = graph.ndim
        record = start == 0 and graph is self.graph
        for layer in graph.layers[start:]:
            if record:
                self.before.append(len(results))
            result = propagate_layer(layer, state, uncertain, ndim)
            if result is not None:
                results.append(result)
        if record:
            self.state, self.uncertain = state, uncertain
        return results

    def analyse(self, graph: Graph) -> Analysis:
        """The analysis of ``graph``, an edited copy of the base graph (same layer names)."""
        base = self.graph.layers
        start = next(
            (i for i, (a, b) in enumerate(zip(base, graph.layers)) if _rf_fields(a) != _rf_fields(b)),
            len(graph.layers),
        )
        if len(base) != len(graph.layers) or start == 0:
            return analyse(graph)
        names = [layer.name for layer in base[:start]]
        state = {n: self.state[n] for n in names if n in self.state}
        uncertain = {n: self.uncertain[n] for n in names if n in self.uncertain}
        prefix = list(self.results[: self.before[start]])
        layers = self._run(graph, start, state, uncertain, prefix)
        i_min_u, i_min, i_max = resolution_bounds(layers, graph.ndim)
        return Analysis(graph, tuple(layers), i_min_u, i_min, i_max, output_global_via(layers))


def _rf_fields(layer: Layer) -> tuple:
    return (
        layer.name,
        layer.kind,
        layer.kernel,
        layer.stride,
        layer.dilation,
        layer.padding,
        layer.taps,
        layer.global_axes,
        layer.side_global,
        layer.inputs,
    )


def evaluate(
    base: Analysis,
    edit: Edit,
    base_cost: tuple[int, int] | None = None,
    reanalyser: Reanalyser | None = None,
) -> Candidate | None:
    """Apply ``edit`` on the IR and analyse it; ``None`` if the edit breaks a merge."""
    sized = apply_edit(base.graph, edit, write_sizes=False, stop_at_conflict=True)
    if sized.conflicts:
        return None
    analysis = reanalyser.analyse(sized.graph) if reanalyser is not None else analyse(sized.graph)
    macs, params = graph_cost(sized.graph, sized.sizes)
    base_macs, base_params = base_cost or graph_cost(base.graph)
    removed_productive = 0
    if edit.kind == "cut":
        size = base.graph.input_size
        gone = {c.qualname for c in edit.changes if c.remove}
        removed_productive = sum(
            1
            for lrf in base.layers
            if lrf.layer.grows_field
            and not is_unproductive(lrf, size)
            and any(lrf.layer.qualname == p or lrf.layer.qualname.startswith(p + ".") for p in gone)
        )
    return Candidate(
        edit=edit,
        analysis=analysis,
        macs=macs,
        params=params,
        macs_ratio=macs / base_macs if base_macs else 1.0,
        params_delta=params - base_params,
        unproductive=count_unproductive(analysis),
        removed_productive=removed_productive,
    )


def performance_key(c: Candidate) -> tuple:
    """Least compute increase first; an edit that saves compute counts as no increase (in the
    performance direction saving compute is no goal, losing capacity is a risk), then the fewest
    modules changed, then the largest ``I_min`` (the smallest change of the receptive field)."""
    return (round(max(c.macs_ratio, 1.0), 6), len(c.edit.changes), tuple(-x for x in c.i_min), c.macs_ratio)


def efficiency_key(c: Candidate) -> tuple:
    return (c.unproductive, c.removed_productive, round(c.macs_ratio, 6), len(c.edit.changes))


def advise(analysis: Analysis, top: int | None = DEFAULT_TOP) -> Advice:
    """Enumerate, evaluate and rank single edits of ``analysis.graph`` (IR only, no torch).

    ``top=None`` keeps every qualifying candidate (ranked)."""
    t0 = time.perf_counter()
    size = analysis.graph.input_size
    base_cost = graph_cost(analysis.graph)
    base_bad = count_unproductive(analysis)
    # a refined model has no unproductive layer either (an unproductive layer's own r_min exceeds
    # the input size, so I_min would too): nothing to search for
    edits = [] if is_refined(analysis, size) else enumerate_edits(analysis)
    t1 = time.perf_counter()
    evaluated: list[Candidate] = []
    invalid = 0
    reanalyser = Reanalyser(analysis.graph)
    for edit in edits:
        cand = evaluate(analysis, edit, base_cost, reanalyser)
        if cand is None:
            invalid += 1
        else:
            evaluated.append(cand)
    t2 = time.perf_counter()
    refined_now = is_refined(analysis, size)
    perf = [] if refined_now else [c for c in evaluated if c.refined(size) and c.edit.kind != "cut"]
    perf.sort(key=performance_key)
    eff = [c for c in evaluated if c.unproductive < base_bad and c.macs_ratio < 1.0]
    eff.sort(key=efficiency_key)
    if top is not None:
        perf, eff = perf[:top], eff[:top]
    t3 = time.perf_counter()
    return Advice(
        base=analysis,
        base_macs=base_cost[0],
        base_params=base_cost[1],
        base_unproductive=base_bad,
        performance=tuple(perf),
        efficiency=tuple(eff),
        evaluated=len(evaluated),
        invalid=invalid,
        seconds=t3 - t0,
        timings={"enumerate": t1 - t0, "evaluate": t2 - t1, "rank": t3 - t2},
    )


def hint_for_rf103(analysis: Analysis) -> str | None:
    """One line for an RF103 finding: the best IR-level edit (not verified), or ``None``."""
    if is_refined(analysis):
        return None
    advice = advise(analysis, top=1)
    if not advice.performance:
        return None
    best = advice.performance[0]
    return (
        f"try {best.edit.text} (I_min {fmt_number(analysis.i_min)} -> {fmt_number(best.i_min)}, "
        f"MACs x{best.macs_ratio:.2f}; `rflint suggest` verifies it)"
    )


def fmt_number(values: Iterable) -> str:
    shown = ["inf" if v is None else str(v) for v in (display(x) for x in values)]
    return shown[0] if len(set(shown)) == 1 else "x".join(shown)


def feature_map_term(analysis: Analysis) -> tuple:
    """rfa-toolbox's extra I_min term, ``max k * J`` over finite-kernel layers (its own stride
    included), per axis. rflint's ``i_min`` leaves it out; it is reported for comparison with
    numbers computed by rfa-toolbox (the brief's section A.5)."""
    out = []
    for a in range(analysis.graph.ndim):
        vals = [
            Fraction(lrf.layer.kernel[a]) * lrf.axes[a].j_max
            for lrf in analysis.layers
            if lrf.layer.kind is Kind.WINDOW and lrf.layer.kernel and lrf.axes[a].j_max != math.inf
        ]
        out.append(max(vals, default=Fraction(1)))
    return tuple(out)
