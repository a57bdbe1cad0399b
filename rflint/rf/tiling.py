"""Every output's field, and the halo a tile needs for tiled inference. Pure Python.

**Outputs.** A detector's FPN returns P2..P7, a segmentation net with deep supervision a tuple
of maps: each gets its own row (:func:`output_fields`), with r_min / r_max, the jump (the
output's stride in input pixels) and the offset (where unit 0's field starts, ``-P`` in
Araujo et al.'s notation; unit ``i``'s field starts ``i * jump`` later) per axis.

**Halo.** Tiled (sliding-window) inference cuts the input into *cores* ``[c0, c1)`` per axis,
runs the model on each core widened by a halo, and keeps the outputs that belong to the core.
Output unit ``i`` stands for input pixels ``[floor(i J), ceil((i + 1) J) - 1]`` (``J`` the
output's jump) and reads ``[lo(i), hi(i)]``; the core's outputs equal the whole image's when
the tile holds every pixel they read. Cores start and end on the grid below, where the units'
pattern of fields starts over (``period`` units, ``period * J`` pixels), and the ends of the
fields grow with the unit, so the first unit of the core reads furthest back and the last one
furthest ahead: per axis, with ``p`` the period,

    before = -lo(0)          after = hi(p - 1) - (p J - 1)

(``AxisRF.lead`` / ``AxisRF.trail``), the maximum over every output. Zero padding
is no exception: a tile at the image border is cut at the border (not padded further), so
the model pads it exactly as it pads the whole image, and inside the image the halo holds
real pixels where the whole image has them.

**Granularity.** A strided model computes its inner feature maps on a grid of ``g`` input
pixels (``g``: the lcm of the numerators of every jump on the way, 8 for a U-Net with three
2x downsamplings even though its output jump is 1). A tile gives the same values only if
its origin lies on that grid, so cores and tile origins are multiples of ``g``: the halo to
use is ``before`` and ``after`` rounded up to multiples of ``g`` (``before_aligned``,
``after_aligned``). The halo is infinite on an axis where a global path (a global pooling
gate, attention over the whole axis, spatial normalisation statistics) reaches an output,
and only a lower bound where an op of unknown effect does (``exact`` is False: RF001).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from rflint.ir import INF, Analysis, LayerRF, Number


@dataclass(frozen=True)
class OutputField:
    """One model output's receptive field, per axis."""

    label: str  # "p2", "0", "output"
    layer: str  # the qualname of the layer that produces it
    r_min: tuple[Number, ...]
    r_max: tuple[Number, ...]
    r_narrow: tuple[Number, ...]
    jump: tuple[Number, ...]
    offset: tuple[Number, ...]  # where unit 0's field starts (-effective padding)
    period: tuple[int, ...]  # units after which the fields' pattern repeats (behind upsampling)
    feature_map: tuple[int, ...] | None
    global_context: bool
    uncertain: bool


@dataclass(frozen=True)
class HaloAxis:
    """The halo along one axis: input pixels of context before and after a tile's core, the
    grid tiles must be cut on, and the halo rounded up to that grid."""

    before: Number
    after: Number
    granularity: int
    before_aligned: Number
    after_aligned: Number
    exact: bool  # False where an op of unknown effect lies on a path (the halo is a lower bound)


def output_layers(analysis: Analysis) -> list[tuple[str, LayerRF]]:
    """``(label, layer)`` for every output of the model: the frontend's list, or else the
    layers nothing reads (one output: the last layer)."""
    by_name = {lrf.layer.name: lrf for lrf in analysis.layers}
    listed = [(label, by_name[name]) for label, name in analysis.graph.outputs if name in by_name]
    if listed:
        return listed
    read = {name for lrf in analysis.layers for name in lrf.layer.inputs}
    sinks = [lrf for lrf in analysis.layers if lrf.layer.name not in read and lrf.layer.kind.value != "input"]
    if len(sinks) <= 1:
        return [("output", analysis.layers[-1])] if analysis.layers else []
    return [(str(i), lrf) for i, lrf in enumerate(sinks)]


def output_fields(analysis: Analysis) -> tuple[OutputField, ...]:
    """One :class:`OutputField` per model output."""
    return tuple(_field(label, lrf) for label, lrf in output_layers(analysis))


def _field(label: str, lrf: LayerRF) -> OutputField:
    return OutputField(
        label=label,
        layer=lrf.layer.qualname,
        r_min=lrf.r_min,
        r_max=lrf.r_max,
        r_narrow=tuple(a.r_narrow for a in lrf.axes),
        jump=lrf.jump,
        offset=tuple(a.start for a in lrf.axes),
        period=tuple(a.period for a in lrf.axes),
        feature_map=lrf.layer.out_size,
        global_context=any(a.has_global for a in lrf.axes),
        uncertain=lrf.uncertain,
    )


def _ancestors(analysis: Analysis, roots: list[LayerRF]) -> list[LayerRF]:
    by_name = {lrf.layer.name: lrf for lrf in analysis.layers}
    seen: dict[str, LayerRF] = {}
    stack = [r.layer.name for r in roots]
    while stack:
        name = stack.pop()
        if name in seen or name not in by_name:
            continue
        seen[name] = by_name[name]
        stack.extend(by_name[name].layer.inputs)
    return list(seen.values())


def granularity(layers: list[LayerRF], axis: int) -> int:
    """The lcm of the numerators of every finite jump on ``axis``: the grid the model's inner
    feature maps lie on, in input pixels."""
    g = 1
    for lrf in layers:
        a = lrf.axes[axis]
        for j in (a.j_min, a.j_max):
            if j != INF:
                g = math.lcm(g, Fraction(j).numerator)
    return g


def halo(analysis: Analysis) -> tuple[HaloAxis, ...]:
    """Per axis, the halo that makes every output of a tile's core equal to the whole image's."""
    outputs = [lrf for _, lrf in output_layers(analysis)]
    ancestry = _ancestors(analysis, outputs)
    result = []
    for axis in range(analysis.graph.ndim):
        g = granularity(ancestry, axis)
        for o in outputs:  # the output's own pattern repeats every period * jump pixels
            a = o.axes[axis]
            if a.j_max != INF:
                g = math.lcm(g, Fraction(a.period * Fraction(a.j_max)).numerator)
        glob = any(o.axes[axis].has_global or o.axes[axis].r_max == INF for o in outputs)
        before = INF if glob else max(max(0, o.axes[axis].lead) for o in outputs)
        after = INF if glob else max(max(0, o.axes[axis].trail) for o in outputs)
        result.append(
            HaloAxis(
                before=before,
                after=after,
                granularity=g,
                before_aligned=_round_up(before, g),
                after_aligned=_round_up(after, g),
                exact=not any(o.uncertain for o in outputs),
            )
        )
    return tuple(result)


def _round_up(x: Number, g: int) -> Number:
    return INF if x == INF else -(-int(math.ceil(x)) // g) * g
