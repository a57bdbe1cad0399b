"""Naming ONNX nodes for the op table: an ONNX ``op_type`` and its attributes become a canonical
op name of :data:`rflint.ops.table.OPS` and its hyper-parameters (under torch's functional
names). Torch-free, like the rest of the ONNX frontend; no receptive-field semantics here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from rflint.ops.table import Operand

INT_MAX = 2**62


@dataclass
class Node:
    """What a normaliser may read of one ONNX node."""

    op_type: str
    attrs: dict[str, Any]
    operands: list[Operand]  # one per node input ("" inputs: an empty operand)
    consts: list[Any]  # per node input: its value when it is a known small constant
    opset: int

    def const(self, k: int) -> Any:
        return self.consts[k] if k < len(self.consts) else None

    def shape(self, k: int) -> tuple[int, ...] | None:
        return self.operands[k].shape if k < len(self.operands) else None


#: (canonical op, params, operands in the op's order or None for "every input in order")
Normalised = tuple[str, dict[str, Any], list[Operand] | None]


def _ints(value: Any) -> list[int]:
    return [int(v) for v in value]


def _text(value: Any, default: str) -> str:
    if value is None:
        return default
    return value.decode() if isinstance(value, bytes) else str(value)


def _auto_pad(n: Node) -> str | None:
    mode = _text(n.attrs.get("auto_pad"), "NOTSET")
    return {"SAME_UPPER": "same_upper", "SAME_LOWER": "same_lower", "VALID": "valid"}.get(mode)


def _pads(n: Node, k: int) -> Any:
    """The low-side padding per spatial dim (``pads`` is begin..., end...), or the auto_pad mode."""
    auto = _auto_pad(n)
    if auto is not None:
        return auto
    pads = _ints(n.attrs.get("pads", [0] * (2 * k)))
    return tuple(pads[:k]) if len(pads) >= k else (0,) * k


def _kernel(n: Node) -> list[int] | None:
    if "kernel_shape" in n.attrs:
        return _ints(n.attrs["kernel_shape"])
    w = n.shape(1)  # Conv / ConvTranspose weight: (M, C/g, *k) or (C, M/g, *k)
    return list(w[2:]) if w is not None else None


def _conv(n: Node) -> Normalised:
    kernel = _kernel(n)
    if kernel is None:
        return "unknown", {"note": "Conv without kernel_shape and with a weight of unknown shape"}, None
    k = len(kernel)
    groups = int(n.attrs.get("group", 1))
    w = n.shape(1)
    transposed = n.op_type == "ConvTranspose"
    if w is not None:
        channels = (w[0], w[1] * groups) if transposed else (w[1] * groups, w[0])
    else:
        channels = (None, None)
    params = {
        "kernel_size": tuple(kernel),
        "stride": tuple(_ints(n.attrs.get("strides", [1] * k))),
        "dilation": tuple(_ints(n.attrs.get("dilations", [1] * k))),
        "padding": _pads(n, k),
        "groups": groups,
        "in_channels": channels[0],
        "out_channels": channels[1],
    }
    return ("conv_transpose" if transposed else "conv"), params, None


def _pool(n: Node) -> Normalised:
    kernel = _ints(n.attrs["kernel_shape"])
    k = len(kernel)
    return "pool", {
        "kernel_size": tuple(kernel),
        "stride": tuple(_ints(n.attrs.get("strides", [1] * k))),  # ONNX's default stride is 1
        "dilation": tuple(_ints(n.attrs.get("dilations", [1] * k))),
        "padding": _pads(n, k),
    }, None


def _global_pool(n: Node) -> Normalised:
    rank = len(n.shape(0) or ()) or None
    dims = tuple(range(2, rank)) if rank else None
    return "reduce", {"dims": dims, "keepdim": True, "spatial": True}, None


def _max_unpool(n: Node) -> Normalised:
    """Each output position receives from the input units whose pooling window covers it: the
    taps of a transposed convolution with the pool's geometry."""
    kernel = _ints(n.attrs["kernel_shape"])
    k = len(kernel)
    return "conv_transpose", {
        "kernel_size": tuple(kernel),
        "stride": tuple(_ints(n.attrs.get("strides", [1] * k))),
        "padding": tuple(_ints(n.attrs.get("pads", [0] * (2 * k)))[:k]),
    }, [n.operands[0]]


