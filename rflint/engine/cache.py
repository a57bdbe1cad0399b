"""The result cache: a model's raw report, reused while nothing it depends on has changed.

A developer runs rflint on every commit, and most commits do not touch a model. Building,
tracing and analysing a model needs torch (seconds to import); reading a cached report needs
nothing but this module, JSON and :mod:`rflint.serialize`, so a hit answers without importing
torch at all (``tests/engine/test_cache.py`` checks ``sys.modules`` in a subprocess).

**What is cached**: the *raw* :class:`~rflint.results.ModelReport` of one model (analysis and
rule findings at their default severities). Configuration (select, ignore, severities,
overrides), suppression comments, the baseline and RF100 are applied after the cache, by
:func:`rflint.engine.pipeline.resolve_findings`, so a new ``# noqa`` or ``ignore`` is honoured on a hit.

**The key** (an entry's file name) hashes everything that is known before the model runs:

- rflint itself: its version and a hash of every ``.py``/``.json`` file of the package (the
  version string does not change between commits of a checkout);
- the interpreter and the installed libraries: Python's version and ``sys.prefix``, and the
  name and version of *every* installed distribution (the ``*.dist-info`` / ``*.egg-info``
  folders on ``sys.path``). Any ``pip install`` therefore invalidates every entry once; mapping
  a model's imports to their distributions would save that at 0.3 s per miss
  (``importlib.metadata.packages_distributions``), and a changed library is rare next to a
  changed model;
- the model spec (target, input geometry, kwargs, leaf modules, name), the working
  directory and ``sys.path`` (a relative target or a module name means a different file
  elsewhere, or with another ``PYTHONPATH``);
- the configuration table, minus :data:`POST_CACHE_KEYS` (the keys that act after the cache, and
  ``models``, whose entries reach the key as their spec). A key this module does not know,
  such as a future table of custom ops, therefore invalidates by default.

**Dependencies** (recorded after a miss, checked on every lookup): the hash of every
project-local file the model's import executed or read, of its bytes and of its meaning
(:mod:`rflint.engine.fingerprints`: a Python file's tokens without comments and layout, a JSON, TOML
or YAML file's parsed value). Unchanged bytes are a hit at once; changed bytes with the same
meaning (a comment, a blank line, a reformat) are a hit too, with the report's source
positions moved to the same tokens in the new text, and the entry is rewritten with the new
bytes (its ``built`` time kept: the analysis is the one of the first run). The files: the target file (or ONNX file), every
module in ``sys.modules`` whose file lives outside the standard library, site-packages and
rflint, and every file opened for reading while the model was built and traced (an audit hook:
a factory that reads a YAML file). Project-local modules are recorded whether or not this
model imported them first: a module imported by an earlier model of the same process is
shared, and leaving it out could turn an edit into a wrong hit, so a process checking several
models over-approximates (an edit may invalidate a neighbour) rather than under-approximates.

**Failures** are cached like reports, under the same key and dependencies: a model that
cannot be checked (a :class:`~rflint.errors.RflintError`: it cannot be imported, built, traced
or run at its input shape) must not pay torch and the rebuild on every commit. A hit raises the
same error class with the same message and hint, so the run prints what the miss printed. An
import that failed on a missing module also records, as absent, every file that would provide
it on the project's folders, so creating that file is a miss. Errors that depend on the
machine (the memory cap) or on rflint itself (an unexpected exception) are never cached.

**On disk**: ``.rflint_cache/`` next to the configuration file (else in the working
directory), or ``cache-dir`` in the config, or ``$RFLINT_CACHE_DIR`` (which wins). It holds a
``CACHEDIR.TAG`` and a ``.gitignore`` of ``*`` (as ruff's), and one folder per cache format
and rflint version with one JSON file per entry. The folder must be new, empty or rflint's own
(its CACHEDIR.TAG), and never the project root or a folder above it (:func:`check_root`), and
``clean`` deletes only the files rflint writes, so no setting can make rflint delete a project.
Writes are atomic (:func:`rflint.safe_write.write_atomic`), so processes can write side by side. Entries not used for
:data:`MAX_AGE` are pruned; a corrupt or unreadable entry is a miss (and is rewritten); a
directory that cannot be written is never an error, the run just is not cached.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import site
import sys
import sysconfig
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from rflint._version import __version__
from rflint.engine.fingerprints import FileState, Unmovable, changed_files, file_records, file_state, relocate
from rflint.errors import ConfigError
from rflint.errors import RflintError, ShapeError, TargetError, TraceError, UsageError
from rflint.results import ModelReport
from rflint.safe_write import write_atomic
from rflint.serialize import from_data, to_data
from rflint.spec import ModelSpec

#: bump when the entry layout changes (the serialised records are covered by rflint's hash)
ENTRY_FORMAT = 2
DEFAULT_DIR = ".rflint_cache"
#: configuration keys applied after the cache, and ``models`` (each entry's spec is keyed)
POST_CACHE_KEYS = frozenset(
    {"select", "extend-select", "ignore", "rules", "overrides", "models", "cache-dir", "baseline", "output-format", "output-file", "timeout"}
)
#: entries (and rflint versions) not used for this long are removed
MAX_AGE = 7 * 24 * 3600
_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by rflint.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)
_GITIGNORE = "# Automatically created by rflint.\n*\n"
_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the rflint package
_SYSTEM_DIRS = ("/proc/", "/sys/", "/dev/")
#: the failures a cache entry may hold, by class name
_ERRORS: dict[str, type[RflintError]] = {c.__name__: c for c in (TargetError, TraceError, ShapeError, UsageError)}


# ---------------------------------------------------------------------------------------------
# the key


@lru_cache(maxsize=1)
def rflint_fingerprint() -> str:
    """rflint's version and a hash of its own source files (walked as strings, not paths: this
    runs on every hit)."""
    digest = hashlib.sha256(__version__.encode())
    root = str(_PACKAGE_DIR)
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        files.extend(os.path.join(folder, n)[len(root) + 1 :] for n in names if n.endswith((".py", ".json")))
    for relative in sorted(files, key=lambda r: r.split(os.sep)):  # the order of the paths' parts
        digest.update(relative.encode())
        with open(os.path.join(root, relative), "rb") as f:
            digest.update(f.read())
    return f"{__version__}-{digest.hexdigest()[:16]}"


def installed_distributions() -> list[str]:
    """``name-version`` of every distribution on ``sys.path`` (one directory listing each)."""
    found = set()
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        found.update(n for n in names if n.endswith((".dist-info", ".egg-info")))
    return sorted(found)


def config_fingerprint(table: Mapping[str, Any]) -> str:
    """The configuration keys that can change a raw report, as canonical JSON."""
    kept = {k: v for k, v in table.items() if k not in POST_CACHE_KEYS}
    return json.dumps(kept, sort_keys=True, default=str)


def run_context(config_table: Mapping[str, Any]) -> str:
    """A hash of everything but the spec that a raw report depends on (see the docstring)."""
    parts = {
        "format": ENTRY_FORMAT,
        "rflint": rflint_fingerprint(),
        "python": [sys.version, sys.implementation.cache_tag, sys.prefix],
        "distributions": installed_distributions(),
        "config": config_fingerprint(config_table),
        "cwd": os.getcwd(),
        "path": sys.path[1:],  # PYTHONPATH and site folders; [0] is the script's folder
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def spec_fingerprint(spec: ModelSpec) -> str:
    try:
        data: Any = to_data(spec)
    except TypeError:  # a kwarg JSON cannot hold (a TOML date): its repr is stable
        data = repr(spec)
    return json.dumps(data, sort_keys=True, default=repr)


# ---------------------------------------------------------------------------------------------
# dependencies


@lru_cache(maxsize=1)
def _library_roots() -> tuple[str, ...]:
    """Folders whose files are covered by the key (interpreter, installed libraries, rflint)."""
    paths = sysconfig.get_paths()
    roots = {paths.get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    with contextlib.suppress(AttributeError):
        roots.update(site.getsitepackages())
    with contextlib.suppress(AttributeError):
        roots.add(site.getusersitepackages())
    roots.update(p for p in sys.path if os.path.basename(p) in ("site-packages", "dist-packages"))
    roots.add(str(_PACKAGE_DIR))
    both = {os.path.abspath(r) for r in roots if r} | {os.path.realpath(r) for r in roots if r}
    return tuple(os.path.join(r, "") for r in both) + _SYSTEM_DIRS


def is_project_file(path: str) -> bool:
    """A regular file outside the standard library, site-packages, rflint and the system's
    pseudo file systems; byte-code caches are left out (their source is recorded)."""
    if not path or path.endswith((".pyc", ".pyo")) or f"{os.sep}__pycache__{os.sep}" in path:
        return False
    roots = _library_roots()
    if path.startswith(roots) or os.path.realpath(path).startswith(roots):
        return False
    return os.path.isfile(path)


class _OpenedFiles:
    """Files opened for reading while a model is built and traced, from the ``open`` audit
    event (an audit hook cannot be removed, so one is installed per process, and it records
    only while a recording is active)."""

    active: list[set[str]] = []
    installed = False

    @classmethod
    def hook(cls, event: str, args: tuple) -> None:
        if event != "open" or not cls.active:
            return
        try:
            path, mode, flags = args
            if isinstance(path, int) or path is None:
                return
            if isinstance(mode, str) and any(c in mode for c in "wax+"):
                return
            if mode is None and isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR):
                return
            cls.active[-1].add(os.path.abspath(os.fsdecode(path)))
        except Exception:  # noqa: BLE001 - an audit hook must never fail the operation
            return

    @classmethod
    @contextlib.contextmanager
    def recording(cls) -> Iterator[set[str]]:
        if not cls.installed:
            sys.addaudithook(cls.hook)
            cls.installed = True
        opened: set[str] = set()
        cls.active.append(opened)
        try:
            yield opened
        finally:
            cls.active.remove(opened)


def loaded_module_files() -> set[str]:
    """The files of every module in ``sys.modules`` (modules without a file left out)."""
    files = set()
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if isinstance(file, str):
            files.add(os.path.abspath(file))
    return files


def target_file(spec: ModelSpec) -> str | None:
    """The file a file, ONNX or pickle target names, if it is one."""
    from rflint.sources.targets import split_target

    path = split_target(spec.target)[0]
    return os.path.abspath(path) if os.path.isfile(path) else None


@contextlib.contextmanager
def recorded_dependencies(spec: ModelSpec) -> Iterator[dict[str, FileState]]:
    """Record what ``spec``'s model depends on: on exit the yielded dict holds the state of
    every project-local file it executed or read (see the module docstring)."""
    deps: dict[str, FileState] = {}
    with _OpenedFiles.recording() as opened:
        yield deps
    candidates = opened | loaded_module_files()
    own = target_file(spec)
    if own is not None:
        candidates.add(own)
    for path in sorted(candidates):
        if path == own or is_project_file(path):
            state = file_state(path)
            if state is not None:
                deps[path] = state


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
        """Create the directory with its CACHEDIR.TAG and .gitignore (once).

        Raises:
            ConfigError: ``root`` is a folder with other files and no rflint CACHEDIR.TAG
                (:func:`check_root`): nothing is ever written into it.
        """
        problem = root_problem(self.root)
        if problem:
            raise ConfigError(f"cache folder {self.root} {problem}")
        self.root.mkdir(parents=True, exist_ok=True)
        for name, text in (("CACHEDIR.TAG", _TAG), (".gitignore", _GITIGNORE)):
            marker = self.root / name
            if not marker.exists():
                write_atomic(marker, text, make_parents=False)
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


def resolve_root(config_root: Path, cache_dir: Path | None, env_dir: str | None) -> Path:
    """The cache folder of a run: ``$RFLINT_CACHE_DIR`` (``env_dir``), else ``cache-dir``, else
    ``.rflint_cache`` in the project root.

    Raises:
        ConfigError: the folder is one rflint must never write into or delete (:func:`check_root`).
    """
    if env_dir:
        root, key = Path(env_dir).expanduser().absolute(), "RFLINT_CACHE_DIR"
    elif cache_dir is not None:
        root, key = cache_dir.absolute(), "cache-dir"
    else:
        root, key = (config_root / DEFAULT_DIR).absolute(), "cache-dir"
    check_root(root, config_root, key)
    return root


def root_problem(root: Path, project_root: Path | None = None) -> str:
    """Why ``root`` cannot be rflint's cache folder ("" if it can): the project root or a
    folder above it (``clean`` would delete the project), something that is not a folder, or a
    folder holding other files without rflint's CACHEDIR.TAG (a source folder)."""
    try:
        real = root.resolve()
        if project_root is not None:
            project = project_root.resolve()
            if real == project:
                return "is the project root (the config file's folder)"
            if real in project.parents:
                return f"is a parent of the project root {project}"
        if real == Path(real.anchor) or real == Path.home().resolve():
            return "is a file system root or the home folder"
        if not root.exists():
            return ""
        if not root.is_dir():
            return "is not a folder"
        if is_cache_dir(root) or all(_rflint_name(p) for p in root.iterdir()):
            return ""  # tagged, or empty, or being created by another rflint process right now
    except (OSError, RuntimeError) as exc:  # a symlink loop, a folder that cannot be listed
        return f"cannot be used ({getattr(exc, 'strerror', None) or exc})"
    return "is a folder with other files and no CACHEDIR.TAG written by rflint"


