"""torch.fx frontend: an ``nn.Module`` and an input shape become an :class:`rflint.ir.Graph`.

Three steps, each small:

1. **trace** with a ``torch.fx.Tracer`` that keeps standard ``torch.nn`` modules, user-listed
   classes and timm's no-trace registry as leaves, and records stack traces (for source lines);
2. **run** the traced graph on a meta tensor of the user's input shape (no real compute, no
   real weights) and record every node's evaluated arguments and output shape;
3. **lower** every node to a :class:`~rflint.ir.Layer` with one function per op family. Each
   lowering also tracks which tensor dim carries which spatial axis (:mod:`.layout`), because a
   ``Linear`` is pointwise in ConvNeXt's channels-last MLP but global in MLP-Mixer's token mixing.

An op rflint has no rule for becomes a ``Kind.UNKNOWN`` layer (rule RF001), never a silent 1x1.
"""

from __future__ import annotations

import math
import operator
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

import torch
import torch.fx as fx
from torch import nn
from torch.utils._pytree import tree_flatten, tree_map

from rflint.errors import ShapeError, TraceError
from rflint.frontend import layout as L
from rflint.frontend.common import make_layer, unique_qualname
from rflint.frontend.definitions import definition_sources
from rflint.frontend.no_dynamo import without_dynamo
from rflint.ir import Graph, Kind, Layer, Source

# ---------------------------------------------------------------------------------------------
# 1. tracing


_TORCH_DIR = os.path.dirname(torch.__file__) + os.sep  # frames inside torch itself are not the user's
_RFLINT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


class _Tracer(fx.Tracer):
    """Standard torch.nn modules, timm's no-trace modules and user-listed classes are leaves.

    Each node records the innermost frame outside torch and rflint: the line in the model's
    ``forward`` that issued it. (fx's own ``record_stack_traces`` formats the whole stack for
    every node, which doubles the tracing time.)
    """

    def __init__(self, leaf_types: tuple[type, ...], autowrap: tuple[Callable, ...]) -> None:
        super().__init__(autowrap_functions=autowrap)
        self.leaf_types = leaf_types

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if self.leaf_types and isinstance(m, self.leaf_types):
            return True
        return super().is_leaf_module(m, module_qualified_name)

    def create_proxy(self, *args: Any, **kwargs: Any) -> fx.Proxy:
        proxy = super().create_proxy(*args, **kwargs)
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename.startswith((_TORCH_DIR, _RFLINT_DIR)):
            frame = frame.f_back
        if frame is not None:
            proxy.node.meta["rflint_source"] = Source(frame.f_code.co_filename, frame.f_lineno)
        return proxy


