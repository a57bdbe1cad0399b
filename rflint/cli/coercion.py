"""Option values turned into Python values without pydantic.

typer 0.29 coerces every parameter through a pydantic ``TypeAdapter``, built the first time the
parameter is processed, and click processes *every* parameter of the invoked command on every
run, given or not: only a ``bool`` flag whose value is already a bool is skipped
(``typer.core._TyperParameter.process_value``). So any command with one ``str``, ``int``,
``Path``, ``Enum`` or ``list[...]`` option, or a flag whose value click has not made a bool, imports pydantic (about 50-130 ms, more than the rest
of a cached ``rflint check``) however the option is declared: ``parser=`` and ``click_type``
go through an adapter too.

rflint's options use only those plain types, with no range, path check or parser, so their
coercion is a few lines each; :func:`install` gives each such parameter one before click
processes it. Anything else (a parameter with ``min``/``max``, ``exists=``, a custom parser,
another type) keeps typer's own coercion, and so does a typer without ``_runtime_param`` (the
versions before the adapters, which coerce through click types and never import pydantic). The
messages for a bad value follow typer's own: ``'x' is not one of 'a', 'b'.``
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any, get_args, get_origin

try:  # typer >= 0.29: the runtime-coercion contract that the adapters implement
    from typer._coercion import RuntimeParam as _Base
    from typer._param_types import coerce_cli_choice as _choice
except ImportError:  # an older typer: click types, no pydantic, nothing to replace
    _Base = None  # type: ignore[assignment,misc]


def _plain_path(info: Any) -> bool:
    """A ``Path`` option with none of typer's checks or conversions requested."""
    return not any(getattr(info, name, False) for name in ("exists", "writable", "resolve_path", "allow_dash", "path_type")) and (
        getattr(info, "file_okay", True) and getattr(info, "dir_okay", True) and getattr(info, "readable", True)
    )


def leaf_coercer(annotation: Any, info: Any) -> Any:
    """A function ``(value, ctx) -> coerced value`` (ValueError on a bad value) for one plain
    type, or None when typer's own coercion is needed. ``ctx`` is click's context (an Enum
    choice honours its token normaliser)."""
    if getattr(info, "parser", None) is not None or getattr(info, "min", None) is not None or getattr(info, "max", None) is not None:
        return None
    if annotation is str:
        return lambda value, ctx: str(value)
    if annotation is int:
        return lambda value, ctx: _integer(value)
    if annotation is float:
        return lambda value, ctx: _number(value)
    if annotation is bool:
        return lambda value, ctx: _boolean(value)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        choices, case_sensitive = list(annotation), bool(getattr(info, "case_sensitive", True))
        return lambda value, ctx: _choice(value, choices=choices, case_sensitive=case_sensitive, ctx=ctx)
    if annotation is Path and _plain_path(info):
        return lambda value, ctx: value if isinstance(value, Path) else Path(value)
    return None


def _number(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        raise ValueError(f"{value!r} is not a valid float.") from None


def _integer(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError(f"{value!r} is not a valid integer.") from None


#: the spellings pydantic's lax mode (typer's adapter) accepts for a bool
_BOOLEANS = {
    **dict.fromkeys(("1", "on", "t", "true", "y", "yes"), True),
    **dict.fromkeys(("0", "off", "f", "false", "n", "no", ""), False),  # typer: empty is False
}


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _BOOLEANS:
        return _BOOLEANS[value.strip().lower()]
    raise ValueError(f"{value!r} is not a valid boolean.")


def coercer(annotation: Any, info: Any) -> Any:
    """:func:`leaf_coercer` for a plain type or a ``list`` of one."""
    if get_origin(annotation) is list:
        args = get_args(annotation)
        item = leaf_coercer(args[0], info) if len(args) == 1 else None
        if item is None:
            return None
        return lambda value, ctx: [item(v, ctx) for v in (value if isinstance(value, (list, tuple)) else [value])]
    return leaf_coercer(annotation, info)


if _Base is not None:
    from dataclasses import dataclass

    import typer

    @dataclass(frozen=True)
    class PlainRuntimeParam(_Base):  # type: ignore[misc,valid-type]
        """typer's coercion contract (None and multi-value handling are the base class's)
        over a plain function."""

        function: Any = None

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            try:
                return self.function(value, ctx)
            except ValueError as exc:
                raise typer.BadParameter(str(exc), ctx=ctx, param=param) from None


def install(params: list[Any]) -> list[Any]:
    """Give every parameter of a plain type a pydantic-free coercion (see the module
    docstring); the parameters themselves are returned, for ``get_params``."""
    if _Base is None:
        return params
    for param in params:
        descriptor = getattr(param, "type_descriptor", None)
        if descriptor is None or getattr(param, "_runtime_param", "absent") is not None:
            continue
        if getattr(descriptor, "file_annotation", None) is not None:
            continue
        function = coercer(descriptor.annotation, descriptor.parameter_info)
        if function is not None:
            param._runtime_param = PlainRuntimeParam(
                parameter_info=descriptor.parameter_info, annotation=descriptor.annotation, function=function
            )
    return params
