"""Git revisions for ``rflint diff``: resolve them, check them out into temporary worktrees and
analyse each one in its own process (:mod:`rflint.diff.worker`).

A revision is checked out with ``git worktree add --detach`` under a fresh temporary
directory, so the user's working tree, index and branches are never touched; the worktrees are
removed (``git worktree remove --force``, then ``git worktree prune``) whatever happens. HEAD's
default is the working tree itself, uncommitted changes included. The two children run at the
same time: each imports torch and its own revision's models, nothing else is shared.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from rflint.diff.compare import Revision, RevisionResult
from rflint.diff.worker import Job, Request, child_sys_path, finish, map_into, start
from rflint.errors import UsageError

WORKING_TREE = "working tree"


def git(args: list[str], cwd: str | Path) -> subprocess.CompletedProcess[str]:
    """Run git; a missing git binary is a one-line usage error."""
    try:
        return subprocess.run(["git", *args], check=False, cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise UsageError("git is not installed (rflint diff compares git revisions)", hint="install git and put it on PATH") from None


def toplevel(cwd: str | Path) -> str:
    """The root of the git working tree that contains ``cwd``."""
    done = git(["rev-parse", "--show-toplevel"], cwd)
    if done.returncode != 0 or not done.stdout.strip():
        raise UsageError(
            f"{cwd} is not inside a git repository",
            hint="run rflint diff from a clone of your project (it compares git revisions)",
        )
    return str(Path(done.stdout.strip()).resolve())


def resolve(revision: str, top: str) -> str:
    """The commit ``revision`` names (a branch, tag, sha, ``HEAD~1``, ``origin/main``...)."""
    if not revision.strip() or revision.startswith("-"):
        raise UsageError(f"{revision!r} is not a revision", hint="pass a branch, tag or commit, e.g. origin/main or HEAD~1")
    done = git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{revision}^{{commit}}"], top)
    if done.returncode != 0:
        raise UsageError(
            f"{revision!r} is not a revision of this repository",
            hint="pass a branch, tag or commit, e.g. origin/main or HEAD~1; in CI fetch it first "
            "(actions/checkout with fetch-depth: 0)",
        )
    return done.stdout.strip()


@contextlib.contextmanager
def worktree(top: str, commit: str, folder: Path) -> Iterator[str]:
    """``commit`` checked out (detached) at ``folder``, removed again on the way out."""
    done = git(["worktree", "add", "--detach", "--quiet", str(folder), commit], top)
    if done.returncode != 0:
        message = (done.stderr.strip().splitlines() or ["git worktree add failed"])[-1]
        raise UsageError(f"cannot check out {commit[:12]}: {message}", hint="check that the repository is not locked and has room")
    try:
        yield str(folder.resolve())
    finally:
        git(["worktree", "remove", "--force", str(folder)], top)
        shutil.rmtree(folder, ignore_errors=True)
        git(["worktree", "prune"], top)


def analyse(
    base: str, head: str | None, request: Request, cwd: str | None = None, verbose: bool = False, cache_dir: str | None = None
) -> tuple[RevisionResult, RevisionResult]:
    """Analyse revision ``base`` and revision ``head`` (None: the working tree) in two child
    processes, each in its own checkout with its own configuration. With ``cache_dir`` (the
    working tree's result cache) both children answer from it where they can: a commit is
    checked out at the same place every time (:func:`checkout_folder`), so that its models'
    paths, and with them the cache keys, repeat.

    Raises:
        UsageError: outside a git repository, or a name that is not a revision.
    """
    cwd = str(Path(cwd or os.getcwd()).resolve())
    top = toplevel(cwd)
    sides = [Revision(base, resolve(base, top))]
    sides.append(Revision(WORKING_TREE) if head is None else Revision(head, resolve(head, top)))
    with tempfile.TemporaryDirectory(prefix="rflint-diff-") as scratch, contextlib.ExitStack() as stack:
        jobs = []
        for index, revision in enumerate(sides):
            folder = checkout_folder(top, revision.commit, Path(scratch) / f"tree{index}", stable=cache_dir is not None)
            root = top if revision.commit is None else stack.enter_context(worktree(top, revision.commit, folder))
            where = map_into(cwd, top, root)
            os.makedirs(where, exist_ok=True)  # the user's folder may not exist at that revision
            jobs.append(
                Job(
                    request_in(request, top, root),
                    revision,
                    root,
                    where,
                    child_sys_path(sys.path, top, root, where),
                    foreign_root=None if root == top else top,
                    verbose=verbose,
                    cache_dir=cache_dir,
                )
            )
        base_result, head_result = _run(jobs, Path(scratch), verbose)
        return base_result, head_result


def checkout_folder(top: str, commit: str | None, fallback: Path, stable: bool) -> Path:
    """Where to check ``commit`` out: ``rflint-diff-<repository>-<commit>`` in the temporary
    directory when ``stable`` (the same path on every run, so cached reports of the commit's
    models apply again), unless another diff is using it right now; else ``fallback``."""
    if not stable or commit is None:
        return fallback
    repository = hashlib.sha256(top.encode()).hexdigest()[:8]
    folder = Path(tempfile.gettempdir()) / f"rflint-diff-{repository}-{commit[:12]}"
    return fallback if folder.exists() else folder


def request_in(request: Request, top: str, root: str) -> Request:
    """The request as seen from a checkout: absolute paths into the working tree (a model file
    with its ``:attr``, ``--config``) point at the same files of the revision; relative ones
    already do, since the child runs in the user's folder mapped into the checkout."""

    config = None if request.config is None else map_into(request.config, top, root)
    return replace(request, targets=tuple(map_into(t, top, root) for t in request.targets), config=config)


def _run(jobs: list[Job], scratch: Path, verbose: bool) -> tuple[RevisionResult, ...]:
    """Run the children side by side and collect their results (their output on stderr with
    ``verbose``). An interrupted diff stops its children."""
    running = []
    try:
        for index, job in enumerate(jobs):
            log_file = scratch / f"log{index}.txt"
            result_file = scratch / f"result{index}.json"
            with open(log_file, "wb") as log:
                running.append((job, start(job, scratch / f"job{index}.json", result_file, log), result_file, log_file))
        results = tuple(finish(job, process, result_file, log_file) for job, process, result_file, log_file in running)
    finally:
        for _, process, _, _ in running:
            if process.poll() is None:
                process.kill()
                process.wait()
    if verbose:
        for job, _, _, log_file in running:
            text = log_file.read_text(encoding="utf-8", errors="replace")
            if text.strip():
                sys.stderr.write(f"--- output of the analysis of {job.revision.text} ---\n{text}")
    return results