def check_root(root: Path, project_root: Path, key: str = "cache-dir") -> None:
    """Refuse a cache folder :func:`root_problem` finds fault with.

    Raises:
        ConfigError: naming ``key`` (``cache-dir`` or ``RFLINT_CACHE_DIR``) and the fix.
    """
    problem = root_problem(root, project_root)
    if problem:
        raise ConfigError(
            f"{key} {root} {problem}: rflint writes and deletes its cache there",
            hint=f"set {key} to a new or empty folder, such as {DEFAULT_DIR}",
        )


def is_cache_dir(path: Path) -> bool:
    """True if ``path`` is a directory this module created (it holds rflint's CACHEDIR.TAG)."""
    try:
        return (path / "CACHEDIR.TAG").read_text(encoding="utf-8") == _TAG
    except (OSError, UnicodeDecodeError):
        return False


def _rflint_name(path: Path) -> bool:
    """Whether an entry at the top of a cache folder has a name rflint gives it (the markers,
    their temporary files while they are written, a version folder)."""
    name = path.name
    if name in ("CACHEDIR.TAG", ".gitignore"):
        return True
    if name.startswith((".CACHEDIR.TAG.", ".gitignore.")) and name.endswith(".tmp"):
        return True
    return name.startswith(f"v{ENTRY_FORMAT}-") and path.is_dir()


