"""torch.export frontend: the fallback for models that torch.fx cannot trace.

``torch.fx`` traces with proxies, so Python control flow on a shape (``if x.shape[-1] > 16``)
or a builtin on a tensor (``len(x)``) stops it. ``torch.export.export(strict=False)`` runs the
model's Python as in eager mode, on fake tensors of a fixed shape, and records the aten ops
that come out; shape-dependent control flow simply takes the branch of the given shape.
Data-dependent control flow (``if x.sum() > 0``) still fails, and then the model cannot be
analysed statically at all.

The aten graph is lowered into the same IR as the fx graph, by the same lowering functions
(:mod:`rflint.frontend.fx` keys them by op name): this module only maps aten op names onto
those names (``max_pool2d_with_indices`` -> ``max_pool2d``, ``_unsafe_view`` -> ``view``), fills
the arguments aten leaves out with the defaults of the op's schema, and adds the few aten ops
that have no functional twin (``convolution``, ``select``, ``slice``, ``addmm``, ``upsample_*``).
Shapes come from each node's ``meta["val"]`` (a fake tensor), qualnames from
``meta["nn_module_stack"]``, source lines from ``meta["stack_trace"]``. An aten op without a
rule becomes ``Kind.UNKNOWN`` (rule RF001), never a silent 1x1.
"""

from __future__ import annotations

import contextlib
import io
import logging
import operator
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import replace
from fractions import Fraction
from typing import Any

import torch
from torch import fx, nn
from torch.utils._pytree import tree_flatten, tree_map

from rflint.errors import ShapeError, TraceError
from rflint.frontend import fx as F
from rflint.frontend import layout as L
from rflint.frontend.common import make_layer, unique_qualname
from rflint.frontend.definitions import definition_sources
from rflint.ir import Graph, Kind, Layer

#: aten op name -> the name of the fx lowering that handles it (after stripping a trailing ``_``).
ALIASES: dict[str, str] = {
    "_adaptive_avg_pool1d": "adaptive_avg_pool1d",
    "_adaptive_avg_pool2d": "adaptive_avg_pool2d",
    "_adaptive_avg_pool3d": "adaptive_avg_pool3d",
    "max_pool1d_with_indices": "max_pool1d",
    "max_pool2d_with_indices": "max_pool2d",
    "max_pool3d_with_indices": "max_pool3d",
    "_softmax": "softmax",
    "_safe_softmax": "softmax",
    "_log_softmax": "log_softmax",
    "_unsafe_view": "view",
    "_reshape_alias": "view",
    "view_copy": "view",
    "alias": "clone",
    "lift_fresh_copy": "clone",
    "_to_copy": "to",
    "copy": "add",  # copy_(dst, src): the result carries src (and dst's shape)
    "native_batch_norm": "batch_norm",
    "_native_batch_norm_legit": "batch_norm",
    "_native_batch_norm_legit_no_training": "batch_norm",
    "_native_batch_norm_legit_functional": "batch_norm",
    "native_layer_norm": "layer_norm",
    "native_group_norm": "group_norm",
    "native_dropout": "dropout",
    "mm": "matmul",
    "reflection_pad1d": "pad",
    "reflection_pad2d": "pad",
    "reflection_pad3d": "pad",
    "replication_pad1d": "pad",
    "replication_pad2d": "pad",
    "replication_pad3d": "pad",
    "_pad_circular": "pad",
    "linalg_vector_norm": "norm",
    "_scaled_dot_product_flash_attention": "scaled_dot_product_attention",
    "_scaled_dot_product_flash_attention_for_cpu": "scaled_dot_product_attention",
    "_scaled_dot_product_efficient_attention": "scaled_dot_product_attention",
    "_scaled_dot_product_cudnn_attention": "scaled_dot_product_attention",
    "_scaled_dot_product_fused_attention_overrideable": "scaled_dot_product_attention",
    "split_with_sizes": "split",
    "unsafe_split": "split",
    "unsafe_chunk": "chunk",
}

#: ops whose output does not depend on the values of their input (only on its shape/dtype)
CONSTANT_OPS = frozenset(
    ("zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like")
    + ("new_zeros", "new_ones", "new_empty", "new_full")
)

_UPSAMPLE = re.compile(r"^_?upsample_(nearest_exact|nearest|bilinear|bicubic|linear|trilinear)(\d)d(_aa)?$")


# ---------------------------------------------------------------------------------------------
# exporting


