"""Naming torch calls for the op table: a torch function, tensor method or aten op becomes a
canonical op name of :data:`rflint.ops.table.OPS` and its hyper-parameters.

This module holds no receptive-field semantics, only *where* torch keeps each argument: the
fx frontend (functional calls, methods) and the torch.export frontend (aten ops, whose
arguments are bound to their schema's names) share it, so an op is named once for both.
Leaf ``nn.Module`` instances keep their arguments as attributes instead and are named by
:mod:`rflint.frontend.torch_modules`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from rflint.ops.table import Operand


@dataclass
class Args:
    """A call's arguments: tensors already turned into :class:`Operand` records."""

    args: tuple
    kwargs: dict

    def get(self, i: int, name: str, default: Any = None) -> Any:
        """The argument at position ``i`` or keyword ``name``; ``default`` when it is missing,
        None or an empty list. aten schemas write "not given" as ``[]`` (``avg_pool2d``'s
        ``stride=[]`` means the kernel size, ``amax``'s ``dim=[]`` every dim), and torch.export
        binds every defaulted argument, so an empty list must read as the default."""
        for value in (self.kwargs.get(name), self.args[i] if len(self.args) > i else None):
            if value is not None and not (isinstance(value, (list, tuple)) and not value):
                return value
        return default

    def has_operand(self, i: int, name: str) -> bool:
        return isinstance(self.get(i, name), Operand)


#: (canonical op, params, operands in the op's order or None for "the tensor arguments in order")
Normalised = tuple[str, dict[str, Any], list[Operand] | None]
Extractor = Callable[[Args, str], Normalised]


def _shape(value: Any) -> tuple[int, ...]:
    return value.shape if isinstance(value, Operand) and value.shape is not None else ()


def _conv(a: Args, name: str) -> Normalised:
    w = _shape(a.get(1, "weight"))
    groups = int(a.get(6, "groups", 1))
    return "conv", {
        "kernel_size": w[2:],
        "stride": a.get(3, "stride", 1),
        "padding": a.get(4, "padding", 0),
        "dilation": a.get(5, "dilation", 1),
        "groups": groups,
        "in_channels": w[1] * groups if w else None,
        "out_channels": w[0] if w else None,
    }, None


def _conv_transpose(a: Args, name: str) -> Normalised:
    w = _shape(a.get(1, "weight"))
    groups = int(a.get(6, "groups", 1))
    return "conv_transpose", {
        "kernel_size": w[2:],
        "stride": a.get(3, "stride", 1),
        "padding": a.get(4, "padding", 0),
        "dilation": a.get(7, "dilation", 1),
        "groups": groups,
        "in_channels": w[0] if w else None,
        "out_channels": w[1] * groups if w else None,
    }, None


def _convolution(a: Args, name: str) -> Normalised:
    """aten.convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups)."""
    w = _shape(a.get(1, "weight"))
    groups = int(a.get(8, "groups", 1))
    transposed = bool(a.get(6, "transposed", False))
    params = {
        "kernel_size": w[2:],
        "stride": a.get(3, "stride", 1),
        "padding": a.get(4, "padding", 0),
        "dilation": a.get(5, "dilation", 1),
        "groups": groups,
    }
    if transposed:
        params.update(in_channels=w[0] if w else None, out_channels=w[1] * groups if w else None)
        return "conv_transpose", params, None
    params.update(in_channels=w[1] * groups if w else None, out_channels=w[0] if w else None)
    return "conv", params, None


def spatial_rank(name: str) -> int | None:
    """The spatial rank a torch name spells (``max_pool2d``, ``AvgPool3d``); None where it
    spells none, so the op reads it from its input."""
    m = re.search(r"(\d)d", name)
    return int(m.group(1)) if m else None


def _max_pool(a: Args, name: str) -> Normalised:
    return "pool", {
        "kernel_size": a.get(1, "kernel_size"),
        "stride": a.get(2, "stride"),
        "padding": a.get(3, "padding", 0),
        "dilation": a.get(4, "dilation", 1),
        "n": spatial_rank(name),
    }, None


def _avg_pool(a: Args, name: str) -> Normalised:
    return "pool", {"kernel_size": a.get(1, "kernel_size"), "stride": a.get(2, "stride"), "padding": a.get(3, "padding", 0), "n": spatial_rank(name)}, None


