"""torch.export frontend: the fallback for models that torch.fx cannot trace.

``torch.fx`` traces with proxies, so Python control flow on a shape (``if x.shape[-1] > 16``)
or a builtin on a tensor (``len(x)``) stops it. ``torch.export.export(strict=False)`` runs the
model's Python as in eager mode, on fake tensors of a fixed shape, and records the aten ops
that come out; shape-dependent control flow simply takes the branch of the given shape.
Data-dependent control flow (``if x.sum() > 0``) still fails, and then the model cannot be
analysed statically at all.

The aten graph is lowered through the same op table as the fx graph
(:mod:`rflint.ops.table`, named by :mod:`rflint.frontend.torch_ops`, which knows the aten
spellings too: ``max_pool2d_with_indices``, ``_unsafe_view``, ``convolution``, ``upsample_*``);
this module only binds each op's arguments to its schema's names (with the schema's defaults
for the ones aten leaves out).
Shapes come from each node's ``meta["val"]`` (a fake tensor), qualnames from
``meta["nn_module_stack"]``, source lines from ``meta["stack_trace"]``. An aten op without a
rule becomes ``Kind.UNKNOWN`` (rule RF001), never a silent 1x1.
"""

from __future__ import annotations

import contextlib
import os
import io
import logging
import operator
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import fx, nn
from torch.utils._pytree import tree_flatten, tree_map

from rflint.errors import ShapeError, TraceError
from rflint.frontend.geometry import input_shape_for
from rflint.frontend.nodes import Outputs, TensorMeta, device_of, lower_call, meta, output_shapes, produces_tensor, source_of, tensor_operands
from rflint.frontend.nodes import op_name as fx_op_name
from rflint.frontend.nodes import operands as node_operands
from rflint.ops import layout as L
from rflint.frontend.common import make_layer, unique_qualname
from rflint.frontend.definitions import definition_sources
from rflint.ops.table import Lowered, OpCall, Operand, custom_handler, unknown
from rflint.frontend.returns import require_input_dependent_output
from rflint.frontend.torch_ops import CONSTANT_OPS, Args, normalise_function
from rflint.ir import Graph, Kind, Layer

# ---------------------------------------------------------------------------------------------
# exporting


def export_program(module: nn.Module, input_shape: Sequence[int]) -> torch.export.ExportedProgram:
    """``torch.export.export(strict=False)`` on a meta (or, for a CPU-built module, CPU) input;
    export runs it on fake tensors either way, so no real compute happens."""
    device = device_of(module)
    example = torch.zeros(tuple(input_shape), device=device)
    try:
        with torch.no_grad(), _quiet():
            return torch.export.export(module, (example,), strict=False)
    except Exception as exc:  # UserError, GuardOnDataDependentSymNode, RuntimeError, ...
        raised = forward_raised(exc)
        if raised is not None:  # not a tracer limitation: the model refuses this input
            raise ShapeError(
                f"the model's forward raised at {raised}: {type(exc).__name__}: {_one_line(exc)}",
                hint="check --input-size / --input-shape against what the model's forward expects",
            ) from exc
        raise TraceError(f"torch.export could not trace the model: {type(exc).__name__}: {_one_line(exc)}") from exc


def forward_raised(exc: BaseException) -> str | None:
    """``FILE:LINE`` when the user's own code raised ``exc`` (a ``raise`` or ``assert`` in the
    model's forward: the innermost frame of its traceback is not library code, and the error is
    not one of torch's), else None: torch or its tracer raised it, a tracer limitation.

    export runs the model's real Python code on fake tensors, so a forward that refuses an
    input (``if x.shape[-1] < 100: raise ValueError(...)``) raises here as it would on a real
    tensor; calling that "data-dependent control flow" would send the user after a leaf module."""
    from rflint.frontend.attribution import is_library_file

    if type(exc).__module__.split(".")[0] == "torch":
        return None
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return None
    file = tb.tb_frame.f_code.co_filename
    if is_library_file(file):
        return None
    return f"{_shown(file)}:{tb.tb_lineno}"


