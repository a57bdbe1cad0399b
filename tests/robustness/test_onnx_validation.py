"""Hand-written or edited ONNX graphs: an attribute out of range, a cycle, a tensor written
twice or an input without a shape is one line naming the node (exit 2), never a pass with
wrong numbers; a graph whose nodes are merely out of order reads as the ordered one."""

from __future__ import annotations

import math

import pytest

import onnx  # the [test] extra installs it: a missing onnx must fail, not skip
from onnx import TensorProto, helper  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from rflint.cli import app  # noqa: E402
from rflint.frontend.onnx import graph_from_onnx  # noqa: E402

runner = CliRunner()


def conv(name: str, x: str, y: str, **attrs) -> object:
    attrs.setdefault("kernel_shape", [3, 3])
    attrs.setdefault("pads", [1, 1, 1, 1])
    return helper.make_node("Conv", [x, "w"], [y], name=name, **attrs)


def save(tmp_path, nodes, weight=(3, 3, 3, 3), input_shape=(1, 3, 16, 16), name="m.onnx"):
    w = helper.make_tensor("w", TensorProto.FLOAT, list(weight), [0.0] * math.prod(weight))
    graph = helper.make_graph(
        nodes, "hand", [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=[w],
    )
    path = tmp_path / name
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


BAD = {
    "stride-zero": ([conv("c1", "x", "a", strides=[0, 0]), conv("c2", "a", "y")], {}, ["'c1'", "strides", "at least 1"]),
    "kernel-zero": ([conv("c1", "x", "a", kernel_shape=[0, 0]), conv("c2", "a", "y")], {}, ["'c1'", "kernel_shape"]),
    "dilation-zero": ([conv("c1", "x", "a", dilations=[1, 0]), conv("c2", "a", "y")], {}, ["'c1'", "dilations"]),
    "negative-pads": ([conv("c1", "x", "a", pads=[-2, 0, 0, 0]), conv("c2", "a", "y")], {}, ["'c1'", "pads", "0 or more"]),
    "pads-arity": ([conv("c1", "x", "a", pads=[1, 1]), conv("c2", "a", "y")], {}, ["'c1'", "pads", "2 values"]),
    "strides-arity": ([conv("c1", "x", "a", strides=[1, 1, 1]), conv("c2", "a", "y")], {}, ["'c1'", "strides", "3 values"]),
    "group-zero": ([conv("c1", "x", "a", group=0), conv("c2", "a", "y")], {}, ["'c1'", "group"]),
    "weight-kernel-zero": ([helper.make_node("Conv", ["x", "w"], ["y"], name="c1")], {"weight": (3, 3, 0, 0)}, ["'c1'", "kernel of size (0, 0)"]),
    "pool-stride-zero": ([helper.make_node("MaxPool", ["x"], ["y"], name="p", kernel_shape=[2, 2], strides=[0, 2])], {}, ["'p'", "strides"]),
    "cycle": (
        [helper.make_node("Add", ["x", "c"], ["a"], name="add"), conv("c1", "a", "b"), conv("c2", "b", "c"), conv("c3", "b", "y")],
        {}, ["cycle", "'add'"],
    ),
    "self-loop": ([conv("c1", "x", "a"), helper.make_node("Add", ["a", "b"], ["b"], name="loop"), conv("c2", "b", "y")], {}, ["cycle", "'loop'"]),
    "two-writers": ([conv("c1", "x", "a"), conv("c2", "x", "a"), conv("c3", "a", "y")], {}, ["'a'", "two nodes"]),
    "input-without-shape": ([conv("c1", "x", "y")], {"input_shape": None}, ["no shape", "--input-shape"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_graph_rflint_cannot_read_faithfully_is_one_line(tmp_path, case):
    nodes, kwargs, words = BAD[case]
    path = save(tmp_path, nodes, **kwargs)
    result = runner.invoke(app, ["check", "--no-cache", str(path), "--input-size", "16"])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_nodes_out_of_order_read_as_the_ordered_graph(tmp_path):
    ordered = save(tmp_path, [conv("c1", "x", "a", strides=[2, 2]), conv("c2", "a", "b"), conv("c3", "b", "y")], name="ordered.onnx")
    shuffled = save(tmp_path, [conv("c3", "b", "y"), conv("c1", "x", "a", strides=[2, 2]), conv("c2", "a", "b")], name="shuffled.onnx")
    a, b = graph_from_onnx(ordered, input_size=(16,)), graph_from_onnx(shuffled, input_size=(16,))
    assert [layer.name for layer in b.layers] == [layer.name for layer in a.layers] == ["x", "c1", "c2", "c3"]
    assert b.layers == a.layers


@pytest.mark.parametrize("size", ["9223372036854775808", "99999999999999999999999", "4294967296"])
def test_an_input_size_past_what_a_tensor_holds_is_one_line(tmp_path, size):
    path = save(tmp_path, [conv("c1", "x", "y")])
    result = runner.invoke(app, ["check", "--no-cache", str(path), "--input-size", size])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and "more than a tensor can hold" in lines[0], result.stderr