def _written_by_rflint(path: Path, root: Path) -> bool:
    """Whether ``path`` (a file under the cache folder ``root``) is one rflint writes: the
    markers at the top, entries, validation markers and temporary files in version folders."""
    if path.parent == root:
        return _rflint_name(path)
    if path.parent.parent != root or not path.parent.name.startswith("v"):
        return False
    name = path.name
    return name.endswith((".json", ".valid")) or (name.startswith(".") and name.endswith(".tmp"))


def clean(root: Path) -> bool:
    """Remove the files rflint wrote in the cache folder ``root``, and the folder once it is
    empty; False if there is no cache. Files rflint did not write (and their folders) are left
    where they are. Refuses (ValueError) a folder without rflint's CACHEDIR.TAG, so a mistyped
    ``cache-dir`` cannot delete a source folder."""
    if not root.exists() or (root.is_dir() and not any(root.iterdir())):
        return False
    if root.is_symlink() or not is_cache_dir(root):
        raise ValueError(f"{root} is not an rflint cache (it has no CACHEDIR.TAG written by rflint)")
    folders = [p for p in root.iterdir() if p.is_dir() and not p.is_symlink()]
    for file in [*(f for folder in folders for f in folder.iterdir()), *root.iterdir()]:
        if not file.is_symlink() and file.is_file() and _written_by_rflint(file, root):
            file.unlink()
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()  # only if empty
    with contextlib.suppress(OSError):
        root.rmdir()
    return True


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
