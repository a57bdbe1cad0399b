"""The result cache: a model's raw report, reused while nothing it depends on has changed.

A developer runs rflint on every commit, and most commits do not touch a model. Building,
tracing and analysing a model needs torch (seconds to import); reading a cached report needs
nothing but this module, JSON and :mod:`rflint.serialize`, so a hit answers without importing
torch at all (``tests/test_cache.py`` checks ``sys.modules`` in a subprocess).

**What is cached**: the *raw* :class:`~rflint.results.ModelReport` of one model (analysis and
rule findings at their default severities). Configuration (select, ignore, severities,
overrides), suppression comments, the baseline and RF100 are applied after the cache, by
:func:`rflint.engine.resolve_findings`, so a new ``# noqa`` or ``ignore`` is honoured on a hit.

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

**Dependencies** (recorded after a miss, checked on every lookup): the content hash of every
project-local file the model's import executed or read: the target file (or ONNX file), every
module in ``sys.modules`` whose file lives outside the standard library, site-packages and
rflint, and every file opened for reading while the model was built and traced (an audit hook:
a factory that reads a YAML file). Project-local modules are recorded whether or not this
model imported them first: a module imported by an earlier model of the same process is
shared, and leaving it out could turn an edit into a wrong hit, so a process checking several
models over-approximates (an edit may invalidate a neighbour) rather than under-approximates.

**On disk**: ``.rflint_cache/`` next to the configuration file (else in the working
directory), or ``cache-dir`` in the config, or ``$RFLINT_CACHE_DIR`` (which wins). It holds a
``CACHEDIR.TAG`` and a ``.gitignore`` of ``*`` (as ruff's), and one folder per cache format
and rflint version with one JSON file per entry. Writes are atomic (a temporary file, then
``os.replace``), so worker processes can write side by side. Entries not used for
:data:`MAX_AGE` are pruned; a corrupt or unreadable entry is a miss (and is rewritten); a
directory that cannot be written is never an error, the run just is not cached.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import site
import sys
import sysconfig
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from rflint import __version__
from rflint.results import ModelReport
from rflint.serialize import from_data, to_data
from rflint.spec import ModelSpec

#: bump when the entry layout changes (the serialised records are covered by rflint's hash)
ENTRY_FORMAT = 1
DEFAULT_DIR = ".rflint_cache"
#: configuration keys applied after the cache, and ``models`` (each entry's spec is keyed)
POST_CACHE_KEYS = frozenset(
    {"select", "extend-select", "ignore", "rules", "overrides", "models", "cache-dir", "baseline", "output-format", "output-file"}
)
#: entries (and rflint versions) not used for this long are removed
MAX_AGE = 7 * 24 * 3600
_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by rflint.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)
_PACKAGE_DIR = Path(__file__).resolve().parent
_SYSTEM_DIRS = ("/proc/", "/sys/", "/dev/")


# ---------------------------------------------------------------------------------------------
# the key


@lru_cache(maxsize=1)
def rflint_fingerprint() -> str:
    """rflint's version and a hash of its own source files."""
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(_PACKAGE_DIR.rglob("*")):
        if path.suffix in (".py", ".json") and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(_PACKAGE_DIR)).encode())
            digest.update(path.read_bytes())
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


def file_digest(path: str) -> str | None:
    """sha256 of a file's bytes; None if it cannot be read."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


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
    from rflint.targets import split_target

    path = split_target(spec.target)[0]
    return os.path.abspath(path) if os.path.isfile(path) else None


@contextlib.contextmanager
def recorded_dependencies(spec: ModelSpec) -> Iterator[dict[str, str]]:
    """Record what ``spec``'s model depends on: on exit the yielded dict holds the content hash
    of every project-local file it executed or read (see the module docstring)."""
    deps: dict[str, str] = {}
    with _OpenedFiles.recording() as opened:
        yield deps
    candidates = opened | loaded_module_files()
    own = target_file(spec)
    if own is not None:
        candidates.add(own)
    for path in sorted(candidates):
        if path == own or is_project_file(path):
            digest = file_digest(path)
            if digest is not None:
                deps[path] = digest


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

    def lookup(self, spec: ModelSpec) -> ModelReport | None:
        """The cached raw report of ``spec``, or None (no entry, a changed dependency, or an
        entry that cannot be read or decoded)."""
        t0 = time.perf_counter()
        path = self.entry_path(spec)
        try:
            data = json.loads(path.read_bytes())
            if data.get("format") != ENTRY_FORMAT:
                return None
            for file, digest in data["files"].items():
                if file_digest(file) != digest:
                    return None
            report = from_data(ModelReport, data["report"])
        except Exception:  # noqa: BLE001 - a missing or corrupt entry is a miss, never an error
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # used: not stale
        return replace(report, spec=spec, timings={"cache": time.perf_counter() - t0})

    def store(self, spec: ModelSpec, report: ModelReport, files: Mapping[str, str]) -> bool:
        """Write the entry atomically; False (and nothing written) when the directory cannot
        be written or the report cannot be serialised."""
        try:
            entry = {"format": ENTRY_FORMAT, "target": spec.target, "files": dict(files), "report": to_data(report)}
            text = json.dumps(entry, separators=(",", ":"))
        except (TypeError, ValueError):
            return False
        try:
            self._prepare()
            path = self.entry_path(spec)
            tmp = path.with_name(f"{path.stem}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
            try:
                with open(tmp, "x", encoding="utf-8") as f:  # a new file, with the user's umask
                    f.write(text)
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError:
            return False
        return True

    def _prepare(self) -> None:
        """Create the directory with its CACHEDIR.TAG and .gitignore (once)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for name, text in (("CACHEDIR.TAG", _TAG), (".gitignore", "# Automatically created by rflint.\n*\n")):
            marker = self.root / name
            if not marker.exists():
                marker.write_text(text, encoding="utf-8")

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
    if env_dir:
        return Path(env_dir).expanduser().absolute()
    if cache_dir is not None:
        return cache_dir.absolute()
    return (config_root / DEFAULT_DIR).absolute()


def is_cache_dir(path: Path) -> bool:
    """True if ``path`` is a directory this module created (it holds rflint's CACHEDIR.TAG)."""
    try:
        return (path / "CACHEDIR.TAG").read_text(encoding="utf-8") == _TAG
    except (OSError, UnicodeDecodeError):
        return False


def clean(root: Path) -> bool:
    """Remove the cache directory ``root``; False if there is none. Refuses (ValueError) a
    directory without rflint's CACHEDIR.TAG, so a mistyped ``cache-dir`` cannot delete a
    source folder."""
    if not root.exists() or (root.is_dir() and not any(root.iterdir())):
        return False
    if not is_cache_dir(root):
        raise ValueError(f"{root} is not an rflint cache (it has no CACHEDIR.TAG written by rflint)")
    shutil.rmtree(root)
    return True


@dataclass(frozen=True)
class ValidConfigs:
    """Configuration tables this rflint build has validated (:class:`rflint.config.ValidationMemo`).

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
        with contextlib.suppress(OSError):
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

    def lookup(self, spec: ModelSpec) -> ModelReport | None:
        return self.cache.lookup(spec)

    def __call__(self, spec: ModelSpec) -> ModelReport:
        report = self.lookup(spec)
        if report is not None:
            return report
        with recorded_dependencies(spec) as files:
            report = self.linter(spec)
        self.cache.store(spec, report, files)
        return report
