"""The configuration checks JSON Schema cannot say: what one key means given another.

The schema (``config_schema.json``) fixes every key's type; these checks run after it, on
every load (they cost microseconds), and each failure is one line naming the key path and the
fix:

- ``[tool.rflint.ops]``: a ``window`` needs a ``kernel`` (without one it would silently be a
  1x1 window), and the per-axis lists of one op (kernel, stride, dilation) agree on how many
  axes the op has;
- ``[[tool.rflint.models]]``: every model has its own name (two entries with one name would
  share findings, overrides and baseline entries, and one of them would never be checked).

The number of axes of an op is only known once it runs on a tensor;
:func:`check_declared_value` is the check the op table applies then.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rflint.errors import ConfigError

#: per-axis keys of an op declaration (padding may also name a mode: "same", "valid")
AXIS_KEYS = ("kernel", "stride", "dilation", "padding")


def check_ops(ops: Mapping[str, Mapping[str, Any]], source: str, prefix: str) -> None:
    """Every ``[tool.rflint.ops]`` declaration means one thing.

    Raises:
        ConfigError: a window without a kernel, or per-axis lists of different lengths.
    """
    for dotted, spec in ops.items():
        key = f"{prefix}.ops.{dotted!r}" if prefix else f"ops.{dotted!r}"
        kind = spec.get("kind")
        if kind == "window" and "kernel" not in spec:
            raise ConfigError(
                f"{source}: {key}: kind = \"window\" needs a kernel",
                hint="add kernel = N (every axis), [N, M] (one per axis) or the name of the module attribute that holds it",
            )
        lengths = {k: len(spec[k]) for k in AXIS_KEYS if isinstance(spec.get(k), list)}
        if len(set(lengths.values())) > 1:
            said = ", ".join(f"{k} has {n}" for k, n in lengths.items())
            raise ConfigError(
                f"{source}: {key}: the per-axis lists disagree on the op's number of axes ({said})",
                hint="give every list one value per spatial axis, or a single int for all of them",
            )


def check_model_names(names: Sequence[str], source: str, prefix: str) -> None:
    """No two ``[[tool.rflint.models]]`` entries share a name (the target when none is given).

    Raises:
        ConfigError: naming both entries.
    """
    first: dict[str, int] = {}
    key = f"{prefix}.models" if prefix else "models"
    for i, name in enumerate(names):
        if name in first:
            raise ConfigError(
                f"{source}: {key}[{i}]: the name {name!r} is already the name of {key}[{first[name]}]",
                hint="give each model its own `name`: findings, overrides and baselines are keyed by it",
            )
        first[name] = i


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
