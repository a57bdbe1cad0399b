"""JSON round-trip for rflint's frozen records (IR, analysis, reports). Stdlib only.

The result cache stores a model's whole report, and ``rflint diff`` receives the base
revision's reports from another process, so every record must survive JSON exactly: fractions
(jumps after upsampling) stay fractions, ``inf`` stays ``inf``, tuples stay tuples and enums
stay enums. Decoding follows the dataclasses' own type annotations, so a record that gains a
field needs no change here.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
import typing
from collections.abc import Mapping
from fractions import Fraction
from functools import lru_cache
from typing import Any

#: bump when a record changes in a way old JSON cannot be decoded into
FORMAT_VERSION = 1


def to_data(value: Any) -> Any:
    """``value`` as JSON-compatible data (dicts, lists, str, int, float, bool, None)."""
    encode = _ENCODERS.get(type(value))
    if encode is None:
        encode = _ENCODERS[type(value)] = _encoder(type(value))
    return encode(value)


#: one encoding function per type, chosen once: every cache miss encodes a whole report, and
#: testing each value against every kind of record cost as much as checking a small model
_ENCODERS: dict[type, typing.Callable[[Any], Any]] = {}


def _encoder(tp: type) -> typing.Callable[[Any], Any]:
    if issubclass(tp, (bool, str, int)) or tp is type(None):
        return _same
    if issubclass(tp, enum.Enum):
        return lambda value: value.value
    if issubclass(tp, Fraction):
        return lambda value: value.numerator if value.denominator == 1 else {"__frac__": [value.numerator, value.denominator]}
    if issubclass(tp, float):
        return _float
    if dataclasses.is_dataclass(tp):
        names = tuple(f.name for f in dataclasses.fields(tp))
        return lambda value: {name: to_data(getattr(value, name)) for name in names}
    if issubclass(tp, Mapping):
        return lambda value: {str(k): to_data(v) for k, v in value.items()}
    if issubclass(tp, (tuple, list)):
        return lambda value: [to_data(v) for v in value]
    if issubclass(tp, (set, frozenset)):
        return lambda value: sorted(to_data(v) for v in value)

    def refuse(value: Any) -> Any:
        raise TypeError(f"cannot serialise {type(value).__name__}")

    return refuse


def _same(value: Any) -> Any:
    return value


def _float(value: float) -> Any:
    if math.isinf(value):
        return {"__inf__": 1 if value > 0 else -1}
    return value


def _scalar(data: Any) -> Any:
    """Tagged numbers back to numbers; anything else unchanged."""
    if isinstance(data, dict):
        if "__frac__" in data:
            p, q = data["__frac__"]
            return Fraction(p, q)
        if "__inf__" in data:
            return math.inf if data["__inf__"] > 0 else -math.inf
    return data


@lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    module = __import__(cls.__module__, fromlist=["_"])
    return typing.get_type_hints(cls, vars(module))


def from_data(tp: Any, data: Any) -> Any:
    """Decode ``data`` (from :func:`to_data`) into an instance of type ``tp``."""
    return _decoder(tp)(data)


Decoder = typing.Callable[[Any], Any]


@lru_cache(maxsize=None)
def _decoder(tp: Any) -> Decoder:
    """A decoding function specialised for ``tp``, built once per type: a cached report is
    decoded on every cache hit, and walking the annotations for every value would make that
    the largest step of a hit.

    Decoding is strict: ``null`` only where the type allows None, lists only as lists and
    objects only as objects, tuples of fixed length only at that length. A cache entry or a
    worker's payload that is valid JSON but not a record (a hand edit, another version's
    layout) is then a ``TypeError``/``ValueError`` here, never a record that fails later."""
    shape = _shape(tp)
    nullable = _allows_none(tp)
    if shape in (_int, _str, _bool):  # leaves: a tagged number is a TypeError either way
        return lambda data: None if data is None and nullable else shape(data)

    def decode(data: Any) -> Any:
        if data.__class__ is dict:  # tags are objects
            data = _scalar(data)
        if data is None and nullable:
            return None
        return shape(data)

    return decode


def _allows_none(tp: Any) -> bool:
    """Whether ``None`` is a value of ``tp`` (``X | None``, ``Optional[X]``, ``Any``, ``object``)."""
    if tp is Any or tp is object or tp is type(None):
        return True
    origin = typing.get_origin(tp)
    return origin in (typing.Union, types.UnionType) and any(_allows_none(a) for a in typing.get_args(tp))


def _sequence(data: Any) -> list[Any]:
    if not isinstance(data, list):
        raise TypeError(f"needs a list, not {type(data).__name__}")
    return data


def _fixed(items: tuple[Decoder, ...]) -> Decoder:
    def decode(data: Any) -> tuple[Any, ...]:
        if len(_sequence(data)) != len(items):
            raise ValueError(f"needs {len(items)} items, not {len(data)}")
        return tuple(dec(v) for dec, v in zip(items, data))

    return decode


def _mapping(value: Decoder) -> Decoder:
    def decode(data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise TypeError(f"needs an object, not {type(data).__name__}")
        return {k: value(v) for k, v in data.items()}

    return decode


def _shape(tp: Any) -> Decoder:
    """The decoder of a non-None value of type ``tp``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return _union(args)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass(tp)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            item = _decoder(args[0])
            return lambda data: tuple(item(v) for v in _sequence(data))
        return _fixed(tuple(_decoder(a) for a in args))
    if origin is list:
        item = _decoder(args[0])
        return lambda data: [item(v) for v in _sequence(data)]
    if origin in (frozenset, set):
        item = _decoder(args[0])
        return lambda data: frozenset(item(v) for v in _sequence(data))
    if origin in (dict, Mapping, typing.Mapping) or tp in (dict, Mapping):
        return _mapping(_decoder(args[1] if len(args) == 2 else Any))
    if tp in _SCALARS:
        return _SCALARS[tp]
    return _deep_scalar  # Any / object: plain JSON data


