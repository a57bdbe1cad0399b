"""Lookahead and history along an axis: how far a unit's field reads after and before its own
position. Pure: works on the path classes of :mod:`rflint.rf.algebra` (anything with ``shift``,
``period``, ``lo`` and ``hi``) without importing it.

Unit ``o`` of a tensor whose grid has jump ``J = shift / period`` sits at input position
``J * o`` (the convention of Araujo et al.: unit 0 at input 0, so a causal conv, padded on the
left by ``k - 1``, reads ``[J o - (k - 1) ..., J o]``). Unit ``o = period * q + p`` reads
``[lo[p] + shift * q, hi[p] + shift * q]`` over all local paths, so

    lookahead = max_p (hi[p] - J p)      history = max_p (J p - lo[p])

over every path class and non-empty phase: exact for the union of the paths (the hull is
exact at both ends). A path through a global op along the axis reads all of it: lookahead
and history are infinite. A model is causal along an axis iff every layer's lookahead <= 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from typing import Protocol

from rflint.ir import INF, Number


class Periodic(Protocol):
    shift: int
    period: int
    lo: tuple[int, ...]
    hi: tuple[int, ...]


def _whole(x: Fraction) -> Number:
    return x.numerator if x.denominator == 1 else x


def extent(classes: Iterable[Periodic], has_global: bool) -> tuple[Number, Number]:
    """(lookahead, history) of a tensor along one axis (module docstring)."""
    if has_global:
        return INF, INF
    ahead: Fraction | None = None
    behind: Fraction | None = None
    for c in classes:
        jump = Fraction(c.shift, c.period)
        for p in range(c.period):
            if c.lo[p] > c.hi[p]:
                continue
            a, b = c.hi[p] - jump * p, jump * p - c.lo[p]
            ahead = a if ahead is None else max(ahead, a)
            behind = b if behind is None else max(behind, b)
    if ahead is None or behind is None:
        return INF, INF
    return _whole(ahead), _whole(behind)


#: accepted aliases: a 1-D model's only axis is often called time
_ALIASES = {1: {"T": 0, "TIME": 0}, 3: {"D": 0, "TIME": 0}}


def causal_axes(names: Iterable[str | int], ndim: int) -> tuple[int, ...]:
    """The axis indices ``causal = [...]`` names for a model with ``ndim`` spatial axes: an
    axis name (``L``; ``H``, ``W``; ``T``, ``H``, ``W``; ``T`` also for a 1-D model) or an index."""
    from rflint.rf.display import axis_names
    from rflint.errors import UsageError

    known = {n.upper(): a for a, n in enumerate(axis_names(ndim))} | _ALIASES.get(ndim, {})
    out = []
    for name in names:
        text = str(name).strip()
        if text.lstrip("-").isdigit() and -ndim <= int(text) < ndim:
            out.append(int(text) % ndim)
        elif text.upper() in known:
            out.append(known[text.upper()])
        else:
            raise UsageError(
                f"causal axis {text!r} is not an axis of this {ndim}-D model (axes: {', '.join(axis_names(ndim))})",
                hint=f"name one of {', '.join(axis_names(ndim))} or give an index 0..{ndim - 1}",
            )
    return tuple(sorted(set(out)))
