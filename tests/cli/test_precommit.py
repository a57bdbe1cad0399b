"""rflint under the real pre-commit program, in the new-user repository of ``tests/project.py``.

Two hooks are exercised:

- the **published** hook (``.pre-commit-hooks.yaml``, ``language: python``), with ``repo:`` a
  local clone of this repository tagged like the release the README's example pins. pre-commit
  builds its own virtualenv and pip installs rflint with torch and numpy into it, as it does
  for a user. That takes one to two minutes (the figures are in docs/pre-commit.md), once per test
  session. It runs in the default suite on purpose: a marker that CI skips would hide a broken
  hook, and the whole suite stays far below CI's 90 minutes.
- the ``repo: local`` + ``language: system`` variant, which runs the rflint installed here.

Both need git; pre-commit is in the test extra.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from project import add_refiner, set_input_size, write_project
from rflint._version import __version__

ROOT = Path(__file__).resolve().parents[2]
TAG = f"v{__version__}"
IGNORED = {".git", "__pycache__", ".pytest_cache", ".venv", "build", "dist", ".whl", ".gl"}

LOCAL_HOOK = """\
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


def git_env(home: Path, own_environment: bool = True) -> dict[str, str]:
    """git and pre-commit confined to ``home``. ``own_environment``: the hook brings its own
    rflint (the published hook), so this checkout's PYTHONPATH must not leak into it."""
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(home / "pre-commit-cache"),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_CONFIG_GLOBAL": str(home / "gitconfig"),
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    for key in ("CI", "RFLINT_OUTPUT_FORMAT", "GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE", "PYTHONPATH" if own_environment else ""):
        env.pop(key, None)
    return env


def runner(cwd: Path, env: dict[str, str]):
    def run(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)

    return run


def source_files() -> list[Path]:
    """This checkout's files as a clone would have them: git's tracked and untracked-but-not-
    ignored files when it is a git checkout, else every file outside build and cache folders."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode == 0 and listed.stdout:
        return [ROOT / name for name in listed.stdout.split("\0") if name and (ROOT / name).is_file()]
    return [p for p in ROOT.rglob("*") if p.is_file() and not IGNORED & set(p.relative_to(ROOT).parts)]


@pytest.fixture(scope="module")
def rflint_clone(tmp_path_factory) -> Path:
    """A git repository holding this checkout's files at tag ``TAG`` (what ``repo:`` points at)."""
    clone = tmp_path_factory.mktemp("rflint-clone")
    for path in source_files():
        target = clone / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    run = runner(clone, git_env(clone))
    for args in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-q", "-m", "release"], ["git", "tag", TAG]):
        done = run(*args)
        assert done.returncode == 0, done.stderr
    return clone


@pytest.fixture(scope="module")
def hook_home(tmp_path_factory) -> Path:
    """One PRE_COMMIT_HOME per session: the hook environment is built once."""
    return tmp_path_factory.mktemp("pre-commit-home")


def new_repository(path: Path, hook_config: str, home: Path, own_environment: bool = True):
    work = write_project(path)
    run = runner(work, git_env(home, own_environment))
    assert run("git", "init", "-q", "-b", "main").returncode == 0
    (work / ".pre-commit-config.yaml").write_text(hook_config, encoding="utf-8")
    installed = run(*_pre_commit(), "install")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return work, run


