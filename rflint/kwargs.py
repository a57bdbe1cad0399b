"""Keyword arguments that name a Python object: ``conv_op = { class = "torch.nn.Conv3d" }``.

TOML and JSON hold only data, but many model factories take a class (nnU-Net's
``PlainConvUNet(conv_op=nn.Conv3d, norm_op=nn.InstanceNorm3d, nonlin=nn.LeakyReLU)``). A table
with the single key ``class`` stands for the object its dotted path names, at any depth (inside
a list, inside ``norm_op_kwargs``). The path is ``package.module.Name`` (the longest importable
module prefix wins) or ``package.module:Outer.Name`` (explicit, as a target is written). A plain
string stays a string: factories take strings too (``norm="batch"``), and guessing which
strings are paths would turn a typo into a silent import.

:func:`form_error` checks the form without importing anything (the configuration is read on
every run, also on a cache hit that never imports torch); :func:`resolve` imports, when the
model is built.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from typing import Any

from rflint.errors import TargetError

#: the one key of a table that names an object
KEY = "class"
_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*)?$")
_EXAMPLE = '{ class = "torch.nn.Conv3d" }'


def names_object(value: Any) -> bool:
    """A table meant to name an object: one that has the key ``class``."""
    return isinstance(value, Mapping) and KEY in value


def form_error(kwargs: Mapping[str, Any], where: str = "kwargs") -> str | None:
    """The first badly written object reference in ``kwargs`` as one line, else None."""
    for key, value in kwargs.items():
        found = _value_error(value, f"{where}.{key}")
        if found:
            return found
    return None


def _value_error(value: Any, where: str) -> str | None:
    if names_object(value):
        extra = sorted(set(value) - {KEY})
        if extra:
            return f"{where}: a class reference holds only the key {KEY!r}, not {', '.join(map(repr, extra))} (write {_EXAMPLE})"
        path = value[KEY]
        if not isinstance(path, str) or not _DOTTED.match(path):
            return f"{where}.{KEY}: {path!r} is not a dotted path such as 'torch.nn.Conv3d' or 'pkg.module:Name'"
        return None
    if isinstance(value, Mapping):
        return form_error(value, where)
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found = _value_error(item, f"{where}[{i}]")
            if found:
                return found
    return None


def resolve(kwargs: Mapping[str, Any], where: str = "kwargs") -> dict[str, Any]:
    """``kwargs`` with every object reference replaced by the object (imported now).

    Raises:
        TargetError: a reference that is malformed or names nothing importable.
    """
    problem = form_error(kwargs, where)
    if problem:
        raise TargetError(problem)
    return {key: _resolve_value(value, f"{where}.{key}") for key, value in kwargs.items()}


def _resolve_value(value: Any, where: str) -> Any:
    if names_object(value):
        return import_object(value[KEY], where)
    if isinstance(value, Mapping):
        return resolve(value, where)
    if isinstance(value, list):
        return [_resolve_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def import_object(path: str, where: str) -> Any:
    """The object ``path`` names: ``pkg.mod:Attr.Sub`` or ``pkg.mod.Attr`` (longest module first)."""
    module_part, colon, attr_part = path.partition(":")
    if colon:
        candidates = [(module_part, attr_part.split("."))]
    else:
        parts = path.split(".")
        candidates = [(".".join(parts[:i]), parts[i:]) for i in range(len(parts) - 1, 0, -1)]
    for modname, attrs in candidates:
        try:
            obj: Any = importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            if exc.name and modname.startswith(exc.name):
                continue  # this prefix is not a module: try a shorter one
            raise TargetError(f"{where}: importing {modname} for {path!r} raised {type(exc).__name__}: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - user code: one line, not a traceback
            raise TargetError(f"{where}: importing {modname} for {path!r} raised {type(exc).__name__}: {exc}") from exc
        for attr in attrs:
            if not hasattr(obj, attr):
                break
            obj = getattr(obj, attr)
        else:
            if not isinstance(obj, type):
                raise TargetError(
                    f"{where}: {path!r} is a {type(obj).__name__}, not a class",
                    hint=f"{KEY} = names a class such as torch.nn.Conv3d; pass other values as plain TOML/JSON",
                )
            return obj
        raise TargetError(f"{where}: {modname} has no attribute {'.'.join(attrs)!r} (from {path!r})")
    raise TargetError(f"{where}: cannot import {path!r}: no module {path.split('.')[0]!r}", hint="check the spelling, or add its folder to [tool.rflint] pythonpath")
