"""What a target string names, without importing torch: an ONNX file, a pickle, a file with an
attribute, and the expansion of globs (``models/*.py``, ``torchvision:resnet*``).

Kept apart from :mod:`rflint.sources.load`, which builds the module and needs torch, so that resolving
what to check (and answering from the result cache) costs no torch import. Only a zoo glob
(``torchvision:*``, ``timm:*``) imports its library, to list the names it ranges over.
"""

from __future__ import annotations

import fnmatch
import glob
import re
from collections.abc import Iterable

from rflint.errors import TargetError
from rflint.sources.zoo import ZOOS

#: Extensions of files that torch writes with pickle (or a zip archive holding pickles).
PICKLE_SUFFIXES = (".pt", ".pth", ".pt2", ".pkl", ".pickle", ".ckpt", ".bin", ".jit", ".ptl")
ONNX_SUFFIXES = (".onnx",)
_GLOB_CHARS = re.compile(r"[*?\[]")
_ATTR = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def is_onnx_target(target: str) -> bool:
    """True if ``target`` names an ONNX file, which the engine reads without torch."""
    return target.lower().endswith(ONNX_SUFFIXES)


def is_pickle_target(target: str) -> bool:
    """True if ``target`` names a file format that torch writes with pickle."""
    return target.lower().endswith(PICKLE_SUFFIXES)


def split_target(target: str) -> tuple[str, str | None]:
    """``"a/b.py:make"`` -> ``("a/b.py", "make")``; ``"a/b.py"`` -> ``("a/b.py", None)``.

    Only a trailing ``:identifier`` is split off, so Windows drive letters (``C:\\m.py``) and
    directories with colons stay part of the path.
    """
    head, sep, tail = target.rpartition(":")
    if sep and head and _ATTR.fullmatch(tail):
        return head, tail
    return target, None


def expand_targets(patterns: Iterable[str]) -> list[str]:
    """Expand glob patterns into concrete targets, in order and without duplicates.

    ``torchvision:resnet*`` matches torchvision's classification models, ``timm:convnext_*``
    timm's registry, ``models/*.py`` files on disk. A pattern that matches nothing is an
    error, because silently checking zero models would look like a pass.
    """
    out: dict[str, None] = {}
    for pattern in patterns:
        for target in _expand_one(pattern):
            check_target_path(target)
            out.setdefault(target, None)
    return list(out)


def check_target_path(target: str) -> None:
    """Refuse a file target whose path cannot be followed: a symbolic link loop (``a -> b ->
    a``), or a link chain too long for the OS. Any other target is left to the loaders.

    Raises:
        TargetError: naming the path.
    """
    import errno
    import os

    path = split_target(target)[0]
    try:
        os.stat(path)
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        if getattr(exc, "errno", None) == errno.ELOOP:
            raise TargetError(f"{path}: symbolic link loop", hint="point the link at a real model file") from None
        if getattr(exc, "errno", None) == errno.ENOENT and os.path.islink(path):
            raise TargetError(f"{path}: broken symbolic link (its target does not exist)", hint="point the link at a real model file") from None


def _expand_one(pattern: str) -> list[str]:
    if not _GLOB_CHARS.search(pattern):
        check_target_path(pattern)
        return [pattern]
    scheme, sep, name = pattern.partition(":")
    if sep and scheme in ZOOS:
        names = ZOOS[scheme].names()  # the library's own list
        matches = [f"{scheme}:{n}" for n in names if fnmatch.fnmatchcase(n, name)]
    else:
        path, attr = split_target(pattern)
        suffix = f":{attr}" if attr else ""
        matches = [p + suffix for p in sorted(glob.glob(path))]
    if not matches:
        raise TargetError(f"pattern {pattern!r} matches no model", hint="check the spelling, or quote it so the shell does not expand it")
    return matches
