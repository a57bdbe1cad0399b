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
    """A target string (a path-like becomes its string), an ``nn.Module`` instance, or a model
    class or factory to build (as ``rflint check pkg.mod:Net`` builds one)."""
    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    if isinstance(model, str):
        if not model.strip():
            raise ArgumentError("model is an empty string", hint="pass an nn.Module or a target such as 'torchvision:resnet18'")
        return model
    module_type = _module_type()
    if module_type is not None and isinstance(model, module_type):
        return model
    if inspect.isclass(model) and not (module_type is not None and issubclass(model, module_type)):
        raise ArgumentError(f"model is the class {model.__name__}, which is not an nn.Module class", hint="pass an nn.Module, its class, a factory, or a target string")
    if not callable(model):
        raise ArgumentError(
            f"model must be a torch.nn.Module, a model class or factory, or a target string, not {_kind(model)}",
            hint="pass the built model, or a target such as 'model.py:build_model' or 'torchvision:resnet18'",
        )
    return model


def is_built(model: Any) -> bool:
    """``model`` is a module already built (it takes no factory kwargs)."""
    module_type = _module_type()
    return module_type is not None and isinstance(model, module_type)


def factory_call_argument(model: Any, kwargs: Mapping[str, object]) -> None:
    """A class or factory can be called with ``kwargs``: ``analyze(nn.Conv2d)`` names the
    arguments it lacks, instead of failing inside the build."""
    try:
        signature = inspect.signature(model)
    except (TypeError, ValueError):  # a builtin without a signature: let the call decide
        return
    try:
        signature.bind(**kwargs)
    except TypeError as exc:
        label = getattr(model, "__name__", type(model).__name__)
        raise ArgumentError(f"model {label} cannot be built with kwargs={dict(kwargs)!r}: {exc}", hint=f"pass its arguments as kwargs={{...}}, or a built {label}(...)") from None


def _module_type() -> type | None:
    """``torch.nn.Module`` if torch is imported (an nn.Module exists only then)."""
    nn = getattr(sys.modules.get("torch"), "nn", None)
    return getattr(nn, "Module", None)


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


TASKS = ("auto", "classification", "dense")


def judging_arguments(task: Any, causal: Any, sample_rate: Any, config: Any) -> dict[str, Any]:
    """How the model is judged (``task``, ``causal`` axes, ``sample_rate``), each falling back
    to the configuration's value, as the command line's ``--task`` / ``--causal`` /
    ``--sample-rate`` do."""
    if task is not None and task not in TASKS:
        raise ArgumentError(f"task must be one of {', '.join(TASKS)}, not {task!r}", hint="pass task='dense' for a model with spatial outputs")
    if isinstance(causal, (str, bytes)) or not isinstance(causal, Sequence):
        raise ArgumentError(f"causal must be a sequence of axis names or indices, not {_kind(causal)}", hint="pass e.g. causal=['T'] or causal=[0]")
    for axis in causal:
        if isinstance(axis, bool) or not isinstance(axis, (str, int)) or (isinstance(axis, str) and not axis.strip()):
            raise ArgumentError(f"causal must hold axis names or indices, not {_kind(axis)}", hint="pass e.g. causal=['T'] or causal=[0]")
    if sample_rate is not None:
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float)) or not 0 < sample_rate < float("inf"):
            raise ArgumentError(f"sample_rate must be a positive number of samples per second, not {sample_rate!r}", hint="pass e.g. sample_rate=16000")
    return {
        "task": task or config.task,
        "causal": tuple(str(a) for a in causal) or config.causal,
        "sample_rate": float(sample_rate) if sample_rate is not None else config.sample_rate,
    }
