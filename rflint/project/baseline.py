"""Baselines: accept today's findings, fail only on new ones.

``rflint check --write-baseline rflint-baseline.json`` records the current findings and
``--baseline rflint-baseline.json`` hides them. A finding is keyed by (model, layer qualname,
rule code) with a count, never by line number, so moving code does not invalidate the file::

    {"version": 1, "models": {"resnet-cifar": {"layer4.1.conv2": {"RF101": 1}, "": {"RF103": 1}}}}

Rewriting an existing baseline only ever removes entries that were fixed (a ratchet), unless
``force`` is given; entries that no longer match any finding are reported as stale. A file is
only ever replaced by a baseline if it is one (a mistyped ``--write-baseline model.py`` is
refused), atomically, and the entries of models this run did not check are kept.
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
from rflint.safe_write import write_atomic

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
    """The baseline to write: with ``force`` (or no old one) exactly the current findings of
    the models checked; otherwise the old entries lowered to what is still found (fixed entries
    removed, new findings NOT added). Entries of models not checked in this run (not selected,
    or failed to load) are kept as they were, with or without ``force``: a broken import must
    not silently drop a model's accepted findings."""
    current = Counter(_key(f) for f in findings)
    if old is None:
        return _nest(current)
    models = None if checked_models is None else set(checked_models)

    def checked(model: str) -> bool:
        return models is None or model in models

    if force:
        kept = {k: n for k, n in _counts(old).items() if not checked(k[0])}
        kept.update(current)
        return _nest(kept)
    kept = {k: (min(n, current[k]) if checked(k[0]) else n) for k, n in _counts(old).items()}
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
    except RecursionError:
        raise ConfigError(f"{source}: not an rflint baseline (nested too deeply)", hint="regenerate it with --write-baseline") from None
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(SCHEMA).iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "top level"
        raise ConfigError(f"{source}: not an rflint baseline ({where}: {error.message})", hint="regenerate it with --write-baseline")
    return data["models"]


def read_baseline(path: str | Path) -> Baseline:
    """Load a baseline file.

    Raises:
        ConfigError: missing, unreadable, not UTF-8 or invalid.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: baseline file not found", hint="create it with --write-baseline") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not an rflint baseline (not UTF-8 text: byte {e.start})", hint="regenerate it with --write-baseline") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read baseline: {e.strerror or e}") from None
    return loads(text, str(path))


def existing_baseline(path: str | Path) -> Baseline | None:
    """The baseline ``--write-baseline`` is about to replace: None when there is no file (or an
    empty one) to keep.

    Raises:
        ConfigError: ``path`` exists but is not an rflint baseline (a source file, another
            tool's JSON, a folder): it is never overwritten, not even with ``--force``.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder, not a baseline file", hint="give --write-baseline a file name such as rflint-baseline.json")
    if not path.exists() and not path.is_symlink():
        return None
    try:
        if not path.read_bytes().strip():
            return None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read baseline: {e.strerror or e}") from None
    try:
        return read_baseline(path)
    except ConfigError as e:
        raise ConfigError(
            f"refusing to overwrite {path}: it is not an rflint baseline ({str(e).removeprefix(f'{path}: ')})",
            hint="choose a new file name for --write-baseline, or delete the file yourself",
        ) from None


def write_baseline(path: str | Path, baseline: Baseline) -> None:
    """Write ``baseline`` atomically (callers check the old file with :func:`existing_baseline`).

    Raises:
        ConfigError: the file cannot be written.
    """
    try:
        write_atomic(path, dumps(baseline))
    except OSError as e:
        raise ConfigError(f"{path}: cannot write baseline: {e.strerror or e}", hint="check the path and its permissions") from None
