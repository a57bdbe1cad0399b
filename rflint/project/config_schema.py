"""The JSON Schema of ``[tool.rflint]`` (``config_schema.json``, next to this module) and what
its errors read like. The rule selectors are filled from the rule registry at load time, so
unknown keys, wrong types and unknown rule codes all fail the same way: a
:class:`~rflint.errors.ConfigError` naming the file and the key path the user wrote
(``tool.rflint.models[0].input-size``). jsonschema is imported only when a table is validated
(:class:`rflint.project.config.ValidationMemo` skips tables seen valid)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rflint.checks import ALL_RULES
from rflint.errors import ConfigError

if TYPE_CHECKING:
    import jsonschema


@lru_cache(maxsize=1)
def config_schema() -> dict[str, Any]:
    """The JSON Schema of the config table, with rule selectors filled from the registry."""
    schema = json.loads(resources.files("rflint.project").joinpath("config_schema.json").read_text(encoding="utf-8"))
    schema = copy.deepcopy(schema)
    schema["$defs"]["selector"]["enum"] = sorted(selectors())
    schema["$defs"]["rule-key"]["enum"] = sorted(_rule_keys())
    return schema


@lru_cache(maxsize=1)
def config_validator() -> jsonschema.protocols.Validator:
    """The schema's validator (the schema itself is checked against its metaschema by the
    tests, not on every run)."""
    import jsonschema

    schema = config_schema()
    return jsonschema.validators.validator_for(schema)(schema)


def check_schema(table: Any, source: Path, prefix: str) -> None:
    """Validate ``table`` against :func:`config_schema`.

    Raises:
        ConfigError: naming ``source`` and the key path of the first problem (by key path),
            and how many more there are.
    """
    errors = sorted(config_validator().iter_errors(table), key=lambda e: key_path(prefix, e.absolute_path))
    if errors:
        first = _describe(errors[0], prefix)
        more = f" (and {len(errors) - 1} more problem{'s' * (len(errors) > 2)})" if len(errors) > 1 else ""
        raise ConfigError(f"{source}: {first}{more}", hint="see the configuration reference in docs/configuration.md")


def selectors() -> frozenset[str]:
    """Every valid selector: ALL, every prefix of every code (R, RF, RF1, RF10, RF101), every name."""
    out = {"ALL"}
    for rule in ALL_RULES:
        out.update(rule.code[:i] for i in range(1, len(rule.code) + 1))
        out.add(rule.name)
    return frozenset(out)


def _rule_keys() -> frozenset[str]:
    return frozenset(k for rule in ALL_RULES for k in (rule.code, rule.name))


def key_path(prefix: str, path: Iterable[str | int]) -> str:
    out = prefix
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _describe(error: jsonschema.ValidationError, prefix: str) -> str:
    """One line for one schema error, naming the key path the user wrote."""
    where = key_path(prefix, error.absolute_path) or "top level"
    if error.validator == "additionalProperties":
        allowed = set(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - allowed)
        keys = ", ".join(key_path(prefix, [*error.absolute_path, k]) for k in unknown)
        return f"unknown key {keys} (allowed: {', '.join(sorted(allowed))})"
    if error.validator == "enum" and error.validator_value == ["error", "warn", "info", "ignore"]:
        return f"{where}: severity must be one of error, warn, info, ignore, not {error.instance!r}"
    if error.validator == "enum" and set(error.validator_value) <= selectors():
        return f"{where}: unknown rule code or name {error.instance!r}"
    if error.validator == "enum":
        allowed = ", ".join(json.dumps(v) for v in error.validator_value)
        return f"{where}: must be one of {allowed}, not {error.instance!r}"
    if error.validator == "propertyNames":
        return f"{where}: unknown rule code or name {error.instance!r}"
    if error.validator == "not" and error.validator_value == {"required": ["input-size", "input-shape"]}:
        return f"{where}: give input-size or input-shape, not both"
    if error.validator == "oneOf":
        return f"{where}: must be a positive integer or a list of positive integers, not {error.instance!r}"
    if error.validator == "type":
        return f"{where}: must be of type {error.validator_value}, not {type(error.instance).__name__} {error.instance!r}"
    if error.validator == "required":
        return f"{where}: {error.message}"
    return f"{where}: {error.message}"
