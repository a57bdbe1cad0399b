"""Naming ``nn.Module`` leaves for the op table, and the ops a project declares.

A leaf module keeps its hyper-parameters as attributes (``m.kernel_size``), not as call
arguments, so it is named from the instance rather than from the call that
:mod:`rflint.frontend.torch_ops` reads. The declared ops (``[tool.rflint.ops]``) live here too:
they are the classes and functions the fx tracer must keep whole, registered while one
project's model is traced.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from torch import nn

from rflint.errors import ConfigError
from rflint.frontend.torch_ops import inverse_scale, spatial_rank, torch_pads
from rflint.ops.table import CUSTOM_OPS, register_op


def _module_conv(m: nn.Module) -> tuple[str, dict[str, Any]]:
    params = {
        "kernel_size": tuple(m.kernel_size),
        "stride": m.stride,
        "padding": m.padding,
        "dilation": m.dilation,
        "groups": m.groups,
        "in_channels": m.in_channels,
        "out_channels": m.out_channels,
    }
    if isinstance(m, nn.modules.conv._ConvTransposeNd):
        return "conv_transpose", params
    return "conv", params


def _module_pool(m: nn.Module) -> tuple[str, dict[str, Any]]:
    return "pool", {
        "kernel_size": m.kernel_size,
        "stride": m.stride,
        "padding": getattr(m, "padding", 0),
        "dilation": getattr(m, "dilation", 1),
        "n": spatial_rank(type(m).__name__.lower()),
    }


def _module_upsample(m: nn.Module) -> tuple[str, dict[str, Any]]:
    return "interpolate", {
        "mode": m.mode,
        "align_corners": bool(m.align_corners),
        "scale": None if getattr(m, "recompute_scale_factor", False) else inverse_scale(m.scale_factor),
    }


def _module_batch_norm(m: nn.Module, rank: int) -> tuple[str, dict[str, Any]]:
    batch_stats = m.training or not m.track_running_stats or m.running_mean is None
    return "norm", {"stats": (0, *range(2, rank)) if batch_stats else ()}


def _module_instance_norm(m: nn.Module, rank: int) -> tuple[str, dict[str, Any]]:
    running = m.track_running_stats and not m.training
    return "norm", {"stats": () if running else tuple(range(2, rank))}


def _module_pad(m: nn.Module, rank: int) -> tuple[str, dict[str, Any]]:
    mode = "circular" if "Circular" in type(m).__name__ else "constant"
    return "pad", {"pads": torch_pads(list(m.padding), rank), "mode": mode}


#: module class -> (canonical op, params); walked along the MRO, so subclasses inherit
MODULES: dict[type, Callable[[nn.Module, int], tuple[str, dict[str, Any]]]] = {
    nn.modules.conv._ConvNd: lambda m, rank: _module_conv(m),
    nn.modules.pooling._MaxPoolNd: lambda m, rank: _module_pool(m),
    nn.modules.pooling._AvgPoolNd: lambda m, rank: _module_pool(m),
    nn.modules.pooling._LPPoolNd: lambda m, rank: _module_pool(m),
    nn.modules.pooling._AdaptiveAvgPoolNd: lambda m, rank: ("adaptive_pool", {"n": spatial_rank(type(m).__name__.lower())}),
    nn.modules.pooling._AdaptiveMaxPoolNd: lambda m, rank: ("adaptive_pool", {"n": spatial_rank(type(m).__name__.lower())}),
    nn.Upsample: lambda m, rank: _module_upsample(m),
    nn.PixelShuffle: lambda m, rank: ("pixel_shuffle", {"factor": m.upscale_factor}),
    nn.PixelUnshuffle: lambda m, rank: ("pixel_unshuffle", {"factor": m.downscale_factor}),
    nn.Linear: lambda m, rank: ("linear", {"in_channels": m.in_features, "out_channels": m.out_features}),
    nn.Softmax: lambda m, rank: ("along", {"dim": m.dim if m.dim is not None else -1}),
    nn.LogSoftmax: lambda m, rank: ("along", {"dim": m.dim if m.dim is not None else -1}),
    nn.Softmin: lambda m, rank: ("along", {"dim": m.dim if m.dim is not None else -1}),
    nn.Softmax2d: lambda m, rank: ("along", {"dim": -3}),
    nn.Flatten: lambda m, rank: ("reshape", {}),
    nn.Unflatten: lambda m, rank: ("reshape", {}),
    nn.MultiheadAttention: lambda m, rank: ("multihead_attention", {"batch_first": m.batch_first}),
    nn.modules.batchnorm._BatchNorm: _module_batch_norm,
    nn.modules.instancenorm._InstanceNorm: _module_instance_norm,
    nn.GroupNorm: lambda m, rank: ("norm", {"stats": tuple(range(1, rank))}),
    nn.LayerNorm: lambda m, rank: ("norm", {"stats": tuple(range(rank - len(m.normalized_shape), rank))}),
    nn.modules.padding._ConstantPadNd: _module_pad,
    nn.modules.padding._ReflectionPadNd: _module_pad,
    nn.modules.padding._ReplicationPadNd: _module_pad,
    nn.Unfold: lambda m, rank: ("unfold", {"kernel_size": m.kernel_size, "dilation": m.dilation, "padding": m.padding, "stride": m.stride}),
    **{
        cls: (lambda m, rank: ("identity", {}))
        for cls in (
            nn.modules.dropout._DropoutNd, nn.Identity, nn.LocalResponseNorm, nn.ChannelShuffle, nn.ReLU, nn.ReLU6, nn.GELU,
            nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU,
            nn.CELU, nn.Mish, nn.Softplus, nn.Softsign, nn.GLU, nn.LogSigmoid, nn.Tanhshrink, nn.Threshold,
        )
    },
}
if hasattr(nn, "RMSNorm"):
    MODULES[nn.RMSNorm] = lambda m, rank: ("norm", {"stats": tuple(range(rank - len(m.normalized_shape), rank))})
if hasattr(nn.modules.padding, "_CircularPadNd"):
    MODULES[nn.modules.padding._CircularPadNd] = _module_pad

#: modules whose output has their input's shape and layout: the meta run can skip them
SHAPE_PRESERVING: tuple[type, ...] = tuple(
    cls
    for cls in (
        nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm, nn.modules.dropout._DropoutNd,
        nn.Identity, nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh,
        nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.Mish, nn.Softplus, nn.Softsign, nn.LogSigmoid, nn.Tanhshrink,
        nn.Threshold, nn.ChannelShuffle,
    )
)


def normalise_module(m: nn.Module, rank: int) -> tuple[str, dict[str, Any]]:
    """The op-table name and parameters of a leaf module (a registered custom op first)."""
    for cls in type(m).__mro__:
        if cls in MODULES:
            op, params = MODULES[cls](m, rank)
            if op == "conv" and getattr(m, "padding_mode", "zeros") == "circular":
                params = {**params, "circular": True}
            return op, params
    return "unknown", {"note": f"leaf module {type(m).__module__}.{type(m).__qualname__}"}


def leaf_types() -> tuple[type, ...]:
    """Module classes the fx tracer keeps as leaves beyond torch.nn's: the declared ops."""
    return tuple(t for t in CUSTOM_OPS if isinstance(t, type))


