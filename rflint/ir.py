"""Typed records shared by every part of rflint: the layer graph and the analysis results.

This module imports nothing outside the standard library, so the receptive-field algebra,
the rules and the report renderers can be used (and tested) without torch.

Why a separate IR instead of working on torch.fx nodes directly: the same graph can come from
torch.fx, torch.export or an ONNX file, and the refinement advisor edits it without re-tracing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from fractions import Fraction

INF = math.inf

#: A receptive-field size or jump: exact rational (upsampling makes jumps fractional) or +inf.
Number = Fraction | float


class Kind(str, Enum):
    """What a layer does to the receptive field (the rules judge WINDOW layers only)."""

    INPUT = "input"  # the model input: r = 1, J = 1
    WINDOW = "window"  # conv / pool: r += (k_eff - 1) * J, J *= s
    POINTWISE = "pointwise"  # 1x1 conv, norm, activation, dropout, channel ops: no change
    MERGE = "merge"  # add, sub, mul, cat, stack: union of the inputs' paths
    UPSAMPLE = "upsample"  # interpolate / transposed conv: the jump divides by the factor
    GLOBAL = "global"  # global pooling, linear over a spatial axis, attention: whole input
    RESHAPE = "reshape"  # view / permute / pad / crop / shift: moves data, no new context
    UNKNOWN = "unknown"  # an op whose receptive-field effect rflint does not know


@dataclass(frozen=True, slots=True)
class Taps:
    """Which input units one output unit reads, along one axis.

    Output unit ``o = period * q + p`` (``0 <= p < period``) reads input units
    ``lo[p] + shift * q`` to ``hi[p] + shift * q``: the hull of the taps with a non-zero weight.
    A convolution is one phase (``period`` 1, ``shift`` = stride, ``lo`` = -lead padding,
    ``hi`` = ``lo + d (k - 1)``); upsampling by ``f`` has ``f`` phases that read the same input
    unit; a transposed convolution's phases read different numbers of inputs. A phase with
    ``lo > hi`` reads nothing (a transposed conv whose kernel is smaller than its stride).
    The jump of the output grid is ``shift / period`` input units.

    Why phases: after upsampling, neighbouring units see different amounts of input, so no
    single size describes a layer; keeping each phase makes ``r_max`` the widest unit and
    ``r_min`` the narrowest instead of an average (Araujo et al. 2019 for the offsets).
    """

    shift: int
    period: int
    lo: tuple[int, ...]
    hi: tuple[int, ...]

    @staticmethod
    def window(k_eff: int, stride: int, lead: int = 0) -> Taps:
        """A sliding window of ``k_eff`` input units, ``stride`` apart, starting ``lead`` units
        before the output unit's own position (the padding on the low side)."""
        return Taps(stride, 1, (-lead,), (k_eff - 1 - lead,))

    @staticmethod
    def shifted(offset: int) -> Taps:
        """Every output unit reads input unit ``o + offset`` (a crop, a pad, a roll)."""
        return Taps(1, 1, (offset,), (offset,))

    @property
    def is_identity(self) -> bool:
        return self.shift == self.period and all(l == h == p for p, (l, h) in enumerate(zip(self.lo, self.hi)))


@dataclass(frozen=True, slots=True)
class Source:
    """A place in a source file (1-based line)."""

    file: str
    line: int
    col: int = 1


