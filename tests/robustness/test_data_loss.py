"""Data loss: no setting, option or crash makes rflint delete or overwrite a user's file.

rflint writes three kinds of files (``-o`` outputs, baselines, cache entries) and deletes one
(its cache): every write is atomic (:mod:`rflint.safe_write`), a baseline only ever replaces a
baseline, the cache lives only in a folder that is new, empty or rflint's own, and ``clean``
removes only what rflint wrote.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rflint.cli import app
from rflint.safe_write import write_atomic

runner = CliRunner()

MODEL = """\
from torch import nn


def build():
    return nn.Sequential(*[nn.Conv2d(3, 3, 3, padding=1) for _ in range(6)])
"""
BROKEN = "import no_such_module_anywhere\n\ndef build():\n    pass\n"


def write_project(root: Path, extra: str = "", models: tuple[str, ...] = ("net",)) -> None:
    for name in models:
        (root / f"{name}.py").write_text(MODEL)
    entries = "".join(f'[[tool.rflint.models]]\ntarget = "{m}.py:build"\nname = "{m}"\ninput-size = 8\n' for m in models)
    (root / "pyproject.toml").write_text(f"[tool.rflint]\ntask = \"classification\"\n{extra}\n{entries}")  # headless nets: the centre-unit rule


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture()
def project(tmp_path, monkeypatch):
    root = tmp_path / "proj"
    root.mkdir()
    monkeypatch.chdir(root)
    monkeypatch.delenv("RFLINT_CACHE_DIR", raising=False)
    return root


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.stderr
    return lines[0]


# ---------------------------------------------------------------------------------------------
# the cache folder


@pytest.mark.parametrize(
    ("cache_dir", "said"),
    [
        (".", "is the project root"),
        ("..", "is a parent of the project root"),
        ("../..", "is a parent of the project root"),
        ("src", "no CACHEDIR.TAG written by rflint"),  # a folder with the user's files
        ("net.py", "is not a folder"),
    ],
)
def test_a_cache_dir_rflint_must_not_own_is_refused_by_check_and_clean(project, cache_dir, said):
    write_project(project, f'cache-dir = "{cache_dir}"')
    (project / "src").mkdir()
    (project / "src" / "keep.py").write_text("x = 1\n")
    before = snapshot(project.parent)
    for args in (["check"], ["clean"]):
        line = one_error_line(runner.invoke(app, args))
        assert "cache-dir" in line and said in line
    assert snapshot(project.parent) == before  # no CACHEDIR.TAG, no .gitignore, nothing deleted


def test_rflint_cache_dir_pointing_at_the_project_is_refused(project, monkeypatch):
    write_project(project)
    monkeypatch.setenv("RFLINT_CACHE_DIR", str(project))
    before = snapshot(project)
    line = one_error_line(runner.invoke(app, ["clean"]))
    assert "RFLINT_CACHE_DIR" in line and "is the project root" in line
    assert snapshot(project) == before


def test_clean_removes_only_the_files_rflint_wrote(project):
    write_project(project, 'cache-dir = "cache"')
    assert runner.invoke(app, ["check"]).exit_code in (0, 1)
    cache = project / "cache"
    (version,) = [p for p in cache.iterdir() if p.is_dir()]
    assert list(version.glob("*.json"))
    (version / "notes.txt").write_text("mine\n")  # a user's file inside the cache
    (cache / "mine").mkdir()
    (cache / "mine" / "data.bin").write_bytes(b"\x00")
    result = runner.invoke(app, ["clean"])
    assert result.exit_code == 0
    assert (version / "notes.txt").read_text() == "mine\n" and (cache / "mine" / "data.bin").exists()
    assert not list(version.glob("*.json")) and not (cache / "CACHEDIR.TAG").exists()
    assert (project / "net.py").exists()


# ---------------------------------------------------------------------------------------------
# baselines


@pytest.mark.parametrize(
    "content",
    [
        MODEL.encode(),  # a Python source file
        b'{"name": "some other tool", "version": 3}\n',  # another tool's JSON
        b'{"version": 1, "models": {"m": {"l": {"RF101": "x"}}}}',  # almost a baseline
        b"\x89PNG\r\n\x1a\n\x00\x00",  # binary
        "caf\xe9".encode("latin-1"),  # not UTF-8
    ],
    ids=["python", "other-json", "bad-baseline", "binary", "latin-1"],
)
@pytest.mark.parametrize("force", [False, True])
def test_write_baseline_never_replaces_a_file_that_is_not_a_baseline(project, content, force):
    write_project(project)
    victim = project / "keep_me.py"
    victim.write_bytes(content)
    line = one_error_line(runner.invoke(app, ["check", "--no-cache", "--write-baseline", str(victim), *(["--force"] * force)]))
    assert "refusing to overwrite" in line and "keep_me.py" in line
    assert victim.read_bytes() == content


def test_write_baseline_into_a_folder_is_refused(project):
    write_project(project)
    (project / "folder").mkdir()
    line = one_error_line(runner.invoke(app, ["check", "--no-cache", "--write-baseline", "folder"]))
    assert "is a folder" in line


@pytest.mark.parametrize("force", [False, True])
def test_rewriting_a_baseline_keeps_the_entries_of_a_model_that_failed_to_load(project, force):
    write_project(project, models=("net", "other"))
    baseline = project / "rflint-baseline.json"
    assert runner.invoke(app, ["check", "--no-cache", "--write-baseline", str(baseline)]).exit_code == 0
    recorded = json.loads(baseline.read_text())["models"]
    assert set(recorded) == {"net", "other"}  # both have findings at input 8
    (project / "other.py").write_text(BROKEN)  # a broken import: the model cannot be checked
    result = runner.invoke(app, ["check", "--no-cache", "--write-baseline", str(baseline), *(["--force"] * force)])
    assert result.exit_code == 2
    assert json.loads(baseline.read_text())["models"]["other"] == recorded["other"]


def test_an_empty_file_may_become_a_baseline(project):
    write_project(project)
    target = project / "rflint-baseline.json"
    target.write_text("")
    assert runner.invoke(app, ["check", "--no-cache", "--write-baseline", str(target)]).exit_code == 0
    assert json.loads(target.read_text())["version"] == 1


# ---------------------------------------------------------------------------------------------
# the one write helper


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "report.json"
    target.write_text("old\n")

    def refuse(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError):
        write_atomic(target, "new\n")
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_write_keeps_the_mode_of_the_file_it_replaces_and_follows_a_link(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("old")
    real.chmod(0o640)
    link = tmp_path / "link.json"
    link.symlink_to(real)
    write_atomic(link, "new")
    assert link.is_symlink() and real.read_text() == "new" and (real.stat().st_mode & 0o777) == 0o640


def test_a_pipe_is_written_in_place_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    write_atomic(fifo, "data\n")
    reader.join(10)
    assert got == [b"data\n"] and fifo.is_fifo()


def test_output_file_is_written_whole(project):
    write_project(project)
    result = runner.invoke(app, ["check", "--no-cache", "--output-format", "json", "-o", "out/report.json"])
    assert result.exit_code == 1
    assert json.loads((project / "out" / "report.json").read_text())
    assert not [p for p in (project / "out").iterdir() if p.name != "report.json"]  # no temporary left


@pytest.mark.parametrize("output", ["net.py", "json:net.py", "sarif:pyproject.toml"])
def test_an_output_file_never_replaces_a_source_or_config_file(project, output):
    write_project(project)
    before = snapshot(project)
    line = one_error_line(runner.invoke(app, ["check", "--no-cache", "-o", output]))
    assert "refusing to overwrite" in line
    assert snapshot(project) == before


@pytest.mark.parametrize("text", ["[" * 100000 + "]" * 100000, '{"version": 1, "models": ' * 5000], ids=["deep-list", "deep-object"])  # short ids: pytest puts the id in PYTEST_CURRENT_TEST, which children inherit
def test_a_deeply_nested_baseline_is_one_line(project, text):
    write_project(project)
    (project / "base.json").write_text(text)
    assert "base.json" in one_error_line(runner.invoke(app, ["check", "--no-cache", "--baseline", "base.json"]))
