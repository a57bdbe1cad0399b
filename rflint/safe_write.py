"""Writing a file so that a reader never sees half of it and a crash never loses the old one.

Every file rflint writes (``-o`` outputs, baselines, cache entries and markers) goes through
:func:`write_atomic`: the data is written to a temporary file in the destination's folder (the
same file system, so the rename cannot turn into a copy) and then renamed over the destination
with ``os.replace``, which POSIX and Windows make atomic. A killed run, a full disk or two
processes writing the same entry leave either the old file or the new one, never a mix.

A destination that exists but is not a regular file (``/dev/stdout``, ``/dev/null``, a FIFO, a
terminal) cannot be replaced without destroying it, so it is written in place; a symbolic link
is followed, so the link survives and its target gets the new content. Stdlib only.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path


def write_atomic(path: str | os.PathLike[str], data: str | bytes, *, make_parents: bool = True) -> None:
    """Replace ``path`` with ``data`` (text is written as UTF-8) in one step.

    The new file keeps the permission bits of the file it replaces (a new file gets the
    user's umask, as ``open`` would give it).

    Raises:
        OSError: the folder cannot be created or written, or ``path`` is a folder.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    target = Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)
    try:
        info = target.stat()
    except FileNotFoundError:
        info = None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(21, "is a folder", str(path))
    if info is not None and not stat.S_ISREG(info.st_mode):
        with open(target, "wb") as stream:  # a device or a pipe: nothing to rename over
            stream.write(payload)
        return
    if make_parents:
        target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        with open(tmp, "xb") as stream:  # a new file, created with the user's umask
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        if info is not None:
            with contextlib.suppress(OSError):
                os.chmod(tmp, stat.S_IMODE(info.st_mode))
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