def _resize(n: Node) -> Normalised:
    mode = _text(n.attrs.get("mode"), "nearest")
    if n.op_type == "Upsample":
        coord, nearest = "asymmetric", "floor"
        scales = n.attrs.get("scales") or n.const(1)
    else:
        coord = _text(n.attrs.get("coordinate_transformation_mode"), "half_pixel")
        nearest = _text(n.attrs.get("nearest_mode"), "round_prefer_floor")
        scales = n.const(1) if len(n.consts) == 2 else n.const(2)  # Resize-10: (X, scales); 11+: (X, roi, scales, sizes)
        if len(n.consts) > 3 and n.const(3) is not None and len(n.const(3)):
            scales = None  # sizes given: the scale is out / in
    if coord in ("tf_crop_and_resize",):
        return "unknown", {"note": f"Resize with coordinate_transformation_mode {coord!r}"}, None
    coord = {"pytorch_half_pixel": "half_pixel", "half_pixel_symmetric": "half_pixel"}.get(coord, coord)
    scale = None
    if scales is not None and len(scales):
        scale = tuple(None if float(s) == 0 else 1 / Fraction(float(s)).limit_denominator(1 << 16) for s in list(scales)[2:])
    return "interpolate", {"mode": mode, "coord": coord, "nearest_mode": nearest, "scale": scale}, [n.operands[0]]


def _reduce_dims(n: Node) -> list[int] | None:
    """``axes`` attribute (opset < 18) or constant second input (opset >= 18); all dims when
    absent, unless ``noop_with_empty_axes``."""
    if "axes" in n.attrs:
        return _ints(n.attrs["axes"])
    axes = n.const(1)
    if axes is not None and len(axes):
        return _ints(axes.reshape(-1))
    return [] if n.attrs.get("noop_with_empty_axes", 0) else None


def _reduce(n: Node) -> Normalised:
    return "reduce", {"dims": _reduce_dims(n), "keepdim": bool(n.attrs.get("keepdims", 1))}, [n.operands[0]]


def _arg_reduce(n: Node) -> Normalised:
    return "reduce", {"dims": [int(n.attrs.get("axis", 0))], "keepdim": bool(n.attrs.get("keepdims", 1))}, [n.operands[0]]


def _softmax(n: Node) -> Normalised:
    """One dim (``axis``, default -1) since opset 13; every dim from ``axis`` (default 1) on
    before, where the input is flattened to 2-D."""
    if n.opset >= 13:
        return "along", {"dim": int(n.attrs.get("axis", -1))}, [n.operands[0]]
    rank = len(n.shape(0) or ())
    start = int(n.attrs.get("axis", 1))
    return "along", {"dims": tuple(range(start % rank, rank)) if rank else None}, [n.operands[0]]


def _cumsum(n: Node) -> Normalised:
    axis = n.const(1)
    if axis is None:
        return "unknown", {"note": "CumSum along an axis that is not a constant"}, None
    return "along", {"dim": int(axis.reshape(-1)[0])}, [n.operands[0]]


def _topk(n: Node) -> Normalised:
    return "along", {"dim": int(n.attrs.get("axis", -1))}, [n.operands[0]]


def _gemm(n: Node) -> Normalised:
    """``A' B' + C``: a linear layer when B is a weight, else a matmul of the transposed operands."""
    trans_a, trans_b = int(n.attrs.get("transA", 0)), int(n.attrs.get("transB", 0))
    a, b = n.operands[0], n.operands[1]
    if trans_a:
        return "unknown", {"note": "Gemm with a transposed input"}, None
    if not b.dependent:
        w = b.shape
        params = {}
        if w is not None:
            params = {"in_channels": w[1 if trans_b else 0], "out_channels": w[0 if trans_b else 1]}
        return "linear", params, [a]
    if trans_b:
        from rflint.ops import layout as L

        b = Operand(L.transpose(b.layout, 0, 1), tuple(reversed(b.shape)) if b.shape else None)
    return "matmul", {}, [a, b]


