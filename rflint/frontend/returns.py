"""What a model's forward returned, checked before its graph is trusted.

A forward that returns None, a dict of strings, a shape or a constant has nothing rflint can
analyse: every layer it ran may still be lowered and pass every rule, and the gate would
report "All checks passed" for a model that produced nothing. So a traced graph must return at
least one tensor computed from the input (any shape: a classifier's logits count), else the
model fails with :class:`~rflint.errors.OutputError`, naming what forward returned.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from torch import fx

from rflint.errors import OutputError


def require_input_dependent_output(graph: fx.Graph, computed: Container[fx.Node], returned: Any, name: str) -> None:
    """Raise unless the graph's output holds a node of ``computed`` (the nodes lowered from the
    input); ``returned`` is the recorded output value (tensors as shapes), for the message
    about model ``name``."""
    out = next((n for n in reversed(graph.nodes) if n.op == "output"), None)
    if out is None or any(n in computed for n in out.all_input_nodes):
        return
    raise OutputError(f"{name}: forward() returned {describe(returned)}, not a tensor computed from its input: there is nothing to analyse")


def describe(value: Any, depth: int = 0) -> str:
    """A short phrase for a returned value: ``None``, ``a dict of str``, ``a tuple of int, str``,
    ``a tensor of shape (1, 3) that does not depend on the input``."""
    shape = getattr(value, "shape", None)
    if value is None:
        return "None"
    if isinstance(shape, tuple) and type(value).__name__ == "TensorMeta":
        return f"a tensor of shape {shape} that does not depend on the input" if depth == 0 else "tensor"
    if isinstance(value, (dict, tuple, list)) and type(value).__name__ != "Size":
        inner = _kinds(value.values() if isinstance(value, dict) else value, depth)
        return f"{_article(_type_name(value))} of {inner}" if inner else f"an empty {_type_name(value)}"
    return _article(_type_name(value)) if depth == 0 else _type_name(value)


def _type_name(value: Any) -> str:
    """As the user wrote it: fx's ``immutable_dict`` is a dict, ``Size`` is ``torch.Size``."""
    name = type(value).__name__
    return "torch.Size" if name == "Size" else name.removeprefix("immutable_")


def _kinds(values: Any, depth: int) -> str:
    kinds = list(dict.fromkeys(describe(v, depth + 1) if depth < 1 else _type_name(v) for v in values))
    return ", ".join(kinds[:4]) + (", ..." if len(kinds) > 4 else "")


def _article(noun: str) -> str:
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"
