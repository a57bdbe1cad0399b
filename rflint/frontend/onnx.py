"""ONNX frontend: an ``.onnx`` file becomes an :class:`rflint.ir.Graph` without torch.

Why a separate frontend: an ONNX file already holds every layer's ``kernel_shape``,
``strides``, ``dilations`` and ``pads``, so rflint can check a model exported from any framework
without importing it and without running any of its code. Weights are never needed: the file is
read with ``onnx.load(path, load_external_data=False)``, and an external-data reference that
points outside the model's folder is refused, because a crafted file could otherwise make
rflint (or a later tool that trusts rflint's check) read arbitrary files.

Feature-map sizes come from ``onnx.shape_inference`` (with data propagation, so that
``Shape -> Gather -> Reshape`` chains resolve; older opsets are converted first, and shape
arithmetic that inference cannot follow is evaluated with ``onnx.reference``, see
:func:`resolve`). Like the fx frontend, every tensor carries a :mod:`.layout` saying which
dimension holds which spatial input axis, so that ``Gemm``, ``MatMul``, reductions and
``Softmax`` are global exactly over the axes they contract. Where a shape stays unknown, window
ops assume NCHW (as every exporter writes convolutions) and ops that could be global are
reported unknown rather than guessed.

Each node is named for the op table (:mod:`.onnx_ops`) and lowered by
:func:`rflint.ops.table.lower`, the same table the torch frontends use. An op the table does
not know becomes a ``Kind.UNKNOWN`` layer carrying its op type, never a silent identity.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from rflint.errors import ShapeError, TargetError
from rflint.ops import layout as L
from rflint.ops.table import Lowered, OpCall, Operand, lower as lower_call
from rflint.frontend.common import check_input_shape, make_layer
from rflint.frontend.onnx_checks import check_graph
from rflint.frontend.onnx_ops import LAYOUT_FREE, MOVES_ONLY, SHAPE_OPS, WINDOW_OPS, Node, normalise
from rflint.ir import Graph, Kind, Layer

# --------------------------------------------------------------------------- reading the file


def read_model(path: str | Path) -> Any:
    """Parse ``path`` as an ONNX model without loading external data, and refuse external-data
    references that leave the model's folder.

    Raises:
        TargetError: missing file, directory, empty file, not ONNX, onnx not installed,
            an unsafe external-data location, or a graph rflint cannot read faithfully
            (:func:`rflint.frontend.onnx_checks.check_graph`: attributes out of range, a cycle).
    """
    onnx = _import_onnx()
    p = Path(path)
    if p.is_dir():
        raise TargetError(f"{p} is a directory, not an ONNX file", hint="point at the .onnx file itself")
    if not p.exists():
        raise TargetError(f"{p}: no such file", hint="check the path (relative paths are taken from the current directory)")
    if p.stat().st_size == 0:
        raise TargetError(f"{p} is empty", hint="re-export the model, e.g. with torch.onnx.export")
    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception as exc:  # protobuf raises DecodeError, RuntimeWarning, ValueError...
        raise TargetError(f"{p} is not a valid ONNX model ({type(exc).__name__})", hint="re-export it, or check that it is not another format renamed to .onnx") from exc
    if not model.graph.node and not model.graph.input:
        raise TargetError(f"{p} holds no ONNX graph", hint="re-export the model, e.g. with torch.onnx.export")
    check_external_data(model, p.parent)
    check_graph(model)
    return model


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError as exc:
        raise TargetError("the onnx package is not installed", hint="pip install onnx  (or pip install 'rflint[onnx]')") from exc
    return onnx


def iter_tensors(graph: Any) -> Iterator[Any]:
    """Every TensorProto in ``graph``: initializers, sparse initializers, and tensors held in
    node attributes, recursing into subgraphs (If / Loop / Scan bodies)."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from iter_tensors(attr.g)
            for sub in attr.graphs:
                yield from iter_tensors(sub)


def check_external_data(model: Any, folder: Path) -> None:
    """Refuse any external-data location that is absolute or resolves (symlinks included)
    outside ``folder``. The data is never read; this only keeps the file honest."""
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    root = folder.resolve()
    tensors = list(iter_tensors(model.graph))
    for fn in model.functions:
        for node in fn.node:
            tensors.extend(a.t for a in node.attribute if a.HasField("t"))
    for tensor in tensors:
        if not uses_external_data(tensor):
            continue
        location = ExternalDataInfo(tensor).location
        resolved = (root / location).resolve()
        if not location or Path(location).is_absolute() or not resolved.is_relative_to(root):
            raise TargetError(
                f"external data of tensor {tensor.name!r} points outside the model's folder ({location!r})",
                hint="keep the external-data files next to the .onnx file, with relative names",
            )


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


