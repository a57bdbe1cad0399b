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

Ops are dispatched by ``op_type`` through one table (:data:`LOWERINGS`). An op the table does
not know becomes a ``Kind.UNKNOWN`` layer carrying its op type, never a silent identity.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from rflint.errors import ShapeError, TargetError
from rflint.frontend import layout as L
from rflint.frontend.common import make_layer
from rflint.ir import Graph, Kind, Layer

# --------------------------------------------------------------------------- reading the file


def read_model(path: str | Path) -> Any:
    """Parse ``path`` as an ONNX model without loading external data, and refuse external-data
    references that leave the model's folder.

    Raises:
        TargetError: missing file, directory, empty file, not ONNX, onnx not installed,
            or an unsafe external-data location.
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
    if any(s <= 0 for s in shape):
        raise ShapeError(f"input shape {shape} has a non-positive size")
    return shape


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


# --------------------------------------------------------------------------- lowering context


@dataclass(frozen=True, slots=True)
class Lowered:
    """What one node lowers to: its receptive-field fields and its output layouts."""

    kind: Kind
    layouts: tuple[Any, ...]  # one Layout (or None) per node output
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

    node: Any
    attrs: dict[str, Any]
    in_layouts: list[Any]  # per node input: its Layout (None if constant, or if it could not be inferred)
    dependent: list[bool]  # per node input: does it depend on the model input?
    shapes: dict[str, tuple[int | None, ...]]
    consts: dict[str, Any]
    ndim: int
    opset: int

    @property
    def first(self) -> Any:
        """Layout of the first input that depends on the model input (None if unknown)."""
        return next((lay for lay, dep in zip(self.in_layouts, self.dependent) if dep), None)

    @property
    def n_dependent(self) -> int:
        return sum(self.dependent)

    @property
    def layouts_known(self) -> bool:
        return all(lay is not None for lay, dep in zip(self.in_layouts, self.dependent) if dep)

    def shape(self, name: str) -> tuple[int, ...] | None:
        dims = self.shapes.get(name)
        return tuple(dims) if dims is not None and all(d is not None for d in dims) else None  # type: ignore[arg-type]

    def out_shape(self, k: int = 0) -> tuple[int, ...] | None:
        return self.shape(self.node.output[k]) if k < len(self.node.output) else None

    def in_shape(self, k: int) -> tuple[int, ...] | None:
        return self.shape(self.node.input[k]) if k < len(self.node.input) else None

    def const(self, k: int) -> Any:
        """Value of input ``k`` if it is a known constant (else None)."""
        if k < len(self.node.input) and self.node.input[k]:
            return self.consts.get(self.node.input[k])
        return None

    def same_rank_layout(self, lay: Any, k: int = 0) -> Any:
        """``lay`` with sizes updated to output ``k``'s shape: kept as is when that shape is
        unknown, dropped (None) when the rank changed, since the dims no longer line up."""
        shape = self.out_shape(k)
        if lay is None or shape is None:
            return lay
        if len(shape) != len(lay):
            return None
        return L.resize(lay, shape)

    def all_outputs(self, lay: Any) -> tuple[Any, ...]:
        return tuple(self.same_rank_layout(lay, k) for k in range(len(self.node.output)))


def _ints(value: Any) -> list[int]:
    return [int(v) for v in value]


def _spatial_axes(ctx: _Ctx, lay: Any, n: int) -> list[int | None] | None:
    """Input axis of each of the last ``n`` tensor dims (None: not spatial), or None if some
    dim mixes a spatial axis with other data. Without layout information the dims are taken to
    be the model's spatial axes in order, as in every NCHW network."""
    if lay is None:
        return [i if i < ctx.ndim else None for i in range(n)]
    axes: list[int | None] = []
    for dim in lay[len(lay) - n :]:
        axis = L.spatial_axis(dim)
        if axis is False:
            return None
        axes.append(axis)  # type: ignore[arg-type]
    return axes