def _shown(file: str) -> str:
    """A path as the user types it: relative to the working directory when it is inside."""
    path = os.path.abspath(file)
    here = os.path.join(os.getcwd(), "")
    return os.path.relpath(path) if path.startswith(here) else path


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
        return meta(v)

    return tree_map(one, value)


def _bind(target: Any, args: tuple, kwargs: dict) -> Args:
    """Positional args with the schema's defaults filled in, and every argument under its
    schema name too (so that the op table's names find them whatever the overload)."""
    schema = getattr(target, "_schema", None)
    if schema is None:
        return Args(tuple(args), dict(kwargs))
    pos: list[Any] = []
    named: dict[str, Any] = {}
    for i, a in enumerate(schema.arguments):
        if i < len(args) and not a.kwarg_only:
            value = args[i]
        elif a.name in kwargs:
            value = kwargs[a.name]
        elif a.has_default_value():
            value = a.default_value
        else:
            value = None
        named[a.name] = value
        if not a.kwarg_only:
            pos.append(value)
    return Args(tuple(pos), named)


#: aten spellings shown (and looked up) under their functional names, so that a layer reads the
#: same under both tracers (``max_pool2d`` rather than ``max_pool2d_with_indices``)
ALIASES: dict[str, str] = {
    **{f"max_pool{n}d_with_indices": f"max_pool{n}d" for n in (1, 2, 3)},
    **{f"_adaptive_avg_pool{n}d": f"adaptive_avg_pool{n}d" for n in (1, 2, 3)},
    **dict.fromkeys(("_unsafe_view", "_reshape_alias", "view_copy"), "view"),
    **dict.fromkeys(("_softmax", "_safe_softmax"), "softmax"),
    "_log_softmax": "log_softmax",
    **dict.fromkeys(
        ("native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_functional", "_native_batch_norm_legit_no_training"),
        "batch_norm",
    ),
    "native_layer_norm": "layer_norm",
    "native_group_norm": "group_norm",
    "native_dropout": "dropout",
    "mm": "matmul",
    "_to_copy": "to",
    **dict.fromkeys(("alias", "lift_fresh_copy"), "clone"),
    **dict.fromkeys(("split_with_sizes", "unsafe_split"), "split"),
    "unsafe_chunk": "chunk",
    "linalg_vector_norm": "norm",
    **dict.fromkeys(
        (
            "_scaled_dot_product_flash_attention",
            "_scaled_dot_product_flash_attention_for_cpu",
            "_scaled_dot_product_efficient_attention",
            "_scaled_dot_product_cudnn_attention",
            "_scaled_dot_product_fused_attention_overrideable",
        ),
        "scaled_dot_product_attention",
    ),
}


def op_name(target: Any) -> str:
    """``aten.max_pool2d_with_indices.default`` -> ``max_pool2d`` (its functional name)."""
    packet = getattr(target, "_overloadpacket", None)
    name = packet.__name__ if packet is not None else getattr(target, "__name__", str(target))
    if name.endswith("_") and not name.endswith("__"):
        name = name[:-1]  # in-place variant: same receptive field
    return ALIASES.get(name, name)


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


def _declared_scope(node: fx.Node, root: nn.Module | None, cache: dict[str, Any]) -> str | None:
    """The outermost module the node runs in whose class is a declared op: export traces through
    every module, so a declared one is collapsed back into one layer."""
    if root is None:
        return None
    for path, _typ in (node.meta.get("nn_module_stack") or {}).values():
        if path not in cache:
            try:
                cache[path] = custom_handler(root.get_submodule(path))
            except AttributeError:
                cache[path] = None
        if cache[path] is not None:
            return path
    return None


def _declared_layer(
    node: fx.Node, scope: str, external: list[fx.Node], layouts: dict[fx.Node, Any], root: nn.Module, ndim: int
) -> tuple[Lowered, str]:
    """One declared module's output, lowered by its declaration from the scope's external inputs."""
    module = root.get_submodule(scope)
    inputs = tuple(Operand(layouts[n], output_shapes(_concrete(_val(n)))[0]) for n in external)
    call = OpCall("custom", {}, inputs, output_shapes(_concrete(_val(node))), ndim, type(module).__name__, module)
    return lower_call(call), type(module).__name__