def _dims(value_info: Any) -> tuple[int | None, ...] | None:
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return None
    # keep zero and negative sizes: that is how shape inference reports an input that is too small
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim)


def _set_input_shape(model: Any, input_name: str, shape: tuple[int, ...]) -> None:
    """Fix the input's dims and forget the exporter's intermediate shapes, so that shape
    inference recomputes them for this size."""
    for vi in model.graph.input:
        if vi.name == input_name:
            for dim, size in zip(vi.type.tensor_type.shape.dim, shape):
                dim.dim_value = size
    del model.graph.value_info[:]
    for out in model.graph.output:
        out.type.tensor_type.ClearField("shape")


#: Data propagation (``Shape -> Slice -> Concat -> Reshape``) in ONNX's shape inference only
#: covers the newer op versions, so older files are converted to this opset first when needed.
SHAPE_OPSET = 17
#: Largest tensor (in elements) rflint keeps or computes as a constant: shape vectors, axes,
#: scales and the like, never weights.
SMALL = 4096
#: Ops whose value is not a function of their inputs.
RANDOM_OPS = frozenset("RandomNormal RandomNormalLike RandomUniform RandomUniformLike Multinomial Bernoulli".split())


def resolve(model: Any) -> tuple[dict[str, tuple[int | None, ...]], dict[str, Any]]:
    """Tensor shapes and small constant values, as far as they can be known without weights.

    ONNX shape inference (with data propagation) does most of it. Exporters also emit shape
    arithmetic that it cannot follow (``Where(Equal(...))`` in torchvision's ViT), so while some
    shape is still open, the constant part of the graph is evaluated with ONNX's reference
    evaluator, the results become initializers, and inference runs again.
    """
    work = _light_model(model)
    consts = constants(model.graph)
    shapes = _inferred_shapes(work)
    if _has_unknown_shapes(model, shapes) and _opset(model) < SHAPE_OPSET:
        from onnx import version_converter

        try:
            work = version_converter.convert_version(work, SHAPE_OPSET)
        except Exception:  # custom domains, ops without adapters: go on with the original
            pass
        else:
            _merge_shapes(shapes, _inferred_shapes(work))
    for _ in range(3):
        if not _has_unknown_shapes(model, shapes):
            break
        folded = fold_constants(work, shapes, consts)
        if not folded:
            break
        consts.update(folded)
        work = _replace_with_initializers(work, folded)
        _merge_shapes(shapes, _inferred_shapes(work))
    return shapes, consts


def infer_shapes(model: Any) -> dict[str, tuple[int | None, ...]]:
    """Tensor name -> dims (see :func:`resolve`)."""
    return resolve(model)[0]


def _merge_shapes(shapes: dict[str, tuple[int | None, ...]], extra: dict[str, tuple[int | None, ...]]) -> None:
    for name, dims in extra.items():
        if name not in shapes or None in shapes[name]:
            shapes[name] = dims


def _light_model(model: Any) -> Any:
    """The model with every large initializer turned into a typed graph input: shape inference
    needs the weights' shapes, not their bytes (which may not even be loaded)."""
    from onnx import helper

    g = model.graph
    small, large = [], []
    for init in g.initializer:
        (small if math.prod(init.dims) <= SMALL and not _is_external(init) else large).append(init)
    known = {vi.name for vi in g.input}
    inputs = list(g.input) + [
        helper.make_tensor_value_info(i.name, i.data_type, list(i.dims)) for i in large if i.name not in known
    ]
    graph = helper.make_graph(list(g.node), g.name, inputs, list(g.output), initializer=small, value_info=list(g.value_info))
    light = helper.make_model(graph, opset_imports=list(model.opset_import), ir_version=model.ir_version)
    light.functions.extend(model.functions)
    return light


def _is_external(tensor: Any) -> bool:
    from onnx.external_data_helper import uses_external_data

    return uses_external_data(tensor)


def fold_constants(model: Any, shapes: dict[str, tuple[int | None, ...]], consts: dict[str, Any]) -> dict[str, Any]:
    """Values of small tensors that depend only on constants and on known shapes (``Shape`` of
    a tensor whose shape is known), computed with ``onnx.reference``; new entries only."""
    import numpy as np
    from onnx.reference import ReferenceEvaluator

    values = dict(consts)
    folded: dict[str, Any] = {}
    opsets = {o.domain: o.version for o in model.opset_import}
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx") or node.op_type in RANDOM_OPS or node.op_type == "Constant":
            continue
        if any(a.type in (5, 10) for a in node.attribute):  # GRAPH / GRAPHS: If, Loop, Scan
            continue
        if all(out in values for out in node.output):
            continue
        if node.op_type in ("Shape", "Size"):
            dims = shapes.get(node.input[0])
            if dims is None or None in dims:
                continue
            if node.op_type == "Size":
                value = np.array(math.prod(dims), dtype=np.int64)
            else:
                attrs = _attrs(node)
                value = np.array(dims[attrs.get("start", 0) : attrs.get("end", len(dims))], dtype=np.int64)
            values[node.output[0]] = folded[node.output[0]] = value
            continue
        inputs = [name for name in node.input if name]
        if not inputs or not all(name in values for name in inputs):
            continue
        try:
            outs = ReferenceEvaluator(node, opsets=opsets).run(None, {name: values[name] for name in inputs})
        except Exception:  # an op the reference evaluator lacks: leave it to shape inference
            continue
        for name, value in zip(node.output, outs):
            value = np.asarray(value)
            if name and value.size <= SMALL:
                values[name] = folded[name] = value
    return folded


