"""Which line of the user's code a layer belongs to: the call chain at construction time.

torch.fx knows where a layer is *called*, the AST pass of :mod:`rflint.frontend.definitions`
where a ``self.<attr> = ...`` *defines* it. Neither helps when the layer is built by a helper:
MONAI's ``UNet(...)``, a repository's ``make_stage(...)`` in another package, a loop that
appends to a list handed to ``nn.Sequential``. Every such layer would land on the helper's one
line (or the ``forward`` line that calls the container), where ``# noqa`` cannot tell them apart
and a pull request has nothing to annotate. The Python call chain at the moment the layer's
``nn.Module.__init__`` runs says which line of the user's code asked for it, so rflint records
it while it builds the model (:func:`recording`) and attributes each layer to the innermost
frame inside the project (:func:`attribute`), keeping the frame that actually constructed it as
``Layer.built_at`` (shown as a related location).

**Inside the project** (:class:`Project`), in the order a frame wins:

1. the *model's own code*: files under the folder of the file that defines the model's factory
   or class (``models/`` for ``models:ResNet18``; the script's folder for ``train.py:build``);
2. the rest of the *project*: files under the project root (the configuration file's folder,
   else the working directory);

and never a *library* file: the interpreter's standard library and install folders, any
``site-packages`` / ``dist-packages`` folder, torch and rflint itself, even when such a folder
sits inside the project (a virtual environment in the repository). ``sys.prefix`` as a whole is
not a library root: with a system Python it is ``/usr``, and a repository in ``/usr/src/app``
is the user's code. The innermost frame of the
first tier that has one wins: a layer built by ``lib/blocks.py`` for ``models/net.py`` is
reported at the ``models/net.py`` line that called the builder, and at the builder's line only
when no frame of the model's own folder is on the chain.
"""

from __future__ import annotations

import contextlib
import linecache
import os
import sys
import sysconfig
import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from rflint.ir import Layer, Source

