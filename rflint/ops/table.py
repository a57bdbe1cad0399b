"""One table of op semantics: what every op does to the receptive field. Pure Python.

The frontends (torch.fx, torch.export, ONNX) only *normalise* their nodes into an
:class:`OpCall` (a canonical op name, hyper-parameters under torch's functional names, the
layouts and shapes of the operands and the output shapes) and hand it to :func:`lower`, which
dispatches through :data:`OPS`. The answer, a :class:`Lowered`, says per input axis which input
units an output unit reads (:class:`~rflint.ir.Taps`), which axes become global, and the output
layouts. Adding an op is one entry here; a frontend only learns to name it.

Canonical parameter names (where an op has them):
``kernel_size``, ``stride``, ``padding`` (low-side padding per spatial dim, or "same",
"valid", "same_upper", "same_lower"), ``dilation``, ``groups``, ``in_channels``,
``out_channels``, ``dim`` / ``dims``, ``keepdim``, ``mode``, ``align_corners``, ``scale`` (input
units per output unit, per axis), ``factor``, ``pads`` ((before, after) per tensor dim),
``items`` (an index tuple), ``equation``, ``shifts``.

An op that has no entry, or whose arguments rflint cannot follow, is lowered to
``Kind.UNKNOWN`` (rule RF001) with a note saying why, never to a silent 1x1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from rflint.errors import ConfigError
from rflint.ops import mixing as op_mixing

from rflint.ops import moves as op_moves

from rflint.ops import windows as op_windows
from rflint.ops.call import Effects, Handler, Lowered, OpCall, Operand, global_spatial, identity, unknown
from rflint.ops import layout as L

__all__ = ["OPS", "Effects", "Lowered", "OpCall", "Operand", "declared", "lower", "register_op", "unknown", "unregister_op"]


# ---------------------------------------------------------------------------------------------
# the table


OPS: dict[str, Handler] = {
    "conv": op_windows.conv,
    "conv_transpose": op_windows.conv_transpose,
    "pool": op_windows.pool,
    "adaptive_pool": op_windows.adaptive,
    "interpolate": op_windows.interpolate,
    "pixel_shuffle": op_windows.pixel_shuffle,
    "pixel_unshuffle": op_windows.pixel_unshuffle,
    "unfold": op_windows.unfold,
    "tensor_unfold": op_windows.tensor_unfold,
    "pad": op_moves.pad,
    "index": op_moves.index,
    "reshape": op_moves.reshape,
    "permute": op_moves.permute,
    "transpose": op_moves.transpose,
    "expand": op_moves.expand,
    "window_reverse": op_moves.window_reverse,
    "reduce": op_mixing.reduce,
    "along": op_mixing.along,
    "roll": op_mixing.roll,
    "linear": op_mixing.linear,
    "matmul": op_mixing.matmul,
    "einsum": op_mixing.einsum,
    "attention": op_mixing.attention,
    "multihead_attention": op_mixing.multihead_attention,
    "norm": op_mixing.norm,
    "pointwise": op_moves.pointwise,
    "cat": op_moves.cat,
    "stack": op_moves.stack,
    "split": op_moves.split,
    "identity": identity,
    "global_spatial": global_spatial,
    "window_attention": op_mixing.window_attention,
    "patch_merging": op_mixing.patch_merging,
    "custom": op_mixing.custom,
}


def lower(call: OpCall) -> Lowered:
    """The answer for one normalised node (RF001 when the op has no entry or cannot be followed)."""
    handler = OPS.get(call.op)
    if handler is None:
        return unknown(call, str(call.params.get("note") or f"no receptive-field rule for {call.name}"))
    if not call.dependent:
        return unknown(call, "no input-dependent operand")
    try:
        return handler(call)
    except Exception as exc:  # noqa: BLE001 - a lowering bug must not hide the layer: report it as unknown
        return unknown(call, f"could not lower {call.name}: {type(exc).__name__}: {str(exc)[:200]}")


# ---------------------------------------------------------------------------------------------
# user-declared ops


#: module class or function -> handler, from :func:`register_op` (Python) or ``[tool.rflint.ops]``
CUSTOM_OPS: dict[Any, Callable[[OpCall], Lowered]] = {}

#: the kinds a declaration may name
DECLARED_KINDS = ("window", "pointwise", "global", "upsample")


def _where(obj: Any) -> tuple[str, str] | None:
    """(source file, qualname) of a class or function: the same file imported twice (as a
    target file and as a package module) gives two class objects with one identity here."""
    import inspect

    try:
        return (inspect.getsourcefile(obj) or "", obj.__qualname__)
    except (TypeError, AttributeError):
        return None


def register_op(target: Any, handler: Callable[[OpCall], Any] | Mapping[str, Any], name: str = "") -> None:
    """Declare the receptive-field semantics of a module class or a function rflint cannot
    trace through (a custom CUDA kernel, a box filter built on integral images, a library block).

    ``handler`` is either a mapping as in ``[tool.rflint.ops]`` (``{"kind": "window",
    "kernel": 9}``; a string value names an attribute of the module instance), or a function of
    the :class:`OpCall` (``call.module`` is the instance, ``call.first`` the input layout) that
    returns such a mapping or a full :class:`Lowered`. The target is traced as a leaf from then
    on and never reported as RF001.
    """
    label = name or f"the op declared for {getattr(target, '__qualname__', target)!s}"
    CUSTOM_OPS[target] = declared(handler, label) if isinstance(handler, Mapping) else _returning_lowered(handler)


def unregister_op(target: Any) -> None:
    CUSTOM_OPS.pop(target, None)


def custom_handler(module: Any = None, function: Any = None) -> Callable[[OpCall], Lowered] | None:
    """The declared handler for a module instance (its class or a base class) or a function."""
    if not CUSTOM_OPS:
        return None
    candidates = [function] if function is not None else list(type(module).__mro__)
    for obj in candidates:
        if obj in CUSTOM_OPS:
            return CUSTOM_OPS[obj]
    places = {_where(t): h for t, h in CUSTOM_OPS.items()}
    for obj in candidates:
        where = _where(obj)
        if where is not None and where in places:
            return places[where]
    return None


def _returning_lowered(handler: Callable[[OpCall], Any]) -> Callable[[OpCall], Lowered]:
    def run(call: OpCall) -> Lowered:
        result = handler(call)
        return declared(result)(call) if isinstance(result, Mapping) else result

    return run


def check_declared_value(op: str, key: str, value: Any, axes: int) -> None:
    """A declared kernel, stride, dilation or padding of ``op`` applied to ``axes`` spatial
    axes: one positive int per axis (padding: non-negative ints, or "same"/"valid").

    Args:
        op: the declaration's name, for the message (``tool.rflint.ops.'pkg.Box'``).
        key: which value (``kernel``, ...).
        value: the value as written, or read from the module's attribute.
        axes: the number of spatial axes of the tensor the op runs on.

    Raises:
        ConfigError: a value out of range, of the wrong type, or of the wrong length.
    """
    if key == "padding" and value in ("same", "valid"):
        return
    items = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    low = 0 if key == "padding" else 1
    if not items or any(isinstance(v, bool) or not isinstance(v, int) or v < low for v in items):
        need = "non-negative" if low == 0 else "positive"
        raise ConfigError(
            f"{op}.{key}: must be a {need} int or a list of {need} ints, not {value!r}",
            hint=f"fix {key} in [tool.rflint.ops] (or the module attribute it names)",
        )
    allowed = (1, axes, 2 * axes) if key == "padding" else (1, axes)  # padding may give both sides
    if len(items) not in allowed:
        raise ConfigError(
            f"{op}.{key}: {len(items)} values for an op on {axes} spatial axes",
            hint=f"give {key} {axes} values (one per axis) or a single int",
        )


def declared(spec: Mapping[str, Any], name: str = "the declared op") -> Callable[[OpCall], Lowered]:
    """A handler for a declaration ``{"kind": ..., "kernel": ..., "stride": ..., "dilation": ...,
    "padding": ...}``: an int, a list per axis, or the name of a module attribute to read.

    Each value is checked against the tensor the op runs on (positive ints, one per spatial
    axis or one for all), so a 4-value kernel on a 2-d op, or an attribute holding 0, is a
    :class:`~rflint.errors.ConfigError` naming ``name`` and the key, never a silent guess."""
    kind = str(spec.get("kind", "window"))

    def handler(call: OpCall) -> Lowered:
        params: dict[str, Any] = {"kind": kind}
        axes = sum(1 for dim in call.first if L.axes_of(dim)) or call.ndim
        for key, param in (("kernel", "kernel_size"), ("stride", "stride"), ("dilation", "dilation"), ("padding", "padding")):
            if key not in spec:
                continue
            value = spec[key]
            if isinstance(value, str) and value not in ("same", "valid"):
                value = _attribute(call.module, value, name, key)
            if kind not in ("pointwise", "global"):
                check_declared_value(name, key, value, axes)
            params[param] = value
        return op_mixing.custom(replace(call, op="custom", params=params))

    return handler


def _attribute(module: Any, attr: str, name: str, key: str) -> Any:
    """The module attribute a declared value names, as ints."""
    from rflint.errors import ConfigError

    try:
        value = getattr(module, attr)
        return tuple(int(v) for v in value) if isinstance(value, (tuple, list)) else int(value)
    except (AttributeError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"{name}.{key}: the module attribute {attr!r} is not an int or a list of ints ({type(exc).__name__}: {exc})",
            hint=f"name an attribute of {type(module).__name__} that holds the {key}, or write the value",
        ) from None