def _import_class(dotted: str) -> type:
    module_name, _, attr = dotted.rpartition(".")
    try:
        module = __import__(module_name, fromlist=[attr])
        return getattr(module, attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise TraceError(f"leaf module {dotted!r} cannot be imported: {exc}", hint="give a dotted path like pkg.mod.Class") from exc


def _library_registries() -> tuple[tuple[type, ...], tuple[Callable, ...]]:
    """timm's registries of modules and functions that must not be traced through."""
    import sys

    if "timm" not in sys.modules:
        return (), ()
    try:
        from timm.layers import _fx as timm_fx

        modules = tuple(getattr(timm_fx, "_leaf_modules", ()) or ())
        functions = tuple(getattr(timm_fx, "_autowrap_functions", ()) or ())
        return modules, functions
    except ImportError:
        return (), ()


def trace(module: nn.Module, leaf_modules: Sequence[str] = ()) -> fx.GraphModule:
    """Symbolically trace ``module`` into a GraphModule (no data flows yet)."""
    lib_modules, lib_functions = _library_registries()
    leaf_types = tuple(_import_class(name) for name in leaf_modules) + lib_modules
    tracer = _Tracer(leaf_types, lib_functions)
    try:
        graph = tracer.trace(module)
    except Exception as exc:  # fx raises TraceError, RuntimeError, TypeError, AttributeError, ...
        raise TraceError(f"torch.fx could not trace the model: {type(exc).__name__}: {_first_line(exc)}") from exc
    return fx.GraphModule(tracer.root, graph)


# ---------------------------------------------------------------------------------------------
# 2. running on meta tensors


@dataclass(frozen=True, slots=True)
class TensorMeta:
    """What lowering needs of a tensor value: its shape."""

    shape: tuple[int, ...]


def _meta(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return TensorMeta(tuple(int(s) for s in value.shape))
    return value


def produces_tensor(out: Any) -> bool:
    """A node's recorded output is a tensor, or a tuple holding one (only those have fields)."""
    return isinstance(out, TensorMeta) or (isinstance(out, (tuple, list)) and any(isinstance(o, TensorMeta) for o in out))


class _Recorder(fx.Interpreter):
    """Runs the graph and keeps each node's evaluated args, kwargs and output (shapes only).

    Modules that keep their input's shape (norms, activations, dropout) return the input
    unchanged: only shapes are needed, and BatchNorm on meta tensors runs a slow Python
    decomposition that otherwise takes half of the shape run.
    """

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm)
        self.records: dict[fx.Node, tuple[tuple, dict, Any]] = {}

    def call_module(self, target: Any, args: tuple, kwargs: dict) -> Any:
        module = self.fetch_attr(target)
        if isinstance(module, SHAPE_PRESERVING_MODULES) and args and isinstance(args[0], torch.Tensor):
            return args[0]
        return super().call_module(target, args, kwargs)

    def run_node(self, n: fx.Node) -> Any:
        args, kwargs = self.fetch_args_kwargs_from_env(n)
        out = super().run_node(n)
        self.records[n] = (tree_map(_meta, args), tree_map(_meta, kwargs), tree_map(_meta, out))
        return out


def _device_of(module: nn.Module) -> torch.device:
    for t in list(module.parameters()) + list(module.buffers()):
        return t.device
    return torch.device("meta")


def run(gm: fx.GraphModule, input_shape: tuple[int, ...]) -> dict[fx.Node, tuple[tuple, dict, Any]]:
    """Execute on a meta (or, for modules built on CPU, a CPU) input and record shapes."""
    device = _device_of(gm)
    recorder = _Recorder(gm)
    x = torch.zeros(input_shape, device=device)
    try:
        with torch.no_grad(), without_dynamo():
            recorder.run(x)
    except Exception as exc:
        raise ShapeError(
            f"the model does not run on input shape {tuple(input_shape)}: {type(exc).__name__}: {_first_line(exc)}"
        ) from exc
    return recorder.records


def infer_input_shape(module: nn.Module, input_size: Sequence[int] | None) -> tuple[int, ...]:
    """``(1, C, *spatial)`` from the first convolution module's channels and dimensionality.

    A model with no convolution module (functional convs only) is assumed to take 3 channels
    and as many spatial axes as ``input_size`` gives (2 for a single number); if that guess is
    wrong, running the model fails with a shape error that points to ``--input-shape``.
    """
    if input_size is None:
        raise ShapeError("no input size given", hint="pass --input-size N (e.g. 224) or --input-shape 1,3,224,224")
    first = next((m for m in module.modules() if isinstance(m, nn.modules.conv._ConvNd)), None)
    ndim = len(first.kernel_size) if first is not None else (len(input_size) if len(input_size) > 1 else 2)
    channels = first.in_channels if first is not None else 3
    size = tuple(input_size) * ndim if len(input_size) == 1 else tuple(input_size)
    if len(size) != ndim:
        raise ShapeError(
            f"--input-size has {len(size)} axes but the model's first convolution is {ndim}-d",
            hint=f"give one size or {ndim} sizes, e.g. --input-size {'x'.join(['224'] * ndim)}",
        )
    return (1, channels, *size)


# ---------------------------------------------------------------------------------------------
# 3. lowering


class Outputs(tuple):
    """The layouts of a multi-output op (split, chunk, ``max(dim)``, MultiheadAttention), one per
    output (None for a non-tensor output), told apart from a single tensor's Layout."""


@dataclass(frozen=True, slots=True)
class Lowered:
    """What one node lowers to: the layer's receptive-field fields and its output layout."""

    kind: Kind
    op: str
    layout: Any  # a Layout, or Outputs for multi-output ops
    kernel: tuple[int, ...] = ()
    stride: tuple[Fraction, ...] = ()
    dilation: tuple[int, ...] = ()
    padding: tuple[int, ...] = ()
    global_axes: tuple[bool, ...] = ()
    in_channels: int | None = None
    out_channels: int | None = None
    groups: int = 1
    note: str = ""


@dataclass
class _Ctx:
    """Everything a lowering function may look at for one node."""

    node: fx.Node
    args: tuple
    kwargs: dict
    out: Any
    layouts: list[Any]  # layouts of the tensor args that depend on the input, in arg order
    pos_layouts: list[Any]  # layout per positional arg of the node (None for constants)
    ndim: int
    module: nn.Module | None = None

    layouts_by_node: Callable[[Any], Any] = lambda _node: None  # layout of any fx node argument

    def arg_layout(self, idx: int) -> Any:
        """Layout of positional arg ``idx`` (None if it does not depend on the input)."""
        return self.pos_layouts[idx] if idx < len(self.pos_layouts) else None

    def arg(self, idx: int, name: str, default: Any = None) -> Any:
        if name in self.kwargs:
            return self.kwargs[name]
        return self.args[idx] if len(self.args) > idx else default

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.out.shape if isinstance(self.out, TensorMeta) else ()

    @property
    def first(self) -> Any:
        return self.layouts[0]


def _per_axis(value: Any, n: int) -> tuple:
    if isinstance(value, (tuple, list)):
        return tuple(value) if len(value) == n else tuple(value) * n if len(value) == 1 else tuple(value)
    return (value,) * n


def _window(ctx: _Ctx, op: str, kernel, stride, dilation=1, padding=0, *, n: int, kind: Kind = Kind.WINDOW, **extra) -> Lowered:
    """A sliding window over the last ``n`` tensor dims, mapped onto input axes."""
    kernel, stride = _per_axis(kernel, n), _per_axis(stride if stride not in (None, ()) else kernel, n)
    dilation, padding = _per_axis(dilation, n), _per_axis(padding if isinstance(padding, (int, tuple, list)) else 0, n)
    lay = ctx.first
    k_axes, s_axes, d_axes = [1] * ctx.ndim, [Fraction(1)] * ctx.ndim, [1] * ctx.ndim
    p_axes = [0] * ctx.ndim
    for i in range(n):
        dim = lay[len(lay) - n + i]
        axis = L.spatial_axis(dim)
        if axis is None:
            continue  # e.g. a Conv1d over channels (ECA attention): no spatial effect
        if axis is False:
            return _unknown(ctx, op, f"{op} slides over a dimension that mixes spatial and other data")
        k_axes[axis], s_axes[axis], d_axes[axis] = int(kernel[i]), Fraction(stride[i]), int(dilation[i])
        p_axes[axis] = int(padding[i]) if isinstance(padding[i], int) else 0
    return Lowered(
        kind, op, L.resize(lay, ctx.out_shape), tuple(k_axes), tuple(s_axes), tuple(d_axes), tuple(p_axes), **extra
    )


def _unknown(ctx: _Ctx, op: str, note: str) -> Lowered:
    lay = ctx.first if ctx.layouts else ()
    out_lay = L.resize(lay, ctx.out_shape) if len(lay) == len(ctx.out_shape) else L.reshape(lay, ctx.out_shape)
    if out_lay is None:
        out_lay = tuple(((None, s),) if s != 1 else () for s in ctx.out_shape)
    return Lowered(Kind.UNKNOWN, op, out_lay, note=note)


def _pointwise(ctx: _Ctx, op: str) -> Lowered:
    """Elementwise ops; with several input-dependent operands it is a merge of their paths."""
    merge = len(ctx.layouts) > 1
    if not isinstance(ctx.out, TensorMeta):
        lay = ctx.first
    elif not merge and len(ctx.first) == len(ctx.out_shape):
        lay = L.resize(ctx.first, ctx.out_shape)
    else:
        lay = L.broadcast(ctx.layouts, ctx.out_shape)
    return Lowered(Kind.MERGE if merge else Kind.POINTWISE, op, lay)


def _global(ctx: _Ctx, op: str, axes: frozenset[int], out_layout: Any) -> Lowered:
    if not axes:
        return Lowered(Kind.MERGE if len(ctx.layouts) > 1 else Kind.POINTWISE, op, out_layout)
    return Lowered(Kind.GLOBAL, op, out_layout, global_axes=tuple(a in axes for a in range(ctx.ndim)))


def _reshape(ctx: _Ctx, op: str) -> Lowered:
    lay = L.reshape(ctx.first, ctx.out_shape)
    if lay is not None:
        return Lowered(Kind.RESHAPE, op, lay)
    cut = L.reshape(ctx.first, ctx.out_shape, cut_axes=True)
    if cut is None:
        return _unknown(ctx, op, "reshape mixes a spatial axis with other data")
    return Lowered(Kind.UNKNOWN, op, cut, note="reshape cuts a spatial axis into windows (window partition)")


def _permute_dims(ctx: _Ctx) -> list[int]:
    dims = list(ctx.args[1:])  # x.permute(0, 2, 3, 1), x.permute([0, 2, 3, 1]), torch.permute(x, dims)
    if "dims" in ctx.kwargs:
        dims = [ctx.kwargs["dims"]]
    if len(dims) == 1 and isinstance(dims[0], (list, tuple)):
        dims = list(dims[0])
    return dims


def _lower_permute(ctx: _Ctx, op: str) -> Lowered:
    return Lowered(Kind.RESHAPE, op, L.permute(ctx.first, _permute_dims(ctx)))


def _lower_transpose(ctx: _Ctx, op: str) -> Lowered:
    if op == "t" or len(ctx.args) < 3 and "dim0" not in ctx.kwargs:
        return Lowered(Kind.RESHAPE, op, L.transpose(ctx.first, 0, 1))
    return Lowered(Kind.RESHAPE, op, L.transpose(ctx.first, ctx.arg(1, "dim0"), ctx.arg(2, "dim1")))


def _lower_reduce(ctx: _Ctx, op: str) -> Lowered:
    dim = ctx.arg(1, "dim", None)
    keepdim = bool(ctx.arg(2, "keepdim", False))
    if isinstance(dim, (bool,)) or dim is None:
        dims = list(range(len(ctx.first)))
    else:
        dims = list(dim) if isinstance(dim, (list, tuple)) else [dim]
    lay, axes = L.reduce(ctx.first, dims, keepdim)
    if not isinstance(ctx.out, TensorMeta):  # e.g. max(dim) returns (values, indices)
        lay = Outputs((lay, lay))
    return _global(ctx, op, axes, lay)


def _lower_softmax(ctx: _Ctx, op: str) -> Lowered:
    dim = ctx.arg(1, "dim", -1)
    n = len(ctx.first)
    axes = L.axes_of(ctx.first[dim % n]) if dim is not None else frozenset(range(ctx.ndim))
    return _global(ctx, op, axes, ctx.first)


def _lower_linear_like(ctx: _Ctx, op: str) -> Lowered:
    """Linear / F.linear act on the last dim: global over the axes that dim carries."""
    lay = ctx.first
    axes = L.axes_of(lay[-1]) if lay else frozenset()
    out_lay = lay[:-1] + ((((None, ctx.out_shape[-1]),) if ctx.out_shape[-1] != 1 else ()),)
    return _global(ctx, op, axes, out_lay)


def _lower_matmul(ctx: _Ctx, op: str) -> Lowered:
    """``a @ b`` contracts a's last dim with b's second-to-last: global over their axes."""
    a = ctx.arg_layout(0)
    b = ctx.arg_layout(1)
    a_l = a if a is not None else tuple(((None, s),) for s in ctx.args[0].shape) if isinstance(ctx.args[0], TensorMeta) else ()
    b_l = b if b is not None else tuple(((None, s),) for s in ctx.args[1].shape) if isinstance(ctx.args[1], TensorMeta) else ()
    axes = frozenset()
    if a is not None and a_l:
        axes |= L.axes_of(a_l[-1])
    if b is not None and len(b_l) >= 2:
        axes |= L.axes_of(b_l[-2])
    rank = len(ctx.out_shape)
    batch = L.broadcast([a_l[:-2] if len(a_l) > 2 else (), b_l[:-2] if len(b_l) > 2 else ()], ctx.out_shape[: max(0, rank - 2)])
    rows = a_l[-2] if len(a_l) >= 2 else ()
    cols = b_l[-1] if len(b_l) >= 1 else ()
    out_lay = L.resize(tuple(batch) + (rows, cols), ctx.out_shape) if rank >= 2 else ()
    return _global(ctx, op, axes, out_lay)


def _einsum_specs(equation: str, ranks: list[int]) -> tuple[list[str], str]:
    """Operand and output label strings of an einsum, with ``...`` expanded to unique labels."""
    lhs, _, rhs = equation.replace(" ", "").partition("->")
    specs = lhs.split(",")
    free = iter("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    width = max((rank - (len(sp) - 3) for sp, rank in zip(specs, ranks) if "..." in sp), default=0)
    ellipsis = "".join(next(free) for _ in range(width))
    specs = [sp.replace("...", ellipsis[len(ellipsis) - (rank - (len(sp) - 3)) :]) for sp, rank in zip(specs, ranks)]
    if not _:
        counts = {c: lhs.count(c) for c in "".join(specs)}
        rhs = ellipsis + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ellipsis))
    return specs, rhs.replace("...", ellipsis)


