"""Which input positions can affect the output at all, per axis: dead input positions.

A kernel smaller than its stride skips input positions (a 1x1 stride-2 stem reads every other
pixel; ``x[..., ::2, ::2]``; ``Conv2d(k=2, stride=4)``); when no other path reads them they
never affect any output. Walking the graph backwards from its outputs, per axis, marks the
units of every tensor that some needed output unit reads: exactly the taps with a non-zero
weight (a dilated window reads ``lo, lo + d, ..., hi``), so the union of all paths decides (a
ResNet's 1x1/2 shortcut skips odd pixels but the 3x3/2 main path beside it reads them). Boxes
factor per axis, so each axis is walked on its own. A global op, an unknown op, or an axis
whose size is unknown reads every unit of its input (no position is called dead on a guess).
An axis is reported only when a gap lies *between* read positions (a phase no path reads):
a strided window without padding that leaves the last pixel or two unread at an unlucky size is
a border remainder, not a dead phase.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rflint.ir import Graph, Kind, Layer, Taps


@dataclass(frozen=True, slots=True)
class DeadPositions:
    """Along ``axis``: the input positions no output reads, and the layer that skips them."""

    axis: int
    dead: tuple[int, ...]
    size: int
    culprit: Layer | None

    @property
    def fraction(self) -> float:
        return len(self.dead) / self.size


def _offsets(layer: Layer, axis: int, taps: Taps, phase: int) -> Sequence[int]:
    """The tap offsets with a non-zero weight of one output phase (a dilated window skips)."""
    lo, hi = taps.lo[phase], taps.hi[phase]
    if layer.taps is None and layer.kind is Kind.WINDOW and layer.dilation:
        return range(lo, hi + 1, max(1, layer.dilation[axis]))
    return range(lo, hi + 1)


def read_units(layer: Layer, axis: int, ndim: int, needed: Sequence[bool], n_in: int) -> list[bool] | None:
    """Which of the ``n_in`` input units the ``needed`` output units read (None: all of them)."""
    if layer.kind in (Kind.UNKNOWN, Kind.GLOBAL) or (layer.global_axes and layer.global_axes[axis]):
        return None
    taps = layer.axis_taps(ndim)[axis]
    if taps is None or taps.is_identity:
        return list(needed) if len(needed) == n_in else None
    out = [False] * n_in
    for o, want in enumerate(needed):
        if not want:
            continue
        q, p = divmod(o, taps.period)
        for t in _offsets(layer, axis, taps, p):
            t += taps.shift * q
            if 0 <= t < n_in:
                out[t] = True
    return out


def _size(layer: Layer, axis: int, ndim: int) -> int | None:
    return layer.out_size[axis] if layer.out_size is not None and len(layer.out_size) == ndim else None


def needed_units(graph: Graph, axis: int) -> tuple[dict[str, list[bool]], dict[str, list[bool]]]:
    """Per layer name: the units of its output some output of the model depends on, and (per
    layer) the units of its input that it reads for them."""
    ndim = graph.ndim
    by_name = graph.by_name()
    sizes = {l.name: (graph.input_size[axis] if l.kind is Kind.INPUT else _size(l, axis, ndim)) for l in graph.layers}
    read_by_any = {name for l in graph.layers for name in l.inputs}
    needed: dict[str, list[bool]] = {}
    reads: dict[str, list[bool]] = {}
    for layer in reversed(graph.layers):
        n_out = sizes.get(layer.name)
        if n_out is None:  # unknown size: it reads all of its inputs
            for name in layer.inputs:
                if sizes.get(name) is not None:
                    needed[name] = [True] * sizes[name]
            continue
        own = needed.setdefault(layer.name, [layer.name not in read_by_any] * n_out)
        for name in layer.inputs:
            n_in = sizes.get(name)
            if name not in by_name or n_in is None:
                continue
            got = read_units(layer, axis, ndim, own, n_in) if any(own) else [False] * n_in
            got = [True] * n_in if got is None else got
            reads.setdefault(layer.name, got)
            prev = needed.setdefault(name, [False] * n_in)
            needed[name] = [a or b for a, b in zip(prev, got)]
    return needed, reads


def dead_positions(graph: Graph) -> list[DeadPositions]:
    """Per axis with input positions no output reads: which, and the layer that skips them."""
    out = []
    inputs = [l for l in graph.layers if l.kind is Kind.INPUT]
    for axis in range(graph.ndim):
        needed, reads = needed_units(graph, axis)
        for inp in inputs:
            mask = needed.get(inp.name)
            if mask is None or all(mask) or not any(mask):
                continue
            dead = tuple(i for i, m in enumerate(mask) if not m)
            first, last = mask.index(True), len(mask) - 1 - mask[::-1].index(True)
            if not any(first < i < last for i in dead):
                continue  # only a border is left unread (an unpadded window's remainder): no gap
            out.append(DeadPositions(axis, dead, len(mask), _culprit(graph, needed, reads)))
    return out


def _culprit(graph: Graph, needed: dict[str, list[bool]], reads: dict[str, list[bool]]) -> Layer | None:
    """The layer nearest the input that skips units of its input which nothing else reads,
    while every unit of its own output is needed (the skipping starts there)."""
    fallback = None
    for layer in graph.layers:
        got = reads.get(layer.name)
        if got is None or all(got) or not layer.inputs:
            continue
        skipped_elsewhere = any(not all(needed.get(name, [True])) for name in layer.inputs)
        if not skipped_elsewhere:
            continue
        if all(needed.get(layer.name, [False])):
            return layer
        fallback = fallback or layer
    return fallback
