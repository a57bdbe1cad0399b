"""An autograd oracle for receptive fields, independent of rflint (test helper, not shipped).

The receptive field of an output unit is the set of input pixels its value depends on. After
making the network *linear with positive coefficients* this set is exactly the support of the
input gradient of that unit: every path from a pixel to the unit contributes a product of
positive numbers, so nothing can cancel, and a pixel gets a non-zero gradient iff some path
reaches it. The extent of the support along an axis (max index - min index + 1) is then the
largest single-path field when the paths are centred on the same point, i.e. rflint's
``r_max``. Where branches are not centred alike (padding that is not ``(k_eff - 1) / 2`` on one
branch only) the union of differently shifted footprints can be wider than ``r_max``; tests
that hit such a case must say so.

How the copy is made linear and positive (``linearize``):

- every parameter of rank >= 2 (conv / linear / transposed-conv weights) becomes
  ``1 / (channels_in * sqrt(taps))``: positive, and scaled so that both the largest gradient
  (which grows by about ``sqrt(taps)`` per layer) and the smallest one, at the edge of the field
  (which shrinks by about the same factor), stay far from float32's limits for a hundred layers;
  biases become 0; every other parameter (norm weights, layer-scale gammas such as torchvision
  ``CNBlock.layer_scale``, class tokens) becomes 1;
- BatchNorm runs in eval mode with running mean 0 and variance 1 (a positive scale);
  BatchNorm without running statistics, LayerNorm, GroupNorm and InstanceNorm are replaced by
  ``Identity``: they normalise over channels, and with identical channels (constant weights)
  their Jacobian maps a channel-constant gradient to exactly zero;
- non-linearities (modules, and the functional / tensor-method forms while the oracle runs)
  become the identity;
- gates are held constant by their structure: a sigmoid-like function (``Sigmoid``,
  ``Hardsigmoid``, ``torch.sigmoid``, ``x.sigmoid()``) keeps the *value* 0.5 and passes the
  gradient through (``0.5 + x - x.detach()``), so a branch that multiplies the main path
  through a sigmoid (squeeze-and-excitation, ECA, GatherExcite, CBAM, ``x * x.sigmoid()``)
  scales it by a constant in the forward pass (products of two input-dependent branches would
  otherwise grow without bound over many blocks) while its own field still shows in the
  gradient, as in rflint's union of paths;
- max pooling becomes average pooling with the same kernel, stride, padding and ceil_mode
  (modules and ``F.max_poolNd``): same window, positive coefficients;
- global context is held constant by its structure, not by class names: every global pooling
  (``AdaptiveAvg/MaxPool`` to one cell, ``F.adaptive_*_pool`` to one cell, ``mean``/``amax``
  over every spatial dim) returns a detached value, so a squeeze-and-excitation, ECA,
  GatherExcite or CBAM channel gate multiplies the main path by a constant. Left in, such a
  global path would make the support the whole input (rflint reports it separately as global
  context). Local gates (CBAM's spatial 7x7 gate) stay, as in rflint's fields;
- dropout and stochastic depth are off (eval mode).

The input size: the oracle starts from the caller's shape and grows an axis by half (at least
four margins) until the support stays at least ``margin`` pixels away from both borders, so
that zero padding cannot clip it. Each spatial axis is measured on its own, with the other axes kept at their starting
(small) size: the footprint of a path is a product of per-axis windows, so the extent along
one axis does not depend on the size of the others, and thin inputs keep zoo-size models fast
on a CPU.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

NONLINEAR_MODULES: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.GELU,
    nn.SiLU,
    nn.Hardswish,
    nn.Tanh,
    nn.LeakyReLU,
    nn.ELU,
    nn.CELU,
    nn.SELU,
    nn.Mish,
    nn.PReLU,
    nn.Softplus,
    nn.Hardtanh,
    nn.Softsign,
    nn.Tanhshrink,
)
CHANNEL_NORMS: tuple[type[nn.Module], ...] = (
    nn.LayerNorm,
    nn.GroupNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.LocalResponseNorm,
)
_MAX_TO_AVG = {nn.MaxPool1d: nn.AvgPool1d, nn.MaxPool2d: nn.AvgPool2d, nn.MaxPool3d: nn.AvgPool3d}
_ADAPTIVE_MAX_TO_AVG = {
    nn.AdaptiveMaxPool1d: nn.AdaptiveAvgPool1d,
    nn.AdaptiveMaxPool2d: nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool3d: nn.AdaptiveAvgPool3d,
}


class OracleError(RuntimeError):
    """The oracle could not measure a support (no gradient, input too large, bad layer)."""


class PrecisionError(OracleError):
    """A float32 gradient came too close to under- or overflow to trust its zeros."""


#: float32 gradients must stay within these bounds (float32 underflows below ~1e-45 and
#: overflows above ~3e38): the margin of ~15 orders of magnitude covers the drop between the
#: smallest gradient seen and a neighbour that might have underflowed to an exact zero.
FLOAT32_SAFE = (1e-30, 1e23)


class _Captured(Exception):
    """Raised by the forward hook to stop the forward pass once the layer's output is known."""


