"""``examples/github-workflow.yml`` runs as written: it is safe for pull requests from forks, pins
its actions, installs rflint the way that works (not from PyPI), every ``run:`` step's commands
exist, and its rflint steps run in a repository (GitHub itself cannot be reached from the tests:
the steps run here with the locally installed rflint)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from project import add_refiner, write_project
from rflint._version import __version__

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "examples" / "github-workflow.yml"
SHELL_BUILTINS = {"cd", "echo", "export", "test", "[", "exit", "set", "true", "false", "printf"}


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def run_steps() -> list[str]:
    return [step["run"] for job in workflow()["jobs"].values() for step in job["steps"] if "run" in step]


def commands(script: str) -> list[list[str]]:
    """The simple commands of a ``run:`` script (lines, ``&&``, ``||``, ``;`` and ``|`` split)."""
    out = []
    for line in script.replace("\\\n", " ").splitlines():
        line = line.split(" #", 1)[0].strip()
        for part in re.split(r"&&|\|\||;|\|", line):
            words = shlex.split(part)
            while words and re.fullmatch(r"\w+=.*", words[0]):  # VAR=value cmd
                words = words[1:]
            if words:
                out.append(words)
    return out


def test_the_workflow_is_safe_for_pull_requests_from_forks():
    flow = workflow()
    triggers = flow[True]  # YAML 1.1 reads the key `on` as a boolean
    assert "pull_request" in triggers and "pull_request_target" not in triggers
    assert flow["permissions"] == {"contents": "read"}
    lint = flow["jobs"]["rflint"]
    assert lint["permissions"] == {"contents": "read"}  # the job that runs model code cannot write
    upload = flow["jobs"]["upload-sarif"]
    assert "head.repo.full_name == github.repository" in upload["if"]
    assert "github.actor != 'dependabot[bot]'" in upload["if"]  # as its comment says
    assert not any("rflint" in step.get("run", "") for step in upload["steps"])  # runs no project code


def test_one_rflint_run_writes_annotations_the_summary_and_sarif():
    runs = [r for r in run_steps() if r.lstrip().startswith("rflint check")]
    assert len(runs) == 1  # torch is imported and the models traced once
    (words,) = commands(runs[0])
    assert words[:4] == ["rflint", "check", "--output-format", "github"]
    assert "markdown:$GITHUB_STEP_SUMMARY" in words and "sarif:rflint.sarif" in words


def test_every_action_is_pinned_by_commit_sha_with_its_tag_in_a_comment():
    text = WORKFLOW.read_text(encoding="utf-8")
    uses = re.findall(r"uses:\s*(\S+)(.*)", text)
    assert len(uses) == 5
    for action, comment in uses:
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", action), action
        assert re.fullmatch(r"\s*# v\d+(\.\d+)*", comment), f"{action}: the tag belongs in a comment"


def test_superseded_runs_are_cancelled():
    concurrency = workflow()["concurrency"]
    assert concurrency["cancel-in-progress"] is True and "github.workflow" in concurrency["group"]


def test_rflint_is_installed_from_its_repository_at_the_release_tag_and_torch_from_the_cpu_index():
    (install,) = [r for r in run_steps() if "pip install" in r]
    assert f'"rflint @ git+https://github.com/rflint/rflint@v{__version__}"' in install
    assert "--index-url https://download.pytorch.org/whl/cpu" in install
    for words in commands(install):  # never `pip install rflint` from PyPI (another project's name)
        if words[:4] == ["python", "-m", "pip", "install"]:
            assert "rflint" not in words[4:]
    setup = next(s for s in workflow()["jobs"]["rflint"]["steps"] if s.get("uses", "").startswith("actions/setup-python"))
    assert setup["with"]["cache"] == "pip" and setup["with"]["cache-dependency-path"] == "pyproject.toml"


def test_every_run_step_command_exists():
    steps = workflow()["jobs"]["rflint"]["steps"]
    setup = next(i for i, s in enumerate(steps) if s.get("uses", "").startswith("actions/setup-python"))
    assert all("run" not in s for s in steps[:setup])  # `python` comes from setup-python, before any run step
    provided = {"python": sys.executable}  # what setup-python puts on PATH
    for script in run_steps():
        for words in commands(script):
            exe = provided.get(words[0]) or shutil.which(words[0])
            assert words[0] in SHELL_BUILTINS or exe, f"{words[0]} is not a command"
            if words[:3] == ["python", "-m", "pip"]:
                assert subprocess.run([exe, "-m", "pip", "--version"], capture_output=True).returncode == 0


@pytest.fixture
def repository(tmp_path):
    root = write_project(tmp_path / "acme")
    env = {k: v for k, v in os.environ.items() if k not in ("RFLINT_OUTPUT_FORMAT", "NO_COLOR", "FORCE_COLOR")}
    env.update(
        GITHUB_STEP_SUMMARY=str(tmp_path / "step_summary.md"),
        CI="true",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),  # this checkout's rflint
    )
    return root, env


def _rflint_steps(root: Path, env: dict[str, str]) -> list[subprocess.CompletedProcess[str]]:
    scripts = [r for r in run_steps() if r.lstrip().startswith("rflint check")]
    return [subprocess.run(["bash", "-e", "-c", s], cwd=root, env=env, capture_output=True, text=True, timeout=600) for s in scripts]


def test_the_rflint_steps_fail_on_an_unproductive_layer_and_write_every_output(repository):
    root, env = repository
    add_refiner(root)
    (step,) = _rflint_steps(root, env)
    assert step.returncode == 1, step.stderr  # the gate
    assert "::error title=rflint (RF101),file=src/acme/models/net.py" in step.stdout
    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    assert summary.startswith("## rflint\n") and "| `acme-net` | 32 | 45 | 45 |" in summary
    sarif = json.loads((root / "rflint.sarif").read_text())
    assert "RF101" in {r["ruleId"] for r in sarif["runs"][0]["results"]}


def test_the_rflint_steps_pass_on_a_refined_model(repository):
    root, env = repository
    (step,) = _rflint_steps(root, env)
    assert step.returncode == 0, step.stdout + step.stderr
    assert step.stdout == ""  # no annotations
    assert "All checks passed!" in Path(env["GITHUB_STEP_SUMMARY"]).read_text()


def test_the_diff_step_reports_the_pull_request_against_the_base_branch(repository):
    root, env = repository
    git = lambda *args: subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)  # noqa: E731
    git("init", "-q", "-b", "main")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "empty")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "refined model")
    git("update-ref", "refs/remotes/origin/main", "HEAD")  # what actions/checkout's fetch-depth 0 gives
    add_refiner(root)  # the pull request: an unproductive block
    (step,) = [s for s in workflow()["jobs"]["rflint"]["steps"] if s.get("name") == "rflint diff"]
    assert "pull_request" in step["if"] and "${{" not in step["run"]  # the ref comes through the environment
    assert step["env"]["BASE_REF"] == "${{ github.base_ref }}"
    checkout = next(s for s in workflow()["jobs"]["rflint"]["steps"] if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0  # the base revision must be in the clone
    done = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=root, env={**env, "BASE_REF": "main"}, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr  # --fail-on never: the check step is the gate
    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    assert "acme-net" in summary and "RF101" in summary, summary
