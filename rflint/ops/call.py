"""The record every frontend fills for the op table, and what a handler answers. Pure Python.

An :class:`OpCall` is a node normalised by its frontend (a canonical op name, hyper-parameters
under torch's functional names, the layouts and shapes of the tensor operands, the output
shapes); a :class:`Lowered` is the answer (per-axis taps, global axes, output layouts, the
numbers shown to people). :class:`Effects` collects what an op does to each input axis. The
handlers live in :mod:`.op_windows`, :mod:`.op_moves` and :mod:`.op_mixing`; the table that
names them is :data:`rflint.ops.table.OPS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from rflint.rf.algebra import PathClass, through
from rflint.ops import layout as L
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
            lay = L.resize(lay, shape) if len(lay) == len(shape) else opaque(shape)
        elif shape is not None:
            lay = opaque(shape)
        layouts.append(lay)
    return Lowered(Kind.UNKNOWN, tuple(layouts), note=note)


def opaque(shape: Sequence[int]) -> L.Layout:
    return tuple(L._plain(s) for s in shape)


def same_rank(lay: L.Layout, shape: tuple[int, ...] | None) -> L.Layout:
    if shape is None:
        return lay
    return L.resize(lay, shape) if len(lay) == len(shape) else opaque(shape)


def all_outputs(call: OpCall, lay: L.Layout) -> tuple[L.Layout | None, ...]:
    return tuple(same_rank(lay, s) if s is not None else lay for s in call.outputs) or (lay,)


def per_dim(value: Any, n: int) -> tuple:
    if isinstance(value, (tuple, list)):
        value = tuple(value)
        return value if len(value) == n else value * n if len(value) == 1 else value
    return (value,) * n


# ---------------------------------------------------------------------------------------------


def axis_values(call: OpCall, values: Sequence[Any], n: int, fill: Any) -> tuple:
    """Values for the last ``n`` tensor dims, placed on the axes those dims carry."""
    lay = call.first
    out = [fill] * call.ndim
    for i in range(n):
        ref = L.dim_axis(lay[len(lay) - n + i])
        if ref not in (None, False):
            out[ref.axis] = values[i]
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# mixing along dims: reductions, softmax, scans, sorting, attention, linear layers


def dims_of(call: OpCall, lay: L.Layout) -> list[int]:
    dims = call.params.get("dims", call.params.get("dim"))
    if dims is None:
        return list(range(len(lay)))
    return [int(d) % len(lay) for d in (dims if isinstance(dims, (tuple, list)) else [dims])]


def mixing(call: OpCall, effects: Effects, layouts: Sequence[L.Layout | None], **display: Any) -> Lowered:
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


def identity(call: OpCall) -> Lowered:
    return Lowered(Kind.POINTWISE, all_outputs(call, call.first))


def global_spatial(call: OpCall) -> Lowered:
    """Ops whose sampling positions come from data (grid_sample, deformable convolution):
    global over every spatial axis of the input."""
    lay = call.first
    effects = Effects()
    effects.merge(L.mix(lay, [d for d, dim in enumerate(lay) if L.axes_of(dim)]))
    return effects.lowered(call, Kind.GLOBAL, all_outputs(call, lay))