@dataclass(frozen=True)
class _Lowering:
    """What lowering the exported graph builds up node by node, shared by the two kinds of
    node: each node's output layout (a node without one does not depend on the input), the
    layers so far, the qualnames taken, and the nodes inside declared modules."""

    ndim: int
    root: nn.Module | None
    layouts: dict[fx.Node, Any] = field(default_factory=dict)
    layers: list[Layer] = field(default_factory=list)
    names_used: dict[str, int] = field(default_factory=dict)
    scopes: dict[str, Any] = field(default_factory=dict)  # module path -> its declared handler or None
    inside: dict[fx.Node, tuple[str, list[fx.Node]]] = field(default_factory=dict)  # scope, external inputs


def lower(
    ep: torch.export.ExportedProgram, input_shape: tuple[int, ...], ndim: int, root: nn.Module | None = None, model_name: str = "model"
) -> list[Layer]:
    """Lower every input-dependent node of the exported graph to a Layer (an
    :class:`~rflint.errors.OutputError` if model ``model_name`` returns none of them)."""
    data_input = _data_input(ep)
    state = _Lowering(ndim, root)
    for node in ep.graph.nodes:
        if node is data_input:
            state.layouts[node] = L.initial(input_shape, ndim)
            state.layers.append(Layer(node.name, "input", "input", Kind.INPUT, out_size=tuple(input_shape[-ndim:])))
            continue
        if node.op != "call_function":
            continue
        flat = tree_flatten((node.args, node.kwargs))[0]
        scope = _declared_scope(node, root, state.scopes)
        layer = _lower_call(node, flat, state) if scope is None else _lower_declared(node, flat, scope, state)
        if layer is not None:
            state.layers.append(layer)
    require_input_dependent_output(ep.graph, state.layouts, _returned(ep), model_name)
    return state.layers


def _lower_declared(node: fx.Node, flat: list[Any], scope: str, state: _Lowering) -> Layer | None:
    """A node inside a declared module. Export traces through the module, so its nodes only
    collect the module's inputs from outside it; the node whose value leaves the module becomes
    the module's one layer, lowered by its declaration."""
    inside, layouts = state.inside, state.layouts
    external = [e for a in flat if isinstance(a, fx.Node) for e in (inside[a][1] if a in inside else [a] if a in layouts else [])]
    if not external:
        return None
    inside[node] = (scope, list(dict.fromkeys(external)))
    if all(_declared_scope(user, state.root, state.scopes) == scope for user in node.users):
        return None  # internal to the declared module
    low, label = _declared_layer(node, scope, inside[node][1], layouts, state.root, state.ndim)
    layouts[node] = low.layouts[0]
    return make_layer(
        low, name=node.name, qualname=unique_qualname(scope, state.names_used), op=label,
        inputs=tuple(n.name for n in inside[node][1]), out_layout=layouts[node], ndim=state.ndim,
        module_type=f"{type(state.root.get_submodule(scope)).__module__}.{label}", source=source_of(node),
    )


def _lower_call(node: fx.Node, flat: list[Any], state: _Lowering) -> Layer | None:
    """A call that depends on the input becomes a layer; shape arithmetic on it and ops that
    read only its shape (``zeros_like``) do not, since no value flows through them."""
    dep_nodes = [a for a in flat if isinstance(a, fx.Node) and a in state.layouts]
    if not dep_nodes:
        return None
    out = _concrete(_val(node))
    if not produces_tensor(out):
        return None  # sizes, asserts, python numbers: no receptive field
    target = node.target
    is_aten = isinstance(target, torch._ops.OpOverload)
    name = op_name(target) if is_aten else ("getitem" if target is operator.getitem else fx_op_name(node))
    if name in CONSTANT_OPS:
        return None  # depends on the input's shape only
    args = _operand_args(node, is_aten, state.layouts)
    low, label = _lowered_call(node, name, is_aten, args, output_shapes(out), state)
    single = isinstance(out, TensorMeta)
    state.layouts[node] = low.layouts[0] if single else Outputs(low.layouts)
    qual, module_type, label = _layer_names(node, name, label, low)
    return make_layer(
        low,
        name=node.name,
        qualname=unique_qualname(qual, state.names_used),
        op=label,
        inputs=tuple(dict.fromkeys(a.name for a in dep_nodes)),
        out_layout=state.layouts[node] if single else None,
        ndim=state.ndim,
        module_type=module_type,
        source=source_of(node),
    )


