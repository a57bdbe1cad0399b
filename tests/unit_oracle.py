"""Per-unit and whole-input measurements with the autograd oracle of tests/oracle.py (test
helper): where each unit's field lies, clipped by the borders (dense coverage, lookahead), which
input positions any output reads (dead positions), and how many inputs each output sums
(checkerboards). Independent of rflint: only torch and oracle.linearize."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from oracle import _first_tensor, _forward_to, linearize
from torch import nn


def unit_fields(
    model: nn.Module, input_shape: Sequence[int], layer: str | None = None, *, axis: int = 0, at: str = "output"
) -> list[tuple[int, int] | None]:
    """For every unit along ``axis`` of ``layer``'s output (or input), the first and last input
    index with a non-zero gradient (None: it reads nothing), the other axes at their centre."""
    net = linearize(model, torch.float64)
    x = torch.ones(tuple(input_shape), dtype=torch.float64, requires_grad=True)
    out = _forward_to(net, x, layer, at)
    centre = [s // 2 for s in out.shape[2:]]
    fields: list[tuple[int, int] | None] = []
    n = out.shape[2 + axis]
    for i in range(n):
        position = list(centre)
        position[axis] = i
        (grad,) = torch.autograd.grad(out[(0, slice(None), *position)].sum(), x, retain_graph=i < n - 1)
        line = grad[0].abs().sum(dim=0)
        other = tuple(a for a in range(line.dim()) if a != axis)
        hit = torch.nonzero((line.sum(dim=other) if other else line) > 0).flatten()
        fields.append((int(hit.min()), int(hit.max())) if len(hit) else None)
    return fields


def corner_reach(fields: Sequence[tuple[int, int] | None], size: int) -> int:
    """``min_i min(hi_i + 1, size - lo_i)``: the input size every unit still sees whole (a
    unit that reads nothing, a padded border, is left out)."""
    return min(min(f[1] + 1, size - f[0]) for f in fields if f is not None)


def read_positions(model: nn.Module, input_shape: Sequence[int]) -> list[list[bool]]:
    """Per spatial axis, which input positions have a non-zero gradient of the sum of every
    output of the model (all tensors it returns)."""
    net = linearize(model, torch.float64)
    x = torch.ones(tuple(input_shape), dtype=torch.float64, requires_grad=True)
    out = net(x)
    outs = list(out.values()) if isinstance(out, dict) else list(out) if isinstance(out, (tuple, list)) else [out]
    total = sum(o.sum() for o in outs if isinstance(o, torch.Tensor))
    (grad,) = torch.autograd.grad(total, x)
    g = grad[0].abs().sum(dim=0)
    result = []
    for axis in range(g.dim()):
        other = tuple(a for a in range(g.dim()) if a != axis)
        result.append([bool(v) for v in ((g.sum(dim=other) if other else g) > 0)])
    return result


def terms_per_unit(
    model: nn.Module, input_shape: Sequence[int], *, axis: int = 0, units: Sequence[int] = (), other: int | None = None
) -> list[int]:
    """How many input positions along ``axis`` each output unit (at ``units``; the other axes
    at ``other``, default their centre) has a non-zero gradient for: the number of terms it sums."""
    net = linearize(model, torch.float64)
    x = torch.ones(tuple(input_shape), dtype=torch.float64, requires_grad=True)
    out = _first_tensor(net(x))
    centre = [s // 2 if other is None else other for s in out.shape[2:]]
    counts = []
    for k, i in enumerate(units):
        position = list(centre)
        position[axis] = i
        (grad,) = torch.autograd.grad(out[(0, slice(None), *position)].sum(), x, retain_graph=k < len(units) - 1)
        line = grad[0].abs().sum(dim=0)
        other = tuple(a for a in range(line.dim()) if a != axis)
        counts.append(int(((line.sum(dim=other) if other else line) > 0).sum()))
    return counts
