"""torch.fx frontend: an ``nn.Module`` and an input shape become an :class:`rflint.ir.Graph`.

Three steps, each small:

1. **trace** with a ``torch.fx.Tracer`` that keeps standard ``torch.nn`` modules, user-listed
   classes and timm's no-trace registry as leaves, and records stack traces (for source lines);
2. **run** the traced graph on a meta tensor of the user's input shape (no real compute, no
   real weights) and record every node's evaluated arguments and output shape;
3. **lower** every node: name it for the op table (:mod:`.torch_ops`), hand the call to
   :func:`rflint.frontend.ops.lower`, and keep the layout of its output (which tensor dim carries
   which spatial axis, :mod:`.layout`), because a ``Linear`` is pointwise in ConvNeXt's
   channels-last MLP but global in MLP-Mixer's token mixing.

An op rflint has no rule for becomes a ``Kind.UNKNOWN`` layer (rule RF001), never a silent 1x1.
"""

from __future__ import annotations

import operator
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.fx as fx
from torch import nn
from torch.fx.immutable_collections import immutable_dict, immutable_list
from torch.utils._pytree import tree_map

from rflint.errors import ConfigError, ShapeError, TraceError
from rflint.frontend import layout as L
from rflint.frontend.common import make_layer, unique_qualname
from rflint.frontend.definitions import definition_sources
from rflint.frontend import ops, shapes
from rflint.frontend.ops import Lowered, OpCall, Operand, custom_handler, unknown
from rflint.frontend.torch_ops import CONSTANT_OPS, SHAPE_PRESERVING, Args, normalise_function, normalise_module
from rflint.frontend.torch_ops import leaf_types as registered_leaves
from rflint.frontend.torch_ops import is_declared_leaf, opaque_functions
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
        if is_declared_leaf(m):
            return True
        return super().is_leaf_module(m, module_qualified_name)

    def trace(self, root: Any, concrete_args: Any = None) -> fx.Graph:
        self._entry = sys._getframe(0)  # frames at or above this one are not the model's code
        try:
            return super().trace(root, concrete_args)
        finally:
            self._entry = None

    def create_proxy(self, *args: Any, **kwargs: Any) -> fx.Proxy:
        """Record the issuing line. The walk stops at :meth:`trace`'s own frame: a layer called
        by ``nn.Sequential`` (inside torch) has no line of the user's ``forward``, and the
        caller's frame (the CLI, a worker process, a notebook) must never stand in for one."""
        proxy = super().create_proxy(*args, **kwargs)
        entry = getattr(self, "_entry", None)
        frame = sys._getframe(1)
        while frame is not None and frame is not entry and frame.f_code.co_filename.startswith((_TORCH_DIR, _RFLINT_DIR)):
            frame = frame.f_back
        if frame is not None and frame is not entry:
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
    leaf_types = tuple(_import_class(name) for name in leaf_modules) + lib_modules + registered_leaves()
    tracer = _Tracer(leaf_types, lib_functions + opaque_functions())
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


#: the containers fx hands an interpreter (``immutable_list`` / ``immutable_dict`` hold every
#: node's list arguments and its kwargs), walked here and rebuilt as the same type
_SEQUENCES = (tuple, list, immutable_list)
_MAPPINGS = (dict, immutable_dict)


def _meta(value: Any) -> Any:
    """``value`` with every tensor replaced by its :class:`TensorMeta`. fx's own containers
    are walked here (a node's arguments are almost always those); any other container (a named
    tuple, ``torch.return_types``) goes through pytree, which rebuilds its type."""
    if isinstance(value, torch.Tensor):
        return TensorMeta(tuple(value.shape))
    kind = type(value)
    if kind in _SEQUENCES:
        return kind([_meta(v) for v in value])
    if kind in _MAPPINGS:
        return kind({k: _meta(v) for k, v in value.items()})
    if isinstance(value, (tuple, list, dict)) and not isinstance(value, torch.Size):
        return tree_map(_meta, value)
    return value


def produces_tensor(out: Any) -> bool:
    """A node's recorded output is a tensor, or a tuple holding one (only those have fields)."""
    return isinstance(out, TensorMeta) or (isinstance(out, (tuple, list)) and any(isinstance(o, TensorMeta) for o in out))


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
        self.records[n] = (_meta(args), _meta(kwargs), _meta(out))
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
    """The best input shape for ``input_size`` (:func:`rflint.frontend.geometry.candidates`;
    the engine also tries the others when this one does not run)."""
    from rflint.frontend.geometry import candidates

    return candidates(module, input_size, None)[0].shape