def _union(args: tuple[Any, ...]) -> Decoder:
    members = [_shape(a) for a in args if a is not type(None)]
    numeric = any(a in (int, float, Fraction) for a in args)

    def decode(data: Any) -> Any:
        if numeric and isinstance(data, int) and not isinstance(data, bool):
            return data  # a whole number typed ``Fraction | float`` stays an int, as the algebra makes it
        for member in members:
            try:
                if data.__class__ is dict:
                    data = _scalar(data)
                return member(data)
            except (TypeError, ValueError, KeyError):
                continue
        raise ValueError(f"no member of {args} fits {data!r}")

    return decode


def _dataclass(tp: type) -> Decoder:
    plan: list[tuple[str, Decoder]] = []

    def decode(data: Any) -> Any:
        if not isinstance(data, dict):
            raise TypeError(f"{tp.__name__} needs an object")
        if not plan:  # resolved on first use: a record may refer to its own type
            hints = _hints(tp)
            plan.extend((f.name, _decoder(hints[f.name])) for f in dataclasses.fields(tp) if f.init)
        return tp(**{name: dec(data[name]) for name, dec in plan if name in data})

    return decode


def _fraction(data: Any) -> Fraction:
    if isinstance(data, (int, Fraction)):
        return Fraction(data)
    raise TypeError("not a fraction")


def _number(data: Any) -> Any:
    if isinstance(data, (int, float, Fraction)):
        return data  # an int field typed Number stays an int
    raise TypeError("not a number")


def _int(data: Any) -> int:
    if isinstance(data, bool) or not isinstance(data, int):
        raise TypeError("not an int")
    return data


def _str(data: Any) -> str:
    if not isinstance(data, str):
        raise TypeError("not a string")
    return data


def _bool(data: Any) -> bool:
    if not isinstance(data, bool):
        raise TypeError("not a bool")
    return data


_SCALARS: dict[Any, Decoder] = {Fraction: _fraction, float: _number, int: _int, str: _str, bool: _bool}


def _deep_scalar(data: Any) -> Any:
    data = _scalar(data)
    if isinstance(data, dict):
        return {k: _deep_scalar(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_deep_scalar(v) for v in data]
    return data
