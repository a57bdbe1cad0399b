"""Importing the user's model code the way Python (and pytest) would, and saying what to change
when that fails. Stdlib only.

Why this module exists: research code keeps its models in packages (``src/pkg/models/net.py``
doing ``from .blocks import Block`` or ``from ..layers import X``). Such a file cannot be run as
a loose script: it has to be imported as ``pkg.models.net`` with the folder above ``pkg`` on
``sys.path``. pytest solves the same problem for test files (its rootdir/``importmode`` logic
and its ``pythonpath`` option), and rflint follows it:

- a file in a folder with ``__init__.py`` is imported by its dotted name, found by walking up
  through the ``__init__.py`` files; the folder above the top package goes first on ``sys.path``;
- a file without ``__init__.py`` that uses relative imports belongs to a namespace package: its
  name is taken relative to the nearest search-path entry above it (``[tool.rflint] pythonpath``,
  then the config file's folder);
- any other file is a loose script: it runs under a private module name with its own folder on
  ``sys.path``, as ``python file.py`` would, so that sibling imports keep working.

The search path (``[tool.rflint] pythonpath`` and the config file's folder) is on ``sys.path``
only while the model is imported and built, so that ``package.module:attr`` targets resolve
from any working directory without ``PYTHONPATH``.
"""

from __future__ import annotations

import ast
import contextlib
import os
import sys
import sysconfig
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from rflint.errors import TargetError

#: folders never searched for a missing project package (environments, caches, build output)
SKIPPED_DIRS = frozenset({"node_modules", "__pycache__", "site-packages", "build", "dist", "venv", "env"})
#: how deep below the project root a missing package is looked for
SEARCH_DEPTH = 3

#: top-level packages rflint imported from project folders, so that a later load (another
#: checkout in the same process, or the same files after an edit) imports them afresh
_owned: dict[str, Path] = {}


@dataclass(frozen=True)
class ModuleLocation:
    """How to import one ``.py`` file: its dotted ``name`` ("" for a loose script) and the
    folder (``base``) that must be on ``sys.path`` for that name to resolve."""

    name: str
    base: Path

    @property
    def is_package_module(self) -> bool:
        return bool(self.name)