def _lp_pool(a: Args, name: str) -> Normalised:
    return "pool", {"kernel_size": a.get(2, "kernel_size"), "stride": a.get(3, "stride"), "n": spatial_rank(name)}, None


def _adaptive(a: Args, name: str) -> Normalised:
    return "adaptive_pool", {"n": spatial_rank(name)}, None


def inverse_scale(value: Any) -> Any:
    """``scale_factor`` (output per input) as input units per output unit, per axis."""
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        return tuple(None if v is None else 1 / Fraction(v).limit_denominator(1 << 16) for v in value)
    return 1 / Fraction(value).limit_denominator(1 << 16)


def _interpolate(a: Args, name: str) -> Normalised:
    scale = None if a.get(5, "recompute_scale_factor", False) else inverse_scale(a.get(2, "scale_factor"))
    return "interpolate", {"mode": a.get(3, "mode", "nearest"), "align_corners": a.get(4, "align_corners", False), "scale": scale}, None


_UPSAMPLE = re.compile(r"^_?upsample_(nearest_exact|nearest|bilinear|bicubic|linear|trilinear)(\d)d(_aa)?$")


def _aten_upsample(a: Args, name: str) -> Normalised:
    mode = _UPSAMPLE.match(name).group(1).replace("nearest_exact", "nearest-exact")  # type: ignore[union-attr]
    scales = a.kwargs.get("scale_factors")
    if scales is None:
        scales = [a.kwargs.get(k) for k in ("scales_d", "scales_h", "scales_w", "scales") if k in a.kwargs]
        scales = None if not scales or all(s is None for s in scales) else scales
    return "interpolate", {"mode": mode, "align_corners": a.kwargs.get("align_corners", False), "scale": inverse_scale(scales)}, None


def _pixel_shuffle(a: Args, name: str) -> Normalised:
    return name, {"factor": a.get(1, "upscale_factor" if name == "pixel_shuffle" else "downscale_factor")}, None