@dataclass(frozen=True, slots=True)
class Layer:
    """One node of the model graph, lowered to what matters for receptive fields.

    ``kernel``, ``stride``, ``dilation`` and ``padding`` (the low-side padding) are per spatial
    axis; a WINDOW layer without explicit ``taps`` reads the window they describe, which is what
    the refinement advisor edits. Every other spatial effect (upsampling, transposed convs,
    adaptive pools with uneven bins, crops and pads, axis splits) is spelled out in ``taps``
    (one :class:`Taps` or None for "unchanged" per axis); for those layers ``kernel`` and
    ``stride`` are for display only (taps read per output and ``1 / factor`` for upsampling).
    ``global_axes`` are axes the layer makes global; ``side_global`` axes keep their local
    paths and gain a global one (normalisation statistics over space, a cyclic shift).
    """

    name: str  # unique node id inside the graph
    qualname: str  # user-facing name: module path ("layer4.1.conv2") or function node name
    op: str  # short op name: "Conv2d", "max_pool2d", "add"
    kind: Kind
    inputs: tuple[str, ...] = ()
    kernel: tuple[int, ...] = ()
    stride: tuple[Fraction, ...] = ()
    dilation: tuple[int, ...] = ()
    padding: tuple[int, ...] = ()
    #: axes made global by a GLOBAL layer (False = that axis is left alone)
    global_axes: tuple[bool, ...] = ()
    #: per axis, the input units each output unit reads (None: that axis is unchanged);
    #: None for the whole layer: derived from kernel/stride/dilation/padding for WINDOW layers
    taps: tuple[Taps | None, ...] | None = None
    #: axes on which a global side path joins the local ones (the local paths are kept)
    side_global: tuple[bool, ...] = ()
    #: spatial size of the layer's output feature map, when known
    out_size: tuple[int, ...] | None = None
    in_channels: int | None = None
    out_channels: int | None = None
    groups: int = 1
    module_type: str = ""  # e.g. "torch.nn.modules.conv.Conv2d"
    source: Source | None = None  # where the layer is used (call site in forward)
    definition: Source | None = None  # where the layer is defined (``self.conv = ...``)
    note: str = ""  # e.g. why an op is unknown
    #: where a helper outside the user's line constructed the layer (library or builder code),
    #: when ``definition`` is the user's line that asked for it (:mod:`rflint.frontend.attribution`)
    built_at: Source | None = None

    @property
    def k_eff(self) -> tuple[int, ...]:
        """Effective kernel per axis, ``d * (k - 1) + 1``."""
        if not self.kernel:
            return ()
        dil = self.dilation or (1,) * len(self.kernel)
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, dil))

    @property
    def grows_field(self) -> bool:
        """True for a convolution or pooling window with k_eff > 1 on some axis: the layers the
        rules judge. Upsampling also widens the field a little (interpolation taps), but it
        restores resolution rather than extracting patterns, so it is never judged."""
        return self.kind is Kind.WINDOW and any(k > 1 for k in self.k_eff)

    def grows_on(self, axis: int) -> bool:
        """True if the layer's window is wider than 1 along ``axis`` (a 1x7 conv grows on W only)."""
        return self.grows_field and self.k_eff[axis] > 1

    def axis_taps(self, ndim: int) -> tuple[Taps | None, ...]:
        """The taps per axis: explicit, or the window of a WINDOW layer, or none."""
        if self.taps is not None:
            return self.taps
        if self.kind is not Kind.WINDOW or not self.kernel:
            return (None,) * ndim
        stride = self.stride or (1,) * ndim
        pad = self.padding or (0,) * ndim
        out = []
        for k, s, p in zip(self.k_eff, stride, pad):
            s = Fraction(s)
            out.append(None if k == 1 and s == 1 and p == 0 else Taps.window(k, int(s), int(p)) if s.denominator == 1 else None)
        return tuple(out)


@dataclass(frozen=True, slots=True)
class Graph:
    """A model as a list of layers in topological order, plus its input geometry."""

    layers: tuple[Layer, ...]
    input_size: tuple[int, ...]  # spatial input size per axis (H, W) or (L,) or (D, H, W)
    name: str = "model"
    tracer: str = "fx"
    #: the model's outputs, ``(label, layer name)`` in the order the model returns them
    #: (``"p2"`` for a dict entry, ``"0"`` for a tuple item, ``"output"`` for a single tensor);
    #: empty when the frontend does not say (the layers nothing reads are the outputs)
    outputs: tuple[tuple[str, str], ...] = ()

    @property
    def ndim(self) -> int:
        return len(self.input_size)

    def by_name(self) -> dict[str, Layer]:
        return {layer.name: layer for layer in self.layers}