def relative_import_level(path: Path) -> int:
    """The deepest relative import in ``path`` (``from ..x import y`` is 2), 0 for none or when
    the file does not parse (the import then reports the syntax error)."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError, OSError):
        return 0
    return max((node.level for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)), default=0)


def locate(path: Path, search_path: Sequence[Path]) -> ModuleLocation:
    """Where ``path`` lives as a module (see the module docstring for the three cases)."""
    path = path.resolve()
    parts = [path.stem]
    folder = path.parent
    while (folder / "__init__.py").is_file() and folder.name.isidentifier() and folder.parent != folder:
        parts.insert(0, folder.name)
        folder = folder.parent
    if len(parts) > 1:  # a regular package: the folder above the top package goes on sys.path
        return ModuleLocation(".".join(parts), folder)
    level = relative_import_level(path)
    if not level:
        return ModuleLocation("", path.parent)
    for entry in nearest_first(search_path, path):  # a namespace package: named from the nearest entry
        if entry in path.parents:
            segments = path.parent.relative_to(entry).parts
            if len(segments) >= level and all(s.isidentifier() for s in segments):
                return ModuleLocation(".".join((*segments, path.stem)), entry)
    base = path.parents[min(level, len(path.parents) - 1)]
    segments = path.parent.relative_to(base).parts
    return ModuleLocation(".".join((*segments, path.stem)), base)


def nearest_first(entries: Sequence[Path], path: Path) -> list[Path]:
    """Search-path entries that contain ``path``, deepest first (the nearest decides a
    namespace package's name), then the others."""
    resolved = [e.resolve() for e in entries]
    above = sorted((e for e in resolved if e in path.resolve().parents), key=lambda e: -len(e.parts))
    return above + [e for e in resolved if e not in above]


@contextlib.contextmanager
def on_sys_path(folders: Sequence[Path | str]) -> Iterator[None]:
    """Put ``folders`` first on ``sys.path`` (in order) while the block runs; take the ones
    that were added off again afterwards."""
    added = []
    for folder in reversed([str(f) for f in folders]):
        if folder not in sys.path:
            sys.path.insert(0, folder)
            added.append(folder)
    try:
        yield
    finally:
        for folder in added:
            if folder in sys.path:
                sys.path.remove(folder)


def forget_project_package(top: str) -> None:
    """Drop a project package that rflint imported before from ``sys.modules``, so that the
    next import reads the files again (a fresh process would)."""
    if _owned.pop(top, None) is None:
        return
    for key in [k for k in sys.modules if k == top or k.startswith(top + ".")]:
        del sys.modules[key]


def claim(location: ModuleLocation, shown: str) -> None:
    """Make sure ``location.name`` will be imported from ``location.base``: forget an earlier
    project import of the same top-level name, and refuse a name that the standard library or
    one of rflint's dependencies already holds (importing would return that module instead)."""
    top = location.name.split(".")[0]
    forget_project_package(top)
    existing = sys.modules.get(top)
    if existing is not None and location.base not in _module_parents(existing):
        where = _module_folders(existing)
        raise TargetError(
            f"cannot import {shown} as {location.name}: a module named {top!r} is already loaded"
            f" from {where[0] if where else 'a built-in module'}",
            hint=f"rename the folder {location.base / top} (its name shadows an installed module)",
        )


def remember(top: str, was_loaded: bool, project_folders: Sequence[Path]) -> None:
    """Record ``top`` as a project package when this import loaded it from a project folder."""
    module = sys.modules.get(top)
    if was_loaded or module is None:
        return
    parents = _module_parents(module)
    folders = [f.resolve() for f in project_folders]
    if any(p in folders for p in parents):
        _owned[top] = parents[0]


def _module_folders(module: ModuleType) -> list[Path]:
    """The folder(s) a module's files live in (a package's own folder)."""
    paths = list(getattr(module, "__path__", None) or [])
    file = getattr(module, "__file__", None)
    if not paths and file:
        paths = [os.path.dirname(file)]
    return [Path(p).resolve() for p in paths]


def _module_parents(module: ModuleType) -> list[Path]:
    """The ``sys.path`` folder(s) a top-level module was found in."""
    folders = _module_folders(module)
    if getattr(module, "__path__", None) is not None:
        return [f.parent for f in folders]
    return folders


# --------------------------------------------------------------------------- errors


def describe(exc: BaseException) -> str:
    """``ValueError: bad width`` on one line, whatever the exception's message looks like."""
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def import_failure(exc: BaseException, what: str, root: Path | None, tried: Sequence[str]) -> TargetError:
    """A one-line error for a failed import of ``what``: the module that failed, the
    ``sys.path`` entries tried and the fix (``pythonpath`` when the module is in the project,
    an install when it is not)."""
    origin = _user_frame(exc, root)
    at = f" (imported at {origin})" if origin else ""
    shown_path = ", ".join(dict.fromkeys(show_entry(e, root) for e in tried if not _is_stdlib(e))) or "(empty)"
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        hint = _missing_module_hint(exc.name, what, root, at)
        return TargetError(f"importing {what} failed: no module named {exc.name!r}{at}; sys.path tried: {shown_path}", hint=hint)
    if isinstance(exc, ImportError):
        if "relative import" in str(exc):
            hint = "import the file as part of its package: add the folder above the package to [tool.rflint] pythonpath"
        else:
            hint = f"fix the import{at or ''}; python -c 'import {what}' shows the full error"
        return TargetError(f"importing {what} raised {describe(exc)}{at}", hint=hint)
    return TargetError(
        f"importing {what} raised {describe(exc)}{at}",
        hint="the model code must import cleanly; run it with python to see the full error, or pass --verbose",
    )


def _missing_module_hint(name: str, what: str, root: Path | None, at: str) -> str:
    """The fix for ``no module named name``. Only a module found nowhere is a missing install,
    and even then its distribution's name is not the module's (``cv2`` is opencv-python, a
    repository's ``lib`` is nothing on PyPI), so no ``pip install NAME`` is made up:

    - a submodule of a package that was imported (``lib.missing``, ``lib`` found): the file is
      missing from the package or the import has a typo;
    - a top-level package found in the project but not on ``sys.path``: the pythonpath to add;
    - found nowhere: the distribution to install, or the folder to add.
    """
    top, _, rest = name.partition(".")
    if rest and top in sys.modules:
        where = getattr(sys.modules[top], "__path__", None)
        shown = show_entry(str(list(where)[0]), root) if where else top
        return f"{top} ({shown}) has no module {rest}: add the file, or fix the import{at}"
    folder = find_in_project(top, root) if root is not None else None
    if folder is not None:
        rel = show_entry(str(folder), root)
        return f'add pythonpath = ["{rel}"] to [tool.rflint] in pyproject.toml ({top} is in {rel}/)'
    if what == name or what.startswith(name + "."):
        return "install the package, or add the folder that contains it to [tool.rflint] pythonpath"
    return (
        f"{top} is neither in the project nor installed: install the distribution that provides it"
        " in the environment rflint runs in, or add the folder that contains it to [tool.rflint] pythonpath"
    )


def show_entry(entry: str, root: Path | None) -> str:
    """A ``sys.path`` entry as the user would write it: relative to the project root inside it."""
    path = Path(entry or os.getcwd())  # "" on sys.path is the working directory
    if root is not None and path.is_absolute():
        try:
            rel = path.resolve().relative_to(root.resolve())
        except ValueError:
            return entry
        return rel.as_posix() if rel.parts else "."
    return entry


def _is_stdlib(entry: str) -> bool:
    """The interpreter's own folders: never where a project module is missing from."""
    stdlib = {sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib")}
    return entry in stdlib or entry.endswith((".zip", "lib-dynload"))


def find_in_project(top: str, root: Path | None) -> Path | None:
    """The project folder that holds a package or module named ``top`` (breadth first, at most
    :data:`SEARCH_DEPTH` levels below ``root``; environments and hidden folders skipped)."""
    if root is None or not top.isidentifier():
        return None
    level = [root.resolve()]
    for _ in range(SEARCH_DEPTH + 1):
        below = []
        for folder in level:
            if (folder / top).is_dir() or (folder / f"{top}.py").is_file():
                return folder
            try:
                children = sorted(p for p in folder.iterdir() if p.is_dir())
            except OSError:
                continue
            below += [c for c in children if not c.name.startswith(".") and c.name not in SKIPPED_DIRS and not (c / "pyvenv.cfg").exists()]
        level = below
    return None


def _user_frame(exc: BaseException, root: Path | None) -> str:
    """``file:line`` of the last traceback frame in the project's own code (the import that
    failed), or "" when there is none."""
    if root is None:
        return ""
    root = root.resolve()
    own = Path(__file__).resolve().parents[1]  # the rflint package
    found = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        path = Path(frame.filename)
        if not path.is_absolute() or "site-packages" in path.parts:
            continue
        path = path.resolve()
        if root in path.parents and own not in path.parents:
            found = f"{show_entry(str(path), root)}:{frame.lineno}"
    return found