def _window(
    ctx: _Ctx,
    kernel: Sequence[int],
    stride: Sequence[Any],
    dilation: Sequence[int],
    padding: Sequence[int],
    *,
    kind: Kind = Kind.WINDOW,
    **extra: Any,
) -> Lowered:
    """A sliding window over the last ``len(kernel)`` dims, mapped onto the model's input axes."""
    n = len(kernel)
    lay = ctx.first
    axes = _spatial_axes(ctx, lay, n)
    if axes is None:
        return _unknown(ctx, f"{ctx.node.op_type} slides over a dimension that mixes spatial and other data")
    k, s, d, p = [1] * ctx.ndim, [Fraction(1)] * ctx.ndim, [1] * ctx.ndim, [0] * ctx.ndim
    for i, axis in enumerate(axes):
        if axis is None:
            continue  # e.g. a window over channels: no spatial effect
        k[axis], s[axis], d[axis], p[axis] = int(kernel[i]), Fraction(stride[i]), int(dilation[i]), int(padding[i])
    outs = ctx.all_outputs(lay)
    shape = ctx.out_shape()
    if lay is None and shape is not None and len(shape) == ctx.ndim + 2:
        outs = (L.initial(shape, ctx.ndim),) * len(outs)  # the NCHW assumption, carried forward
    return Lowered(kind, outs, tuple(k), tuple(s), tuple(d), tuple(p), **extra)


def _unknown(ctx: _Ctx, note: str) -> Lowered:
    lay = ctx.first
    return Lowered(Kind.UNKNOWN, ctx.all_outputs(lay), note=note)


def _pointwise(ctx: _Ctx) -> Lowered:
    """Elementwise ops: MERGE when two or more inputs depend on the model input."""
    dep = [lay for lay, d in zip(ctx.in_layouts, ctx.dependent) if d]
    shape = ctx.out_shape()
    if len(dep) > 1 and shape is not None and ctx.layouts_known:
        lay = L.broadcast(dep, shape)
    else:
        lay = ctx.same_rank_layout(ctx.first)
    kind = Kind.MERGE if len(dep) > 1 else Kind.POINTWISE
    return Lowered(kind, (lay,) * len(ctx.node.output))


def _global(ctx: _Ctx, axes: frozenset[int], out_layout: Any) -> Lowered:
    """Global over ``axes``; pointwise (or merge) when the op touches no spatial axis."""
    outs = (out_layout,) * len(ctx.node.output)
    if not axes:
        return Lowered(Kind.MERGE if ctx.n_dependent > 1 else Kind.POINTWISE, outs)
    return Lowered(Kind.GLOBAL, outs, global_axes=tuple(a in axes for a in range(ctx.ndim)))


# --------------------------------------------------------------------------- lowerings


def _pads(ctx: _Ctx, n: int) -> list[int]:
    """Leading pad per spatial dim (``pads`` is begin..., end...); 0 under ``auto_pad``."""
    pads = _ints(ctx.attrs.get("pads", [0] * (2 * n)))
    return pads[:n] if len(pads) >= n else [0] * n


def _kernel_shape(ctx: _Ctx) -> list[int] | None:
    if "kernel_shape" in ctx.attrs:
        return _ints(ctx.attrs["kernel_shape"])
    w = ctx.in_shape(1)  # Conv / ConvTranspose weight: (M, C/g, *k) or (C, M/g, *k)
    return list(w[2:]) if w is not None else None


def _conv(ctx: _Ctx) -> Lowered:
    kernel = _kernel_shape(ctx)
    if kernel is None:
        return _unknown(ctx, "Conv without kernel_shape and with a weight of unknown shape")
    n = len(kernel)
    groups = int(ctx.attrs.get("group", 1))
    w = ctx.in_shape(1)
    out_ch, in_ch = (w[0], w[1] * groups) if w is not None else (None, None)
    return _window(
        ctx, kernel, _ints(ctx.attrs.get("strides", [1] * n)), _ints(ctx.attrs.get("dilations", [1] * n)), _pads(ctx, n),
        in_channels=in_ch, out_channels=out_ch, groups=groups,
    )