@dataclass(frozen=True, slots=True)
class AxisRF:
    """Receptive field of one layer along one spatial axis, over all paths from the input.

    - ``r_max``: the widest unit's field, the extent of the union of every path's interval
      (an upper bound: it can exceed the largest single path when paths are offset);
    - ``r_min``: the smallest single-path field of any unit (a lower bound);
    - ``r_narrow``: the narrowest unit's union (equal to ``r_max`` unless units differ by
      position, as behind upsampling);
    - ``start``/``end``: the input interval unit 0 sees (``-start`` is the effective padding,
      ``(start + end) / 2`` the centre of unit 0's field, ``J * i`` further for unit ``i``);
    - ``period``: how many neighbouring units differ before the pattern repeats.

    These range over the *local* paths only; a path through a global op is recorded in
    ``has_global`` (and ``global_via``, the global ops it went through) instead, so that a
    squeeze-and-excitation gate does not make every later layer infinite. A layer reached
    only through global ops has r = inf.
    """

    r_min: Number
    r_max: Number
    j_min: Number
    j_max: Number
    has_global: bool = False
    r_narrow: Number = INF
    start: Number = 0
    end: Number = 0
    global_via: tuple[str, ...] = ()
    #: units after which the pattern of fields repeats (1 unless behind upsampling)
    period: int = 1
    #: over every unit, how far its field reaches before / after the input pixels the unit
    #: stands for (``[floor(i J), ceil((i + 1) J) - 1]``): the context a tile needs on each
    #: side (local paths only; see :mod:`rflint.rf.tiling`)
    lead: Number = 0
    trail: Number = 0

    @property
    def is_global(self) -> bool:
        return self.r_min == INF


@dataclass(frozen=True, slots=True)
class LayerRF:
    """Analysis result for one layer."""

    layer: Layer
    axes: tuple[AxisRF, ...]  # the layer's own (output) receptive field
    input_r_min: tuple[Number, ...]  # min r_min over the layer's inputs, per axis
    uncertain: bool = False  # an unknown op lies on some path to this layer
    #: per axis, how many positions past a unit's own position (``jump * i``) its field reads
    #: (inf through a global op); negative: it ends before its own position
    lookahead: tuple[Number, ...] = ()
    #: per axis, how many positions before a unit's own position its field starts
    history: tuple[Number, ...] = ()
    #: dense task only (:mod:`rflint.rf.coverage`): per axis, the corner reach of the layer's
    #: input and output (the input size every unit, corners included, still sees whole)
    reach_in: tuple[Number, ...] = ()
    reach: tuple[Number, ...] = ()

    @property
    def r_min(self) -> tuple[Number, ...]:
        return tuple(a.r_min for a in self.axes)

    @property
    def r_max(self) -> tuple[Number, ...]:
        return tuple(a.r_max for a in self.axes)

    @property
    def jump(self) -> tuple[Number, ...]:
        return tuple(a.j_max for a in self.axes)


class Status(str, Enum):
    """A layer's status at a given input resolution."""

    OK = "ok"
    CRITICAL = "critical"
    UNPRODUCTIVE = "unproductive"
    UNKNOWN = "unknown"
    GLOBAL = "global"


@dataclass(frozen=True, slots=True)
class Analysis:
    """Everything rflint knows about one model at one input size."""

    graph: Graph
    layers: tuple[LayerRF, ...]
    #: smallest input size at which no layer is unproductive (max input r_min + 1, per axis)
    i_min_unproductive: tuple[Number, ...]
    #: smallest input size at which no layer is even critical (max own r_min, per axis);
    #: the refinement criterion of Richter & Pal (2022) is ``i_min < I_res``
    i_min: tuple[Number, ...]
    #: largest r_max of any finite layer
    i_max: tuple[Number, ...]
    #: global ops (SE gates, image pooling, spatial normalisation) whose paths reach the output
    global_via: tuple[str, ...] = ()
    #: "classification" (the centre unit of a model that pools everything: Richter's r_min
    #: rule) or "dense" (outputs keep spatial axes: every unit, corners included, is judged)
    task: str = "classification"
    #: how the task was chosen: "auto" (from the model's outputs) or "config"
    task_source: str = "config"
    #: axes declared causal (``causal = ["T"]``): their future must not be read
    causal_axes: tuple[int, ...] = ()


class Severity(str, Enum):
    ERROR = "error"
    WARN = "warn"
    INFO = "info"
    IGNORE = "ignore"


@dataclass(frozen=True, slots=True)
class Finding:
    """One diagnostic, ready for any output format."""

    code: str  # "RF101"
    name: str  # "unproductive-layer"
    severity: Severity
    message: str
    model: str  # the model's target or configured name
    layer: str  # qualname ("" for model-level findings)
    source: Source | None = None
    input_size: tuple[int, ...] = ()
    receptive_field: dict[str, object] = field(default_factory=dict)
    hint: str = ""
    #: further places the finding involves: where a helper built the layer (SARIF
    #: ``relatedLocations``, ``= built at`` in ``full``)
    related: tuple[Source, ...] = ()
