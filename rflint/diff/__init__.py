"""``rflint diff``: what a branch does to its models' receptive fields.

Each revision is checked out and analysed in its own process (:mod:`rflint.diff.revisions`,
:mod:`rflint.diff.worker`, which runs the engine), and the two results are compared
(:mod:`rflint.diff.compare`). This package sits above the engine: the engine knows nothing of
revisions.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rflint.diff.compare import Diff
    from rflint.diff.worker import Request


def diff(
    base: str, head: str | None, request: Request, *, cwd: str | None = None, verbose: bool = False, cache_dir: Path | None = None
) -> Diff:
    """Analyse git revisions ``base`` and ``head`` (None: the working tree) as seen from
    ``cwd`` (default: the current directory), each in its own checkout and process with its
    own configuration (:mod:`rflint.diff.revisions`), and compare the results (:mod:`rflint.diff.compare`).
    ``cache_dir``: the working tree's result cache, which both revisions read and write."""
    from rflint.diff.compare import compare
    from rflint.diff.revisions import analyse as analyse_revisions

    cache = None if cache_dir is None else str(cache_dir)
    return compare(*analyse_revisions(base, head, request, cwd=cwd, verbose=verbose, cache_dir=cache))
