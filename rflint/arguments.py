"""Checking the Python API's arguments at the door.

``rflint.analyze`` is called from notebooks and test suites with whatever is at hand: a class
instead of an instance, ``input_size="32"`` (a string is a sequence: it would be read as the
sizes 3 and 2), ``32.5``, a numpy integer, a path. A wrong argument must fail at once with one
exception type that names the argument and the fix, :class:`~rflint.errors.ArgumentError`,
not with an ``AttributeError`` from deep inside tracing, and never give a report for a size
nobody asked for. Stdlib only: torch is looked up only if the caller already imported it.
"""

from __future__ import annotations

import inspect
import operator
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from rflint.errors import ArgumentError

#: the largest size torch can hold in a shape (int64)
MAX_SIZE = 2**63 - 1


def _kind(value: Any) -> str:
    return "a class" if inspect.isclass(value) else f"{type(value).__name__} {value!r}"[:80]


def model_argument(model: Any) -> str | Any:
    """A target string (a path-like becomes its string) or an ``nn.Module`` instance."""
    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    if isinstance(model, str):
        if not model.strip():
            raise ArgumentError("model is an empty string", hint="pass an nn.Module or a target such as 'torchvision:resnet18'")
        return model
    nn = getattr(sys.modules.get("torch"), "nn", None)
    module_type = getattr(nn, "Module", None)
    if module_type is not None and inspect.isclass(model) and issubclass(model, module_type):
        raise ArgumentError(
            f"model is the class {model.__name__}, not a model", hint=f"build it first: analyze({model.__name__}(...), ...)"
        )
    if module_type is None or not isinstance(model, module_type):
        raise ArgumentError(
            f"model must be a torch.nn.Module or a target string, not {_kind(model)}",
            hint="pass the built model, or a target such as 'model.py:build_model' or 'torchvision:resnet18'",
        )
    return model


def _size(value: Any, argument: str, example: str) -> int:
    if isinstance(value, (bool, str, bytes)):
        raise ArgumentError(f"{argument} must hold integers, not {_kind(value)}", hint=f"pass e.g. {example}")
    try:
        size = operator.index(value)  # int, numpy integers; never a float
    except TypeError:
        raise ArgumentError(f"{argument} must hold integers, not {_kind(value)}", hint=f"pass e.g. {example}") from None
    if not 0 < size <= MAX_SIZE:
        raise ArgumentError(f"{argument} must hold positive integers (at most 2**63 - 1), not {size}", hint=f"pass e.g. {example}")
    return size


def _sizes(value: Any, argument: str, example: str) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ArgumentError(f"{argument} must be a sequence of integers, not {_kind(value)}", hint=f"pass e.g. {example}")
    sizes = tuple(_size(v, argument, example) for v in value)
    if not sizes:
        raise ArgumentError(f"{argument} is empty", hint=f"pass e.g. {example}")
    return sizes


def input_size_argument(value: Any) -> tuple[int, ...] | None:
    """``input_size``: None, one positive int for every axis, or one per axis."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        return (_size(value, "input_size", "input_size=224 or input_size=(224, 160)"),)
    return _sizes(value, "input_size", "input_size=224 or input_size=(224, 160)")


def input_shape_argument(value: Any) -> tuple[int, ...] | None:
    """``input_shape``: None, or batch, channels and at least one spatial size."""
    if value is None:
        return None
    shape = _sizes(value, "input_shape", "input_shape=(1, 3, 224, 224)")
    if len(shape) < 3:
        raise ArgumentError(
            f"input_shape {shape} has no spatial axis: it holds batch, channels and the spatial sizes",
            hint="pass e.g. input_shape=(1, 3, 224, 224)",
        )
    return shape


def names_argument(value: Any, argument: str, example: str) -> tuple[str, ...]:
    """A sequence of strings; one string is one name (never its characters)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, Sequence) or not all(isinstance(v, str) and v for v in value):
        raise ArgumentError(f"{argument} must be a list of non-empty strings, not {_kind(value)}", hint=f"pass e.g. {example}")
    return tuple(value)


def optional_text_argument(value: Any, argument: str) -> str | None:
    if value is None or (isinstance(value, str) and value):
        return value
    raise ArgumentError(f"{argument} must be a non-empty string or None, not {_kind(value)}", hint=f"pass e.g. {argument}='my-model'")


def kwargs_argument(value: Any, model_is_built: bool) -> dict[str, object]:
    """Keyword arguments for a target's factory (a built module takes none)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ArgumentError(f"kwargs must be a mapping of argument names to values, not {_kind(value)}", hint="pass e.g. kwargs={'num_classes': 10}")
    if value and model_is_built:
        raise ArgumentError("kwargs are for a target's factory, but model is already built", hint="build the model with those arguments yourself")
    return dict(value)
