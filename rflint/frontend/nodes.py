"""What the fx and torch.export frontends share about graph nodes: recorded tensor values
(shapes only), operands for the op table, output layouts, where a node was issued, and how a
call is lowered (declared ops first). Both frontends walk ``torch.fx`` nodes, so these live
once, here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx as fx
from torch import nn
from torch.fx.immutable_collections import immutable_dict, immutable_list
from torch.utils._pytree import tree_map

from rflint.errors import ConfigError
from rflint.frontend.torch_ops import Args
from rflint.frontend.tracer import TORCH_DIR
from rflint.ir import Source
from rflint.ops import table as ops
from rflint.ops.table import Lowered, OpCall, Operand, custom_handler, unknown

@dataclass(frozen=True, slots=True)
class TensorMeta:
    """What lowering needs of a tensor value: its shape."""

    shape: tuple[int, ...]


#: the containers fx hands an interpreter (``immutable_list`` / ``immutable_dict`` hold every
#: node's list arguments and its kwargs), walked here and rebuilt as the same type
_SEQUENCES = (tuple, list, immutable_list)
_MAPPINGS = (dict, immutable_dict)


def meta(value: Any) -> Any:
    """``value`` with every tensor replaced by its :class:`TensorMeta`. fx's own containers
    are walked here (a node's arguments are almost always those); any other container (a named
    tuple, ``torch.return_types``) goes through pytree, which rebuilds its type."""
    if isinstance(value, torch.Tensor):
        return TensorMeta(tuple(value.shape))
    kind = type(value)
    if kind in _SEQUENCES:
        return kind([meta(v) for v in value])
    if kind in _MAPPINGS:
        return kind({k: meta(v) for k, v in value.items()})
    if isinstance(value, (tuple, list, dict)) and not isinstance(value, torch.Size):
        return tree_map(meta, value)
    return value


def produces_tensor(out: Any) -> bool:
    """A node's recorded output is a tensor, or a tuple holding one (only those have fields)."""
    return isinstance(out, TensorMeta) or (isinstance(out, (tuple, list)) and any(isinstance(o, TensorMeta) for o in out))


def device_of(module: nn.Module) -> torch.device:
    for t in list(module.parameters()) + list(module.buffers()):
        return t.device
    return torch.device("meta")


class Outputs(tuple):
    """The layouts of a multi-output op (split, chunk, ``max(dim)``, MultiheadAttention), one per
    output (None for a non-tensor output), told apart from a single tensor's Layout."""


def operands(value: Any, recorded: Any, layout_of: Callable[[fx.Node], Any]) -> Any:
    """``recorded`` (a node's evaluated args) with every tensor turned into an
    :class:`~rflint.ops.table.Operand`: its layout if the matching entry of ``value`` (the
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


def lower_call(call: OpCall, function: Any = None) -> Lowered:
    """:func:`rflint.ops.table.lower`, with declared ops (``[tool.rflint.ops]``,
    :func:`rflint.register_op`) first: ``call.module`` is checked by class, ``function`` as is."""
    handler = custom_handler(call.module) if call.module is not None else custom_handler(function=function) if function is not None else None
    if handler is not None:
        try:
            return handler(call)
        except ConfigError:
            raise  # a declaration that does not fit the op: the configuration's error, not the layer's
        except AttributeError as exc:
            raise ConfigError(f"the declared op {call.name} has no attribute {exc.name!r}", hint="fix the attribute name in [tool.rflint.ops]") from exc
        except Exception as exc:  # noqa: BLE001 - a user handler's bug is reported on its layer
            return unknown(call, f"the declared handler of {call.name} failed: {type(exc).__name__}: {exc}")
    return ops.lower(call)


_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')


def source_of(node: fx.Node) -> Source | None:
    """Where the node was issued: recorded by the tracer, or (torch.export graphs) the innermost
    frame of its stack trace that is not inside torch itself."""
    if "rflint_source" in node.meta:
        return node.meta["rflint_source"]
    trace_text = node.stack_trace or node.meta.get("stack_trace")
    if not trace_text:
        return None
    frames = [(f, int(line)) for f, line, _ in _FRAME.findall(trace_text)]
    user = [fr for fr in frames if not fr[0].startswith(TORCH_DIR)]
    if not user:
        return None
    return Source(user[-1][0], user[-1][1])


def op_name(node: fx.Node) -> str:
    target = node.target
    if node.op == "call_method":
        name = str(target)
    else:
        name = getattr(target, "__name__", str(target))
    name = name.rstrip("_") if name.endswith("_") and not name.startswith("__") else name
    return name.strip("_") if name.startswith("__") else name