def _avg_from_max(pool: nn.Module) -> nn.Module:
    dilation = pool.dilation if isinstance(pool.dilation, tuple) else (pool.dilation,)
    if any(d != 1 for d in dilation):
        raise OracleError(f"dilated max pooling is not supported by the oracle: {pool}")
    if pool.return_indices:
        raise OracleError(f"max pooling with return_indices is not supported by the oracle: {pool}")
    return _MAX_TO_AVG[type(pool)](pool.kernel_size, stride=pool.stride, padding=pool.padding, ceil_mode=pool.ceil_mode)


class _Gate(nn.Module):
    """A sigmoid-like gate held at a constant 0.5 (see the module doc)."""

    def forward(self, x):
        return _held_gate(x)


def _held_gate(x, *args, **kwargs):
    return x - x.detach() + 0.5


def _replacement(module: nn.Module) -> nn.Module | None:
    """The module that stands in for ``module`` in the linear copy, or None to keep it."""
    if isinstance(module, (nn.Sigmoid, nn.Hardsigmoid)):
        return _Gate()
    if isinstance(module, NONLINEAR_MODULES) or isinstance(module, CHANNEL_NORMS):
        return nn.Identity()
    if type(module) in _MAX_TO_AVG:
        return _avg_from_max(module)
    if type(module) in _ADAPTIVE_MAX_TO_AVG:
        return _HeldIfGlobal(_ADAPTIVE_MAX_TO_AVG[type(module)](module.output_size))
    if isinstance(module, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)):
        return _HeldIfGlobal(module)
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not module.track_running_stats:
        return nn.Identity()
    return None


class _HeldIfGlobal(nn.Module):
    """An adaptive pool whose output is detached when it pools to one cell (global context)."""

    def __init__(self, pool: nn.Module) -> None:
        super().__init__()
        self.pool = pool

    def forward(self, x):
        out = self.pool(x)
        return out.detach() if all(s == 1 for s in out.shape[2:]) else out


def _held_if_global(fn):
    def pooled(x, output_size, *args, **kwargs):
        out = fn(x, output_size, *args, **kwargs)
        out = out[0] if isinstance(out, tuple) else out
        return out.detach() if all(s == 1 for s in out.shape[2:]) else out

    return pooled


def _held_reduction(method):
    """``x.mean(dims)`` / ``amax`` over every spatial dim of a 3-5-d map: detached."""

    def reduce(x, *args, **kwargs):
        out = method(x, *args, **kwargs)
        dims = kwargs.get("dim", args[0] if args else None)
        if isinstance(x, torch.Tensor) and x.dim() >= 3 and dims is not None:
            dims = {d % x.dim() for d in (dims if isinstance(dims, (tuple, list)) else [dims])}
            if set(range(2, x.dim())) <= dims:
                return out.detach()
        return out

    return reduce


def _swap_modules(root: nn.Module) -> None:
    for name, child in list(root.named_children()):
        new = _replacement(child)
        if new is not None:
            setattr(root, name, new)
        else:
            _swap_modules(child)