#: frames kept per construction (the innermost ones; a model is never built deeper than this)
MAX_FRAMES = 48


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame of a construction chain. The line is computed only when asked for, from the
    code object and its last instruction: ``frame.f_lineno`` scans the code's line table on
    every call, and every module of a model records a chain (a tenth of a millisecond per frame
    on big modules, more than building them)."""

    file: str
    code: Any = None
    lasti: int = -1
    lineno: int = 0

    @property
    def line(self) -> int:
        return self.lineno or _line_of(self.code, self.lasti)


@lru_cache(maxsize=4096)
def _line_of(code: Any, lasti: int) -> int:
    for start, end, line in code.co_lines():
        if start <= lasti < end and line is not None:
            return line
    return code.co_firstlineno
_RFLINT_DIR = os.path.join(str(Path(__file__).resolve().parents[1]), "")


@lru_cache(maxsize=1)
def library_roots() -> tuple[str, ...]:
    """Folders whose files are library code (see the module docstring), each ending in a separator."""
    paths = sysconfig.get_paths()
    roots = {paths.get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots.add(str(Path(__file__).resolve().parents[1]))  # rflint
    with contextlib.suppress(ImportError):
        import torch

        roots.add(str(Path(torch.__file__).resolve().parent))
    both = {os.path.abspath(r) for r in roots if r} | {os.path.realpath(r) for r in roots if r}
    return tuple(sorted(os.path.join(r, "") for r in both))


def is_library_file(file: str) -> bool:
    parts = Path(file).parts
    if "site-packages" in parts or "dist-packages" in parts or file.startswith("<"):
        return True
    roots = library_roots()
    return file.startswith(roots) or os.path.realpath(file).startswith(roots)


@dataclass(frozen=True)
class Project:
    """Where the user's code lives: the model's own folder, then the project root."""

    root: str
    model_dir: str | None = None

    @classmethod
    def of(cls, root: str | os.PathLike[str], model_file: str | None) -> Project:
        model_dir = None
        if model_file and not is_library_file(model_file):
            model_dir = os.path.join(os.path.dirname(os.path.abspath(model_file)), "")
        return cls(os.path.join(os.path.abspath(root), ""), model_dir)

    def tier(self, file: str) -> int | None:
        """0: the model's own code, 1: elsewhere in the project, None: not the user's code."""
        if not file or is_library_file(file):
            return None
        path = os.path.abspath(file)
        if self.model_dir and path.startswith(self.model_dir):
            return 0
        return 1 if path.startswith(self.root) else None

    def contains(self, file: str) -> bool:
        return self.tier(file) is not None


# ---------------------------------------------------------------------------------------------
# recording


@contextlib.contextmanager
def recording() -> Iterator[weakref.WeakKeyDictionary[Any, tuple[Frame, ...]]]:
    """While active, every ``nn.Module`` constructed records its call chain (innermost frame
    first, the module's own ``__init__`` frames left out). Nested recordings share the patch."""
    from torch import nn

    chains: weakref.WeakKeyDictionary[Any, tuple[Frame, ...]] = weakref.WeakKeyDictionary()
    original = nn.Module.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        with contextlib.suppress(Exception):  # a location is best effort, never a failure
            if self not in chains:
                chains[self] = _chain(self, sys._getframe(1))

    nn.Module.__init__ = __init__  # type: ignore[method-assign]
    try:
        yield chains
    finally:
        nn.Module.__init__ = original  # type: ignore[method-assign]


def _chain(module: Any, frame: Any) -> tuple[Frame, ...]:
    """The frames above ``frame`` that are not the module's own construction (its classes'
    ``__init__`` running on it), up to rflint's own frame that called the user's factory."""
    out: list[Frame] = []
    while frame is not None and len(out) < MAX_FRAMES:
        code = frame.f_code
        if code.co_filename.startswith(_RFLINT_DIR):
            break
        if not (out == [] and _is_own_init(module, frame, code)):
            out.append(Frame(code.co_filename, code, frame.f_lasti))
        frame = frame.f_back
    return tuple(out)


def _is_own_init(module: Any, frame: Any, code: Any) -> bool:
    if code.co_name not in ("__init__", "__new__", "__post_init__") or not code.co_argcount:
        return False
    return frame.f_locals.get(code.co_varnames[0]) is module


def chains_by_name(root: Any, chains: Mapping[Any, tuple[Frame, ...]]) -> dict[str, tuple[Frame, ...]]:
    """The recorded chain of every submodule of ``root`` by qualname."""
    out: dict[str, tuple[Frame, ...]] = {}
    for name, module in root.named_modules(remove_duplicate=False):
        chain = chains.get(module)
        if chain is not None and name not in out:
            out[name] = chain
    return out


# ---------------------------------------------------------------------------------------------
# choosing


def user_frame(chain: Sequence[Frame], project: Project) -> tuple[Source, Source | None] | None:
    """(the frame that wins, the frame that built the layer if it is another one), or None
    when no frame of the chain is the user's code."""
    best: tuple[int, int] | None = None
    for i, frame in enumerate(chain):
        tier = project.tier(frame.file)
        if tier is not None and (best is None or tier < best[0]):
            best = (tier, i)
            if tier == 0:
                break
    if best is None:
        return None
    won = _source(chain[best[1]])
    return (won, None) if best[1] == 0 else (won, _source(chain[0]))


def _source(frame: Frame) -> Source:
    line = frame.line
    return Source(os.path.abspath(frame.file), line, _column(frame.file, line))


def _column(file: str, line: int) -> int:
    """The column of the line's first character (the statement a ``# noqa`` follows)."""
    text = linecache.getline(file, line)
    return len(text) - len(text.lstrip()) + 1 if text.strip() else 1


def attribute(layers: Sequence[Layer], chains: Mapping[str, Sequence[Frame]], project: Project) -> list[Layer]:
    """Layers with ``definition`` moved to the user's line where a helper built them.

    A layer constructed directly in the user's code keeps the AST definition (the statement's
    first line and column) when it has one in that file; one built by a helper (library or
    another part of the project) gets the winning frame as ``definition`` and the helper's
    frame as ``built_at``. A layer without a recorded chain (a prebuilt module handed to the
    API, a ``deepcopy``) or without a user frame is left as it is.
    """
    out = []
    for layer in layers:
        chain = chains.get(layer.qualname) if layer.module_type else None
        found = user_frame(chain, project) if chain else None
        if found is None:
            out.append(layer)
            continue
        won, built = found
        if built is None and layer.definition is not None and layer.definition.file == won.file:
            out.append(layer)
            continue
        out.append(replace(layer, definition=won, built_at=built))
    return out