def is_declared_leaf(m: nn.Module) -> bool:
    """A module whose class is declared (by identity, or by source file and qualname)."""
    from rflint.ops.table import custom_handler

    return custom_handler(m) is not None


def opaque_functions() -> tuple[Callable, ...]:
    """Functions the fx tracer must not trace into: the declared ops."""
    return tuple(t for t in CUSTOM_OPS if not isinstance(t, type))


def import_dotted(dotted: str) -> Any:
    """The object a dotted path names (``pkg.module.Class``, ``pkg.module.Outer.Inner``)."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(f"no module of {dotted!r} can be imported")


@contextlib.contextmanager
def declared_ops(declarations: Mapping[str, Mapping[str, Any]]) -> Iterator[None]:
    """Register the ``[tool.rflint.ops]`` declarations while a model is traced, and forget
    them afterwards (a declaration belongs to one project's configuration). The caller puts
    the project's search path on ``sys.path`` (the engine does, as for the model itself).

    Raises:
        ConfigError: a declaration names no importable class or function.
    """
    added: list[tuple[Any, Any]] = []
    try:
        for dotted, spec in declarations.items():
            try:
                target = import_dotted(dotted)
            except (ImportError, AttributeError) as exc:
                raise ConfigError(
                    f"tool.rflint.ops.{dotted!r}: cannot import {dotted} ({type(exc).__name__}: {exc})",
                    hint="give the dotted path of a class or function importable from the project (see `pythonpath`)",
                ) from exc
            if not callable(target):
                raise ConfigError(f"tool.rflint.ops.{dotted!r}: {dotted} is not a class or function")
            added.append((target, CUSTOM_OPS.get(target)))
            register_op(target, dict(spec), name=f"tool.rflint.ops.{dotted!r}")
        yield
    finally:
        for target, previous in reversed(added):
            if previous is None:
                CUSTOM_OPS.pop(target, None)
            else:
                CUSTOM_OPS[target] = previous
