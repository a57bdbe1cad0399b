"""ONNX frontend: an ``.onnx`` file becomes an :class:`rflint.ir.Graph` without torch.

Why a separate frontend: an ONNX file already holds every layer's ``kernel_shape``,
``strides``, ``dilations`` and ``pads``, so rflint can check a model exported from any framework
without importing it and without running any of its code. Reading the file (safely, without its
weights) and learning its tensors' shapes is :mod:`.onnx_read`'s part; this module lowers it.

Like the fx frontend, every tensor carries a :mod:`.layout` saying which dimension holds which
spatial input axis, so that ``Gemm``, ``MatMul``, reductions and ``Softmax`` are global exactly
over the axes they contract. Where a shape stays unknown, window ops assume NCHW (as every
exporter writes convolutions) and ops that could be global are reported unknown rather than
guessed.

Each node is named for the op table (:mod:`.onnx_ops`) and lowered by
:func:`rflint.ops.table.lower`, the same table the torch frontends use. An op the table does
not know becomes a ``Kind.UNKNOWN`` layer carrying its op type, never a silent identity.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from rflint.errors import ShapeError
from rflint.ops import layout as L
from rflint.ops.table import Lowered, OpCall, Operand, lower as lower_call
from rflint.frontend.common import check_input_shape, make_layer
from rflint.frontend.onnx_ops import LAYOUT_FREE, MOVES_ONLY, SHAPE_OPS, WINDOW_OPS, Node, normalise
from rflint.frontend.onnx_read import data_input, node_attrs, opset_version, read_model, resolve, set_input_shape, value_dims
from rflint.ir import Graph, Kind, Layer

# --------------------------------------------------------------------------- input geometry


def spatial_input_shape(
    dims: Sequence[int | None], input_size: Sequence[int] | None, input_shape: Sequence[int] | None
) -> tuple[int, ...]:
    """The full input shape to analyse: ``input_shape`` if given, else the model's own shape
    with ``input_size`` put in its spatial dims (one size expands to every axis).

    Raises:
        ShapeError: wrong rank, non-positive size, or a dynamic size with no override.
    """
    rank = len(dims)
    if rank < 3:
        raise ShapeError(f"the ONNX model's input has rank {rank}; rflint needs (batch, channels, *spatial)")
    ndim = rank - 2
    if input_shape is not None:
        shape = tuple(int(s) for s in input_shape)
        if len(shape) != rank:
            raise ShapeError(f"--input-shape has {len(shape)} dims but the ONNX model's input has {rank}")
    else:
        lead = tuple(d if d else 1 for d in dims[:2])  # a dynamic batch is analysed as 1
        if input_size is not None:
            size = tuple(int(s) for s in input_size)
            size = size * ndim if len(size) == 1 else size
            if len(size) != ndim:
                raise ShapeError(f"--input-size has {len(size)} axes but the ONNX model has {ndim} spatial axes")
        else:
            size = tuple(dims[2:])
            if any(not d for d in size):
                raise ShapeError("the ONNX model's input has a dynamic spatial size", hint="pass --input-size N")
        shape = lead + size
    return check_input_shape(shape)


# --------------------------------------------------------------------------- one node


def _shape(shapes: dict[str, tuple[int | None, ...]], name: str) -> tuple[int, ...] | None:
    dims = shapes.get(name)
    return tuple(dims) if dims is not None and all(d is not None for d in dims) else None  # type: ignore[arg-type]


def _assumed_layout(shape: tuple[int, ...] | None, ndim: int) -> L.Layout:
    """Without inferred shapes, the dims are taken to be (batch, channels, *spatial) as in
    every NCHW network (what window ops read; anything that could be global is not guessed)."""
    return L.initial(shape if shape is not None and len(shape) == ndim + 2 else (1, 1) + (1,) * ndim, ndim)


def _lower_node(
    node: Any, layouts: dict[str, Any], shapes: dict[str, tuple[int | None, ...]], consts: dict[str, Any], ndim: int, opset: int
) -> Lowered:
    """Name one node for the op table and lower it there."""
    dependent = [t in layouts for t in node.input]
    known = all(layouts[t] is not None for t, dep in zip(node.input, dependent) if dep)
    op = node.op_type
    if not known and op not in LAYOUT_FREE:
        return _without_layout(node, op)
    operands = []
    for t, dep in zip(node.input, dependent):
        lay = layouts.get(t) if dep else None
        if dep and lay is None:
            lay = _assumed_layout(_shape(shapes, t), ndim)
        operands.append(Operand(lay, _shape(shapes, t) if t else None))
    onnx_node = Node(op, node_attrs(node), operands, [consts.get(t) if t else None for t in node.input], opset)
    try:
        canonical, params, ordered = normalise(onnx_node, node.domain)
    except Exception as exc:  # noqa: BLE001 - a naming bug must not hide the layer
        canonical, params, ordered = "unknown", {"note": f"could not read {op}: {type(exc).__name__}: {exc}"}, None
    outputs = tuple(_shape(shapes, out) for out in node.output)
    inputs = tuple(ordered) if ordered is not None else tuple(operands)
    call = OpCall(canonical, params, inputs, outputs, ndim, op)
    low = lower_call(call)
    if not known:  # carry the NCHW assumption forward
        shape = outputs[0]
        if shape is not None and len(shape) == ndim + 2 and low.kind is not Kind.UNKNOWN:
            low = replace(low, layouts=(L.initial(shape, ndim),) * len(node.output))
    return low


def _without_layout(node: Any, op: str) -> Lowered:
    """When shape inference left a tensor's shape open, rflint cannot tell which dims are
    spatial: data movement stays a reshape, anything that could be global becomes unknown."""
    n_out = len(node.output)
    if op in MOVES_ONLY or op == "Slice":
        return Lowered(Kind.RESHAPE, (None,) * n_out)
    note = f"{op} on a tensor of unknown shape: rflint cannot tell which axes it acts on"
    return Lowered(Kind.UNKNOWN, (None,) * n_out, note=note)


# --------------------------------------------------------------------------- putting it together


def _scope(node: Any) -> tuple[str, ...]:
    """The TorchScript exporter's module scope: ``/layer1/layer1.0/conv1/Conv`` -> its first
    three segments (the last one names the op)."""
    return tuple(s for s in node.name.split("/") if s)[:-1] if node.name.startswith("/") else ()


def parent_scopes(nodes: Sequence[Any]) -> frozenset[tuple[str, ...]]:
    """Scopes that contain other scopes: their ops are called from a container module's
    forward (``layer1.0``'s ``+``), not produced by a leaf module (``conv1``)."""
    return frozenset(scope[:k] for node in nodes for scope in [_scope(node)] for k in range(1, len(scope)))


def _qualname(node: Any, fallback: str, parents: frozenset[tuple[str, ...]]) -> str:
    """A PyTorch-style name as the fx frontend makes it: the module path for a leaf module's op
    (``layer1.0.conv1``), ``path.op`` for an op in a container's forward (``layer1.0.add``).
    Read from the dynamo exporter's ``namespace`` metadata or the TorchScript exporter's scoped
    node names; other files keep their node names."""
    meta = {p.key: p.value for p in node.metadata_props}
    if "namespace" in meta:  # ": M/layer1: Sequential/layer1.0.conv1: Conv2d/conv2d_1: aten.conv2d"
        segments = meta["namespace"].split("/")
        names = [seg.split(":")[0].strip() for seg in segments]
        types = [seg.split(":", 1)[-1].strip() for seg in segments][1:-1]
        modules, op = [n for n in names[1:-1] if n], re.sub(r"_\d+$", "", names[-1])
        if modules and types and types[-1].startswith("torch.nn.modules.") and ".container." not in types[-1]:
            return modules[-1]
        return f"{modules[-1]}.{op}" if modules else op or fallback
    scope = _scope(node)
    if not scope:
        return node.name or fallback
    path, prev = "", ""
    for seg in scope:  # "layer1", "layer1.0", "downsample", "downsample.0": a Sequential's child
        # repeats its parent's name, so only what follows that name is new
        path = path + seg[len(prev):] if prev and seg.startswith(prev + ".") else f"{path}.{seg}" if path else seg
        prev = seg
    if scope in parents:
        op = re.sub(r"_\d+$", "", node.name.rsplit("/", 1)[-1]).lower()
        return f"{path}.{op}"
    return path


def _weight_qualname(node: Any, initializers: set[str]) -> str | None:
    """``layer1.0.conv1`` from a ``layer1.0.conv1.weight`` initializer input, when present."""
    for name in node.input[1:2]:
        if name in initializers and name.endswith(".weight"):
            return name[: -len(".weight")]
    return None


def lower(
    model: Any, shapes: dict[str, tuple[int | None, ...]], consts: dict[str, Any], input_shape: tuple[int, ...]
) -> list[Layer]:
    """One Layer per node that depends on the model input, in the file's (topological) order."""
    graph = model.graph
    ndim = len(input_shape) - 2
    data = data_input(model)
    initializers = {i.name for i in graph.initializer}
    producer: dict[str, str] = {data.name: data.name}
    layouts: dict[str, Any] = {data.name: L.initial(input_shape, ndim)}
    layers = [Layer(data.name, "input", "input", Kind.INPUT, out_size=tuple(input_shape[2:]))]
    used: dict[str, int] = {}
    parents = parent_scopes(graph.node)
    opset = opset_version(model)
    for i, node in enumerate(graph.node):
        deps = [t for t in node.input if t in producer]
        if not deps or node.op_type in SHAPE_OPS:
            continue  # constant folding / shape arithmetic: no receptive field
        low = _lower_node(node, {t: layouts[t] for t in node.input if t in producer}, shapes, consts, ndim, opset)
        name = _unique(node.name or f"{node.op_type}_{i}", used, producer)
        for out, lay in zip(node.output, low.layouts):
            producer[out] = name
            layouts[out] = lay
        qual = _weight_qualname(node, initializers) or _qualname(node, name, parents)
        out_lay = low.layouts[0] if low.layouts else None
        layers.append(
            make_layer(
                low,
                name=name,
                qualname=qual,
                op=node.op_type if not node.domain or node.domain == "ai.onnx" else f"{node.domain}.{node.op_type}",
                inputs=tuple(dict.fromkeys(producer[t] for t in deps)),
                out_layout=out_lay,
                ndim=ndim,
            )
        )
    return _dedupe_qualnames(layers)


def _unique(name: str, used: dict[str, int], taken: dict[str, str]) -> str:
    if name not in used and name not in taken:
        used[name] = 0
        return name
    used[name] = used.get(name, 0) + 1
    return f"{name}_{used[name]}"


def _dedupe_qualnames(layers: list[Layer]) -> list[Layer]:
    from dataclasses import replace

    seen: dict[str, int] = {}
    out = []
    for layer in layers:
        q = layer.qualname
        if q in seen:
            seen[q] += 1
            layer = replace(layer, qualname=f"{q}_{seen[q]}")
        else:
            seen[q] = 0
        out.append(layer)
    return out


def graph_from_onnx(
    path: str | Path,
    input_size: Sequence[int] | None = None,
    name: str | None = None,
    *,
    input_shape: Sequence[int] | None = None,
) -> Graph:
    """Read an ONNX file into an IR graph.

    Args:
        path: the ``.onnx`` file (its external data, if any, is never read).
        input_size: spatial size, one number for every axis or one per axis; defaults to the
            size stored in the file.
        name: the model's display name (default: the file name).
        input_shape: the full input shape, batch and channels included; wins over input_size.

    Raises:
        TargetError: the file cannot be read safely.
        ShapeError: the input geometry is missing or does not fit the model.
    """
    model = read_model(path)
    data = data_input(model)
    dims = value_dims(data)
    if dims is None and input_shape is None:
        raise ShapeError(f"the ONNX model's input {data.name!r} has no shape", hint="pass --input-shape with the full input shape, e.g. 1,3,224,224")
    dims = dims if dims is not None else (None,) * len(input_shape or ())
    shape = spatial_input_shape(dims, input_size, input_shape)
    if tuple(dims) != shape:
        set_input_shape(model, data.name, shape)
    shapes, consts = resolve(model)
    _check_feature_maps(shapes, model, shape)
    layers = lower(model, shapes, consts, shape)
    return Graph(tuple(layers), tuple(shape[2:]), name=name or Path(path).name, tracer="onnx")


def _check_feature_maps(shapes: dict[str, tuple[int | None, ...]], model: Any, input_shape: tuple[int, ...]) -> None:
    """An input smaller than a layer's window shows up as a zero or negative inferred size."""
    size = "x".join(str(s) for s in input_shape[2:])
    for node in model.graph.node:
        if node.op_type not in WINDOW_OPS:
            continue  # shape arithmetic may legitimately slice an empty vector
        for out in node.output:
            dims = shapes.get(out)
            if dims is not None and any(d is not None and d <= 0 for d in dims):
                raise ShapeError(
                    f"input {size} is too small: {node.op_type} {node.name or out!r} would produce an empty feature map",
                    hint="pass a larger --input-size",
                )
