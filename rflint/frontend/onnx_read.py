"""Reading an ``.onnx`` file for the ONNX frontend: the protobuf, its external-data rules, its
input, and the shapes and small constant values the lowering needs.

Weights are never needed: the file is read with ``onnx.load(path, load_external_data=False)``,
and an external-data reference that points outside the model's folder is refused, because a
crafted file could otherwise make rflint (or a later tool that trusts rflint's check) read
arbitrary files.

Feature-map sizes come from ``onnx.shape_inference`` (with data propagation, so that
``Shape -> Gather -> Reshape`` chains resolve; older opsets are converted first, and shape
arithmetic that inference cannot follow is evaluated with ``onnx.reference``, see
:func:`resolve`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rflint.errors import ShapeError, TargetError
from rflint.frontend.onnx_checks import check_graph


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


# --------------------------------------------------------------------------- the input


def data_input(model: Any) -> Any:
    """The model's data input: the first graph input that is not an initializer (files of IR
    version < 4 list their weights as graph inputs too)."""
    inits = {i.name for i in model.graph.initializer}
    inputs = [vi for vi in model.graph.input if vi.name not in inits]
    if not inputs:
        raise ShapeError("the ONNX model has no input", hint="re-export the model with its image input")
    return inputs[0]


def value_dims(value_info: Any) -> tuple[int | None, ...] | None:
    """A value's dims, None for a dynamic one; None when the file gives it no shape."""
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return None
    # keep zero and negative sizes: that is how shape inference reports an input that is too small
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim)


def set_input_shape(model: Any, input_name: str, shape: tuple[int, ...]) -> None:
    """Fix the input's dims and forget the exporter's intermediate shapes, so that shape
    inference recomputes them for this size."""
    for vi in model.graph.input:
        if vi.name == input_name:
            for dim, size in zip(vi.type.tensor_type.shape.dim, shape):
                dim.dim_value = size
    del model.graph.value_info[:]
    for out in model.graph.output:
        out.type.tensor_type.ClearField("shape")


# --------------------------------------------------------------------------- shapes and constants


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
    if _has_unknown_shapes(model, shapes) and opset_version(model) < SHAPE_OPSET:
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
                attrs = node_attrs(node)
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
        dims = value_dims(vi)
        if dims is not None:
            shapes[vi.name] = dims
    for init in g.initializer:
        shapes[init.name] = tuple(init.dims)
    return shapes


def opset_version(model: Any) -> int:
    """The file's opset of the default domain (:data:`SHAPE_OPSET` when it names none)."""
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


def node_attrs(node: Any) -> dict[str, Any]:
    """A node's attributes as Python values (ints, floats, lists, tensors, graphs)."""
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}
