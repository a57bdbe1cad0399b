"""What an ONNX file must be before rflint reads receptive fields out of it.

An ONNX file is data anyone can write by hand, and the checker (``onnx.checker``) neither runs
by default nor checks what rflint relies on. A window op with a stride of 0 makes every later
jump 0, a kernel of 0 an infinite field, negative pads a window that starts past its input; a
graph whose nodes are out of order or form a cycle would have nodes skipped by a single pass in
file order. Each of these is refused here with one line naming the node and the attribute
(:class:`~rflint.errors.TargetError`), and a graph in a valid but non-topological order is put
into topological order, as ONNX requires and every exporter writes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

from rflint.errors import TargetError

#: window ops and the attributes rflint reads from them, with the smallest valid value
WINDOW_ATTRS = {"kernel_shape": 1, "strides": 1, "dilations": 1, "pads": 0, "output_padding": 0}
WINDOWED = frozenset("Conv ConvTranspose MaxPool AveragePool LpPool MaxUnpool MaxRoiPool ConvInteger QLinearConv".split())
_HINT = "re-export the model; a hand-written or edited graph must follow the ONNX operator spec"


def _label(node: Any, index: int) -> str:
    return f"{node.op_type} node {node.name or f'#{index}'!r}"


def check_attributes(graph: Any, weight_shapes: dict[str, tuple[int, ...]]) -> None:
    """Window attributes are ints in range, one per spatial axis (``pads``: two).

    Args:
        graph: the model's GraphProto.
        weight_shapes: initializer name -> dims (a Conv without ``kernel_shape`` takes its
            kernel from its weight's trailing dims).

    Raises:
        TargetError: naming the node, the attribute and the bad value.
    """
    from onnx import helper

    for i, node in enumerate(graph.node):
        if node.op_type not in WINDOWED or node.domain not in ("", "ai.onnx"):
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        axes = _axes(node, attrs, weight_shapes)
        for name, low in WINDOW_ATTRS.items():
            if name in attrs:
                _check_ints(_label(node, i), name, attrs[name], low, axes)
        group = attrs.get("group", 1)
        if isinstance(group, bool) or not isinstance(group, int) or group < 1:
            raise TargetError(f"{_label(node, i)}: group must be a positive int, not {group!r}", hint=_HINT)
        if "kernel_shape" not in attrs and node.op_type in ("Conv", "ConvTranspose") and len(node.input) > 1:
            dims = weight_shapes.get(node.input[1])
            if dims is not None and any(d < 1 for d in dims[2:]):
                raise TargetError(f"{_label(node, i)}: its weight {node.input[1]!r} has a kernel of size {tuple(dims[2:])}", hint=_HINT)


def _axes(node: Any, attrs: dict[str, Any], weight_shapes: dict[str, tuple[int, ...]]) -> int | None:
    """How many spatial axes the op has, from ``kernel_shape`` or its weight; None if unknown."""
    kernel = attrs.get("kernel_shape")
    if isinstance(kernel, list):
        return len(kernel)
    if len(node.input) > 1 and node.input[1] in weight_shapes:
        return max(len(weight_shapes[node.input[1]]) - 2, 0) or None
    return None


def _check_ints(where: str, name: str, value: Any, low: int, axes: int | None) -> None:
    if not isinstance(value, list) or not value or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
        raise TargetError(f"{where}: {name} must be a list of ints, not {value!r}", hint=_HINT)
    bad = [v for v in value if v < low]
    if bad:
        need = "at least 1" if low == 1 else "0 or more"
        raise TargetError(f"{where}: {name} = {list(value)} (every value must be {need})", hint=_HINT)
    if axes is not None:
        expected = 2 * axes if name == "pads" else axes
        if len(value) != expected:
            raise TargetError(f"{where}: {name} has {len(value)} values for an op on {axes} spatial axes (expected {expected})", hint=_HINT)


def topological_order(graph: Any) -> list[int]:
    """Indices of the graph's nodes in an order where each comes after the producers of its
    inputs (the file's own order whenever it is one).

    Raises:
        TargetError: two nodes write the same tensor, or the nodes form a cycle.
    """
    nodes: Sequence[Any] = list(graph.node)
    producer: dict[str, int] = {}
    for i, node in enumerate(nodes):
        for out in node.output:
            if not out:
                continue
            if out in producer:
                first = nodes[producer[out]]
                raise TargetError(f"tensor {out!r} is written by two nodes: {_label(first, producer[out])} and {_label(node, i)}", hint=_HINT)
            producer[out] = i
    if all(producer.get(t, -1) < i for i, node in enumerate(nodes) for t in node.input if t):
        return list(range(len(nodes)))
    waiting = [len({producer[t] for t in node.input if t in producer}) for node in nodes]
    readers: dict[int, list[int]] = {}
    for i, node in enumerate(nodes):
        for j in {producer[t] for t in node.input if t in producer}:
            readers.setdefault(j, []).append(i)
    ready = deque(i for i, n in enumerate(waiting) if n == 0)
    order: list[int] = []
    while ready:
        i = ready.popleft()
        order.append(i)
        for k in readers.get(i, ()):
            waiting[k] -= 1
            if waiting[k] == 0:
                ready.append(k)
    if len(order) < len(nodes):
        stuck = [_label(nodes[i], i) for i in range(len(nodes)) if waiting[i] > 0][:3]
        raise TargetError(f"the ONNX graph has a cycle (through {', '.join(stuck)})", hint="an ONNX graph must be acyclic; " + _HINT)
    return order


def check_graph(model: Any) -> None:
    """Refuse a graph rflint cannot read faithfully, and put its nodes in topological order
    (in place: ``model.graph.node`` is rewritten only when the file's order is not one).

    Raises:
        TargetError: see :func:`check_attributes` and :func:`topological_order`.
    """
    graph = model.graph
    check_attributes(graph, {init.name: tuple(init.dims) for init in graph.initializer})
    order = topological_order(graph)
    if order != list(range(len(order))):
        ordered = [graph.node[i] for i in order]
        copies = [type(n)() for n in ordered]
        for copy, node in zip(copies, ordered):
            copy.CopyFrom(node)
        del graph.node[:]
        graph.node.extend(copies)