@torch.no_grad()
def _set_parameters(model: nn.Module) -> None:
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if name.endswith("bias"):
                param.zero_()
            elif param.dim() >= 2:
                taps = math.prod(param.shape[2:])
                param.fill_(1.0 / (param.shape[1] * math.sqrt(taps)))
            else:
                param.fill_(1.0)
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats:
            module.running_mean.zero_()
            module.running_var.fill_(1.0)
        buffers = dict(module.named_buffers(recurse=False))
        if "running_mean" in buffers and "running_var" in buffers and not isinstance(module, nn.modules.batchnorm._BatchNorm):
            # a frozen batch norm (torchvision's detection backbones) keeps even its affine
            # parameters as buffers
            buffers["running_mean"].zero_()
            buffers["running_var"].fill_(1.0)
            if "weight" in buffers:
                buffers["weight"].fill_(1.0)
            if "bias" in buffers:
                buffers["bias"].zero_()


def linearize(model: nn.Module, dtype: torch.dtype = torch.float64) -> nn.Module:
    """A CPU copy of ``model`` that is linear with positive coefficients (see module doc).

    Works on models built on the meta device too: their storage is materialised first.
    """
    model = copy.deepcopy(model)
    if any(t.is_meta for t in list(model.parameters()) + list(model.buffers())):
        model = model.to_empty(device="cpu")
    model = model.to(device="cpu", dtype=dtype)
    _swap_modules(model)
    _set_parameters(model)
    model.requires_grad_(False)  # only the input gradient is needed: skip weight gradients
    return model.eval()


def _identity(x, *args, **kwargs):
    return x