def _lower_einsum(ctx: _Ctx, op: str) -> Lowered:
    """einsum: labels summed over (absent from the output) mix every position of the dims they
    name, so their spatial axes become global; output labels keep their operand's dim."""
    operands = list(ctx.args[1:])
    pos_layouts = list(ctx.pos_layouts[1:])
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):  # einsum(eq, [a, b])
        operands = list(operands[0])
        node_ops = ctx.node.args[1] if len(ctx.node.args) > 1 else ()
        pos_layouts = [ctx.layouts_by_node(n) for n in node_ops]
    ranks = [len(o.shape) if isinstance(o, TensorMeta) else 0 for o in operands]
    specs, out_spec = _einsum_specs(ctx.args[0], ranks)
    dims: dict[str, L.Dim] = {}
    summed: frozenset[int] = frozenset()
    for spec, lay in zip(specs, pos_layouts):
        if lay is None:
            continue
        for label, dim in zip(spec, lay):
            if label not in out_spec:
                summed |= L.axes_of(dim)
            elif dim and label not in dims:
                dims[label] = dim
    out_lay = L.resize(tuple(dims.get(label, ()) for label in out_spec), ctx.out_shape)
    return _global(ctx, op, summed, out_lay)


def _lower_attention_fn(ctx: _Ctx, op: str) -> Lowered:
    """scaled_dot_product_attention(q, k, v): every query sees every key position."""
    k = ctx.arg_layout(1) or ()
    axes = L.axes_of(k[-2]) if len(k) >= 2 else frozenset()
    q = ctx.arg_layout(0) or ctx.first
    return _global(ctx, op, axes, L.resize(q, ctx.out_shape))


