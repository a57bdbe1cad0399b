"""One revision's analysis in its own process: both ends of the protocol ``rflint diff`` uses.

Two revisions' model code must never be imported into one interpreter (module caches, class
registries and ``sys.path`` would mix them), so each revision is checked by a child process:
the parent writes a :class:`Job` as JSON, starts ``python -c BOOTSTRAP`` (the interpreter and
the rflint that run the diff, whatever the revision contains) in the revision's directory,
and reads back a :class:`~rflint.diff.compare.RevisionResult`. Both travel through
:mod:`rflint.serialize`, which round-trips the records exactly.

Why not ``python -m rflint...``: ``-m`` puts the working directory first on ``sys.path``, so
in a repository that contains an ``rflint`` package (rflint's own) the revision's copy would be
imported instead of the running one. The bootstrap imports rflint from the running copy first,
then gives the revision its own ``sys.path``.

This module is imported by the parent too: it imports nothing heavy at module level.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from rflint.diff.compare import Revision, RevisionResult
from rflint.errors import RflintError, TargetError, unexpected
from rflint.serialize import from_data, to_data
from rflint.sources.zoo import is_zoo_target
from rflint.spec import ModelSpec, Overrides

if TYPE_CHECKING:
    from rflint.project.config import Config

#: ``python -c`` program of the child: import the running rflint, then run the job
BOOTSTRAP = "import sys; sys.path.insert(0, sys.argv[1]); from rflint.diff.worker import main; sys.exit(main(sys.argv[2], sys.argv[3]))"

#: the directory holding the running ``rflint`` package
RFLINT_HOME = str(Path(__file__).resolve().parents[2])


@dataclass(frozen=True)
class Request:
    """What to analyse at every revision: the command line's model options, applied to each
    revision's own configuration as ``rflint check`` applies them."""

    targets: tuple[str, ...] = ()
    overrides: Overrides = Overrides()
    config: str | None = None
    isolated: bool = False


@dataclass(frozen=True)
class Job:
    """One child's work.

    Attributes:
        request: what to analyse.
        revision: which revision this is.
        root: the revision's checkout (a temporary worktree, or the working tree itself).
        cwd: where the child runs: the user's directory, mapped into ``root``.
        sys_path: the child's ``sys.path`` (the parent's, mapped into ``root``).
        foreign_root: a working tree whose code must not be imported here (None: this is it).
        verbose: print tracebacks on the child's stderr.
        cache_dir: the working tree's result cache (None: no cache). Never the checkout's own,
            which goes away with it.
    """

    request: Request
    revision: Revision
    root: str
    cwd: str
    sys_path: tuple[str, ...]
    foreign_root: str | None = None
    verbose: bool = False
    cache_dir: str | None = None


# ---------------------------------------------------------------------------------------------
# parent side