def export_program(module: nn.Module, input_shape: Sequence[int]) -> torch.export.ExportedProgram:
    """``torch.export.export(strict=False)`` on a meta (or, for a CPU-built module, CPU) input;
    export runs it on fake tensors either way, so no real compute happens."""
    device = F._device_of(module)
    example = torch.zeros(tuple(input_shape), device=device)
    try:
        with torch.no_grad(), _quiet():
            return torch.export.export(module, (example,), strict=False)
    except Exception as exc:  # UserError, GuardOnDataDependentSymNode, RuntimeError, ...
        raise TraceError(f"torch.export could not trace the model: {type(exc).__name__}: {_one_line(exc)}") from exc


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep torch's warnings, log records and prints (a failed export prints the partial graph
    to stderr) and the model's own prints off the terminal: the CLI reports one line per
    failure, and stdout may carry JSON."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    sink = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def _one_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (export's are many lines long)."""
    for line in str(exc).splitlines():
        line = line.strip()
        if line:
            return line[:300]
    return type(exc).__name__


# ---------------------------------------------------------------------------------------------
# arguments


def _tuples(value: Any) -> Any:
    """Lists -> tuples, recursively: the fx lowerings expect the functional API's tuples."""
    if isinstance(value, (list, tuple)):
        return tuple(_tuples(v) for v in value)
    return value


def _val(node: fx.Node) -> Any:
    return node.meta.get("val", node.meta.get("example_value"))


def _concrete(value: Any) -> Any:
    """A node argument as the lowering sees it: tensors -> TensorMeta, SymInts -> ints."""

    def one(v: Any) -> Any:
        if isinstance(v, fx.Node):
            v = _val(v)
        if isinstance(v, torch.SymInt):
            try:
                return int(v)
            except Exception:  # noqa: BLE001 - an unbacked SymInt stays symbolic
                return v
        return F._meta(v)

    return tree_map(one, value)