def _lower_cat(ctx: _Ctx, op: str) -> Lowered:
    """Concatenation merges paths. Along a token dim with extra positions that carry no axes (a
    class token) the dim stops being a product of axes and becomes opaque."""
    lay = ctx.first
    if len(lay) != len(ctx.out_shape):
        return Lowered(Kind.MERGE, op, L.reshape(lay, ctx.out_shape) or lay)
    dim = ctx.arg(1, "dim", 0) % len(lay)
    size = ctx.out_shape[dim]
    out = list(L.resize(lay, ctx.out_shape))
    if L.axes_of(lay[dim]) and math.prod(c[1] for c in lay[dim]) * len(ctx.layouts) != size:
        out[dim] = L.with_extra_positions(lay[dim], size)
    return Lowered(Kind.MERGE, op, tuple(out))


def _lower_stack(ctx: _Ctx, op: str) -> Lowered:
    dim = ctx.arg(1, "dim", 0) % len(ctx.out_shape)
    lay = list(ctx.first)
    lay.insert(dim, ((None, ctx.out_shape[dim]),))
    return Lowered(Kind.MERGE, op, tuple(lay))


def _lower_split(ctx: _Ctx, op: str) -> Lowered:
    outs = ctx.out if isinstance(ctx.out, (tuple, list)) else (ctx.out,)
    lays = Outputs(
        (L.resize(ctx.first, o.shape) if len(o.shape) == len(ctx.first) else L.reshape(ctx.first, o.shape) or ctx.first)
        if isinstance(o, TensorMeta)
        else None
        for o in outs
    )
    return Lowered(Kind.POINTWISE, op, lays)


def _lower_getitem(ctx: _Ctx, op: str) -> Lowered:
    src, idx = ctx.first, ctx.args[1]
    if isinstance(src, Outputs):  # picking one output of a multi-output op
        return Lowered(Kind.RESHAPE, "getitem", src[idx])
    return _lower_index(ctx, src, idx)


def _lower_index(ctx: _Ctx, lay: Any, idx: Any) -> Lowered:
    """Tensor indexing: ints drop dims, None adds dims, and a slice with a step subsamples.

    A strided slice ``start::step`` reads position ``step * j + start``. rflint assumes
    layers are aligned on position 0, so the slice is modelled as a window over
    ``[step * j, step * j + start]`` (``k = start % step + 1``): exact for space-to-depth
    (``cat([x[0::2, 0::2], x[1::2, 0::2], ...])`` in Swin's patch merging or YOLO's Focus,
    which covers a 2x2 block), an over-estimate by ``start`` for one offset slice alone.
    """
    items = list(idx) if isinstance(idx, tuple) else [idx]
    if any(isinstance(i, TensorMeta) for i in items):
        return _unknown(ctx, "index", "indexing with a tensor")
    n_real = sum(1 for i in items if i is not None and i is not Ellipsis)
    if Ellipsis in items:
        pos = items.index(Ellipsis)
        items[pos : pos + 1] = [slice(None)] * (len(lay) - n_real)
    items += [slice(None)] * (len(lay) - sum(1 for i in items if i is not None))
    out: list = []
    kernel, stride = [1] * ctx.ndim, [Fraction(1)] * ctx.ndim
    d = 0
    for it in items:
        if it is None:
            out.append(())
            continue
        dim = lay[d]
        d += 1
        if isinstance(it, int):
            continue
        if isinstance(it, slice) and it.step not in (None, 1):
            axis = L.spatial_axis(dim)
            if axis is False:
                return _unknown(ctx, "index", "strided slice over a mixed dimension")
            if axis is not None:
                kernel[axis], stride[axis] = (it.start or 0) % it.step + 1, Fraction(it.step)
        out.append(dim)
    lay_out = L.resize(tuple(out), ctx.out_shape)
    if any(s != 1 for s in stride):
        return Lowered(Kind.WINDOW, "strided_slice", lay_out, tuple(kernel), tuple(stride), (1,) * ctx.ndim)
    return Lowered(Kind.RESHAPE, "getitem", lay_out)