def torch_pads(pad: Sequence[int], rank: int) -> tuple[tuple[int, int], ...]:
    """torch's ``pad`` (last dim first: left, right, top, bottom, ...) as (before, after) per dim."""
    out = [(0, 0)] * rank
    for i in range(len(pad) // 2):
        out[rank - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    return tuple(out)


def _pad(a: Args, name: str) -> Normalised:
    x = a.get(0, "input", a.get(0, "self"))
    pad = a.get(1, "pad", a.get(1, "padding"))
    mode = a.get(2, "mode", "constant") if name == "pad" else ("circular" if "circular" in name else "constant")
    return "pad", {"pads": torch_pads(list(pad or ()), len(_shape(x))), "mode": mode}, None


def _getitem(a: Args, name: str) -> Normalised:
    idx = a.args[1]
    items = list(idx) if isinstance(idx, tuple) else [idx]
    return "index", {"items": tuple("tensor" if isinstance(i, Operand) else i for i in items)}, [a.args[0]]


def _select(a: Args, name: str) -> Normalised:
    dim, index = int(a.get(1, "dim")), int(a.get(2, "index"))
    return "index", {"items": (slice(None),) * (dim % len(_shape(a.args[0]))) + (index,)}, [a.args[0]]


def _slice(a: Args, name: str) -> Normalised:
    dim = int(a.get(1, "dim", 0))
    start, end, step = a.get(2, "start"), a.get(3, "end"), a.get(4, "step", 1)
    rank = len(_shape(a.args[0]))
    size = _shape(a.args[0])[dim % rank] if rank else None
    if end is not None and size is not None and end > size:
        end = None
    return "index", {"items": (slice(None),) * (dim % rank) + (slice(start, end, int(step)),)}, [a.args[0]]


def _narrow(a: Args, name: str) -> Normalised:
    dim, start, length = int(a.get(1, "dim")), int(a.get(2, "start")), int(a.get(3, "length"))
    rank = len(_shape(a.args[0]))
    return "index", {"items": (slice(None),) * (dim % rank) + (slice(start, start + length, 1),)}, [a.args[0]]


def _aten_index(a: Args, name: str) -> Normalised:
    indices = a.get(1, "indices", ())
    return "index", {"items": tuple("tensor" if isinstance(i, Operand) else slice(None) for i in indices)}, [a.args[0]]


def _varargs(a: Args, start: int, name: str) -> list[Any]:
    values = list(a.args[start:])
    if name in a.kwargs:
        values = [a.kwargs[name]]
    if len(values) == 1 and isinstance(values[0], (list, tuple)):
        values = list(values[0])
    return values


def _reshape(a: Args, name: str) -> Normalised:
    return "reshape", {}, [a.args[0]]


def _permute(a: Args, name: str) -> Normalised:
    return "permute", {"dims": tuple(int(d) for d in _varargs(a, 1, "dims"))}, [a.args[0]]


def _transpose(a: Args, name: str) -> Normalised:
    if name == "t" or (len(a.args) < 3 and "dim0" not in a.kwargs):
        return "transpose", {"dim0": 0, "dim1": 1}, [a.args[0]]
    return "transpose", {"dim0": int(a.get(1, "dim0")), "dim1": int(a.get(2, "dim1"))}, [a.args[0]]


def _movedim(a: Args, name: str) -> Normalised:
    rank = len(_shape(a.args[0]))
    src, dst = a.get(1, "source"), a.get(2, "destination")
    src = [s % rank for s in (src if isinstance(src, (list, tuple)) else [src])]
    dst = [d % rank for d in (dst if isinstance(dst, (list, tuple)) else [dst])]
    order = [d for d in range(rank) if d not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return "permute", {"dims": tuple(order)}, [a.args[0]]


def _reduce(a: Args, name: str) -> Normalised:
    if isinstance(a.get(1, "other"), Operand):  # torch.max(x, y): elementwise
        return "pointwise", {}, None
    dim = a.get(1, "dim")
    if isinstance(dim, bool):
        dim = None
    return "reduce", {"dim": dim, "keepdim": bool(a.get(2, "keepdim", False))}, [a.args[0]]


def _vector_norm(a: Args, name: str) -> Normalised:
    return "reduce", {"dim": a.get(2, "dim"), "keepdim": bool(a.get(3, "keepdim", False))}, [a.args[0]]


def _along(index: int, key: str = "dim", default: Any = -1) -> Extractor:
    def extract(a: Args, name: str) -> Normalised:
        return "along", {"dim": a.get(index, key, default)}, [a.args[0]]

    return extract


def _flip(a: Args, name: str) -> Normalised:
    if name in ("fliplr", "flipud"):
        return "along", {"dim": 1 if name == "fliplr" else 0}, [a.args[0]]
    return "along", {"dims": tuple(_varargs(a, 1, "dims"))}, [a.args[0]]


def _roll(a: Args, name: str) -> Normalised:
    return "roll", {"shifts": a.get(1, "shifts"), "dims": a.get(2, "dims")}, [a.args[0]]


def _linear(a: Args, name: str) -> Normalised:
    w = _shape(a.get(1, "weight"))
    return "linear", {"in_channels": w[1] if len(w) == 2 else None, "out_channels": w[0] if w else None}, [a.args[0]]


def _matmul(a: Args, name: str) -> Normalised:
    return "matmul", {}, [a.args[0], a.args[1]]


def _addmm(a: Args, name: str) -> Normalised:
    """``addmm(bias, a, b)`` = ``bias + a @ b``."""
    return "matmul", {}, [a.args[1], a.args[2], a.args[0]]


def _einsum(a: Args, name: str) -> Normalised:
    operands = list(a.args[1:])
    if operands and isinstance(operands[0], (list, tuple)):  # einsum(eq, [a, b]); aten adds a path argument
        operands = list(operands[0])
    return "einsum", {"equation": a.args[0]}, operands


def _attention(a: Args, name: str) -> Normalised:
    return "attention", {}, [a.args[0], a.args[1], a.args[2]]


def _cat(a: Args, name: str) -> Normalised:
    tensors = a.get(0, "tensors")
    return ("cat" if name != "stack" else "stack"), {"dim": a.get(1, "dim", 0)}, list(tensors)


def _split(a: Args, name: str) -> Normalised:
    dim_index = 1 if name == "unbind" else 2
    return "split", {"dim": a.get(dim_index, "dim", 0)}, [a.args[0]]


def _batch_norm(a: Args, name: str) -> Normalised:
    """Batch statistics (training mode, or no running statistics) span the batch and the
    spatial dims; running statistics are constants (the usual eval-mode case)."""
    x = a.args[0]
    rank = len(_shape(x))
    if name == "_native_batch_norm_legit_no_training":
        training, running = False, True
    elif "running_mean" in a.kwargs or "training" in a.kwargs:  # aten: bound to the schema's names
        training, running = bool(a.kwargs.get("training", False)), a.kwargs.get("running_mean")
    else:  # F.batch_norm(input, running_mean, running_var, weight, bias, training, ...)
        training, running = bool(a.get(5, "training", False)), a.get(1, "running_mean")
    batch_stats = training or running is None
    return "norm", {"stats": (0, *range(2, rank)) if batch_stats else ()}, [x]


def _instance_norm(a: Args, name: str) -> Normalised:
    x = a.args[0]
    use_input_stats = bool(a.get(5, "use_input_stats", True))
    return "norm", {"stats": tuple(range(2, len(_shape(x)))) if use_input_stats else ()}, [x]


def _group_norm(a: Args, name: str) -> Normalised:
    x = a.args[0]
    return "norm", {"stats": tuple(range(1, len(_shape(x))))}, [x]


def _layer_norm(a: Args, name: str) -> Normalised:
    x = a.args[0]
    shape = a.get(1, "normalized_shape", ())
    n = len(shape) if isinstance(shape, (list, tuple)) else 1
    rank = len(_shape(x))
    return "norm", {"stats": tuple(range(rank - n, rank))}, [x]


def _normalize(a: Args, name: str) -> Normalised:
    return "norm", {"stats": (a.get(2, "dim", 1),)}, [a.args[0]]


def _unfold(a: Args, name: str) -> Normalised:
    return "unfold", {
        "kernel_size": a.get(1, "kernel_size"),
        "dilation": a.get(2, "dilation", 1),
        "padding": a.get(3, "padding", 0),
        "stride": a.get(4, "stride", 1),
    }, [a.args[0]]


def _tensor_unfold(a: Args, name: str) -> Normalised:
    return "tensor_unfold", {"dim": a.get(1, "dimension", a.get(1, "dim")), "size": a.get(2, "size"), "step": a.get(3, "step")}, [a.args[0]]


def _expand(a: Args, name: str) -> Normalised:
    return "expand", {}, [a.args[0]]


def _simple(op: str) -> Extractor:
    def extract(a: Args, name: str) -> Normalised:
        return op, {}, None

    return extract


def _names(text: str) -> list[str]:
    return text.split()


#: torch function / tensor method / aten op name -> how to name it for the op table
FUNCTIONS: dict[str, Extractor] = {
    **{n: _conv for n in _names("conv1d conv2d conv3d")},
    **{n: _conv_transpose for n in _names("conv_transpose1d conv_transpose2d conv_transpose3d")},
    **{n: _convolution for n in _names("convolution _convolution")},
    **{n: _max_pool for n in _names("max_pool1d max_pool2d max_pool3d max_pool1d_with_indices max_pool2d_with_indices max_pool3d_with_indices")},
    **{n: _avg_pool for n in _names("avg_pool1d avg_pool2d avg_pool3d")},
    **{n: _lp_pool for n in _names("lp_pool1d lp_pool2d lp_pool3d")},
    **{
        n: _adaptive
        for n in _names(
            "adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d adaptive_max_pool1d adaptive_max_pool2d "
            "adaptive_max_pool3d _adaptive_avg_pool1d _adaptive_avg_pool2d _adaptive_avg_pool3d"
        )
    },
    "interpolate": _interpolate,
    "upsample": _interpolate,
    "pixel_shuffle": _pixel_shuffle,
    "pixel_unshuffle": _pixel_shuffle,
    **{n: _pad for n in _names("pad constant_pad_nd reflection_pad1d reflection_pad2d reflection_pad3d replication_pad1d replication_pad2d replication_pad3d _pad_circular")},
    "getitem": _getitem,
    "select": _select,
    "slice": _slice,
    "narrow": _narrow,
    "index": _aten_index,
    **{n: _reshape for n in _names("view reshape flatten unflatten squeeze unsqueeze view_as reshape_as ravel _unsafe_view _reshape_alias view_copy")},
    "permute": _permute,
    **{n: _transpose for n in _names("transpose swapaxes t")},
    "movedim": _movedim,
    **{n: _reduce for n in _names("mean sum amax amin max min std var logsumexp prod norm nanmean median nanmedian mode argmax argmin all any count_nonzero var_mean std_mean")},
    "linalg_vector_norm": _vector_norm,
    "vector_norm": _vector_norm,
    **{n: _along(1) for n in _names("softmax log_softmax softmin _softmax _log_softmax _safe_softmax cumsum cumprod cummax cummin logcumsumexp sort argsort")},
    **{n: _along(2) for n in _names("topk kthvalue")},
    **{n: _along(1) for n in _names("gather index_select scatter scatter_add index_add index_copy index_fill")},
    "take_along_dim": _along(2),
    **{n: _flip for n in _names("flip fliplr flipud")},
    "roll": _roll,
    "linear": _linear,
    **{n: _matmul for n in _names("matmul bmm mm")},
    **{n: _addmm for n in _names("addmm baddbmm")},
    "einsum": _einsum,
    **{
        n: _attention
        for n in _names(
            "scaled_dot_product_attention _scaled_dot_product_flash_attention _scaled_dot_product_flash_attention_for_cpu "
            "_scaled_dot_product_efficient_attention _scaled_dot_product_cudnn_attention _scaled_dot_product_fused_attention_overrideable"
        )
    },
    **{n: _cat for n in _names("cat concat concatenate stack")},
    **{n: _split for n in _names("split chunk tensor_split unbind split_with_sizes unsafe_split unsafe_chunk")},
    **{n: _batch_norm for n in _names("batch_norm native_batch_norm _native_batch_norm_legit _native_batch_norm_legit_functional _native_batch_norm_legit_no_training")},
    "instance_norm": _instance_norm,
    **{n: _group_norm for n in _names("group_norm native_group_norm")},
    **{n: _layer_norm for n in _names("layer_norm native_layer_norm rms_norm")},
    "normalize": _normalize,
    "im2col": _unfold,
    **{n: _expand for n in _names("expand expand_as broadcast_to repeat tile")},
    **{n: _simple("global_spatial") for n in _names("grid_sample grid_sampler grid_sampler_2d deform_conv2d")},
    **{
        n: _simple("pointwise")
        for n in _names(
            """add sub mul truediv div floordiv mod pow maximum minimum where masked_fill lerp addcmul addcdiv eq ne lt le gt ge rsub
            iadd isub imul itruediv neg abs exp log log1p sqrt rsqrt square reciprocal clamp clamp_min clamp_max clip sign floor
            ceil round trunc erf sin cos tanh sigmoid relu relu6 gelu silu hardswish hardsigmoid hardtanh leaky_relu elu selu celu
            mish softplus softsign prelu glu logsigmoid log_sigmoid tanhshrink threshold mul_ add_ copy fill masked_scatter bitwise_and
            bitwise_or logical_and logical_or logical_not isnan isinf nan_to_num"""
        )
    },
    **{
        n: _simple("identity")
        for n in _names(
            """contiguous clone detach float double half bfloat16 to type type_as _to_copy alias lift_fresh_copy dropout dropout1d
            dropout2d dropout3d alpha_dropout feature_dropout feature_alpha_dropout native_dropout stochastic_depth requires_grad_
            channel_shuffle native_channel_shuffle local_response_norm"""
        )
    },
}

#: names of tensor methods whose function of the same name means something else
METHODS: dict[str, Extractor] = {"unfold": _tensor_unfold}
#: aten op names that differ from the functional API's
ATEN: dict[str, Extractor] = {"unfold": _tensor_unfold}

#: ops whose output does not depend on the values of their input (only on its shape/dtype)
CONSTANT_OPS = frozenset(
    "zeros_like ones_like empty_like full_like rand_like randn_like new_zeros new_ones new_empty new_full".split()
)


def normalise_function(name: str, args: Args, kind: str = "function") -> Normalised:
    """The op-table name and parameters of a torch function, method (``kind="method"``) or aten
    op (``kind="aten"``) called ``name``; ``("unknown", {"note": ...}, None)`` if rflint has none."""
    table = METHODS if kind == "method" else ATEN if kind == "aten" else {}
    extractor = table.get(name) or FUNCTIONS.get(name)
    if extractor is None and kind == "aten" and _UPSAMPLE.match(name):
        extractor = _aten_upsample
    if extractor is None:
        return "unknown", {"note": f"no receptive-field rule for {name}"}, None
    return extractor(args, name)
