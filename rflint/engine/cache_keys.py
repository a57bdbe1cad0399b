"""What a cached report is keyed on and what it depends on (:mod:`rflint.engine.cache`).

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
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import site
import sys
import sysconfig
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from rflint._version import __version__
from rflint.engine.fingerprints import FileState, file_state
from rflint.serialize import to_data
from rflint.spec import ModelSpec

#: bump when the entry layout changes (the serialised records are covered by rflint's hash)
ENTRY_FORMAT = 2
#: configuration keys applied after the cache, and ``models`` (each entry's spec is keyed)
POST_CACHE_KEYS = frozenset(
    {"select", "extend-select", "ignore", "rules", "overrides", "models", "cache-dir", "baseline", "output-format", "output-file", "timeout"}
)
_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the rflint package
_SYSTEM_DIRS = ("/proc/", "/sys/", "/dev/")


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
