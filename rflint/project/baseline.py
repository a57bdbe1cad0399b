"""Baselines: accept today's findings, fail only on new ones.

``rflint check --write-baseline rflint-baseline.json`` records the current findings and
``--baseline rflint-baseline.json`` hides them. A finding is keyed by (model, layer qualname,
rule code) with a count, never by line number, so moving code does not invalidate the file::

    {"version": 1, "models": {"resnet-cifar": {"layer4.1.conv2": {"RF101": 1}, "": {"RF103": 1}}}}

Rewriting an existing baseline only ever removes entries that were fixed (a ratchet), unless
``force`` is given; entries that no longer match any finding are reported as stale.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import jsonschema

from rflint.errors import ConfigError
from rflint.ir import Finding

VERSION = 1

#: model -> layer qualname ("" for model-level findings) -> rule code -> count
Baseline = dict[str, dict[str, dict[str, int]]]

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["version", "models"],
    "properties": {
        "version": {"const": VERSION},
        "models": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "propertyNames": {"pattern": "^[A-Z]+[0-9]+$"},
                    "additionalProperties": {"type": "integer", "minimum": 1},
                },
            },
        },
    },
}


@dataclass(frozen=True)
class StaleEntry:
    """A baseline entry with more findings recorded than found now (``count`` of them fixed)."""

    model: str
    layer: str
    code: str
    count: int


@dataclass(frozen=True)
class BaselineResult:
    new: list[Finding]  # not covered by the baseline: these are reported
    baselined: list[Finding]  # covered: hidden
    stale: list[StaleEntry]  # recorded but fixed


def _key(f: Finding) -> tuple[str, str, str]:
    return (f.model, f.layer, f.code)


def _counts(baseline: Mapping[str, Mapping[str, Mapping[str, int]]]) -> Counter[tuple[str, str, str]]:
    return Counter(
        {(model, layer, code): n for model, layers in baseline.items() for layer, codes in layers.items() for code, n in codes.items()}
    )


def _nest(counts: Mapping[tuple[str, str, str], int]) -> Baseline:
    out: Baseline = {}
    for (model, layer, code), n in sorted(counts.items()):
        if n > 0:
            out.setdefault(model, {}).setdefault(layer, {})[code] = n
    return out


def baseline_from(findings: Iterable[Finding]) -> Baseline:
    """The baseline that covers exactly ``findings``."""
    return _nest(Counter(_key(f) for f in findings))


def apply_baseline(findings: Iterable[Finding], baseline: Baseline, checked_models: Iterable[str] | None = None) -> BaselineResult:
    """Split ``findings`` into new and baselined ones, and list stale entries.

    Args:
        findings: the findings of this run (after configuration and suppressions).
        baseline: a loaded baseline.
        checked_models: the models checked in this run; entries of other models are not stale
            (they were just not looked at). None: every model in the baseline counts.
    """
    budget = _counts(baseline)
    new: list[Finding] = []
    covered: list[Finding] = []
    for f in findings:
        k = _key(f)
        if budget[k] > 0:
            budget[k] -= 1
            covered.append(f)
        else:
            new.append(f)
    models = None if checked_models is None else set(checked_models)
    stale = [
        StaleEntry(model, layer, code, n)
        for (model, layer, code), n in sorted(budget.items())
        if n > 0 and (models is None or model in models)
    ]
    return BaselineResult(new, covered, stale)


def update_baseline(
    old: Baseline | None, findings: Iterable[Finding], force: bool = False, checked_models: Iterable[str] | None = None
) -> Baseline:
    """The baseline to write: with ``force`` (or no old one) exactly the current findings;
    otherwise the old entries lowered to what is still found (fixed entries removed, new
    findings NOT added). Entries of models not checked in this run are kept as they were."""
    current = Counter(_key(f) for f in findings)
    if old is None or force:
        return _nest(current)
    models = None if checked_models is None else set(checked_models)
    kept = {k: (min(n, current[k]) if models is None or k[0] in models else n) for k, n in _counts(old).items()}
    return _nest(kept)


def dumps(baseline: Baseline) -> str:
    return json.dumps({"version": VERSION, "models": baseline}, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def loads(text: str, source: str = "<baseline>") -> Baseline:
    """Parse and validate a baseline file's text.

    Raises:
        ConfigError: not JSON, or not a version-1 rflint baseline.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{source}: baseline is not valid JSON: {e.msg} (line {e.lineno})") from None
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(SCHEMA).iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "top level"
        raise ConfigError(f"{source}: not an rflint baseline ({where}: {error.message})", hint="regenerate it with --write-baseline")
    return data["models"]


def read_baseline(path: str | Path) -> Baseline:
    """Load a baseline file.

    Raises:
        ConfigError: missing, unreadable or invalid.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: baseline file not found", hint="create it with --write-baseline") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read baseline: {e.strerror}") from None
    return loads(text, str(path))


def write_baseline(path: str | Path, baseline: Baseline) -> None:
    Path(path).write_text(dumps(baseline), encoding="utf-8")
