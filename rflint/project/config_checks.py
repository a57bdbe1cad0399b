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
:func:`rflint.ops.table.check_declared_value` is the check the op table applies then.
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
