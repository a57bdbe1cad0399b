"""rflint under the real pre-commit program: a temporary git repository with a model listed in
pyproject.toml and a `repo: local` hook running `rflint check`. A commit of an unrefined model
is rejected; the refined model commits. Local `language: system` hooks need no network.

Needs the `rflint` console script on PATH (``pip install -e .``) and pre-commit (test extra).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent

# receptive fields 3, 4, 8, 10, 18, 26 at 16x16: the last conv's input already sees 18 >= 16 (RF101)
BAD = """\
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))

    def forward(self, x):
        return self.head(self.features(x))
"""
# refined for 16x16: the largest receptive field is 10 (I_min 10 < 16), nothing to report
GOOD = BAD.replace(
    """            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
""",
    """            nn.Conv2d(32, 64, 1), nn.ReLU(),
""",
)

PYPROJECT = """\
[tool.rflint]

[[tool.rflint.models]]
target = "model.py:Net"
name = "net"
input-size = 16
"""

HOOK_CONFIG = """\
repos:
  - repo: local
    hooks:
      - id: rflint
        name: rflint
        entry: rflint check --output-format concise
        language: system
        pass_filenames: false
        require_serial: true
"""


def _pre_commit() -> list[str]:
    try:
        import pre_commit  # noqa: F401
    except ImportError:
        exe = shutil.which("pre-commit")
        assert exe, "pre-commit is not installed: pip install pre-commit (it is in the test extra)"
        return [exe]
    return [sys.executable, "-m", "pre_commit"]


@pytest.fixture
def repo(tmp_path):
    rflint = shutil.which("rflint")
    assert rflint, "the rflint console script is not on PATH: pip install -e ."
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-cache"),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_CONFIG_GLOBAL": str(tmp_path / "gitconfig"),
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    for key in ("CI", "RFLINT_OUTPUT_FORMAT", "GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE"):
        env.pop(key, None)
    work = tmp_path / "project"
    work.mkdir()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=300)

    assert run("git", "init", "-q", "-b", "main").returncode == 0
    (work / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    (work / ".pre-commit-config.yaml").write_text(HOOK_CONFIG, encoding="utf-8")
    installed = run(*_pre_commit(), "install")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return work, run


def test_pre_commit_rejects_an_unrefined_model_and_accepts_the_refined_one(repo):
    work, run = repo
    (work / "model.py").write_text(BAD, encoding="utf-8")
    run("git", "add", "-A")
    bad = run("git", "commit", "-m", "unrefined model")
    output = bad.stdout + bad.stderr
    assert bad.returncode != 0, output
    assert "rflint" in output and "Failed" in output
    assert "RF101 features.8 is unproductive" in output
    assert run("git", "rev-parse", "--verify", "HEAD").returncode != 0  # nothing was committed

    (work / "model.py").write_text(GOOD, encoding="utf-8")
    run("git", "add", "-A")
    good = run("git", "commit", "-m", "refined model")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "Passed" in good.stdout + good.stderr
    assert run("git", "rev-parse", "--verify", "HEAD").returncode == 0


def test_published_hook_definition():
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "rflint" and hook["entry"].startswith("rflint check")
    assert hook["language"] == "python"
    assert hook["pass_filenames"] is False and hook["require_serial"] is True


def test_example_pre_commit_config_shows_both_hooks():
    config = yaml.safe_load((ROOT / "examples" / "pre-commit-config.yaml").read_text())
    published, local = config["repos"]
    assert published["hooks"][0]["id"] == "rflint"
    assert "torch" in published["hooks"][0]["additional_dependencies"]
    assert local["repo"] == "local" and local["hooks"][0]["language"] == "system"
    assert local["hooks"][0]["pass_filenames"] is False and local["hooks"][0]["require_serial"] is True


def test_example_workflow_is_safe_for_fork_pull_requests():
    text = (ROOT / "examples" / "github-workflow.yml").read_text()
    workflow = yaml.safe_load(text)
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as a boolean
    assert "pull_request" in triggers and "pull_request_target" not in triggers
    assert workflow["permissions"] == {"contents": "read"}
    lint = workflow["jobs"]["rflint"]
    assert lint["permissions"] == {"contents": "read"}  # the job that runs model code cannot write
    runs = [step.get("run", "") for step in lint["steps"]]
    assert any("--output-format github" in r for r in runs)
    assert any("--output-format markdown" in r and "$GITHUB_STEP_SUMMARY" in r for r in runs)
    upload = workflow["jobs"]["upload-sarif"]
    assert "head.repo.full_name == github.repository" in upload["if"]
    assert not any("rflint check" in step.get("run", "") for step in upload["steps"])
    assert textwrap.dedent(text).count("pull_request_target") == 1  # only in the warning comment