def _operand_args(node: fx.Node, is_aten: bool, layouts: dict[fx.Node, Any]) -> Args:
    """The call's arguments with tensors as :class:`Operand` records; an aten op's bound to
    its schema's names, because :mod:`.torch_ops` reads aten arguments by name."""
    target = node.target
    args = _bind(target, node.args, node.kwargs) if is_aten else Args(tuple(node.args), dict(node.kwargs))
    return Args(
        tuple(node_operands(list(args.args), _concrete(list(args.args)), layouts.get)),
        {k: node_operands(v, _concrete(v), layouts.get) for k, v in args.kwargs.items()},
    )


def _lowered_call(
    node: fx.Node, name: str, is_aten: bool, args: Args, outputs: tuple[tuple[int, ...] | None, ...], state: _Lowering
) -> tuple[Lowered, str]:
    """(lowered, label). A getitem of a multi-output op takes that output's layout; a call that
    is no aten op (a function export kept whole) is unknown, since nothing says what it reads;
    an aten op is named for the op table and lowered there."""
    target = node.target
    source = state.layouts.get(node.args[0]) if node.args and isinstance(node.args[0], fx.Node) else None
    if name == "getitem" and isinstance(source, Outputs):
        return Lowered(Kind.RESHAPE, (source[node.args[1]],)), "getitem"
    if not is_aten and target is not operator.getitem:
        mod = getattr(target, "__module__", "") or ""
        label = f"{mod}.{name}" if mod else name
        return unknown(OpCall("unknown", {}, tuple(tensor_operands(args)), outputs, state.ndim, label), "opaque function (not traced through)"), label
    op, params, operands = normalise_function(name, args, "aten" if is_aten else "function")
    # the schema-named kwargs repeat the positional args: operands come from the positions
    positional = Args(args.args, {} if is_aten else args.kwargs)
    inputs = tuple(o for o in (operands if operands is not None else tensor_operands(positional)) if isinstance(o, Operand))
    return lower_call(OpCall(op, params, inputs, outputs, state.ndim, name)), name


def _layer_names(node: fx.Node, name: str, label: str, low: Lowered) -> tuple[str, str, str]:
    """(qualname, module_type, label) as the fx frontend names the same layer: a getitem after
    its scope, an op inside a standard torch.nn module after that module, labelled with its
    class (``Conv2d``) unless rflint has no rule for it."""
    if name == "getitem":
        path = _scope(node)[0]
        return (f"{path}.getitem" if path else "getitem"), "", label
    qual, module_type = _qualname(node, label)
    if module_type and low.kind is not Kind.UNKNOWN:
        label = module_type.rsplit(".", 1)[-1]  # Conv2d, as fx names a leaf module's layer
    return qual, module_type, label


def _returned(ep: torch.export.ExportedProgram) -> Any:
    """The user-visible outputs of the exported graph (tensors as shapes), for a message."""
    out = next((n for n in reversed(ep.graph.nodes) if n.op == "output"), None)
    if out is None or not out.args:
        return None
    values = [meta(_val(a)) if isinstance(a, fx.Node) else a for a in tree_flatten(out.args[0])[0]]
    return None if not values else values[0] if len(values) == 1 else tuple(values)


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
    shape = input_shape_for(module, input_size, input_shape)
    ndim = len(shape) - 2
    ep = export_program(module, shape)
    layers = lower(ep, shape, ndim, module, name)
    defined = definition_sources(module, [layer.qualname for layer in layers if layer.module_type])
    layers = [replace(layer, definition=defined.get(layer.qualname)) for layer in layers]
    names = {layer.name for layer in layers}
    user = list(ep.graph_signature.user_outputs)
    single = len(user) == 1
    outputs = tuple(("output" if single else str(i), out) for i, out in enumerate(user) if out in names)
    return Graph(tuple(layers), tuple(shape[2:]), name=name, tracer="export", outputs=outputs)
