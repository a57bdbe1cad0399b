"""Uneven overlap behind transposed convolutions: the checkerboard of Odena et al. (2016).

A transposed convolution with kernel ``k`` and stride ``s`` gives output phase ``p`` the taps
of :class:`rflint.ir.Taps`: ``ceil((p + pad - (k-1)) / s) .. floor((p + pad) / s)``. When ``s``
does not divide ``k`` the phases read different numbers of input units, so neighbouring
outputs sum different numbers of terms: a checkerboard that training has to fight.

The layers after it can even the phases out again (a stride-1 conv of kernel ``s`` after a
``k = 3, s = 2`` deconvolution reads 2 inputs at every phase). So the phases are tracked, with
the path algebra, from the transposed conv's input through the chain of single-reader layers
that follows it (up to a merge, a branch, a global op or the next uneven layer), and the
layer is judged on the counts at the end of that chain.
"""

from __future__ import annotations

from dataclasses import dataclass

from rflint.rf.algebra import INPUT_CLASS, PathClass, through
from rflint.ir import Graph, Kind, Layer


@dataclass(frozen=True, slots=True)
class UnevenOverlap:
    """``layer`` makes the phases of ``axis`` read ``counts`` units of its input each, still
    uneven after the chain ending at ``chain_end`` (a qualname)."""

    layer: Layer
    axis: int
    own: tuple[int, ...]
    counts: tuple[int, ...]
    chain_end: str  # the last layer of the chain that changed the phases

    @property
    def kernel(self) -> int:
        """A transposed conv's kernel: each of its taps lands in exactly one output phase."""
        return sum(self.own)


def _counts(c: PathClass) -> tuple[int, ...]:
    return tuple(max(0, h - l + 1) for l, h in zip(c.lo, c.hi))


def _uneven_taps(layer: Layer, axis: int, ndim: int) -> bool:
    if layer.taps is None or layer.kind in (Kind.GLOBAL, Kind.UNKNOWN):
        return False
    taps = layer.taps[axis] if axis < len(layer.taps) else None
    return taps is not None and taps.period > 1 and len({h - l for l, h in zip(taps.lo, taps.hi)}) > 1


def uneven_overlaps(graph: Graph) -> list[UnevenOverlap]:
    """Every layer whose output phases read uneven numbers of inputs after its chain."""
    ndim = graph.ndim
    readers: dict[str, list[Layer]] = {}
    for layer in graph.layers:
        for name in layer.inputs:
            readers.setdefault(name, []).append(layer)
    out = []
    for layer in graph.layers:
        for axis in range(ndim):
            if not _uneven_taps(layer, axis, ndim):
                continue
            first = through(INPUT_CLASS, layer.taps[axis])
            if first is None:
                continue
            c, end, last = first, layer, layer
            while True:
                nxt = readers.get(end.name, [])
                if len(nxt) != 1 or len(nxt[0].inputs) != 1 or nxt[0].kind in (Kind.GLOBAL, Kind.UNKNOWN, Kind.MERGE):
                    break
                if _uneven_taps(nxt[0], axis, ndim) or (nxt[0].global_axes and nxt[0].global_axes[axis]):
                    break
                taps = nxt[0].axis_taps(ndim)[axis]
                step = c if taps is None or taps.is_identity else through(c, taps)
                if step is None:
                    break
                c, end = step, nxt[0]
                last = end if step is not c else last
            counts = _counts(c)
            if len(set(counts)) > 1:
                out.append(UnevenOverlap(layer, axis, _counts(first), counts, last.qualname))
    return out