def commit(run, message: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    run("git", "add", "-A")
    return run("git", "commit", "-m", message, timeout=timeout)


def test_published_hook_rejects_an_unproductive_layer_and_accepts_the_fix(tmp_path, rflint_clone, hook_home):
    config = f"repos:\n  - repo: {rflint_clone}\n    rev: {TAG}\n    hooks:\n      - id: rflint\n"
    work, run = new_repository(tmp_path / "acme", config, hook_home)

    started = time.perf_counter()
    first = commit(run, "refined model", timeout=1800)  # builds the hook environment: pip installs rflint and torch
    built = time.perf_counter() - started
    output = first.stdout + first.stderr
    assert first.returncode == 0, output
    assert re.search(r"rflint\.+Passed", output)
    envs = [p for p in (hook_home / "pre-commit-cache").iterdir() if p.is_dir() and any(p.glob("py_env-*"))]
    size = sum(f.stat().st_size for env in envs for f in env.rglob("*") if f.is_file() and not f.is_symlink())
    print(f"\npublished hook: first commit (environment build) {built:.0f} s, environment {size / 2**30:.2f} GiB")

    add_refiner(work)
    started = time.perf_counter()
    bad = commit(run, "add a refiner")
    print(f"published hook: a later commit {time.perf_counter() - started:.1f} s")
    output = bad.stdout + bad.stderr
    assert bad.returncode != 0, output
    assert re.search(r"rflint\.+Failed", output)
    assert "src/acme/models/net.py:15:9: RF101 [acme-net] refine.2.0 (Conv2d 3x3) is unproductive: its input already sees the whole input (input receptive field 37 >= input size 32)" in output
    assert "NumPy" not in output and "Warning" not in output  # the hook environment has what torch needs
    assert run("git", "log", "--oneline").stdout.count("\n") == 1  # the bad commit was rejected

    (work / "src/acme/models/net.py").write_text(
        (work / "src/acme/models/net.py").read_text().replace("range(3)", "range(1)"), encoding="utf-8"
    )  # the fix: one refining convolution (field 29 < 32)
    fixed = commit(run, "one refining layer")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr

    set_input_size(work, 12)  # a config-only change must re-run the hook
    smaller = commit(run, "train at 12 px")
    output = smaller.stdout + smaller.stderr
    assert smaller.returncode != 0 and re.search(r"rflint\.+Failed", output), output
    assert "RF101 [acme-net] stages.1.conv.0 (Conv2d 3x3) is unproductive" in output


def test_local_system_hook_rejects_an_unrefined_model_and_accepts_the_refined_one(tmp_path):
    assert shutil.which("rflint"), "the rflint console script is not on PATH: pip install -e ."
    work, run = new_repository(tmp_path / "acme", LOCAL_HOOK, tmp_path, own_environment=False)
    add_refiner(work)
    bad = commit(run, "unrefined model")
    output = bad.stdout + bad.stderr
    assert bad.returncode != 0 and re.search(r"rflint\.+Failed", output), output
    assert "RF101 [acme-net] refine.2.0 (Conv2d 3x3) is unproductive" in output
    assert run("git", "rev-parse", "--verify", "HEAD").returncode != 0  # nothing was committed

    (work / "src/acme/models/net.py").write_text(
        (work / "src/acme/models/net.py").read_text().replace("range(3)", "range(1)"), encoding="utf-8"
    )
    good = commit(run, "refined model")
    assert good.returncode == 0, good.stdout + good.stderr
    assert re.search(r"rflint\.+Passed", good.stdout + good.stderr)


def test_published_hook_definition_runs_once_on_every_tracked_file_type():
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "rflint" and hook["entry"].startswith("rflint check")
    assert hook["language"] == "python"
    assert hook["pass_filenames"] is False and hook["require_serial"] is True
    files = re.compile(hook["files"])
    # every type the result cache tracks: the YAML a factory reads (yolov5s.yaml) and a
    # baseline of any name (the config's `baseline` key) included
    tracked = ("src/acme/models/net.py", "pyproject.toml", "sub/rflint.toml", "model.onnx", "rflint-baseline.json")
    for changed in (*tracked, "models/yolov5s.yaml", "configs/unet.yml", "baselines/rf.json"):
        assert files.search(changed), changed
    for unrelated in ("README.md", "data/train.csv", "docs/figure.png"):
        assert not files.search(unrelated), unrelated


def test_example_pre_commit_config_pins_this_release_and_triggers_on_the_config():
    config = yaml.safe_load((ROOT / "examples" / "pre-commit-config.yaml").read_text())
    published, local = config["repos"]
    assert published["repo"] == "https://github.com/rflint/rflint" and published["rev"] == TAG
    hook = published["hooks"][0]
    assert hook["id"] == "rflint" and "--index-url=https://download.pytorch.org/whl/cpu" in hook["additional_dependencies"]
    assert local["repo"] == "local" and local["hooks"][0]["language"] == "system"
    assert local["hooks"][0]["pass_filenames"] is False and local["hooks"][0]["require_serial"] is True
    for h in (hook, local["hooks"][0]):
        for changed in ("pyproject.toml", "src/acme/models/net.py", "models/yolov5s.yaml", "rflint-baseline.json"):
            assert re.search(h["files"], changed), changed