def _replace_with_initializers(model: Any, folded: dict[str, Any]) -> Any:
    """``model`` with the folded tensors as initializers and the nodes that made them removed."""
    from onnx import helper, numpy_helper

    g = model.graph
    nodes = [n for n in g.node if not all(out in folded for out in n.output if out)]
    produced = {out for n in nodes for out in n.output}
    existing = {i.name for i in g.initializer}
    extra = [numpy_helper.from_array(v, name) for name, v in folded.items() if name not in produced and name not in existing]
    graph = helper.make_graph(
        nodes, g.name, list(g.input), list(g.output), initializer=[*g.initializer, *extra], value_info=list(g.value_info)
    )
    out = helper.make_model(graph, opset_imports=list(model.opset_import), ir_version=model.ir_version)
    out.functions.extend(model.functions)
    return out


def _inferred_shapes(model: Any) -> dict[str, tuple[int | None, ...]]:
    from onnx import shape_inference

    try:
        inferred = shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception:  # best effort: the layer parameters do not depend on it
        inferred = model
    shapes: dict[str, tuple[int | None, ...]] = {}
    g = inferred.graph
    for vi in [*g.input, *g.value_info, *g.output]:
        dims = _dims(vi)
        if dims is not None:
            shapes[vi.name] = dims
    for init in g.initializer:
        shapes[init.name] = tuple(init.dims)
    return shapes


def _opset(model: Any) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), SHAPE_OPSET)


def _has_unknown_shapes(model: Any, shapes: dict[str, tuple[int | None, ...]]) -> bool:
    outputs = (out for node in model.graph.node for out in node.output if out)
    return any(out not in shapes or None in shapes[out] for out in outputs)


def constants(graph: Any) -> dict[str, Any]:
    """Numeric values of small initializers and ``Constant`` nodes (what ops read as
    parameters: Resize scales, Reduce axes, Slice steps). Weights and external data are skipped."""
    from onnx import helper, numpy_helper

    out: dict[str, Any] = {}
    for init in graph.initializer:
        if math.prod(init.dims) <= SMALL and not _is_external(init):
            out[init.name] = numpy_helper.to_array(init)
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute:
            value = helper.get_attribute_value(node.attribute[0])
            out[node.output[0]] = numpy_helper.to_array(value) if hasattr(value, "dims") else value
    return out


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
    onnx_node = Node(op, _attrs(node), operands, [consts.get(t) if t else None for t in node.input], opset)
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


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _data_input(model: Any) -> Any:
    inits = {i.name for i in model.graph.initializer}
    inputs = [vi for vi in model.graph.input if vi.name not in inits]
    if not inputs:
        raise ShapeError("the ONNX model has no input", hint="re-export the model with its image input")
    return inputs[0]


def lower(
    model: Any, shapes: dict[str, tuple[int | None, ...]], consts: dict[str, Any], input_shape: tuple[int, ...]
) -> list[Layer]:
    """One Layer per node that depends on the model input, in the file's (topological) order."""
    graph = model.graph
    ndim = len(input_shape) - 2
    data = _data_input(model)
    initializers = {i.name for i in graph.initializer}
    producer: dict[str, str] = {data.name: data.name}
    layouts: dict[str, Any] = {data.name: L.initial(input_shape, ndim)}
    layers = [Layer(data.name, "input", "input", Kind.INPUT, out_size=tuple(input_shape[2:]))]
    used: dict[str, int] = {}
    parents = parent_scopes(graph.node)
    opset = _opset(model)
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
    data = _data_input(model)
    dims = _dims(data)
    if dims is None and input_shape is None:
        raise ShapeError(f"the ONNX model's input {data.name!r} has no shape", hint="pass --input-shape with the full input shape, e.g. 1,3,224,224")
    dims = dims if dims is not None else (None,) * len(input_shape or ())
    shape = spatial_input_shape(dims, input_size, input_shape)
    if tuple(dims) != shape:
        _set_input_shape(model, data.name, shape)
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