def _interp_taps(mode: str) -> int | None:
    return {"nearest": 1, "nearest-exact": 1, "area": None, "linear": 2, "bilinear": 2, "trilinear": 2, "bicubic": 4}.get(mode)


def _lower_interpolate(ctx: _Ctx, op: str, mode: str) -> Lowered:
    taps = _interp_taps(mode)
    lay = ctx.first
    n = len(lay) - 2
    if taps is None:
        return _unknown(ctx, op, f"interpolation mode {mode!r}")
    kernel, stride = [1] * ctx.ndim, [Fraction(1)] * ctx.ndim
    for i in range(n):
        dim = lay[2 + i]
        axis = L.spatial_axis(dim)
        if axis is None:
            continue
        if axis is False:
            return _unknown(ctx, op, "interpolation over a mixed dimension")
        size_in = math.prod(c[1] for c in dim)
        size_out = ctx.out_shape[2 + i]
        kernel[axis], stride[axis] = taps, Fraction(size_in, size_out)
    return Lowered(Kind.UPSAMPLE, op, L.resize(lay, ctx.out_shape), tuple(kernel), tuple(stride), (1,) * ctx.ndim)


def _adaptive(ctx: _Ctx, op: str, n: int) -> Lowered:
    """Adaptive pooling: to 1 it is global; to ``m > 1`` it is a window of the largest bin,
    ``max_i ceil((i+1) H / m) - floor(i H / m)``, with a stride of ``H / m``, at the actual size."""
    lay = ctx.first
    kernel, stride, glob = [1] * ctx.ndim, [Fraction(1)] * ctx.ndim, [False] * ctx.ndim
    for i in range(n):
        dim = lay[len(lay) - n + i]
        axis = L.spatial_axis(dim)
        if axis is None:
            continue
        if axis is False:
            return _unknown(ctx, op, "adaptive pooling over a mixed dimension")
        size_in, size_out = math.prod(c[1] for c in dim), ctx.out_shape[len(lay) - n + i]
        if size_out == 1 and size_in > 1:
            glob[axis] = True
        elif size_out != size_in:
            kernel[axis] = max(-(-(j + 1) * size_in // size_out) - (j * size_in // size_out) for j in range(size_out))
            stride[axis] = Fraction(size_in, size_out)
    out_lay = L.resize(lay, ctx.out_shape)
    if any(glob) and all(k == 1 for k in kernel):
        return Lowered(Kind.GLOBAL, op, out_lay, global_axes=tuple(glob))
    if any(glob):
        return _unknown(ctx, op, "adaptive pooling that is global on some axes and windowed on others")
    # to more cells than the input has (VGG's pool to 7x7 on a 2x2 map), it interpolates
    kind = Kind.UPSAMPLE if any(s < 1 for s in stride) else Kind.WINDOW
    return Lowered(kind, op, out_lay, tuple(kernel), tuple(stride), (1,) * ctx.ndim)


def _conv_fn(ctx: _Ctx, op: str) -> Lowered:
    weight = ctx.arg(1, "weight")
    if not isinstance(weight, TensorMeta):
        return _unknown(ctx, op, "convolution weight is not a tensor")
    n = len(weight.shape) - 2
    groups = ctx.arg(6, "groups", 1)
    return _window(
        ctx, op, weight.shape[2:], ctx.arg(3, "stride", 1), ctx.arg(5, "dilation", 1), ctx.arg(4, "padding", 0), n=n,
        in_channels=weight.shape[1] * groups, out_channels=weight.shape[0], groups=groups,
    )


def _pool_fn(ctx: _Ctx, op: str) -> Lowered:
    n = int(op[-2]) if op[-2].isdigit() else len(ctx.first) - 2
    dilation = ctx.arg(4, "dilation", 1) if "max" in op else 1
    return _window(ctx, op, ctx.arg(1, "kernel_size"), ctx.arg(2, "stride", None), dilation, ctx.arg(3, "padding", 0), n=n)


def _pixel_shuffle(ctx: _Ctx, op: str) -> Lowered:
    r = ctx.arg(1, "upscale_factor" if op == "pixel_shuffle" else "downscale_factor")
    lay = ctx.first
    kernel, stride = [1] * ctx.ndim, [Fraction(1)] * ctx.ndim
    for dim in lay[-2:]:
        axis = L.spatial_axis(dim)
        if isinstance(axis, int) and axis is not False:
            kernel[axis], stride[axis] = (1, Fraction(1, r)) if op == "pixel_shuffle" else (r, Fraction(r))
    kind = Kind.UPSAMPLE if op == "pixel_shuffle" else Kind.WINDOW
    return Lowered(kind, op, L.resize(lay, ctx.out_shape), tuple(kernel), tuple(stride), (1,) * ctx.ndim)


# Ops that pass receptive fields through unchanged, by name (functions and methods alike).
POINTWISE_OPS = frozenset(
    """relu relu6 gelu silu sigmoid tanh hardswish hardsigmoid hardtanh leaky_relu elu selu celu mish softplus
    softsign prelu glu logsigmoid tanhshrink threshold dropout dropout1d dropout2d dropout3d alpha_dropout
    feature_alpha_dropout stochastic_depth batch_norm layer_norm group_norm instance_norm local_response_norm
    normalize rms_norm contiguous clone detach float double half bfloat16 to type type_as neg abs exp log sqrt rsqrt
    pow square reciprocal clamp clamp_min clamp_max clip sign floor ceil round erf sin cos pad constant_pad_nd
    roll flip expand expand_as repeat broadcast_to masked_fill channel_shuffle native_channel_shuffle sigmoid_
    cumsum nan_to_num requires_grad_""".split()
)
ELEMENTWISE_OPS = frozenset(
    "add sub mul truediv div floordiv mod matmul_ pow_ maximum minimum where iadd isub imul itruediv rsub addcmul lerp eq ne lt le gt ge".split()
)
RESHAPE_OPS = frozenset("view reshape flatten unflatten squeeze unsqueeze view_as reshape_as ravel".split())
REDUCE_OPS = frozenset("mean sum amax amin max min std var logsumexp prod norm nanmean".split())

FUNCTION_LOWERINGS: dict[str, Callable[[_Ctx, str], Lowered]] = {
    "permute": _lower_permute,
    "transpose": _lower_transpose,
    "swapaxes": _lower_transpose,
    "t": _lower_transpose,
    "softmax": _lower_softmax,
    "log_softmax": _lower_softmax,
    "linear": _lower_linear_like,
    "matmul": _lower_matmul,
    "bmm": _lower_matmul,
    "einsum": _lower_einsum,
    "scaled_dot_product_attention": _lower_attention_fn,
    "cat": _lower_cat,
    "concat": _lower_cat,
    "concatenate": _lower_cat,
    "stack": _lower_stack,
    "chunk": _lower_split,
    "split": _lower_split,
    "tensor_split": _lower_split,
    "unbind": _lower_split,
    "getitem": _lower_getitem,
    "conv1d": _conv_fn,
    "conv2d": _conv_fn,
    "conv3d": _conv_fn,
    "max_pool1d": _pool_fn,
    "max_pool2d": _pool_fn,
    "max_pool3d": _pool_fn,
    "avg_pool1d": _pool_fn,
    "avg_pool2d": _pool_fn,
    "avg_pool3d": _pool_fn,
    "adaptive_avg_pool1d": lambda c, op: _adaptive(c, op, 1),
    "adaptive_avg_pool2d": lambda c, op: _adaptive(c, op, 2),
    "adaptive_avg_pool3d": lambda c, op: _adaptive(c, op, 3),
    "adaptive_max_pool1d": lambda c, op: _adaptive(c, op, 1),
    "adaptive_max_pool2d": lambda c, op: _adaptive(c, op, 2),
    "adaptive_max_pool3d": lambda c, op: _adaptive(c, op, 3),
    "interpolate": lambda c, op: _lower_interpolate(c, op, c.arg(3, "mode", "nearest")),
    "upsample": lambda c, op: _lower_interpolate(c, op, c.arg(3, "mode", "nearest")),
    "pixel_shuffle": _pixel_shuffle,
    "pixel_unshuffle": _pixel_shuffle,
}


def _channels_last_window(ctx: _Ctx, op: str, kernel: Sequence[int], stride: Sequence[int], note: str) -> Lowered:
    """A window over the H and W dims of a channels-last ``[..., H, W, C]`` tensor."""
    lay = ctx.first
    k_axes, s_axes, glob = [1] * ctx.ndim, [Fraction(1)] * ctx.ndim, [False] * ctx.ndim
    for i, dim in enumerate(lay[-3:-1]):
        axis = L.spatial_axis(dim)
        if axis is False:
            return _unknown(ctx, op, f"{op} over a dimension that mixes spatial and other data")
        if axis is None:
            continue
        size = math.prod(c[1] for c in dim)
        if kernel[i] >= size and stride[i] == 1:  # one window covers the whole axis
            glob[axis] = True
        else:
            k_axes[axis], s_axes[axis] = int(kernel[i]), Fraction(stride[i])
    out_lay = L.resize(lay, ctx.out_shape)
    if any(glob) and all(k == 1 for k in k_axes):
        return Lowered(Kind.GLOBAL, op, out_lay, global_axes=tuple(glob), note=note)
    if any(glob):
        return _unknown(ctx, op, "windowed attention global on one axis only")
    return Lowered(Kind.WINDOW, op, out_lay, tuple(k_axes), tuple(s_axes), (1,) * ctx.ndim, note=note)


def _swin_window_attention(ctx: _Ctx, op: str) -> Lowered:
    """torchvision's shifted_window_attention: every position attends to its (shifted) window.
    Modelled as a sliding window of the window size: exact for one layer (each unit sees one
    window), and consecutive shifted windows compose to within one position of it."""
    window = ctx.arg(4, "window_size")
    return _channels_last_window(ctx, "shifted_window_attention", window, (1, 1), "windowed self-attention, modelled as a sliding window of the window size")


def _swin_patch_merging(ctx: _Ctx, op: str) -> Lowered:
    """torchvision's _patch_merging_pad: a 2x2 space-to-depth (x[0::2, 0::2], x[1::2, 0::2], ...)."""
    return _channels_last_window(ctx, "patch_merging", (2, 2), (2, 2), "2x2 space-to-depth")


#: Library functions that torchvision / timm keep opaque to torch.fx (``torch.fx.wrap``), with
#: their receptive-field rule. Any other opaque function is reported unknown (RF001).
LIBRARY_FUNCTIONS: dict[str, Callable[[_Ctx, str], Lowered]] = {
    "torchvision.models.swin_transformer.shifted_window_attention": _swin_window_attention,
    "torchvision.models.swin_transformer._patch_merging_pad": _swin_patch_merging,
}


def _lower_by_name(ctx: _Ctx, name: str) -> Lowered:
    if name in FUNCTION_LOWERINGS:
        return FUNCTION_LOWERINGS[name](ctx, name)
    if name in ELEMENTWISE_OPS:
        return _pointwise(ctx, name)
    if name in POINTWISE_OPS:
        return _pointwise(ctx, name)
    if name in RESHAPE_OPS:
        return _reshape(ctx, name)
    if name in REDUCE_OPS:
        return _lower_reduce(ctx, name)
    return _unknown(ctx, name, "no receptive-field rule for this function")


# -- modules ----------------------------------------------------------------------------------

POINTWISE_MODULES: tuple[type, ...] = (
    nn.modules.batchnorm._NormBase,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
    nn.modules.dropout._DropoutNd,
    nn.Identity,
    nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh,
    nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.Mish, nn.Softplus, nn.Softsign, nn.GLU, nn.LogSigmoid,
    nn.Tanhshrink, nn.Threshold, nn.ChannelShuffle, nn.ZeroPad2d, nn.ConstantPad1d, nn.ConstantPad2d,
    nn.ConstantPad3d, nn.ReflectionPad1d, nn.ReflectionPad2d, nn.ReplicationPad1d, nn.ReplicationPad2d,
)
if hasattr(nn, "RMSNorm"):
    POINTWISE_MODULES += (nn.RMSNorm,)

#: Pointwise modules whose output has their input's shape (not GLU, not the padding modules).
SHAPE_PRESERVING_MODULES: tuple[type, ...] = tuple(
    t for t in POINTWISE_MODULES if not issubclass(t, (nn.GLU, nn.modules.padding._ConstantPadNd, nn.modules.padding._ReflectionPadNd, nn.modules.padding._ReplicationPadNd))
)


def _lower_module(ctx: _Ctx, m: nn.Module) -> Lowered:
    op = type(m).__name__
    if isinstance(m, nn.modules.conv._ConvTransposeNd):
        n = len(m.kernel_size)
        k_eff = [d * (k - 1) + 1 for k, d in zip(m.kernel_size, m.dilation)]
        taps = [-(-k // s) for k, s in zip(k_eff, m.stride)]  # input positions one output reads
        return _window(
            ctx, op, taps, [Fraction(1, s) for s in m.stride], 1, 0, n=n, kind=Kind.UPSAMPLE,
            in_channels=m.in_channels, out_channels=m.out_channels, groups=m.groups,
        )
    if isinstance(m, nn.modules.conv._ConvNd):
        pad = m.padding if isinstance(m.padding, tuple) else (0,) * len(m.kernel_size)
        return _window(
            ctx, op, m.kernel_size, m.stride, m.dilation, pad, n=len(m.kernel_size),
            in_channels=m.in_channels, out_channels=m.out_channels, groups=m.groups,
        )
    if isinstance(m, (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd, nn.modules.pooling._LPPoolNd)):
        n = len(ctx.first) - 2
        dilation = getattr(m, "dilation", 1)
        return _window(ctx, op, m.kernel_size, m.stride, dilation, getattr(m, "padding", 0), n=n)
    if isinstance(m, (nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd)):
        return _adaptive(ctx, op, int(op[-2]) if op[-2].isdigit() else len(ctx.first) - 2)
    if isinstance(m, nn.Upsample):
        return _lower_interpolate(ctx, op, m.mode)
    if isinstance(m, (nn.PixelShuffle, nn.PixelUnshuffle)):
        name = "pixel_shuffle" if isinstance(m, nn.PixelShuffle) else "pixel_unshuffle"
        ctx.args = (ctx.args[0], m.upscale_factor if name == "pixel_shuffle" else m.downscale_factor)
        return _pixel_shuffle(ctx, name)
    if isinstance(m, nn.Linear):
        low = _lower_linear_like(ctx, op)
        return Lowered(low.kind, op, low.layout, global_axes=low.global_axes, in_channels=m.in_features, out_channels=m.out_features)
    if isinstance(m, (nn.Softmax, nn.LogSoftmax, nn.Softmin)):
        ctx.args, ctx.kwargs = (ctx.args[0], m.dim), {}
        return _lower_softmax(ctx, op)
    if isinstance(m, (nn.Flatten, nn.Unflatten)):
        return _reshape(ctx, op)
    if isinstance(m, nn.MultiheadAttention):
        key = ctx.arg_layout(1) or ctx.first
        seq_dim = 1 if m.batch_first else 0
        axes = L.axes_of(key[seq_dim]) if len(key) > seq_dim else frozenset()
        q = ctx.first
        out = ctx.out[0] if isinstance(ctx.out, (tuple, list)) else ctx.out
        lay = L.resize(q, out.shape)
        return _global(ctx, op, axes, Outputs((lay, None)))
    if isinstance(m, POINTWISE_MODULES):
        return _pointwise(ctx, op)
    return _unknown(ctx, op, f"leaf module {type(m).__module__}.{type(m).__qualname__}")


# ---------------------------------------------------------------------------------------------
# putting it together

_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')


def _source(node: fx.Node) -> Source | None:
    """Where the node was issued: recorded by the tracer, or (torch.export graphs) the innermost
    frame of its stack trace that is not inside torch itself."""
    if "rflint_source" in node.meta:
        return node.meta["rflint_source"]
    trace_text = node.stack_trace or node.meta.get("stack_trace")
    if not trace_text:
        return None
    frames = [(f, int(line)) for f, line, _ in _FRAME.findall(trace_text)]
    user = [fr for fr in frames if not fr[0].startswith(_TORCH_DIR)]
    if not user:
        return None
    return Source(user[-1][0], user[-1][1])


def _op_name(node: fx.Node) -> str:
    target = node.target
    if node.op == "call_method":
        name = str(target)
    else:
        name = getattr(target, "__name__", str(target))
    name = name.rstrip("_") if name.endswith("_") and not name.startswith("__") else name
    return name.strip("_") if name.startswith("__") else name


def _is_known_function(target: Any) -> bool:
    """Functions from torch / operator are dispatched by name; anything else (a library's or the
    user's ``torch.fx.wrap``-ed function) is opaque and reported unknown."""
    module = getattr(target, "__module__", None) or ""
    return (
        module.startswith(("torch", "_operator", "operator", "builtins", "math", "torchvision.ops"))
        or target in (operator.getitem, getattr)
        or type(target).__name__ in ("builtin_function_or_method", "OpOverloadPacket")
    ) and not module.startswith(("torchvision.models",))


def _qualname(node: fx.Node, op: str) -> str:
    if node.op == "call_module":
        return str(node.target)
    stack = node.meta.get("nn_module_stack") or {}
    scope = ""
    if stack:
        last = list(stack.values())[-1]
        scope = last[0] if isinstance(last, tuple) else str(last)
    base = re.sub(r"_\d+$", "", node.name)
    return f"{scope}.{base}" if scope else base


def lower(gm: fx.GraphModule, records: dict, input_shape: tuple[int, ...], ndim: int) -> list[Layer]:
    """Lower every input-dependent node of the traced graph to a Layer."""
    modules = dict(gm.named_modules())
    layouts: dict[fx.Node, Any] = {}
    layers: list[Layer] = []
    names_used: dict[str, int] = {}
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    data_input = placeholders[0] if placeholders else None

    for node in gm.graph.nodes:
        if node is data_input:
            layouts[node] = L.initial(input_shape, ndim)
            layers.append(Layer(node.name, "input", "input", Kind.INPUT, out_size=tuple(input_shape[-ndim:])))
            continue
        if node.op in ("placeholder", "get_attr", "output"):
            continue
        dep_nodes = [a for a in tree_flatten((node.args, node.kwargs))[0] if isinstance(a, fx.Node) and a in layouts]
        if not dep_nodes:
            continue
        args, kwargs, out = records.get(node, (None, None, None))
        if args is None:
            continue
        if not produces_tensor(out):
            continue  # shapes, sizes, python numbers: no receptive field
        arg_layouts = [layouts[a] for a in dep_nodes]

        pos_layouts = [layouts.get(a) if isinstance(a, fx.Node) else None for a in node.args]
        ctx = _Ctx(node, tuple(args), dict(kwargs), out, arg_layouts, pos_layouts, ndim, layouts_by_node=layouts.get)
        try:
            if node.op == "call_module":
                module = modules[str(node.target)]
                ctx.module = module
                low = _lower_module(ctx, module)
                module_type = f"{type(module).__module__}.{type(module).__qualname__}"
            else:
                name = _op_name(node)
                if node.op == "call_function" and not _is_known_function(node.target):
                    mod = getattr(node.target, "__module__", "")
                    full = f"{mod}.{getattr(node.target, '__name__', name)}"
                    if full in LIBRARY_FUNCTIONS:
                        low = LIBRARY_FUNCTIONS[full](ctx, name)
                    else:
                        low = _unknown(ctx, f"{mod}.{name}" if mod else name, "opaque function (not traced through)")
                else:
                    low = _lower_by_name(ctx, name)
                module_type = ""
        except Exception as exc:  # a lowering bug must not hide the layer: report it as unknown
            low = _unknown(ctx, _op_name(node), f"could not lower: {type(exc).__name__}: {_first_line(exc)}")
            module_type = ""
        layouts[node] = low.layout
        qual = unique_qualname(_qualname(node, low.op), names_used)
        out_lay = None if isinstance(low.layout, Outputs) else low.layout
        layers.append(
            make_layer(
                low,
                name=node.name,
                qualname=qual,
                op=low.op,
                inputs=tuple(dict.fromkeys(a.name for a in dep_nodes)),
                out_layout=out_lay,
                ndim=ndim,
                module_type=module_type,
                source=_source(node),
            )
        )
    return layers


def trace_graph(
    module: nn.Module,
    *,
    input_size: Sequence[int] | None = None,
    input_shape: Sequence[int] | None = None,
    name: str = "model",
    leaf_modules: Sequence[str] = (),
) -> Graph:
    """Trace ``module`` at the given input size into an IR graph.

    Args:
        module: the model (ideally built on the meta device; it is put in eval mode).
        input_size: spatial size, one number for every axis or one per axis.
        input_shape: the full input shape including batch and channels; wins over input_size.
        name: the model's display name.
        leaf_modules: dotted class paths not to trace through.
    """
    module.eval()
    shape = tuple(int(s) for s in input_shape) if input_shape else infer_input_shape(module, input_size)
    if any(s <= 0 for s in shape):
        raise ShapeError(f"input shape {shape} has a non-positive size")
    ndim = len(shape) - 2
    if ndim < 1:
        raise ShapeError(f"input shape {shape} has no spatial axis", hint="give (batch, channels, *spatial), e.g. 1,3,224,224")
    gm = trace(module, leaf_modules)
    records = run(gm, shape)
    layers = lower(gm, records, shape, ndim)
    defined = definition_sources(module, [layer.qualname for layer in layers if layer.module_type])
    layers = [replace(layer, definition=defined.get(layer.qualname)) for layer in layers]
    return Graph(tuple(layers), tuple(shape[2:]), name=name, tracer="fx")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