def _conv_transpose(ctx: _Ctx) -> Lowered:
    """A transposed conv reads ``ceil(k_eff / s)`` input positions per output, at jump / s."""
    kernel = _kernel_shape(ctx)
    if kernel is None:
        return _unknown(ctx, "ConvTranspose without kernel_shape and with a weight of unknown shape")
    n = len(kernel)
    strides = _ints(ctx.attrs.get("strides", [1] * n))
    dilations = _ints(ctx.attrs.get("dilations", [1] * n))
    taps = [-(-(d * (k - 1) + 1) // s) for k, d, s in zip(kernel, dilations, strides)]
    groups = int(ctx.attrs.get("group", 1))
    w = ctx.in_shape(1)
    in_ch, out_ch = (w[0], w[1] * groups) if w is not None else (None, None)
    return _window(
        ctx, taps, [Fraction(1, s) for s in strides], [1] * n, [0] * n, kind=Kind.UPSAMPLE,
        in_channels=in_ch, out_channels=out_ch, groups=groups,
    )


def _pool(ctx: _Ctx) -> Lowered:
    kernel = _ints(ctx.attrs["kernel_shape"])
    n = len(kernel)
    return _window(
        ctx, kernel, _ints(ctx.attrs.get("strides", [1] * n)), _ints(ctx.attrs.get("dilations", [1] * n)), _pads(ctx, n)
    )


def _global_pool(ctx: _Ctx) -> Lowered:
    lay = ctx.first
    if lay is None:  # NCHW assumed, as for every window op without layout information
        return Lowered(Kind.GLOBAL, (None,), global_axes=(True,) * ctx.ndim)
    lay_out, axes = L.reduce(lay, list(range(2, len(lay))), keepdim=True)
    return _global(ctx, axes, lay_out)


def _max_unpool(ctx: _Ctx) -> Lowered:
    """Each output position reads one input position; the map grows by the pool's stride."""
    kernel = _ints(ctx.attrs["kernel_shape"])
    strides = _ints(ctx.attrs.get("strides", [1] * len(kernel)))
    n = len(kernel)
    return _window(ctx, [1] * n, [Fraction(1, s) for s in strides], [1] * n, [0] * n, kind=Kind.UPSAMPLE)


def _depth_to_space(ctx: _Ctx) -> Lowered:
    b = int(ctx.attrs["blocksize"])
    n = len(ctx.first) - 2
    return _window(ctx, [1] * n, [Fraction(1, b)] * n, [1] * n, [0] * n, kind=Kind.UPSAMPLE)


def _space_to_depth(ctx: _Ctx) -> Lowered:
    b = int(ctx.attrs["blocksize"])
    n = len(ctx.first) - 2
    return _window(ctx, [b] * n, [b] * n, [1] * n, [0] * n)


#: input positions one output position reads, per interpolation mode
RESIZE_TAPS = {"nearest": 1, "linear": 2, "bilinear": 2, "cubic": 4}


def _resize(ctx: _Ctx) -> Lowered:
    """Resize / Upsample: ``taps`` per mode and stride ``in / out`` per spatial axis."""
    mode = ctx.attrs.get("mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    taps = RESIZE_TAPS.get(mode)
    if taps is None:
        return _unknown(ctx, f"interpolation mode {mode!r}")
    lay = ctx.first
    n = len(lay) - 2
    factors = _resize_factors(ctx, len(lay))
    if factors is None:
        return _unknown(ctx, "Resize with scales that are neither constant nor inferable")
    axes = _spatial_axes(ctx, lay, n)
    if axes is None:
        return _unknown(ctx, "Resize over a dimension that mixes spatial and other data")
    kernel, stride = [1] * ctx.ndim, [Fraction(1)] * ctx.ndim
    for i, axis in enumerate(axes):
        f = factors[2 + i]
        if axis is None or f == 1:
            continue
        kernel[axis], stride[axis] = taps, 1 / f
    return Lowered(Kind.UPSAMPLE, ctx.all_outputs(lay), tuple(kernel), tuple(stride), (1,) * ctx.ndim)


def _resize_factors(ctx: _Ctx, rank: int) -> list[Fraction] | None:
    """Output / input size per tensor dim: from inferred shapes, else from the constant
    ``scales`` or ``sizes`` input (Upsample: input 1; Resize-10: input 1; Resize-11+: 2, 3)."""
    in_shape, out_shape = ctx.in_shape(0), ctx.out_shape()
    if in_shape is not None and out_shape is not None and len(in_shape) == len(out_shape) == rank:
        return [Fraction(o, i) for i, o in zip(in_shape, out_shape)]
    scale_idx = 1 if ctx.node.op_type == "Upsample" or len(ctx.node.input) == 2 else 2
    scales = ctx.const(scale_idx)
    if scales is not None and len(scales) == rank:
        return [Fraction(float(s)).limit_denominator(1000) for s in scales]
    sizes = ctx.const(3)
    if sizes is not None and in_shape is not None and len(sizes) == rank:
        return [Fraction(int(o), i) for i, o in zip(in_shape, sizes)]
    return None


def _reshape(ctx: _Ctx) -> Lowered:
    """Reshape / Flatten / Squeeze / Unsqueeze: moves axes; a reshape that cuts a spatial axis
    (window partition) has no receptive-field meaning and is reported unknown."""
    shape = ctx.out_shape()
    if shape is None:
        return Lowered(Kind.RESHAPE, (None,) * len(ctx.node.output))
    lay = L.reshape(ctx.first, shape) or _reshape_middle(ctx.first, ctx.in_shape(0), shape)
    if lay is None:
        return _unknown(ctx, "reshape cuts a spatial axis into pieces (window partition)")
    return Lowered(Kind.RESHAPE, (lay,))


def _reshape_middle(lay: Any, in_shape: tuple[int, ...] | None, out_shape: tuple[int, ...]) -> Any:
    """Fallback for a reshape that keeps its leading and trailing dims and only regroups
    non-spatial dims in between (multi-head attention splitting 2304 features into 3 x 768).
    Needed when a token dim also holds a class token (197 = 14 * 14 + 1), which a layout of
    spatial components cannot express, so :func:`layout.reshape` gives up on it."""
    if in_shape is None or len(in_shape) != len(lay):
        return None
    head = 0
    while head < min(len(in_shape), len(out_shape)) and in_shape[head] == out_shape[head]:
        head += 1
    tail = 0
    while tail < min(len(in_shape), len(out_shape)) - head and in_shape[-1 - tail] == out_shape[-1 - tail]:
        tail += 1
    middle = lay[head : len(lay) - tail]
    if any(L.axes_of(dim) for dim in middle):
        return None
    new = tuple(((None, s),) if s != 1 else () for s in out_shape[head : len(out_shape) - tail])
    return lay[:head] + new + lay[len(lay) - tail :]


def _transpose(ctx: _Ctx) -> Lowered:
    lay = ctx.first
    perm = _ints(ctx.attrs.get("perm", list(reversed(range(len(lay))))))
    return Lowered(Kind.RESHAPE, (L.permute(lay, perm),))


def _reduce_axes(ctx: _Ctx, rank: int) -> list[int]:
    """``axes`` attribute (opset < 18) or constant second input (opset >= 18); all dims when
    absent, unless ``noop_with_empty_axes``."""
    if "axes" in ctx.attrs:
        return _ints(ctx.attrs["axes"])
    axes = ctx.const(1)
    if axes is not None and len(axes):
        return _ints(axes.reshape(-1))
    return [] if ctx.attrs.get("noop_with_empty_axes", 0) else list(range(rank))


def _reduce(ctx: _Ctx) -> Lowered:
    lay = ctx.first
    keep = bool(ctx.attrs.get("keepdims", 1))
    lay_out, axes = L.reduce(lay, _reduce_axes(ctx, len(lay)), keep)
    return _global(ctx, axes, lay_out)


def _arg_reduce(ctx: _Ctx) -> Lowered:
    lay = ctx.first
    lay_out, axes = L.reduce(lay, [int(ctx.attrs.get("axis", 0))], bool(ctx.attrs.get("keepdims", 1)))
    return _global(ctx, axes, lay_out)


def _softmax(ctx: _Ctx) -> Lowered:
    """Global over the axes the normalised dims carry: one dim (``axis``, default -1) since
    opset 13, every dim from ``axis`` (default 1) on before, where the input is flattened to 2-D."""
    lay = ctx.first
    if ctx.opset >= 13:
        dims = [int(ctx.attrs.get("axis", -1)) % len(lay)]
    else:
        dims = list(range(int(ctx.attrs.get("axis", 1)) % len(lay), len(lay)))
    axes = frozenset().union(*(L.axes_of(lay[d]) for d in dims))
    return _global(ctx, axes, lay)


def _const_layout(shape: Sequence[int] | None) -> Any:
    return tuple(((None, s),) if s != 1 else () for s in shape) if shape is not None else None


def _gemm(ctx: _Ctx) -> Lowered:
    """``A' B' + C``: global over the spatial axes of the contracted dims of A (and of B when
    B depends on the input too)."""
    a = ctx.in_layouts[0] if ctx.dependent[0] else None
    b = ctx.in_layouts[1] if len(ctx.dependent) > 1 and ctx.dependent[1] else None
    trans_a, trans_b = int(ctx.attrs.get("transA", 0)), int(ctx.attrs.get("transB", 0))
    axes: frozenset[int] = frozenset()
    if a is not None:
        axes |= L.axes_of(a[0 if trans_a else 1])
    if b is not None:
        axes |= L.axes_of(b[1 if trans_b else 0])
    rows = a[1 if trans_a else 0] if a is not None else ()
    cols = b[0 if trans_b else 1] if b is not None else ()
    shape = ctx.out_shape()
    lay = L.resize((rows, cols), shape) if shape is not None else (rows, cols)
    w = ctx.in_shape(1)
    extra = {}
    if w is not None and b is None:
        extra = {"in_channels": w[1 if trans_b else 0], "out_channels": w[0 if trans_b else 1]}
    low = _global(ctx, axes, lay)
    return Lowered(low.kind, low.layouts, global_axes=low.global_axes, **extra)


def _matmul(ctx: _Ctx) -> Lowered:
    """``a @ b`` contracts a's last dim with b's second-to-last: global over their axes."""
    a = ctx.in_layouts[0] if ctx.dependent[0] else None
    b = ctx.in_layouts[1] if ctx.dependent[1] else None
    a_l = a if a is not None else _const_layout(ctx.in_shape(0))
    b_l = b if b is not None else _const_layout(ctx.in_shape(1))
    shape = ctx.out_shape()
    if a_l is None or b_l is None or shape is None:
        return _unknown(ctx, "MatMul with operands of unknown shape")
    axes: frozenset[int] = frozenset()
    if a is not None:
        axes |= L.axes_of(a_l[-1])
    if b is not None and len(b_l) >= 2:
        axes |= L.axes_of(b_l[-2])
    rank = len(shape)
    if rank < 2:
        return _global(ctx, axes, ())
    batch = L.broadcast([a_l[:-2], b_l[:-2]], shape[: rank - 2])
    rows = a_l[-2] if len(a_l) >= 2 else ()
    cols = b_l[-1] if len(b_l) >= 2 else ()
    return _global(ctx, axes, L.resize(tuple(batch) + (rows, cols), shape))


def _concat(ctx: _Ctx) -> Lowered:
    lay = ctx.same_rank_layout(ctx.first)
    return Lowered(Kind.MERGE if ctx.n_dependent > 1 else Kind.POINTWISE, (lay,))


def _split(ctx: _Ctx) -> Lowered:
    return Lowered(Kind.POINTWISE, ctx.all_outputs(ctx.first))


def _slice(ctx: _Ctx) -> Lowered:
    """A crop keeps the receptive field; a step > 1 along a spatial axis subsamples it,
    which is a window of size 1 with that stride."""
    lay = ctx.first
    axes, steps = ctx.const(3), ctx.const(4)
    if axes is None:
        starts = ctx.const(1)
        axes = list(range(len(starts))) if starts is not None else []
    stride = [Fraction(1)] * ctx.ndim
    if steps is not None:
        for dim, step in zip(_ints(axes), _ints(steps)):
            axis = L.spatial_axis(lay[dim % len(lay)])
            if axis is False:
                return _unknown(ctx, "strided Slice over a dimension that mixes spatial and other data")
            if axis is not None and abs(step) != 1:
                stride[axis] = Fraction(abs(step))
    out = ctx.all_outputs(lay)
    if any(s != 1 for s in stride):
        return Lowered(Kind.WINDOW, out, (1,) * ctx.ndim, tuple(stride), (1,) * ctx.ndim, (0,) * ctx.ndim)
    return Lowered(Kind.RESHAPE, out)


def _gather(ctx: _Ctx) -> Lowered:
    """Gather with a scalar index drops its dim (ViT's class token); otherwise the layout is
    resized, and picking positions along a spatial axis is reported as unknown."""
    if not ctx.dependent[0]:
        return _unknown(ctx, "Gather with input-dependent indices (a data-dependent lookup)")
    lay = ctx.first
    axis = int(ctx.attrs.get("axis", 0)) % len(lay)
    idx = ctx.const(1)
    if idx is not None and getattr(idx, "ndim", 1) == 0:
        return Lowered(Kind.RESHAPE, (lay[:axis] + lay[axis + 1 :],))
    if L.axes_of(lay[axis]):
        return _unknown(ctx, "Gather picks positions along a spatial axis")
    return Lowered(Kind.RESHAPE, ctx.all_outputs(lay))


POINTWISE_OPS = frozenset(
    """Relu LeakyRelu PRelu ThresholdedRelu Elu Selu Celu Gelu Sigmoid HardSigmoid HardSwish Tanh Softplus
    Softsign Mish Swish Clip Erf Exp Log Sqrt Reciprocal Neg Abs Sign Floor Ceil Round Cos Sin Not IsNaN IsInf
    Identity Dropout Cast CastLike BatchNormalization InstanceNormalization LayerNormalization GroupNormalization
    LpNormalization MeanVarianceNormalization LRN RMSNormalization SimplifiedLayerNormalization QuantizeLinear
    DequantizeLinear DynamicQuantizeLinear Pad Expand Tile Trilu CumSum""".split()
)
ELEMENTWISE_OPS = frozenset(
    "Add Sub Mul Div Pow Max Min Sum Mean Where Equal Less LessOrEqual Greater GreaterOrEqual And Or Xor Mod BitShift".split()
)
SHAPE_OPS = frozenset("Shape Size ConstantOfShape EyeLike RandomNormalLike RandomUniformLike".split())

LOWERINGS: dict[str, Callable[[_Ctx], Lowered]] = {
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "MaxPool": _pool,
    "AveragePool": _pool,
    "LpPool": _pool,
    "GlobalAveragePool": _global_pool,
    "GlobalMaxPool": _global_pool,
    "GlobalLpPool": _global_pool,
    "MaxUnpool": _max_unpool,
    "DepthToSpace": _depth_to_space,
    "SpaceToDepth": _space_to_depth,
    "Resize": _resize,
    "Upsample": _resize,
    "Reshape": _reshape,
    "Flatten": _reshape,
    "Squeeze": _reshape,
    "Unsqueeze": _reshape,
    "Transpose": _transpose,
    "ReduceMean": _reduce,
    "ReduceMax": _reduce,
    "ReduceMin": _reduce,
    "ReduceSum": _reduce,
    "ReduceProd": _reduce,
    "ReduceL1": _reduce,
    "ReduceL2": _reduce,
    "ReduceLogSum": _reduce,
    "ReduceLogSumExp": _reduce,
    "ReduceSumSquare": _reduce,
    "ArgMax": _arg_reduce,
    "ArgMin": _arg_reduce,
    "Softmax": _softmax,
    "LogSoftmax": _softmax,
    "Hardmax": _softmax,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Concat": _concat,
    "Split": _split,
    "Slice": _slice,
    "Gather": _gather,
    **{op: _pointwise for op in POINTWISE_OPS | ELEMENTWISE_OPS},
}


#: Ops lowered correctly without knowing which dims are spatial (window ops assume NCHW).
LAYOUT_FREE = POINTWISE_OPS | ELEMENTWISE_OPS | frozenset(
    "Conv ConvTranspose MaxPool AveragePool LpPool GlobalAveragePool GlobalMaxPool GlobalLpPool Concat Split".split()
)
#: Ops that only move data around: without a layout they stay reshapes (with an unknown layout).
MOVES_ONLY = frozenset("Reshape Flatten Squeeze Unsqueeze Transpose Gather".split())


def _without_layout(ctx: _Ctx) -> Lowered:
    """When shape inference left a tensor's shape open, rflint cannot tell which dims are
    spatial: data movement stays a reshape, anything that could be global becomes unknown."""
    op = ctx.node.op_type
    steps = ctx.const(4) if op == "Slice" else None
    if op in MOVES_ONLY or (op == "Slice" and (steps is None or all(abs(int(v)) == 1 for v in steps))):
        return Lowered(Kind.RESHAPE, (None,) * len(ctx.node.output))
    return _unknown(ctx, f"{op} on a tensor of unknown shape: rflint cannot tell which axes it acts on")


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
        in_layouts = [layouts.get(t) for t in node.input]
        dependent = [t in producer for t in node.input]
        ctx = _Ctx(node, _attrs(node), in_layouts, dependent, shapes, consts, ndim, opset)
        low = _lower_node(ctx)
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


def _lower_node(ctx: _Ctx) -> Lowered:
    op = ctx.node.op_type
    fn = LOWERINGS.get(op) if ctx.node.domain in ("", "ai.onnx") else None
    if fn is None:
        where = f" in domain {ctx.node.domain!r}" if ctx.node.domain not in ("", "ai.onnx") else ""
        return _unknown(ctx, f"rflint does not know how ONNX op {op}{where} changes the receptive field")
    if not ctx.layouts_known and op not in LAYOUT_FREE:
        return _without_layout(ctx)
    try:
        return fn(ctx)
    except Exception as exc:  # a lowering bug must not hide the layer: report it as unknown
        return _unknown(ctx, f"could not lower {op}: {type(exc).__name__}: {exc}")


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
    dims = _dims(data) or ()
    shape = spatial_input_shape(dims, input_size, input_shape)
    if tuple(dims) != shape:
        _set_input_shape(model, data.name, shape)
    shapes, consts = resolve(model)
    _check_feature_maps(shapes, model, shape)
    layers = lower(model, shapes, consts, shape)
    return Graph(tuple(layers), tuple(shape[2:]), name=name or Path(path).name, tracer="onnx")


WINDOW_OPS = frozenset("Conv ConvTranspose MaxPool AveragePool LpPool".split())


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
