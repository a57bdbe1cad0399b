"""Single architecture edits on the IR: what they are, which ones a graph admits, and the
edited graph (sizes re-propagated). The advisor (:mod:`rflint.advise.advisor`) ranks them; the refiner
(:mod:`rflint.advise.refine`) applies the best ones to the real module.

Edits touch modules (``Layer.module_type`` set) only, so that each can be applied to the real
``nn.Module`` and verified. A module used at several places in the graph is edited everywhere it
is used, as it would be in the model.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction

from rflint.rf.status import is_critical, is_unproductive
from rflint.ir import Analysis, Graph, Kind, Layer
from rflint.rf.sizes import Size, Sizes, is_conv_or_linear, propagate_sizes

#: Kernel sizes a ``kernel`` edit may shrink to (odd, so that ``same`` padding exists).
SMALLER_KERNELS = (5, 3)

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
    """A spatial module layer whose attributes :mod:`rflint.advise.refine` knows how to change."""
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
    """Every candidate single edit of ``analysis.graph`` (see the module docstring), family by
    family: downsampling (stride, pool, patchify, moves), kernel shrinks, cuts."""
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
    return _downsampling_edits(spatial, sizes, order) + _kernel_edits(spatial, jump) + list(_cut_edits(analysis, order))


def _downsampling_edits(spatial: list[Layer], sizes: dict[str, Size], order: dict[str, int]) -> list[Edit]:
    """Per downsampling group (layers that turn the same input size into the same output
    size): drop the stride, remove a pool, patchify with a smaller kernel, or move the
    downsampling to a later stride-1 layer."""
    edits: list[Edit] = []
    groups: dict[tuple, list[Layer]] = {}
    for layer in spatial:
        if any(s > 1 for s in layer.stride):
            key = (_input_size(layer, sizes), layer.out_size, tuple(layer.stride))
            groups.setdefault(key, []).append(layer)
    for (_, _, stride), members in groups.items():
        ones = tuple(1 for _ in stride)
        edits.append(Edit("stride", tuple(_stride_change(m, ones) for m in members)))
        if len(members) == 1:
            edits.extend(_single_downsampler_edits(members[0]))
        edits.extend(_move_edits(members, stride, spatial, sizes, order))
    return edits


def _single_downsampler_edits(m: Layer) -> list[Edit]:
    """A lone non-overlapping pool can go; a lone patchifying conv can use smaller patches."""
    edits: list[Edit] = []
    if _is_pool(m) and tuple(m.kernel) == _ints(m.stride):
        edits.append(Edit("remove-pool", (Change(m.qualname, m.op, remove=True, old_kernel=tuple(m.kernel), old_stride=_ints(m.stride)),)))
    if _is_conv(m) and tuple(m.kernel) == _ints(m.stride) and all(p == 0 for p in (m.padding or (0,))):
        for smaller in sorted({k // 2 for k in m.kernel} | {1}, reverse=True):
            if smaller < 1 or smaller >= min(m.kernel):
                continue
            new_k = tuple(max(1, k // (max(m.kernel) // smaller)) for k in m.kernel)
            change = Change(
                m.qualname, m.op, kernel=new_k, stride=new_k, padding=(0,) * len(new_k), old_kernel=tuple(m.kernel), old_stride=_ints(m.stride)
            )
            edits.append(Edit("patchify", (change,)))
    return edits


def _move_edits(members: list[Layer], stride: tuple, spatial: list[Layer], sizes: dict[str, Size], order: dict[str, int]) -> list[Edit]:
    """Move a group's downsampling to a later spatial layer of stride 1 (one that still has
    room for the stride on its input)."""
    ones = tuple(1 for _ in stride)
    last = max(order[m.name] for m in members)
    edits = []
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
    return edits


def _kernel_edits(spatial: list[Layer], jump: dict[str, tuple]) -> list[Edit]:
    """Kernel shrinks: one conv, or every conv of a stage (same kernel, same jump, same kind)."""
    stages: dict[tuple, list[Layer]] = {}
    for layer in spatial:
        if not _is_conv(layer) or not _same_padding(layer) or max(layer.kernel) <= min(SMALLER_KERNELS):
            continue
        if tuple(layer.kernel) == _ints(layer.stride):
            continue  # patchify: a downsampling edit
        depthwise = layer.groups > 1 and layer.groups == layer.in_channels
        # a stage: the convs that produce the same resolution (same output jump), the strided
        # first conv of the stage included
        stages.setdefault((tuple(layer.kernel), jump.get(layer.name), depthwise, layer.op), []).append(layer)
    edits: list[Edit] = []
    for (kernel, _, _, _), members in stages.items():
        for k_new in SMALLER_KERNELS:
            if k_new >= max(kernel):
                continue
            new_k = tuple(min(k, k_new) for k in kernel)
            edits.extend(Edit("kernel", (_shrink(m, new_k),)) for m in members)
            if len(members) > 1:
                edits.append(Edit("kernel", tuple(_shrink(m, new_k) for m in members), label=_stage_label(members, kernel, new_k)))
    return edits


def _shrink(m: Layer, new_k: tuple[int, ...]) -> Change:
    """``m`` with kernel ``new_k`` and the padding that keeps its output size."""
    dil = m.dilation or (1,) * len(new_k)
    return Change(
        m.qualname, m.op, kernel=new_k, padding=tuple((k - 1) // 2 * d for k, d in zip(new_k, dil)), old_kernel=tuple(m.kernel), old_stride=_ints(m.stride)
    )


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
    reader = next((l for l in layers[head:] if is_conv_or_linear(l)), None)
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