def _slice(n: Node) -> Normalised:
    starts, ends = n.const(1), n.const(2)
    if starts is None or ends is None:
        return "unknown", {"note": "Slice with bounds that are not constants"}, None
    shape = n.shape(0)
    rank = len(shape) if shape is not None else len(starts)
    axes = n.const(3)
    axes = _ints(axes) if axes is not None else list(range(len(starts)))
    steps = n.const(4)
    steps = _ints(steps) if steps is not None else [1] * len(starts)
    items: list[Any] = [slice(None)] * rank
    for start, end, axis, step in zip(_ints(starts), _ints(ends), axes, steps):
        end = None if end >= INT_MAX // 2 or (shape is not None and end >= shape[axis % rank]) else end
        items[axis % rank] = slice(start, end, step)
    return "index", {"items": tuple(items)}, [n.operands[0]]


def _gather(n: Node) -> Normalised:
    """A scalar constant index drops its dim (ViT's class token); anything else picks positions."""
    if not n.operands[0].dependent:
        return "unknown", {"note": "Gather with input-dependent indices (a data-dependent lookup)"}, None
    axis = int(n.attrs.get("axis", 0))
    index = n.const(1)
    if index is not None and getattr(index, "ndim", 1) == 0:
        rank = len(n.shape(0) or ())
        return "index", {"items": (slice(None),) * (axis % rank) + (int(index),)}, [n.operands[0]]
    return "along", {"dim": axis}, [n.operands[0]]


def _pad(n: Node) -> Normalised:
    pads = n.attrs.get("pads")
    if pads is None:
        pads = n.const(1)
    if pads is None:
        return "unknown", {"note": "Pad with pads that are not constants"}, None
    pads = _ints(pads)
    rank = len(pads) // 2
    axes = n.const(3)
    begin, end = pads[:rank], pads[rank:]
    full_rank = len(n.shape(0) or ()) or rank
    per_dim = [(0, 0)] * full_rank
    dims = _ints(axes) if axes is not None else list(range(rank))
    for d, b, e in zip(dims, begin, end):
        per_dim[d % full_rank] = (b, e)
    mode = _text(n.attrs.get("mode"), "constant")
    return "pad", {"pads": tuple(per_dim), "mode": "circular" if mode == "wrap" else mode}, [n.operands[0]]


def _norm_stats(dims: Callable[[Node, int], tuple[int, ...]]) -> Callable[[Node], Normalised]:
    def normalise(n: Node) -> Normalised:
        rank = len(n.shape(0) or ())
        return "norm", {"stats": dims(n, rank) if rank else ()}, [n.operands[0]]

    return normalise


def _simple(op: str, **params: Any) -> Callable[[Node], Normalised]:
    return lambda n: (op, dict(params), None)


def _axis_param(op: str, key: str, name: str, default: int = 0) -> Callable[[Node], Normalised]:
    return lambda n: (op, {key: int(n.attrs.get(name, default))}, None)


POINTWISE = frozenset(
    """Relu LeakyRelu PRelu ThresholdedRelu Elu Selu Celu Gelu Sigmoid HardSigmoid HardSwish Tanh Softplus
    Softsign Mish Swish Clip Erf Exp Log Sqrt Reciprocal Neg Abs Sign Floor Ceil Round Cos Sin Not IsNaN IsInf
    Trilu Add Sub Mul Div Pow Max Min Sum Mean Where Equal Less LessOrEqual Greater GreaterOrEqual And Or Xor Mod
    BitShift""".split()
)
IDENTITY = frozenset(
    "Identity Dropout Cast CastLike QuantizeLinear DequantizeLinear DynamicQuantizeLinear LRN".split()
)

