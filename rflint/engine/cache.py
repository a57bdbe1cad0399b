"""The result cache: a model's raw report, reused while nothing it depends on has changed.

A developer runs rflint on every commit, and most commits do not touch a model. Building,
tracing and analysing a model needs torch (seconds to import); reading a cached report needs
nothing but this module, JSON and :mod:`rflint.serialize`, so a hit answers without importing
torch at all (``tests/engine/test_cache.py`` checks ``sys.modules`` in a subprocess).

**What is cached**: the *raw* :class:`~rflint.results.ModelReport` of one model (analysis and
rule findings at their default severities). Configuration (select, ignore, severities,
overrides), suppression comments, the baseline and RF100 are applied after the cache, by
:func:`rflint.engine.pipeline.resolve_findings`, so a new ``# noqa`` or ``ignore`` is honoured on a hit.

**Failures** are cached like reports, under the same key and dependencies: a model that
cannot be checked (a :class:`~rflint.errors.RflintError`: it cannot be imported, built, traced
or run at its input shape) must not pay torch and the rebuild on every commit. A hit raises the
same error class with the same message and hint, so the run prints what the miss printed. An
import that failed on a missing module also records, as absent, every file that would provide
it on the project's folders, so creating that file is a miss. Errors that depend on the
machine (the memory cap) or on rflint itself (an unexpected exception) are never cached.

The key and the dependencies an entry is checked against are :mod:`rflint.engine.cache_keys`'s;
the folder the entries live in, and what may be written and deleted there, :mod:`rflint.engine.cache_dir`'s.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rflint._version import __version__
from rflint.engine.cache_dir import create, resolve_root
from rflint.engine.cache_keys import ENTRY_FORMAT, recorded_dependencies, rflint_fingerprint, run_context, spec_fingerprint, target_file
from rflint.engine.fingerprints import FileState, Unmovable, changed_files, file_records, relocate
from rflint.errors import ConfigError
from rflint.errors import RflintError, ShapeError, TargetError, TraceError, UsageError
from rflint.results import ModelReport
from rflint.safe_write import write_atomic
from rflint.serialize import from_data, to_data
from rflint.spec import ModelSpec

#: entries (and rflint versions) not used for this long are removed
MAX_AGE = 7 * 24 * 3600
#: the failures a cache entry may hold, by class name
_ERRORS: dict[str, type[RflintError]] = {c.__name__: c for c in (TargetError, TraceError, ShapeError, UsageError)}


# ---------------------------------------------------------------------------------------------
# the store


@dataclass(frozen=True)
class ResultCache:
    """One cache directory and the run context its entries are keyed on (picklable, so that
    worker processes can write to it)."""

    root: Path
    context: str

    @classmethod
    def for_run(cls, config_root: Path, config_table: Mapping[str, Any], cache_dir: Path | None, env_dir: str | None) -> ResultCache:
        """The cache of a run: ``$RFLINT_CACHE_DIR`` (``env_dir``), else the config's
        ``cache-dir``, else ``.rflint_cache`` in the project root (the config's directory)."""
        return cls(resolve_root(config_root, cache_dir, env_dir), run_context(config_table))

    @property
    def folder(self) -> Path:
        return self.root / f"v{ENTRY_FORMAT}-{__version__}"

    def entry_path(self, spec: ModelSpec) -> Path:
        key = hashlib.sha256(f"{self.context}\n{spec_fingerprint(spec)}".encode()).hexdigest()[:40]
        return self.folder / f"{key}.json"

    def lookup(self, spec: ModelSpec) -> ModelReport | RflintError | None:
        """The cached raw report of ``spec``, the error it failed with, or None (no entry, a
        changed dependency, or an entry rflint cannot use: not JSON, truncated, binary, or JSON
        of the wrong structure, which the strict decoder of :mod:`rflint.serialize` refuses). A
        miss is checked again and its entry rewritten, so a poisoned entry costs one run, never
        every run. An edit that changed no code is a hit: the report's positions follow it and
        the entry is rewritten with the new bytes."""
        t0 = time.perf_counter()
        path = self.entry_path(spec)
        try:
            data = json.loads(path.read_bytes())
            if not isinstance(data, dict) or data.get("format") != ENTRY_FORMAT or not isinstance(data.get("files"), dict):
                return None
            changed = changed_files(data["files"])
            if changed is None:
                return None
            if data.get("failure") is not None:
                # a failure's message may name a line: replayed only while no file moved
                return None if changed else replayed_failure(data["failure"])
            report = from_data(ModelReport, data["report"])
            if not isinstance(report, ModelReport):
                return None
            if changed:
                report = self._follow(spec, report, data, changed)
        except Unmovable:
            return None
        except Exception:  # noqa: BLE001 - a missing or corrupt entry is a miss, never an error
            return None
        if not changed:
            with contextlib.suppress(OSError):
                os.utime(path)  # used: not stale
        return replace(report, spec=spec, timings={"cache": time.perf_counter() - t0})

    def _follow(self, spec: ModelSpec, report: ModelReport, data: Mapping[str, Any], changed: Mapping[str, FileState]) -> ModelReport:
        """``report`` after edits that changed no code: positions moved, the entry rewritten."""
        records = data["files"]
        moved = {p: (s.tokens, records[p]["anchors"]) for p, s in changed.items() if s.tokens is not None and "anchors" in records[p]}
        if moved:
            report = relocate(report, moved)
        states = {p: changed.get(p) or FileState(r["sha"], r.get("content")) for p, r in records.items()}
        # an unchanged Python file keeps its anchors: its tokens are only known for changed ones
        kept = {p: r for p, r in records.items() if p not in changed}
        self._write(spec, report, {**file_records(report, {p: states[p] for p in changed}), **kept}, data.get("built"))
        return report

    def store(self, spec: ModelSpec, outcome: ModelReport | RflintError, files: Mapping[str, FileState | None]) -> bool:
        """Write the entry (a report or a failure) atomically; False (and nothing written) when
        the directory cannot be written or the report cannot be serialised. A file given as
        None is recorded as absent: its appearance is a miss."""
        report = outcome if isinstance(outcome, ModelReport) else None
        present = {p: s for p, s in files.items() if s is not None}
        records = {**file_records(report, present), **{p: {"sha": None, "content": None} for p, s in files.items() if s is None}}
        return self._write(spec, outcome, records, time.time())

    def _write(self, spec: ModelSpec, outcome: ModelReport | RflintError, records: Mapping[str, Any], built: float | None) -> bool:
        try:
            entry: dict[str, Any] = {"format": ENTRY_FORMAT, "target": spec.target, "built": built, "files": dict(records)}
            if isinstance(outcome, RflintError):
                entry.update(report=None, failure=failure_data(outcome))
            else:
                entry["report"] = to_data(outcome)
            text = json.dumps(entry, separators=(",", ":"))
        except (TypeError, ValueError):
            return False
        try:
            self._prepare()
            write_atomic(self.entry_path(spec), text, make_parents=False)
        except (OSError, ConfigError):
            return False
        return True

    def _prepare(self) -> None:
        """Create the cache folder (:func:`rflint.engine.cache_dir.create`) and this version's
        folder in it (once).

        Raises:
            ConfigError: ``root`` is a folder rflint must never write into.
        """
        create(self.root)
        self.folder.mkdir(exist_ok=True)

    def prune(self, now: float | None = None) -> int:
        """Remove entries, leftover temporary files and whole version folders not used for
        :data:`MAX_AGE`; the number of files removed. Never raises."""
        now = time.time() if now is None else now
        removed = 0
        try:
            folders = [p for p in self.root.iterdir() if p.is_dir()]
        except OSError:
            return 0
        for folder in folders:
            with contextlib.suppress(OSError):
                for entry in folder.iterdir():
                    with contextlib.suppress(OSError):
                        if now - entry.stat().st_mtime > MAX_AGE:
                            entry.unlink()
                            removed += 1
                if folder != self.folder and not any(folder.iterdir()):
                    folder.rmdir()
        return removed


@dataclass(frozen=True)
class ValidConfigs:
    """Configuration tables this rflint build has validated (:class:`rflint.project.config.ValidationMemo`).

    Importing jsonschema costs about 0.1 s, more than the rest of a cached answer, so a table
    validated once is remembered as an empty marker file in its cache directory, named by a hash
    of rflint's fingerprint (the schema and the rule registry are part of it) and the table.
    Any edit of the table, or of rflint, validates again."""

    env_dir: str | None = None

    def _marker(self, source: Path, table: Mapping[str, Any]) -> Path:
        base = source.resolve().parent
        cache_dir = table.get("cache-dir")
        root = resolve_root(base, base / cache_dir if isinstance(cache_dir, str) else None, self.env_dir)
        text = f"{rflint_fingerprint()}\n{json.dumps(dict(table), sort_keys=True, default=repr)}"
        return root / f"v{ENTRY_FORMAT}-{__version__}" / f"config-{hashlib.sha256(text.encode()).hexdigest()[:40]}.valid"

    def seen(self, source: Path, table: Mapping[str, Any]) -> bool:
        marker = self._marker(source, table)
        if not marker.is_file():
            return False
        with contextlib.suppress(OSError):
            os.utime(marker)
        return True

    def remember(self, source: Path, table: Mapping[str, Any]) -> None:
        marker = self._marker(source, table)
        with contextlib.suppress(OSError, ConfigError):
            ResultCache(marker.parent.parent, "")._prepare()
            marker.touch()


# ---------------------------------------------------------------------------------------------
# the linter seam


@dataclass(frozen=True)
class CachedLinter:
    """``engine.check``'s ``linter``: the cached report if there is one, else ``linter``'s,
    stored with its dependencies. ``lookup`` alone never imports torch, so the engine answers
    hits in the main process and sends only misses to worker processes."""

    cache: ResultCache
    linter: Callable[[ModelSpec], ModelReport] = field(repr=False)

    def lookup(self, spec: ModelSpec) -> ModelReport | RflintError | None:
        return self.cache.lookup(spec)

    def __call__(self, spec: ModelSpec) -> ModelReport:
        outcome = self.lookup(spec)
        if isinstance(outcome, RflintError):
            raise outcome
        if outcome is not None:
            return outcome
        failure: RflintError | None = None
        with recorded_dependencies(spec) as files:
            try:
                report = self.linter(spec)
            except RflintError as exc:
                failure = exc
        if failure is None:
            self.cache.store(spec, report, files)
            return report
        if is_cacheable(failure):
            self.cache.store(spec, failure, {**files, **absent_modules(failure, spec)})
        raise failure


# ---------------------------------------------------------------------------------------------
# failures


def is_cacheable(exc: RflintError) -> bool:
    """Errors the key and the dependencies determine (not the machine's memory cap)."""
    return type(exc) in _ERRORS.values() and not getattr(exc, "transient", False)


def failure_data(exc: RflintError) -> dict[str, str]:
    return {"kind": type(exc).__name__, "message": str(exc), "hint": exc.hint}


def replayed_failure(data: Mapping[str, str]) -> RflintError:
    """The error a cached failure stands for: same class, message and hint."""
    return _ERRORS[data["kind"]](data["message"], data.get("hint", ""))


def absent_modules(exc: BaseException, spec: ModelSpec) -> dict[str, None]:
    """For an import that failed on a missing module ``a.b``: every file that would provide it
    (``a.py``, ``a/__init__.py``, ``a/b.py``, ``a/b/__init__.py``) in the project's folders (the
    configured pythonpath, the working directory, the target's folder and those above it up to
    the project root), recorded as absent (``None``): creating one of them is a miss."""
    missing = _missing_module(exc)
    if missing is None:
        return {}
    folders = [Path(p) for p in spec.pythonpath] + [Path.cwd()]
    own = target_file(spec)
    if own is not None:
        folders += list(Path(own).parents)[:8]
    parts = missing.split(".")
    out: dict[str, None] = {}
    for folder in dict.fromkeys(f.resolve() for f in folders):
        for i in range(1, len(parts) + 1):
            base = folder.joinpath(*parts[:i])
            for path in (base.with_suffix(".py"), base / "__init__.py"):
                if not path.exists():
                    out[str(path)] = None
    return out


def _missing_module(exc: BaseException | None) -> str | None:
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, ModuleNotFoundError) and exc.name:
            return exc.name
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None
