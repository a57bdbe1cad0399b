"""The user's source files, read and parsed once per version: a zoo sweep or a suppression
pass asks for the same file hundreds of times. Keyed on (mtime, size), so a file rewritten
within one process (a test, a long notebook session) is read again.
"""

from __future__ import annotations

import ast
import os
from functools import lru_cache
from pathlib import Path


def file_stamp(file: str) -> tuple[int, int]:
    """(mtime, size): the caches below notice a file rewritten within one process."""
    try:
        st = os.stat(file)
    except OSError:
        return (0, -1)
    return (st.st_mtime_ns, st.st_size)


def parse_source(file: str) -> ast.Module | None:
    """The file's syntax tree, or None when it cannot be read or parsed."""
    return _parse_stamped(file, file_stamp(file))


@lru_cache(maxsize=256)
def _parse_stamped(file: str, stamp: tuple[int, int]) -> ast.Module | None:
    try:
        return ast.parse(Path(file).read_text(encoding="utf-8"), filename=file)
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None


def read_lines(file: str) -> tuple[str, ...]:
    """The file's lines (empty when it cannot be read as UTF-8)."""
    return _read_lines(file, file_stamp(file))


@lru_cache(maxsize=256)
def _read_lines(file: str, stamp: tuple[int, int]) -> tuple[str, ...]:
    try:
        return tuple(Path(file).read_text(encoding="utf-8").splitlines())
    except (OSError, UnicodeDecodeError):
        return ()