#: ONNX op type -> how to name it for the op table
ONNX_OPS: dict[str, Callable[[Node], Normalised]] = {
    "Conv": _conv,
    "ConvTranspose": _conv,
    "MaxPool": _pool,
    "AveragePool": _pool,
    "LpPool": _pool,
    "GlobalAveragePool": _global_pool,
    "GlobalMaxPool": _global_pool,
    "GlobalLpPool": _global_pool,
    "MaxUnpool": _max_unpool,
    "DepthToSpace": lambda n: ("pixel_shuffle", {"factor": int(n.attrs["blocksize"])}, [n.operands[0]]),
    "SpaceToDepth": lambda n: ("pixel_unshuffle", {"factor": int(n.attrs["blocksize"])}, [n.operands[0]]),
    "Resize": _resize,
    "Upsample": _resize,
    **{op: (lambda n: ("reshape", {}, [n.operands[0]])) for op in ("Reshape", "Flatten", "Squeeze", "Unsqueeze")},
    "Transpose": lambda n: ("permute", {"dims": tuple(_ints(n.attrs["perm"])) if "perm" in n.attrs else tuple(reversed(range(len(n.shape(0) or ()))))}, [n.operands[0]]),
    **{
        op: _reduce
        for op in (
            "ReduceMean ReduceMax ReduceMin ReduceSum ReduceProd ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceSumSquare"
        ).split()
    },
    "ArgMax": _arg_reduce,
    "ArgMin": _arg_reduce,
    "Softmax": _softmax,
    "LogSoftmax": _softmax,
    "Hardmax": _softmax,
    "CumSum": _cumsum,
    "TopK": _topk,
    "Gemm": _gemm,
    "MatMul": lambda n: ("matmul", {}, [n.operands[0], n.operands[1]]),
    "Einsum": lambda n: ("einsum", {"equation": _text(n.attrs["equation"], "")}, None),
    "Concat": _axis_param("cat", "dim", "axis"),
    "Split": _axis_param("split", "dim", "axis"),
    "Slice": _slice,
    "Gather": _gather,
    "Pad": _pad,
    "Expand": lambda n: ("expand", {}, [n.operands[0]]),
    "Tile": lambda n: ("expand", {}, [n.operands[0]]),
    "BatchNormalization": _norm_stats(lambda n, rank: (0, *range(2, rank)) if n.attrs.get("training_mode", 0) else ()),
    "InstanceNormalization": _norm_stats(lambda n, rank: tuple(range(2, rank))),
    "GroupNormalization": _norm_stats(lambda n, rank: tuple(range(1, rank))),
    "LayerNormalization": _norm_stats(lambda n, rank: tuple(range(int(n.attrs.get("axis", -1)) % rank, rank))),
    "SimplifiedLayerNormalization": _norm_stats(lambda n, rank: tuple(range(int(n.attrs.get("axis", -1)) % rank, rank))),
    "RMSNormalization": _norm_stats(lambda n, rank: tuple(range(int(n.attrs.get("axis", -1)) % rank, rank))),
    "LpNormalization": _norm_stats(lambda n, rank: (int(n.attrs.get("axis", -1)) % rank,)),
    "MeanVarianceNormalization": _norm_stats(lambda n, rank: tuple(_ints(n.attrs.get("axes", [0, 2, 3])))),
    "GridSample": _simple("global_spatial"),
    **{op: _simple("pointwise") for op in POINTWISE},
    **{op: _simple("identity") for op in IDENTITY},
}

#: ops lowered correctly without knowing which dims are spatial (window ops assume NCHW)
LAYOUT_FREE = POINTWISE | IDENTITY | frozenset(
    "Conv ConvTranspose MaxPool AveragePool LpPool GlobalAveragePool GlobalMaxPool GlobalLpPool Concat Split MaxUnpool".split()
)
#: ops that only move data around: without a layout they stay reshapes (with an unknown layout)
MOVES_ONLY = frozenset("Reshape Flatten Squeeze Unsqueeze Transpose Gather".split())
#: ops computing on shapes only: no receptive field
SHAPE_OPS = frozenset("Shape Size ConstantOfShape EyeLike RandomNormalLike RandomUniformLike".split())
#: ops whose output size tells whether the input was too small
WINDOW_OPS = frozenset("Conv ConvTranspose MaxPool AveragePool LpPool".split())


def normalise(node: Node, domain: str) -> Normalised:
    """The op-table name and parameters of one ONNX node (``unknown`` with a note if none)."""
    if domain not in ("", "ai.onnx"):
        return "unknown", {"note": f"rflint does not know how ONNX op {node.op_type} in domain {domain!r} changes the receptive field"}, None
    normaliser = ONNX_OPS.get(node.op_type)
    if normaliser is None:
        return "unknown", {"note": f"rflint does not know how ONNX op {node.op_type} changes the receptive field"}, None
    return normaliser(node)