# ---------------------------------------------------------------------------------------------
# 3. lowering: every node becomes an OpCall for the op table (rflint.frontend.ops)


class Outputs(tuple):
    """The layouts of a multi-output op (split, chunk, ``max(dim)``, MultiheadAttention), one per
    output (None for a non-tensor output), told apart from a single tensor's Layout."""


#: Modules whose output has their input's shape (the meta run skips them: only shapes matter).
SHAPE_PRESERVING_MODULES: tuple[type, ...] = SHAPE_PRESERVING


def operands(value: Any, recorded: Any, layout_of: Callable[[fx.Node], Any]) -> Any:
    """``recorded`` (a node's evaluated args) with every tensor turned into an
    :class:`~rflint.frontend.ops.Operand`: its layout if the matching entry of ``value`` (the
    node's args, with fx.Node leaves) depends on the model input, and its recorded shape. The
    two are walked together, so that a Node standing for a ``torch.Size`` stays one value."""
    if isinstance(recorded, TensorMeta):
        lay = layout_of(value) if isinstance(value, fx.Node) else None
        return Operand(lay[0] if isinstance(lay, Outputs) else lay, recorded.shape)
    if isinstance(value, fx.Node):
        if isinstance(recorded, (list, tuple)) and not isinstance(recorded, torch.Size):
            return _like(recorded, [operands(None, r, layout_of) for r in recorded])
        return recorded
    if isinstance(value, (list, tuple)) and isinstance(recorded, (list, tuple)) and len(value) == len(recorded):
        return _like(recorded, [operands(v, r, layout_of) for v, r in zip(value, recorded)]) if not isinstance(recorded, torch.Size) else recorded
    if isinstance(value, dict) and isinstance(recorded, dict):
        return {k: operands(value.get(k), r, layout_of) for k, r in recorded.items()}
    if isinstance(recorded, (list, tuple)) and not isinstance(recorded, torch.Size):
        return _like(recorded, [operands(None, r, layout_of) for r in recorded])
    return recorded


def _like(original: Any, items: list) -> Any:
    return items if isinstance(original, list) else tuple(items)


def output_shapes(out: Any) -> tuple[tuple[int, ...] | None, ...]:
    if isinstance(out, TensorMeta):
        return (out.shape,)
    return tuple(o.shape if isinstance(o, TensorMeta) else None for o in out)


def tensor_operands(args: Args) -> list[Operand]:
    """The tensor arguments in order (lists of tensors, as in ``cat``, flattened)."""
    found: list[Operand] = []
    _collect(args.args, found)
    _collect(tuple(args.kwargs.values()), found)
    return found


def _collect(value: Any, found: list[Operand]) -> None:
    """Operands in nested tuples, lists and dicts, in order (torch's pytree is 10x slower)."""
    if isinstance(value, Operand):
        found.append(value)
    elif isinstance(value, (tuple, list)):
        for item in value:
            _collect(item, found)
    elif isinstance(value, dict):
        for item in value.values():
            _collect(item, found)


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
    name = _op_name(node)
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


def lower_call(call: OpCall, function: Any = None) -> Lowered:
    """:func:`rflint.frontend.ops.lower`, with declared ops (``[tool.rflint.ops]``,
    :func:`rflint.register_op`) first: ``call.module`` is checked by class, ``function`` as is."""
    handler = custom_handler(call.module) if call.module is not None else custom_handler(function=function) if function is not None else None
    if handler is not None:
        try:
            return handler(call)
        except AttributeError as exc:
            raise ConfigError(f"the declared op {call.name} has no attribute {exc.name!r}", hint="fix the attribute name in [tool.rflint.ops]") from exc
        except Exception as exc:  # noqa: BLE001 - a user handler's bug is reported on its layer
            return unknown(call, f"the declared handler of {call.name} failed: {type(exc).__name__}: {exc}")
    return ops.lower(call)


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
        dep_nodes = [a for a in node.all_input_nodes if a in layouts]
        if not dep_nodes:
            continue
        args, kwargs, out = records.get(node, (None, None, None))
        if args is None or not produces_tensor(out):
            continue  # shapes, sizes, python numbers: no receptive field
        if _op_name(node) in CONSTANT_OPS:
            continue  # depends on the input's shape only
        call_args = Args(tuple(operands(node.args, args, layouts.get)), dict(operands(node.kwargs, kwargs, layouts.get)))
        module_type = ""
        source = layouts.get(node.args[0]) if node.args and isinstance(node.args[0], fx.Node) else None
        if _op_name(node) == "getitem" and isinstance(source, Outputs):  # one output of a multi-output op
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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
