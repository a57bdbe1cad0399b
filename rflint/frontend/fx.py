"""torch.fx frontend: an ``nn.Module`` and an input shape become an :class:`rflint.ir.Graph`.

Three steps, each small:

1. **trace** with a ``torch.fx.Tracer`` that keeps standard ``torch.nn`` modules, user-listed
   classes and timm's no-trace registry as leaves, and records stack traces (for source lines);
2. **run** the traced graph on a meta tensor of the user's input shape (no real compute, no
   real weights) and record every node's evaluated arguments and output shape;
3. **lower** every node: name it for the op table (:mod:`.torch_ops`, :mod:`.torch_modules`),
   hand the call to :func:`rflint.ops.table.lower`, and keep the layout of its output (which tensor dim carries
   which spatial axis, :mod:`.layout`), because a ``Linear`` is pointwise in ConvNeXt's
   channels-last MLP but global in MLP-Mixer's token mixing.

An op rflint has no rule for becomes a ``Kind.UNKNOWN`` layer (rule RF001), never a silent 1x1.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from rflint.errors import ShapeError, first_line
from rflint.frontend import shapes
from rflint.frontend.common import make_layer, unique_qualname
from rflint.frontend.definitions import definition_sources
from rflint.frontend.geometry import input_shape_for
from rflint.frontend.no_dynamo import without_dynamo
from rflint.frontend.returns import require_input_dependent_output
from rflint.frontend.nodes import (
    Outputs,
    TensorMeta,
    device_of,
    lower_call,
    meta,
    op_name,
    operands,
    output_shapes,
    produces_tensor,
    source_of,
    tensor_operands,
)
from rflint.frontend.torch_modules import SHAPE_PRESERVING, normalise_module
from rflint.frontend.torch_ops import CONSTANT_OPS, Args, normalise_function
from rflint.frontend.tracer import trace
from rflint.ir import Graph, Kind, Layer
from rflint.ops import layout as L
from rflint.ops.table import Lowered, OpCall, Operand, custom_handler

__all__ = ["lower", "run", "trace", "trace_graph"]

# ---------------------------------------------------------------------------------------------
# 2. running on meta tensors


class _Recorder(fx.Interpreter):
    """Runs the graph and keeps each node's evaluated args, kwargs and output (shapes only).

    Modules that keep their input's shape (norms, activations, dropout) return the input
    unchanged, and the ops :mod:`.shapes` knows get an empty tensor of the right shape: only
    shapes are needed, and the meta kernels of BatchNorm, Linear, broadcasting arithmetic and
    windowed attention run slow Python decompositions that otherwise take most of the run.
    """

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm)
        self.records: dict[fx.Node, tuple[tuple, dict, Any]] = {}

    def call_module(self, target: Any, args: tuple, kwargs: dict) -> Any:
        module = self.fetch_attr(target)
        if isinstance(module, SHAPE_PRESERVING_MODULES) and args and isinstance(args[0], torch.Tensor) and shapes.has_torch_forward(module):
            return args[0]
        out = shapes.module_output(module, args, kwargs)
        return out if out is not None else super().call_module(target, args, kwargs)

    def call_function(self, target: Any, args: tuple, kwargs: dict) -> Any:
        out = shapes.function_output(target, args, kwargs)
        return out if out is not None else super().call_function(target, args, kwargs)

    def run_node(self, n: fx.Node) -> Any:
        """fx's ``run_node``, fetching the arguments once and recording them (without fx's
        current-node bookkeeping, which only a retracing interpreter reads)."""
        args, kwargs = self.fetch_args_kwargs_from_env(n)
        out = getattr(self, n.op)(n.target, args, kwargs)
        self.records[n] = (meta(args), meta(kwargs), meta(out))
        return out


def run(gm: fx.GraphModule, input_shape: tuple[int, ...]) -> dict[fx.Node, tuple[tuple, dict, Any]]:
    """Execute on a meta (or, for modules built on CPU, a CPU) input and record shapes."""
    device = device_of(gm)
    recorder = _Recorder(gm)
    x = torch.zeros(input_shape, device=device)
    try:
        with torch.no_grad(), without_dynamo():
            recorder.run(x)
    except Exception as exc:
        raise ShapeError(
            f"the model does not run on input shape {tuple(input_shape)}: {type(exc).__name__}: {first_line(exc)}"
        ) from exc
    return recorder.records


# ---------------------------------------------------------------------------------------------
# 3. lowering: every node becomes an OpCall for the op table (rflint.ops.table)

#: Modules whose output has their input's shape (the meta run skips them: only shapes matter).
SHAPE_PRESERVING_MODULES: tuple[type, ...] = SHAPE_PRESERVING


def opcall(node: fx.Node, args: Args, out: Any, ndim: int, modules: dict[str, nn.Module]) -> tuple[OpCall, str]:
    """The node, normalised for the op table, and its module type ("" for a function)."""
    outputs = output_shapes(out)
    if node.op == "call_module":
        module = modules[str(node.target)]
        label = type(module).__name__
        rank = len(outputs[0]) if outputs and outputs[0] is not None else ndim + 2
        op, params = normalise_module(module, rank)
        module_type = f"{type(module).__module__}.{type(module).__qualname__}"
        return OpCall(op, params, tuple(tensor_operands(args)), outputs, ndim, label, module), module_type
    name = op_name(node)
    if node.op == "call_function" and custom_handler(function=node.target) is not None:
        return OpCall("custom", {}, tuple(tensor_operands(args)), outputs, ndim, name), ""
    if node.op == "call_function" and not _is_known_function(node.target):
        mod = getattr(node.target, "__module__", "") or ""
        full = f"{mod}.{getattr(node.target, '__name__', name)}"
        if full in LIBRARY_FUNCTIONS:
            op, params = LIBRARY_FUNCTIONS[full](args)
            return OpCall(op, params, tuple(tensor_operands(args))[:1], outputs, ndim, name), ""
        note = "opaque function (not traced through)"
        return OpCall("unknown", {"note": note}, tuple(tensor_operands(args)), outputs, ndim, f"{mod}.{name}" if mod else name), ""
    op, params, ops = normalise_function(name, args, "method" if node.op == "call_method" else "function")
    inputs = tuple(ops) if ops is not None else tuple(tensor_operands(args))
    return OpCall(op, params, tuple(o for o in inputs if isinstance(o, Operand)), outputs, ndim, name), ""


def _swin_attention_args(args: Args) -> tuple[str, dict[str, Any]]:
    return "window_attention", {"window_size": args.get(4, "window_size"), "shift_size": args.get(6, "shift_size", 0)}


#: Library functions that torchvision keeps opaque to torch.fx (``torch.fx.wrap``), named for
#: the op table. Any other opaque function is reported unknown (RF001).
LIBRARY_FUNCTIONS: dict[str, Callable[[Args], tuple[str, dict[str, Any]]]] = {
    "torchvision.models.swin_transformer.shifted_window_attention": _swin_attention_args,
    "torchvision.models.swin_transformer._patch_merging_pad": lambda args: ("patch_merging", {}),
    # timm: window / grid reassembly (a view, a permute and a view, wrapped for their int arguments)
    "timm.models.swin_transformer.window_reverse": lambda args: (
        "window_reverse", {"window": tuple(args.get(1, "window_size")), "image": (args.get(2, "H"), args.get(3, "W")), "order": "window"}
    ),
    "timm.models.maxxvit.window_reverse": lambda args: (
        "window_reverse", {"window": tuple(args.get(1, "window_size")), "image": tuple(args.get(2, "img_size")), "order": "window"}
    ),
    "timm.models.maxxvit.grid_reverse": lambda args: (
        "window_reverse", {"window": tuple(args.get(1, "grid_size")), "image": tuple(args.get(2, "img_size")), "order": "grid"}
    ),
}


# ---------------------------------------------------------------------------------------------
# putting it together

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


def lower(gm: fx.GraphModule, records: dict, input_shape: tuple[int, ...], ndim: int, model_name: str = "model") -> list[Layer]:
    """Lower every input-dependent node of the traced graph to a Layer (an
    :class:`~rflint.errors.OutputError` if model ``model_name`` returns none of them)."""
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
        dep_nodes = [a for a in node.all_input_nodes if a in layouts]
        if not dep_nodes:
            continue
        args, kwargs, out = records.get(node, (None, None, None))
        if args is None or not produces_tensor(out):
            continue  # shapes, sizes, python numbers: no receptive field
        if op_name(node) in CONSTANT_OPS:
            continue  # depends on the input's shape only
        call_args = Args(tuple(operands(node.args, args, layouts.get)), dict(operands(node.kwargs, kwargs, layouts.get)))
        module_type = ""
        source = layouts.get(node.args[0]) if node.args and isinstance(node.args[0], fx.Node) else None
        if op_name(node) == "getitem" and isinstance(source, Outputs):  # one output of a multi-output op
            low = Lowered(Kind.RESHAPE, (source[node.args[1]],))
            call = None
        else:
            call, module_type = opcall(node, call_args, out, ndim, modules)
            low = lower_call(call, node.target if node.op == "call_function" else None)
        single = isinstance(out, TensorMeta)
        layouts[node] = low.layouts[0] if single else Outputs(low.layouts)
        op = call.label if call is not None else "getitem"
        qual = unique_qualname(_qualname(node, op), names_used)
        layers.append(
            make_layer(
                low,
                name=node.name,
                qualname=qual,
                op=op,
                inputs=tuple(dict.fromkeys(a.name for a in dep_nodes)),
                out_layout=layouts[node] if single else None,
                ndim=ndim,
                module_type=module_type,
                source=source_of(node),
            )
        )
    out = next((n for n in reversed(gm.graph.nodes) if n.op == "output"), None)
    require_input_dependent_output(gm.graph, layouts, records.get(out, (None, None, None))[2] if out is not None else None, model_name)
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
    shape = input_shape_for(module, input_size, input_shape)
    ndim = len(shape) - 2
    gm = trace(module, leaf_modules)
    records = run(gm, shape)
    layers = lower(gm, records, shape, ndim, name)
    defined = definition_sources(module, [layer.qualname for layer in layers if layer.module_type])
    layers = [replace(layer, definition=defined.get(layer.qualname)) for layer in layers]
    outputs = output_refs(gm, {layer.name for layer in layers})
    return Graph(tuple(layers), tuple(shape[2:]), name=name, tracer="fx", outputs=outputs)


def output_refs(gm: fx.GraphModule, names: set[str]) -> tuple[tuple[str, str], ...]:
    """``(label, node name)`` of every input-dependent tensor the model returns, labelled by
    where it sits in the returned value: a dict key, a tuple / list index, a named field,
    joined by dots when nested ("output" for a single tensor)."""
    found: list[tuple[str, str]] = []

    def walk(value: Any, label: str) -> None:
        if isinstance(value, fx.Node):
            if value.name in names:
                found.append((label or "output", value.name))
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{label}.{key}" if label else str(key))
        elif isinstance(value, (tuple, list)):
            fields = getattr(value, "_fields", None)
            for i, item in enumerate(value):
                key = fields[i] if fields else str(i)
                walk(item, f"{label}.{key}" if label else key)

    for node in gm.graph.nodes:
        if node.op == "output":
            walk(node.args[0], "")
    return tuple(found)


