"""The result cache's folder (:mod:`rflint.engine.cache`): where it is, and what rflint may
write and delete there.

**On disk**: ``.rflint_cache/`` next to the configuration file (else in the working
directory), or ``cache-dir`` in the config, or ``$RFLINT_CACHE_DIR`` (which wins). It holds a
``CACHEDIR.TAG`` and a ``.gitignore`` of ``*`` (as ruff's), and one folder per cache format
and rflint version with one JSON file per entry. The folder must be new, empty or rflint's own
(its CACHEDIR.TAG), and never the project root or a folder above it (:func:`check_root`), and
``clean`` deletes only the files rflint writes, so no setting can make rflint delete a project.
Writes are atomic (:func:`rflint.safe_write.write_atomic`), so processes can write side by side. Entries not used for
:data:`rflint.engine.cache.MAX_AGE` are pruned; a corrupt or unreadable entry is a miss (and is rewritten); a
directory that cannot be written is never an error, the run just is not cached.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from rflint.engine.cache_keys import ENTRY_FORMAT
from rflint.errors import ConfigError
from rflint.safe_write import write_atomic

DEFAULT_DIR = ".rflint_cache"
_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by rflint.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)
_GITIGNORE = "# Automatically created by rflint.\n*\n"


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



def create(root: Path) -> None:
    """Create the cache folder ``root`` with its CACHEDIR.TAG and .gitignore (once).

    Raises:
        ConfigError: ``root`` is a folder with other files and no rflint CACHEDIR.TAG
            (:func:`check_root`): nothing is ever written into it.
    """
    problem = root_problem(root)
    if problem:
        raise ConfigError(f"cache folder {root} {problem}")
    root.mkdir(parents=True, exist_ok=True)
    for name, text in (("CACHEDIR.TAG", _TAG), (".gitignore", _GITIGNORE)):
        marker = root / name
        if not marker.exists():
            write_atomic(marker, text, make_parents=False)

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
