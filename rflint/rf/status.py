"""What a receptive field means at an input size: the border-layer tests of Richter et al.
(2021) (unproductive, critical) per layer and axis, one status word per layer, and the input
sizes at which those tests change (the resolution bounds). Pure: works on the fields
:mod:`rflint.rf.algebra` propagates and knows nothing about how they are shown."""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction

from rflint.ir import INF, Kind, LayerRF, Number, Status


def _finite(x: Number) -> bool:
    return x != INF


def resolution_bounds(
    layers: Iterable[LayerRF], ndim: int
) -> tuple[tuple[Number, ...], tuple[Number, ...], tuple[Number, ...]]:
    """``(i_min_unproductive, i_min, i_max)`` per axis.

    - ``i_min_unproductive``: smallest input size at which no field-growing layer has an input
      r_min >= the input size (so no layer is unproductive): max input r_min + 1.
    - ``i_min``: smallest input size at which no field-growing layer has its own r_min above the
      input size (so no layer is even critical): max own r_min. This is rfa-toolbox's default
      ``input_resolution_range`` lower bound without its feature-map term, and the number
      Richter & Pal (2022) bring below the training resolution.
    - ``i_max``: the largest finite r_max of any layer.
    """
    layers = list(layers)
    i_min_u, i_min, i_max = [], [], []
    for a in range(ndim):
        growing = [lrf for lrf in layers if lrf.layer.grows_on(a)]  # a 1x7 conv counts on W only
        ins = [x for x in (_input_field(lrf)[a] for lrf in growing) if _finite(x)]
        owns = [x for x in (_own_field(lrf)[a] for lrf in growing) if _finite(x)]
        maxes = [lrf.axes[a].r_max for lrf in layers if _finite(lrf.axes[a].r_max)]
        i_min_u.append(max(ins, default=Fraction(0)) + 1)
        i_min.append(max(owns, default=Fraction(1)))
        i_max.append(max(maxes, default=Fraction(1)))
    return tuple(i_min_u), tuple(i_min), tuple(i_max)


def _input_field(lrf: LayerRF) -> tuple[Number, ...]:
    """What the unproductive test compares with the input size: the narrowest input path
    (classification) or the input's corner reach (dense)."""
    return lrf.reach_in or lrf.input_r_min


def _own_field(lrf: LayerRF) -> tuple[Number, ...]:
    return lrf.reach or lrf.r_min


def _growing_axes(lrf: LayerRF) -> list[int]:
    return [a for a in range(len(lrf.axes)) if lrf.layer.grows_on(a)]


def unproductive_axes(lrf: LayerRF, input_size: tuple[int, ...]) -> list[int]:
    """The axes on which the layer grows while its input already sees the whole input."""
    field = _input_field(lrf)
    return [a for a in _growing_axes(lrf) if _finite(field[a]) and field[a] >= input_size[a]]


def critical_axes(lrf: LayerRF, input_size: tuple[int, ...]) -> list[int]:
    """The axes on which the layer itself pushes r_min past the input size (dense: on which
    every unit of its output, corners included, sees past the whole input: corner reach > N)."""
    if lrf.reach:
        return [a for a in _growing_axes(lrf) if _finite(lrf.reach[a]) and lrf.reach[a] > input_size[a]]
    return [a for a in _growing_axes(lrf) if _finite(lrf.axes[a].r_min) and lrf.axes[a].r_min > input_size[a]]


def is_unproductive(lrf: LayerRF, input_size: tuple[int, ...]) -> bool:
    """The border-layer test of Richter et al. (2021): the layer grows the field, yet its
    input already sees at least the whole input (non-strict, as in the paper) on every axis
    the layer grows along (a 1x7 conv is judged on W only)."""
    axes = _growing_axes(lrf)
    return bool(axes) and len(unproductive_axes(lrf, input_size)) == len(axes)


def is_critical(lrf: LayerRF, input_size: tuple[int, ...]) -> bool:
    """The layer itself pushes r_min past the input size on every axis it grows along, but is
    not yet unproductive: it still adds some context, at the border."""
    axes = _growing_axes(lrf)
    return bool(axes) and not is_unproductive(lrf, input_size) and len(critical_axes(lrf, input_size)) == len(axes)


def layer_status(lrf: LayerRF, input_size: tuple[int, ...]) -> Status:
    """One word for a layer at one input size, for tables and pictures."""
    if lrf.layer.kind is Kind.UNKNOWN:
        return Status.UNKNOWN
    if lrf.layer.kind is Kind.GLOBAL:
        return Status.GLOBAL
    if is_unproductive(lrf, input_size):
        return Status.UNPRODUCTIVE
    if is_critical(lrf, input_size):
        return Status.CRITICAL
    return Status.OK
