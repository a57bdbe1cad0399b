"""How receptive-field numbers and ops read for people: exact ints, rounded fractions,
``inf`` for global, per-axis ``HxW`` text, axis names and one-line op summaries. Shared by the
rules' messages, the reports, the pictures and the API's JSON."""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction

from rflint.ir import INF, Kind, Layer, Number


def display(x: Number) -> int | float | None:
    """A receptive-field number for people and JSON: an int where exact, ``None`` for
    infinite, otherwise a float rounded to 3 places (fractional jumps after upsampling)."""
    if x == INF:
        return None
    frac = Fraction(x)
    if frac.denominator == 1:
        return int(frac)
    return round(float(frac), 3)


def fmt_axes(values: Iterable[Number | None]) -> str:
    """``139`` when every axis agrees, ``139x75`` per axis otherwise; ``inf`` for global (a
    displayed ``None`` too)."""
    shown = ["inf" if v is None or v == INF else str(display(v)) for v in values]
    return shown[0] if len(set(shown)) == 1 else "x".join(shown)


def axis_names(ndim: int) -> tuple[str, ...]:
    """How messages name the spatial axes: L; H, W; T, H, W (time or depth first)."""
    return {1: ("L",), 2: ("H", "W"), 3: ("T", "H", "W")}.get(ndim, tuple(f"axis {a}" for a in range(ndim)))


def op_summary(layer: Layer) -> str:
    """The op and its window, ``MaxPool2d 2x2/2``, ``Conv2d 3x3 d2``, ``Linear``."""
    text = layer.op or layer.kind.value
    if layer.kind in (Kind.WINDOW, Kind.UPSAMPLE) and layer.kernel:
        text += " " + "x".join(str(k) for k in layer.kernel)
        if layer.stride and any(s != 1 for s in layer.stride):
            text += "/" + fmt_axes(layer.stride)
        if layer.dilation and any(d != 1 for d in layer.dilation):
            text += " d" + fmt_axes(layer.dilation)
    return text
