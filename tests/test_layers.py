"""The package layering in pyproject.toml's ``[tool.importlinter]`` holds: imports run
downwards only (cli -> api -> views/viz -> diff/advise -> report -> engine -> sources/frontend/
project -> checks -> ops -> rf -> records), with no circle, and every package has its place
(``exhaustive``). A new upward import or a new top-level module without a layer fails here."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    return subprocess.run([exe, "--no-cache", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_every_import_contract_is_kept():
    done = _lint_imports()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_an_upward_import_breaks_the_layers_contract(tmp_path):
    """The contract can fail: a copy of the package in which a rule imports the CLI is refused."""
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "rflint", copy / "rflint", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    rule = copy / "rflint" / "checks" / "unknown_op.py"
    rule.write_text(rule.read_text() + "\nfrom rflint.cli import base  # noqa: E402\n")
    done = subprocess.run(
        [shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=copy, capture_output=True, text=True, timeout=300, env={"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "rflint.checks is not allowed to import rflint.cli" in done.stdout
