"""Cache poisoning: an entry rflint cannot use is a miss, and is rewritten.

Entries are files anyone can edit, truncate or replace (a crashed disk, another rflint build, a
hand edit). Whatever an entry holds, a lookup either returns exactly the report the entry
describes or nothing: never an exception, never a hang, never a half-decoded report that fails
later. Two runs sharing one cache at the same time both answer correctly.
"""

from __future__ import annotations

import copy
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rflint.engine import cache_dir, cache_keys
from rflint.cli import app
from rflint.results import ModelReport
from rflint.serialize import to_data

runner = CliRunner()

MODEL = """\
from torch import nn


def build():
    return nn.Sequential(*[nn.Conv2d(3, 3, 3, padding=1) for _ in range({depth})])
"""


@pytest.fixture()
def project(tmp_path, monkeypatch):
    for name, depth in (("a", 6), ("b", 9)):
        (tmp_path / f"{name}.py").write_text(MODEL.format(depth=depth))
    (tmp_path / "pyproject.toml").write_text(
        "[tool.rflint]\n"
        + "".join(f'[[tool.rflint.models]]\ntarget = "{m}.py:build"\nname = "{m}"\ninput-size = 8\n' for m in "ab")
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


def check() -> tuple[int, str]:
    result = runner.invoke(app, ["check", "--output-format", "json"])
    return result.exit_code, result.stdout


def entries() -> list[Path]:
    return sorted(Path(os.environ["RFLINT_CACHE_DIR"]).glob("v*/*.json"))


POISONS = {
    "report-null": lambda e: {**e, "report": None},
    "report-list": lambda e: {**e, "report": []},
    "report-empty": lambda e: {**e, "report": {}},
    "analysis-null": lambda e: {**e, "report": {**e["report"], "analysis": None}},
    "findings-string": lambda e: {**e, "report": {**e["report"], "findings": "RF101"}},
    "files-list": lambda e: {**e, "files": []},
    "format-string": lambda e: {**e, "format": "1"},
    "not-an-object": lambda e: [e],
    "a-number": lambda e: 7,
}


@pytest.mark.parametrize("poison", list(POISONS))
def test_an_entry_of_the_wrong_structure_is_a_miss_and_is_rewritten(project, poison):
    good = check()
    for entry in entries():
        entry.write_text(json.dumps(POISONS[poison](json.loads(entry.read_text()))))
    assert check() == good
    assert all(isinstance(json.loads(e.read_text()), dict) and json.loads(e.read_text())["report"] for e in entries())
    assert check() == good


@pytest.mark.parametrize(
    "content", [b"", b"{", b'{"format": 1, "files": {}, "rep', b"\x00\xff\xfe binary \x89", "caf\xe9".encode("latin-1")],
    ids=["empty", "brace", "truncated", "binary", "latin-1"],
)
def test_an_unreadable_entry_is_a_miss_and_is_rewritten(project, content):
    good = check()
    for entry in entries():
        entry.write_bytes(content)
    assert check() == good
    assert all(json.loads(e.read_bytes())["format"] == cache_keys.ENTRY_FORMAT for e in entries())


def test_an_entry_whose_dependency_is_a_pipe_does_not_hang(project):
    """A dependency recorded as a FIFO would block a digest forever: only regular files count."""
    good = check()
    fifo = project / "pipe"
    os.mkfifo(fifo)
    for entry in entries():
        data = json.loads(entry.read_text())
        data["files"][str(fifo)] = "0" * 64
        entry.write_text(json.dumps(data))
    assert check() == good


def _leaves(data, path=()):
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _leaves(v, (*path, i))
    if path:
        yield path


def _set(data, path, value):
    data = copy.deepcopy(data)
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


def test_a_lookup_returns_the_entry_exactly_or_nothing_whatever_a_field_holds(project):
    """Property: replace one field anywhere in a real entry with a value of another type; the
    lookup never raises, and a report it returns re-encodes to exactly the entry's data."""
    check()
    from rflint.cli.lint import run_linter
    from rflint.project.config import load_config

    config = load_config()
    linter = run_linter(config, no_cache=False)
    spec = config.models[0]
    path = linter.cache.entry_path(spec)
    original = json.loads(path.read_text())
    paths = list(_leaves(original["report"]))
    rng = random.Random(20)
    values = [None, "x", -1, 1.5, [], {}, True, [None], {"__frac__": [1, 0]}, {"__inf__": "up"}]
    tried = returned = 0
    for field in rng.sample(paths, min(300, len(paths))):
        for value in rng.sample(values, 3):
            poisoned = _set(original, ("report", *field), value)
            path.write_text(json.dumps(poisoned))
            report = linter.cache.lookup(spec)  # must not raise
            tried += 1
            if report is not None:
                returned += 1
                assert isinstance(report, ModelReport)
                again = to_data(report)
                for key in ("spec", "timings"):  # replaced on every hit
                    again.pop(key, None)
                    poisoned["report"].pop(key, None)
                assert again == poisoned["report"], field
    assert tried >= 300 and returned < tried  # most mutations are refused; some fit the types


def test_two_checks_on_one_cache_at_the_same_time_both_answer_correctly(project):
    """Two processes miss on the same entries and write them side by side, then hit together."""
    command = [sys.executable, "-m", "rflint", "check", "--output-format", "json"]
    reference = subprocess.run([*command, "--no-cache"], capture_output=True, text=True, timeout=300)
    assert reference.returncode == 1, reference.stderr
    for _round in ("cold", "warm"):
        runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outs = [run.communicate(timeout=300) for run in runs]
        for run, (stdout, stderr) in zip(runs, outs):
            assert run.returncode == 1, stderr
            assert json.loads(stdout) == json.loads(reference.stdout)
    assert len(entries()) == 2
    assert not list(Path(os.environ["RFLINT_CACHE_DIR"]).glob("v*/*.tmp"))  # no temporary left behind


def test_a_cache_folder_another_run_is_creating_is_accepted(tmp_path):
    """Between ``mkdir`` and the rename of CACHEDIR.TAG another process sees the folder with
    only rflint's temporary marker in it: that is rflint's folder, not a foreign one."""
    root = tmp_path / ".rflint_cache"
    root.mkdir()
    (root / ".CACHEDIR.TAG.123.abcd.tmp").write_text("Signature")
    assert cache_dir.root_problem(root, tmp_path) == ""
    (root / "notes.txt").write_text("mine")
    assert "no CACHEDIR.TAG" in cache_dir.root_problem(root, tmp_path)