def _avg_pool_like_max(avg):
    def pool(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
        dil = dilation if isinstance(dilation, Sequence) else (dilation,)
        if any(d != 1 for d in dil) or return_indices:
            raise OracleError("functional max pooling with dilation or indices is not supported by the oracle")
        return avg(input, kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode)

    return pool


@contextlib.contextmanager
def linear_functionals() -> Iterator[None]:
    """Within the block, functional non-linearities are the identity and functional max pooling
    is average pooling, so that ``F.relu(x)`` or ``F.max_pool2d(x, 3, 2)`` inside a ``forward``
    are linearised like their module forms."""
    patches: list[tuple[object, str, object]] = []
    for name in (
        "relu", "relu_", "relu6", "gelu", "silu", "hardswish", "tanh",
        "leaky_relu", "leaky_relu_", "elu", "elu_", "celu", "selu", "mish", "softplus", "hardtanh",
        "hardtanh_", "softsign",
    ):  # fmt: skip
        if hasattr(F, name):
            patches.append((F, name, _identity))
    for name in ("relu", "relu_", "tanh", "tanh_", "selu", "celu"):
        patches.append((torch, name, _identity))
    for name in ("relu", "relu_", "tanh", "tanh_"):
        patches.append((torch.Tensor, name, _identity))
    for owner, names in ((F, ("sigmoid", "hardsigmoid")), (torch, ("sigmoid", "sigmoid_")), (torch.Tensor, ("sigmoid", "sigmoid_"))):
        patches.extend((owner, name, _held_gate) for name in names if hasattr(owner, name))
    patches += [
        (F, "max_pool1d", _avg_pool_like_max(F.avg_pool1d)),
        (F, "max_pool2d", _avg_pool_like_max(F.avg_pool2d)),
        (F, "max_pool3d", _avg_pool_like_max(F.avg_pool3d)),
        (F, "adaptive_max_pool1d", _held_if_global(lambda x, output_size, return_indices=False: F.adaptive_avg_pool1d(x, output_size))),
        (F, "adaptive_max_pool2d", _held_if_global(lambda x, output_size, return_indices=False: F.adaptive_avg_pool2d(x, output_size))),
        (F, "adaptive_max_pool3d", _held_if_global(lambda x, output_size, return_indices=False: F.adaptive_avg_pool3d(x, output_size))),
        (F, "adaptive_avg_pool1d", _held_if_global(F.adaptive_avg_pool1d)),
        (F, "adaptive_avg_pool2d", _held_if_global(F.adaptive_avg_pool2d)),
        (F, "adaptive_avg_pool3d", _held_if_global(F.adaptive_avg_pool3d)),
        (torch.Tensor, "mean", _held_reduction(torch.Tensor.mean)),
        (torch.Tensor, "amax", _held_reduction(torch.Tensor.amax)),
        (torch, "mean", _held_reduction(torch.mean)),
        (F, "layer_norm", lambda x, *args, **kwargs: x),
        (F, "group_norm", lambda x, *args, **kwargs: x),
    ]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    try:
        for owner, name, new in patches:
            setattr(owner, name, new)
        yield
    finally:
        for owner, name, old in reversed(saved):
            setattr(owner, name, old)


def _first_tensor(value) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        for item in value:
            if isinstance(item, torch.Tensor):
                return item
            if hasattr(item, "__iter__") or isinstance(item, dict):
                with contextlib.suppress(OracleError):
                    return _first_tensor(item)
    if hasattr(value, "_fields"):  # torchvision's InceptionOutputs / GoogLeNetOutputs
        return _first_tensor(tuple(value))
    raise OracleError(f"no tensor in the captured value of type {type(value).__name__}")


def _forward_to(model: nn.Module, x: torch.Tensor, layer: str | None, at: str) -> torch.Tensor:
    """The tensor at ``layer`` (its output, or its first input with ``at="input"``)."""
    if layer is None:
        with linear_functionals():
            return _first_tensor(model(x))
    try:
        target = model.get_submodule(layer)
    except AttributeError as exc:
        raise OracleError(f"no module named {layer!r}") from exc
    captured: list[torch.Tensor] = []

    def hook(module, args, output):
        captured.append(_first_tensor(args if at == "input" else output))
        raise _Captured

    handle = target.register_forward_hook(hook)
    try:
        with linear_functionals():
            model(x)
    except _Captured:
        pass
    finally:
        handle.remove()
    if not captured:
        raise OracleError(f"module {layer!r} was not called in forward")
    return captured[0]


def support_extent(
    model: nn.Module,
    input_shape: Sequence[int],
    layer: str | None = None,
    at: str = "output",
    position: Sequence[int] | None = None,
    rtol: float = 0.0,
):
    """One measurement on an already linearised model at a fixed input shape.

    Returns ``(lo, hi)`` per spatial axis: the first and last input index with a non-zero
    gradient of one output unit (summed over channels): the centre unit, or the unit at
    ``position`` (an index per spatial axis of the feature map).
    """
    dtype = next(model.parameters(), torch.empty((), dtype=torch.float64)).dtype
    x = torch.ones(tuple(input_shape), dtype=dtype, requires_grad=True)
    out = _forward_to(model, x, layer, at)
    ndim = len(input_shape) - 2
    if out.dim() != ndim + 2:
        raise OracleError(f"the tensor at {layer or 'the output'} has shape {tuple(out.shape)}: no {ndim} spatial axes")
    unit = tuple(position) if position is not None else tuple(s // 2 for s in out.shape[2:])
    out[(0, slice(None), *unit)].sum().backward()
    grad = x.grad[0].abs().sum(dim=0)  # sum over channels: shape = spatial
    if not bool(torch.isfinite(grad).all()):
        raise PrecisionError(f"non-finite input gradient in {dtype}")
    if not bool((grad > 0).any()):
        raise OracleError("the centre output unit has a zero input gradient (something is not linearised)")
    if rtol:  # rounding residues of cancelling sums (prefix sums of an integral image) are not support
        grad = torch.where(grad > rtol * grad.max(), grad, torch.zeros_like(grad))
    positive = grad[grad > 0]
    low, high = float(positive.min()), float(positive.max())
    if dtype != torch.float64 and not (FLOAT32_SAFE[0] < low and high < FLOAT32_SAFE[1]):
        raise PrecisionError(f"input gradient spans [{low:.3g}, {high:.3g}]: too close to the limits of {dtype}")
    extents = []
    for axis in range(ndim):
        other = tuple(a for a in range(ndim) if a != axis)
        hit = (grad.sum(dim=other) > 0) if other else grad > 0
        idx = torch.nonzero(hit).flatten()
        extents.append((int(idx.min()), int(idx.max())))
    return tuple(extents)


def measure_support(
    model: nn.Module,
    input_shape: Sequence[int],
    layer: str | None = None,
    *,
    at: str = "output",
    margin: int = 32,
    max_size: int = 8192,
    per_axis: bool = True,
    start: int | None = None,
    axes: Sequence[int] | None = None,
    dtype: torch.dtype | None = torch.float64,
    rtol: float = 0.0,
) -> tuple[int, ...]:
    """The receptive-field extent, per spatial axis, of the centre unit of ``layer``.

    Args:
        model: any ``nn.Module`` (it is copied; the original is not touched; meta is fine).
        input_shape: ``(N, C, *spatial)``; the spatial sizes are the starting sizes (and, with
            ``per_axis``, the fixed sizes of the axes not being measured).
        layer: module qualname whose output (or first input, ``at="input"``) is the feature map;
            ``None`` for the model's output, which must still have spatial axes.
        margin: the support must stay this many pixels away from both borders; otherwise the
            axis is grown by half and the measurement repeated.
        per_axis: measure each axis with the others kept small (see module doc); ``False``
            grows all axes together (slower, the plain method).
        start: starting size of the measured axis (default: its size in ``input_shape``). A
            good guess only saves re-runs; the result does not depend on it, since the axis
            is still grown until the support is clear of the border.
        axes: the spatial axes to measure (default: all); the others are reported as 0.
        rtol: gradients below ``rtol`` times the largest are not support (only for ops whose exact
            cancellation float arithmetic leaves a residue, such as an integral image).
        dtype: ``torch.float64`` (the default: no underflow to hide a pixel), ``torch.float32``
            (raises :class:`PrecisionError` when the gradient nears float32's limits), or
            ``None``: float32 first, float64 if float32 is not safe. float32 matters for speed
            on zoo sweeps: float64 grouped / depthwise convolutions take PyTorch's slow path on
            CPU (ConvNeXt-T: ~15x slower).

    Returns:
        ``max index - min index + 1`` of the input-gradient support, per spatial axis.
    """
    if dtype is None:
        try:
            return measure_support(
                model, input_shape, layer, at=at, margin=margin, max_size=max_size,
                per_axis=per_axis, start=start, axes=axes, dtype=torch.float32, rtol=rtol,
            )  # fmt: skip
        except PrecisionError:
            dtype = torch.float64
    net = linearize(model, dtype)
    shape = list(input_shape)
    ndim = len(shape) - 2
    if ndim < 1:
        raise OracleError(f"input_shape {tuple(input_shape)} has no spatial axes")
    result: list[int] = [0] * ndim
    measured = list(range(ndim)) if axes is None else list(axes)
    axes_groups = [[a] for a in measured] if per_axis else [measured]
    for group in axes_groups:
        trial = list(shape)
        if start is not None:
            for a in group:
                trial[a + 2] = start
        while True:
            extents = support_extent(net, trial, layer, at, rtol=rtol)
            clipped = [a for a in group if extents[a][0] < margin or extents[a][1] > trial[a + 2] - 1 - margin]
            if not clipped:
                break
            for a in clipped:
                trial[a + 2] += max(trial[a + 2] // 2, 4 * margin)
            if max(trial[a + 2] for a in clipped) > max_size:
                raise OracleError(f"support still touches the border at input size {trial[2:]}")
        for a in group:
            result[a] = extents[a][1] - extents[a][0] + 1
    return tuple(result)


def measure_units(model: nn.Module, input_shape: Sequence[int], layer: str | None = None, **kwargs) -> list[int]:
    """:func:`measure_units_at` without the input shape it settled on."""
    return measure_units_at(model, input_shape, layer, **kwargs)[0]


def _unit_interval(out: torch.Tensor, x: torch.Tensor, position: Sequence[int], axis: int, retain: bool) -> tuple[int, int]:
    """The first and last input index along ``axis`` with a nonzero gradient of the unit at
    ``position`` (summed over channels): the unit's field on that axis."""
    (grad,) = torch.autograd.grad(out[(0, slice(None), *position)].sum(), x, retain_graph=retain)
    line = grad[0].abs().sum(dim=0)
    other = tuple(a for a in range(line.dim()) if a != axis)
    hit = torch.nonzero((line.sum(dim=other) if other else line) > 0).flatten()
    if not len(hit):
        raise OracleError(f"unit {list(position)} has a zero input gradient")
    return int(hit.min()), int(hit.max())


def unit_intervals(
    model: nn.Module,
    input_shape: Sequence[int],
    positions: Sequence[int],
    layer: str | None = None,
    *,
    axis: int = 0,
    at: str = "output",
    dtype: torch.dtype = torch.float64,
) -> list[tuple[int, int]]:
    """The input interval ``(lo, hi)`` along ``axis`` that each unit at ``positions`` (along
    ``axis``; the other axes at their centre) of ``layer``'s feature map reads: where its fields
    lie, not only how wide they are. The caller picks an input large enough that no interval
    touches a border (zero padding reads nothing, so a border would clip it)."""
    net = linearize(model, dtype)
    x = torch.ones(tuple(input_shape), dtype=dtype, requires_grad=True)
    out = _forward_to(net, x, layer, at)
    centre = [s // 2 for s in out.shape[2:]]
    intervals: list[tuple[int, int]] = []
    for k, p in enumerate(positions):
        position = list(centre)
        position[axis] = p
        lo, hi = _unit_interval(out, x, position, axis, retain=k < len(positions) - 1)
        if lo == 0 or hi == x.shape[axis + 2] - 1:
            raise OracleError(f"unit {position}'s field touches the border: use a larger input")
        intervals.append((lo, hi))
    return intervals


def measure_units_at(
    model: nn.Module,
    input_shape: Sequence[int],
    layer: str | None = None,
    *,
    axis: int = 0,
    units: int = 8,
    at: str = "output",
    margin: int = 32,
    max_size: int = 8192,
    dtype: torch.dtype = torch.float64,
    multiple: int = 1,
) -> tuple[list[int], tuple[int, ...]]:
    """The field extent along ``axis`` of ``units`` consecutive units of ``layer``'s feature map,
    from its centre on (the other axes at their centre). Behind upsampling, neighbouring units
    see different amounts of input: a period of them shows the widest and the narrowest.

    The measured axis is grown (by half, as in :func:`measure_support`, rounded up to a
    ``multiple``: the network's total stride, so that resizing to the input size keeps its
    factor) until every unit's support is ``margin`` pixels clear of both borders; the other
    axes keep their sizes. Returns the extents and the input shape they were measured at.
    """
    net = linearize(model, dtype)
    shape = list(input_shape)
    while True:
        x = torch.ones(tuple(shape), dtype=dtype, requires_grad=True)
        out = _forward_to(net, x, layer, at)
        centre = [s // 2 for s in out.shape[2:]]
        if centre[axis] + units > out.shape[2 + axis]:
            raise OracleError(f"the feature map has only {out.shape[2 + axis]} units along axis {axis}")
        extents: list[int] = []
        for k in range(units):  # one forward pass, one backward pass per unit
            position = list(centre)
            position[axis] += k
            lo, hi = _unit_interval(out, x, position, axis, retain=k < units - 1)
            if lo < margin or hi > shape[axis + 2] - 1 - margin:
                break
            extents.append(hi - lo + 1)
        if len(extents) == units:
            return extents, tuple(shape)
        grown = shape[axis + 2] + max(shape[axis + 2] // 2, 4 * margin)
        shape[axis + 2] = -(-grown // multiple) * multiple
        if shape[axis + 2] > max_size:
            raise OracleError(f"support still touches the border at input size {shape[2:]}")