def _bind(target: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Positional args with the schema's defaults filled in, and the keyword-only ones."""
    schema = getattr(target, "_schema", None)
    if schema is None:
        return tuple(args), dict(kwargs)
    pos: list[Any] = []
    kw: dict[str, Any] = {}
    for i, a in enumerate(schema.arguments):
        if i < len(args) and not a.kwarg_only:
            value = args[i]
        elif a.name in kwargs:
            value = kwargs[a.name]
        elif a.has_default_value():
            value = a.default_value
        else:
            value = None
        if a.kwarg_only:
            kw[a.name] = value
        else:
            pos.append(value)
    return tuple(pos), kw


def op_name(target: Any) -> str:
    """``aten.max_pool2d_with_indices.default`` -> ``max_pool2d`` (an fx lowering's key)."""
    packet = getattr(target, "_overloadpacket", None)
    name = packet.__name__ if packet is not None else getattr(target, "__name__", str(target))
    if name.endswith("_") and not name.endswith("__"):
        name = name[:-1]  # in-place variant: same receptive field
    return ALIASES.get(name, name)


# ---------------------------------------------------------------------------------------------
# aten-only lowerings (everything else goes through rflint.frontend.fx by name)


def _lower_convolution(ctx: F._Ctx, op: str) -> F.Lowered:
    """``aten.convolution(input, weight, bias, stride, padding, dilation, transposed,
    output_padding, groups)`` and ``aten.conv_transposeNd``."""
    weight = ctx.args[1]
    if not isinstance(weight, F.TensorMeta):
        return F._unknown(ctx, op, "convolution weight is not a tensor")
    n = len(weight.shape) - 2
    if op.startswith("conv_transpose"):
        stride, padding, groups, dilation, transposed = ctx.args[3], ctx.args[4], ctx.args[6], ctx.args[7], True
    else:
        stride, padding, dilation, transposed, groups = ctx.args[3], ctx.args[4], ctx.args[5], ctx.args[6], ctx.args[8]
    groups = int(groups or 1)
    if not transposed:
        return F._window(
            ctx, op, weight.shape[2:], stride, dilation, padding, n=n,
            in_channels=weight.shape[1] * groups, out_channels=weight.shape[0], groups=groups,
        )
    kernel, stride_t, dil = weight.shape[2:], F._per_axis(stride, n), F._per_axis(dilation, n)
    k_eff = [int(d) * (int(k) - 1) + 1 for k, d in zip(kernel, dil)]
    taps = [-(-k // int(s)) for k, s in zip(k_eff, stride_t)]  # input positions one output reads
    return F._window(
        ctx, op, taps, [Fraction(1, int(s)) for s in stride_t], 1, 0, n=n, kind=Kind.UPSAMPLE,
        in_channels=weight.shape[0], out_channels=weight.shape[1] * groups, groups=groups,
    )


def _lower_select(ctx: F._Ctx, op: str) -> F.Lowered:
    """``x.select(dim, i)`` (``x[:, 0]``): drops one dim."""
    rank = len(ctx.first)
    dim = int(ctx.args[1]) % rank
    return F._lower_index(ctx, ctx.first, (slice(None),) * dim + (int(ctx.args[2]),))


def _lower_slice(ctx: F._Ctx, op: str) -> F.Lowered:
    """``x.slice(dim, start, end, step)``: a strided slice over a spatial dim is a stride."""
    rank = len(ctx.first)
    dim = int(ctx.args[1]) % rank
    step = ctx.args[4] if len(ctx.args) > 4 and ctx.args[4] is not None else 1
    return F._lower_index(ctx, ctx.first, (slice(None),) * dim + (slice(ctx.args[2], ctx.args[3], int(step)),))


def _lower_addmm(ctx: F._Ctx, op: str) -> F.Lowered:
    """``addmm(bias, a, b)`` = ``bias + a @ b`` (``baddbmm`` likewise): the matmul of args 1, 2."""
    pos = list(ctx.pos_layouts[1:3])
    if all(lay is None for lay in pos):
        return F._pointwise(ctx, op)  # only the bias depends on the input
    sub = F._Ctx(
        ctx.node, ctx.args[1:3], {}, ctx.out, [lay for lay in pos if lay is not None], pos, ctx.ndim,
        layouts_by_node=ctx.layouts_by_node,
    )
    return F._lower_matmul(sub, op)


def _lower_upsample(ctx: F._Ctx, op: str) -> F.Lowered:
    """``aten.upsample_bilinear2d`` and friends: ``F.interpolate`` with the mode in the name."""
    mode = _UPSAMPLE.match(op).group(1)  # type: ignore[union-attr]
    mode = {"nearest_exact": "nearest-exact"}.get(mode, mode)
    return F._lower_interpolate(ctx, op, mode)


ATEN_LOWERINGS = {
    "convolution": _lower_convolution,
    "_convolution": _lower_convolution,
    "conv_transpose1d": _lower_convolution,
    "conv_transpose2d": _lower_convolution,
    "conv_transpose3d": _lower_convolution,
    "select": _lower_select,
    "slice": _lower_slice,
    "addmm": _lower_addmm,
    "baddbmm": _lower_addmm,
}


def lower_aten(ctx: F._Ctx, name: str) -> F.Lowered:
    """Dispatch one aten op: the aten-only rules above, else the fx frontend's rule by name."""
    if name in ATEN_LOWERINGS:
        return ATEN_LOWERINGS[name](ctx, name)
    if _UPSAMPLE.match(name):
        return _lower_upsample(ctx, name)
    known = (F.FUNCTION_LOWERINGS, F.ELEMENTWISE_OPS, F.POINTWISE_OPS, F.RESHAPE_OPS, F.REDUCE_OPS)
    if any(name in table for table in known):
        return F._lower_by_name(ctx, name)
    return F._unknown(ctx, name, "no receptive-field rule for this aten op")


def _lower_multi(ctx: F._Ctx, name: str) -> F.Lowered:
    """An op with several fixed outputs (``max_pool2d_with_indices`` -> (values, indices),
    ``native_batch_norm`` -> (out, mean, rstd)): lower the first output, give the others the
    same layout where their rank matches."""
    outs = ctx.out
    ctx.out = outs[0]
    low = lower_aten(ctx, name)
    first = low.layout
    rest = tuple(
        L.resize(first, o.shape)
        if isinstance(o, F.TensorMeta) and not isinstance(first, F.Outputs) and len(o.shape) == len(first)
        else None
        for o in outs[1:]
    )
    ctx.out = outs
    return replace(low, layout=F.Outputs((first, *rest)))


# ---------------------------------------------------------------------------------------------
# the graph


def _scope(node: fx.Node) -> tuple[str, str]:
    """(module path, module type) of the innermost module the node was called in."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return "", ""
    path, typ = list(stack.values())[-1]
    if not isinstance(typ, str):
        typ = f"{typ.__module__}.{typ.__qualname__}"
    return str(path), typ


def _is_torch_module(typ: str) -> bool:
    """A standard ``torch.nn`` module: the fx frontend keeps those as leaves (call_module)."""
    return typ.startswith("torch.nn.modules.") and not typ.endswith((".Sequential", ".ModuleList", ".ModuleDict"))


def _qualname(node: fx.Node, op: str) -> tuple[str, str]:
    """(qualname, module_type): the module path for an op inside a standard torch.nn module
    (what fx calls the node), else ``scope.op`` as fx names a function call."""
    path, typ = _scope(node)
    if path and _is_torch_module(typ):
        return path, typ
    return (f"{path}.{op}" if path else op), ""


def _data_input(ep: torch.export.ExportedProgram) -> fx.Node | None:
    users = set(ep.graph_signature.user_inputs)
    for node in ep.graph.nodes:
        if node.op == "placeholder" and node.name in users:
            return node
    return None


def lower(ep: torch.export.ExportedProgram, input_shape: tuple[int, ...], ndim: int) -> list[Layer]:
    """Lower every input-dependent node of the exported graph to a Layer."""
    data_input = _data_input(ep)
    layouts: dict[fx.Node, Any] = {}
    layers: list[Layer] = []
    names_used: dict[str, int] = {}
    for node in ep.graph.nodes:
        if node is data_input:
            layouts[node] = L.initial(input_shape, ndim)
            layers.append(Layer(node.name, "input", "input", Kind.INPUT, out_size=tuple(input_shape[-ndim:])))
            continue
        if node.op != "call_function":
            continue
        flat = tree_flatten((node.args, node.kwargs))[0]
        dep_nodes = [a for a in flat if isinstance(a, fx.Node) and a in layouts]
        if not dep_nodes:
            continue
        out = _concrete(_val(node))
        if not F.produces_tensor(out):
            continue  # sizes, asserts, python numbers: no receptive field
        target = node.target
        is_aten = isinstance(target, torch._ops.OpOverload)
        name = op_name(target) if is_aten else ("getitem" if target is operator.getitem else F._op_name(node))
        if name in CONSTANT_OPS:
            continue  # depends on the input's shape only
        args, kwargs = _bind(target, node.args, node.kwargs) if is_aten else (node.args, node.kwargs)
        args, kwargs = _tuples(_concrete(args)), {k: _tuples(v) for k, v in _concrete(kwargs).items()}
        arg_layouts = [layouts[a] for a in dep_nodes]
        pos_layouts = [layouts.get(a) if isinstance(a, fx.Node) else None for a in node.args]
        ctx = F._Ctx(node, tuple(args), dict(kwargs), out, arg_layouts, pos_layouts, ndim, layouts_by_node=layouts.get)
        try:
            if not is_aten and target is not operator.getitem:
                mod = getattr(target, "__module__", "") or ""
                low = F._unknown(ctx, f"{mod}.{name}" if mod else name, "opaque function (not traced through)")
            elif is_aten and len(target._schema.returns) > 1 and name not in F.REDUCE_OPS and isinstance(out, (tuple, list)):
                low = _lower_multi(ctx, name)
            elif is_aten:
                low = lower_aten(ctx, name)
            else:
                low = F._lower_getitem(ctx, name)
        except Exception as exc:  # noqa: BLE001 - a lowering bug must not hide the layer: report it unknown
            low = F._unknown(ctx, name, f"could not lower: {type(exc).__name__}: {F._first_line(exc)}")
        layouts[node] = low.layout
        if name == "getitem":
            path = _scope(node)[0]
            qual, module_type = (f"{path}.getitem" if path else "getitem"), ""
        else:
            qual, module_type = _qualname(node, low.op)
        qual = unique_qualname(qual, names_used)
        out_lay = None if isinstance(low.layout, F.Outputs) else low.layout
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
                source=F._source(node),
            )
        )
    return layers


def graph_from_export(
    module: nn.Module,
    *,
    input_size: Sequence[int] | None = None,
    input_shape: Sequence[int] | None = None,
    name: str = "model",
) -> Graph:
    """Export ``module`` with ``torch.export`` at the given input size and lower it to an IR graph.

    Args:
        module: the model (ideally built on the meta device; it is put in eval mode).
        input_size: spatial size, one number for every axis or one per axis.
        input_shape: the full input shape including batch and channels; wins over input_size.
        name: the model's display name.

    Raises:
        ShapeError: no usable input shape.
        TraceError: torch.export failed (e.g. data-dependent control flow).
    """
    module.eval()
    shape = tuple(int(s) for s in input_shape) if input_shape else F.infer_input_shape(module, input_size)
    if any(s <= 0 for s in shape):
        raise ShapeError(f"input shape {shape} has a non-positive size")
    ndim = len(shape) - 2
    if ndim < 1:
        raise ShapeError(f"input shape {shape} has no spatial axis", hint="give (batch, channels, *spatial), e.g. 1,3,224,224")
    ep = export_program(module, shape)
    layers = lower(ep, shape, ndim)
    defined = definition_sources(module, [layer.qualname for layer in layers if layer.module_type])
    layers = [replace(layer, definition=defined.get(layer.qualname)) for layer in layers]
    return Graph(tuple(layers), tuple(shape[2:]), name=name, tracer="export")