def start(job: Job, job_file: Path, result_file: Path, log: IO[bytes]) -> subprocess.Popen[bytes]:
    """Start the child for ``job``; its stdout and stderr go to ``log``."""
    job_file.write_text(json.dumps(to_data(job)), encoding="utf-8")
    return subprocess.Popen(
        [sys.executable, "-c", BOOTSTRAP, RFLINT_HOME, str(job_file), str(result_file)],
        cwd=job.cwd,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def finish(job: Job, process: subprocess.Popen[bytes], result_file: Path, log_file: Path) -> RevisionResult:
    """Wait for the child and read its result; a child that died becomes a revision error."""
    code = process.wait()
    try:
        return from_data(RevisionResult, json.loads(result_file.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, KeyError):
        lines = [line for line in log_file.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
        last = lines[-1].strip() if lines else "no output"
        return RevisionResult(
            job.revision,
            job.root,
            error=f"the analysis of {job.revision.text} stopped with exit code {code}: {last}",
            hint="rerun with --verbose to see its output",
        )


def child_sys_path(parent_path: Sequence[str], top: str, root: str, cwd: str) -> tuple[str, ...]:
    """The child's ``sys.path``: its working directory first (so ``package.module:attr``
    targets import the revision's package), then the parent's entries with those inside the
    working tree ``top`` mapped to the revision's ``root`` (an editable install's ``src/``).
    Python environments inside the working tree (``.venv``) stay as they are."""
    out = [cwd]
    for entry in parent_path:
        if not entry:
            continue
        out.append(map_into(entry, top, root) if not _is_environment(entry) else entry)
    return tuple(dict.fromkeys(out))


def map_into(path: str, top: str, root: str) -> str:
    """``path`` inside ``top`` -> the same place inside ``root``; anything else unchanged."""
    if top == root or not os.path.isabs(path):
        return path
    rel = os.path.relpath(path, top)
    if rel == "." or not rel.startswith(".."):
        return os.path.normpath(os.path.join(root, rel))
    return path


def _is_environment(path: str) -> bool:
    """Part of a Python installation (a virtual environment, site-packages), not project code."""
    real = os.path.realpath(path)
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    parts = Path(real).parts
    return "site-packages" in parts or "dist-packages" in parts or any(_inside(real, p) for p in prefixes)


def _inside(path: str, folder: str) -> bool:
    rel = os.path.relpath(path, folder)
    return rel == "." or not rel.startswith("..")


# ---------------------------------------------------------------------------------------------
# child side


def main(job_file: str, result_file: str) -> int:
    """The child: run the job and write its result (never raises: errors are results too)."""
    job = from_data(Job, json.loads(Path(job_file).read_text(encoding="utf-8")))
    sys.path[:] = list(job.sys_path)
    try:
        result = analyse(job)
    except RflintError as exc:
        if job.verbose:
            traceback.print_exc()
        result = RevisionResult(job.revision, job.root, error=str(exc), hint=exc.hint)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which prints one line
        if job.verbose:
            traceback.print_exc()
        result = RevisionResult(
            job.revision,
            job.root,
            error=unexpected(exc),
            hint="this may be a bug in rflint; rerun with --verbose for the traceback",
        )
    Path(result_file).write_text(json.dumps(to_data(result)), encoding="utf-8")
    return 0


def analyse(job: Job) -> RevisionResult:
    """Check the requested models with this revision's own configuration."""
    from rflint.engine import pipeline as engine
    from rflint.project.config import load_config

    request = job.request
    config = load_config(request.config, isolated=request.isolated)
    specs, absent = revision_specs(request, config)
    linter = engine.lint
    if job.cache_dir is not None:
        from rflint.engine.cache import CachedLinter, ResultCache
        from rflint.engine.cache_keys import run_context

        linter = CachedLinter(ResultCache(Path(job.cache_dir), run_context(config.table)), engine.lint)
    result = engine.check(specs, config, linter=linter)
    names = tuple(s.display_name for s in specs)
    leaked = _leaked_modules(job)
    if leaked:
        raise TargetError(
            f"{job.revision.text} imported {leaked[0]} from the working tree, not from the revision",
            hint="the project is installed in editable mode through an import hook; put the folder that holds its "
            "package on PYTHONPATH (PYTHONPATH=. or PYTHONPATH=src) or install it with "
            "`pip install -e . --config-settings editable_mode=compat`",
        )
    return RevisionResult(job.revision, job.root, result, names, tuple(absent), warnings=tuple(_outside_targets(specs, job)))


def revision_specs(request: Request, config: Config) -> tuple[list[ModelSpec], list[str]]:
    """The models to check at this revision, and the requested ones that have no file here.

    With no targets: every ``[[tool.rflint.models]]`` entry of this revision's config (none is
    fine: the other revision may have some). A file glob that matches nothing here, or a file
    target that does not exist here, is absent rather than an error: the change added or
    removed it.
    """
    from rflint.engine import pipeline as engine

    if not request.targets:
        return [request.overrides.over(spec) for spec in config.models], []
    specs: list[ModelSpec] = []
    absent: list[str] = []
    for target in request.targets:
        try:
            found = engine.resolve_specs([target], config, request.overrides)
        except TargetError:  # a glob that matches nothing at this revision
            absent.append(target)
            continue
        for spec in found:
            if _missing_file(spec.target):
                absent.append(spec.display_name)
            else:
                specs.append(spec)
    return specs, absent


def _missing_file(target: str) -> bool:
    """A file target (``path.py[:attr]``, ``model.onnx``...) whose file does not exist here."""
    from rflint.sources.load import is_onnx_target, is_pickle_target, split_target

    if is_zoo_target(target):
        return False
    path, _ = split_target(target)
    looks_like_file = path.endswith(".py") or is_onnx_target(path) or is_pickle_target(path) or "/" in path or os.sep in path
    return looks_like_file and not os.path.exists(path)


def _leaked_modules(job: Job) -> list[str]:
    """Project files of the *other* working tree that this revision imported (an editable
    install's import hook points there whatever ``sys.path`` says)."""
    if job.foreign_root is None:
        return []
    own = os.path.join(RFLINT_HOME, "rflint")
    out = []
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if not file or not os.path.isabs(file):
            continue
        if _inside(file, job.foreign_root) and not _inside(file, own) and not _is_environment(file):
            out.append(os.path.relpath(file, job.foreign_root))
    return sorted(out)


def _outside_targets(specs: Sequence[ModelSpec], job: Job) -> list[str]:
    """``package.module:attr`` targets whose module was imported from outside the revision
    (an installed copy): the same code at both revisions, so the diff cannot see its change."""
    from rflint.sources.load import split_target

    out = []
    for spec in specs:
        if is_zoo_target(spec.target):
            continue
        module_name, attr = split_target(spec.target)
        module = sys.modules.get(module_name) if attr else None
        file = getattr(module, "__file__", None)
        if file and not _inside(os.path.realpath(file), os.path.realpath(job.root)):
            out.append(f"{spec.display_name}: {module_name} was imported from {file}, outside the revision, so its changes are not compared")
    return out
