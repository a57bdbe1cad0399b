"""Output details: the diff table is never cut when piped, one wording for a shortfall,
``--statistics`` counts the models that failed, one RF102 per run of critical layers."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from torch import nn
from typer.testing import CliRunner

from rflint.checks.input_below_minimum_resolution import margins
from rflint.cli import app
from rflint.engine.pipeline import lint_module
from rflint.spec import ModelSpec

LONG = "encoder_stage_with_a_really_long_name_that_no_eighty_column_table_fits"

NET = """\
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.{long} = nn.Sequential(*[nn.Conv2d(3, 3, {kernel}, padding={pad}) for _ in range(6)])

    def forward(self, x):
        return self.{long}(x)


def build_model():
    return Net()
"""


def git(root: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"}
    subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)


def test_the_diff_table_is_never_cut_when_piped(tmp_path, monkeypatch):
    (tmp_path / "net.py").write_text(NET.format(long=LONG, kernel=3, pad=1), encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text(
        '[[tool.rflint.models]]\ntarget = "net.py:build_model"\nname = "a-model-name-long-enough-to-crowd-a-table"\ninput-size = [9, 17]\n',
        encoding="utf-8",
    )
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "base")
    (tmp_path / "net.py").write_text(NET.format(long=LONG, kernel="(3, 5)", pad="(1, 2)"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "80")  # a narrow terminal's setting must not cut a pipe
    result = CliRunner().invoke(app, ["diff", "HEAD", "--color", "never"])
    assert "…" not in result.stdout, result.stdout
    rows = [line for line in result.stdout.splitlines() if line.split()[:1] == [f"{LONG}.5"]]
    # by hand: six 3x3 convs, r 13; as 3x5, r 13 on H and 25 on W (+12)
    assert len(rows) == 1 and "13 -> 13x25 (0x+12)" in rows[0] and rows[0].split()[1] == "Conv2d", result.stdout


class Terminal:
    def isatty(self) -> bool:
        return True


def test_render_context_is_unbounded_off_a_terminal_and_the_terminal_width_on_one(monkeypatch):
    from rflint.cli import base
    from rflint.cli.outputs import Output

    from rflint.cli.outputs import STDOUT

    out = Output(fmt="full", path=STDOUT, primary=True)
    assert base.render_context(".", out, base.Color.NEVER, unbounded=True).width == base.UNBOUNDED_WIDTH
    assert base.render_context(".", out, base.Color.NEVER).width == 100  # other outputs as before
    monkeypatch.setattr(base.sys, "stdout", Terminal())
    monkeypatch.setattr(base.stderr, "_width", 132)  # what rich read from COLUMNS / the terminal
    assert base.render_context(".", out, base.Color.NEVER, unbounded=True).width == 132


@pytest.mark.parametrize(
    ("i_min", "size", "text"),
    [
        ((32, 32), (32, 32), "I_min 32 >= 32 (1 px short)"),  # refined needs 33: one pixel more
        ((256, 256), (32, 32), "I_min 256 >= 32 (225 px short)"),
        ((96, 96, 96), (64, 64, 64), "I_min 96 >= 64 (33 px short)"),  # 3-D: the same words
        ((40,), (16,), "I_min 40 >= 16 (25 px short)"),
        ((40, 10), (32, 32), "H: I_min 40 >= 32 (9 px short); refined on W: I_min 10 < 32 (21 px to spare)"),
        ((9, 9, 20), (16, 16, 16), "W: I_min 20 >= 16 (5 px short); refined on T and H: I_min 9 < 16 (6 px to spare)"),
    ],
)
def test_one_wording_for_a_shortfall_in_every_dimensionality(i_min, size, text):
    assert margins(i_min, size) == text


# --------------------------------------------------------------------------- statistics


def test_statistics_count_the_models_that_failed(tmp_path, monkeypatch):
    (tmp_path / "good.py").write_text("from torch import nn\n\ndef build_model():\n    return nn.Sequential(*[nn.Conv2d(3, 3, 3, padding=1) for _ in range(8)])\n")
    (tmp_path / "broken.py").write_text("def build_model():\n    raise ValueError('no such backbone')\n")
    (tmp_path / "pyproject.toml").write_text(
        '[[tool.rflint.models]]\ntarget = "good.py"\ninput-size = 8\n\n[[tool.rflint.models]]\ntarget = "broken.py"\nname = "broken"\ninput-size = 8\n'
    )
    monkeypatch.chdir(tmp_path)
    text = CliRunner().invoke(app, ["check", "--statistics"])
    lines = text.stdout.splitlines()
    assert text.exit_code == 2 and "1\t-\tmodel-failed (broken)" in lines, text.stdout
    assert lines[-1].endswith("1 model could not be checked."), text.stdout
    data = json.loads(CliRunner().invoke(app, ["check", "--statistics", "--output-format", "json"]).stdout)
    assert {"code": None, "name": "model-failed", "count": 1, "models": ["broken"]} in data
    assert any(r["code"] == "RF101" for r in data)


def test_statistics_of_a_run_whose_only_model_failed_is_not_all_checks_passed(tmp_path, monkeypatch):
    (tmp_path / "broken.py").write_text("def build_model():\n    raise ValueError('no')\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["check", "broken.py", "-s", "8", "--statistics"])
    assert result.exit_code == 2 and "All checks passed" not in result.stdout and "model-failed" in result.stdout


# --------------------------------------------------------------------------- RF102 runs


class Branches(nn.Module):
    """Three parallel 3x3 / 5x5 / 7x7 branches after a pool; at 8 px all three cross the input
    size together. By hand: stem 3x3 (r 3), pool 2/2 (r 4, jump 2), then r = 4 + (k - 1) * 2:
    3x3 -> 8, 5x5 -> 12, 7x7 -> 16; the 3x3 after the merge reads r_min 8 (via the 3x3 branch)
    and reaches 12. At 6 px b3, b5, b7 are critical and ``out`` unproductive (8 >= 6); at 11 px
    b3 is ok (8), b5, b7 and ``out`` (12 > 11, input 8 < 11) critical."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.b3 = nn.Conv2d(4, 4, 3, padding=1)
        self.b5 = nn.Conv2d(4, 4, 5, padding=2)
        self.b7 = nn.Conv2d(4, 4, 7, padding=3)
        self.out = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        x = self.pool(self.stem(x))
        return self.out(self.b3(x) + self.b5(x) + self.b7(x))


def rf102(model: nn.Module, size: int) -> list:
    report = lint_module(model, ModelSpec("m", (size,), name="m", task="classification"))  # headless nets: the centre-unit rule
    return [f for f in report.findings if f.code == "RF102"]


def test_parallel_critical_branches_are_one_finding_naming_the_first_and_the_count():
    (finding,) = rf102(Branches(), 6)
    # at 6 px: 3x3 branch r 8 > 6 too, so the run is b3, b5, b7
    assert finding.layer == "b3"
    assert "b3 (Conv2d 3x3) is the first of 3 critical layers in a row (up to b7)" in finding.message
    assert "(receptive field 8 > input size 6)" in finding.message


def test_a_single_critical_layer_keeps_its_own_wording():
    (finding,) = rf102(Branches(), 11)
    assert finding.layer == "b5" and "is the first of 3 critical layers in a row (up to out)" in finding.message
    (single,) = rf102(nn.Sequential(*[nn.Conv2d(3, 3, 3, padding=1) for _ in range(5)]), 8)
    assert single.message.startswith("3 (Conv2d 3x3) is critical: its own receptive field passes the input size")


def test_a_layer_that_is_not_critical_ends_a_run():
    class Two(nn.Module):
        """Two blocks of parallel 5x5 / 7x7 branches with an ok 1x1 ... separated by a 3x3 that
        is unproductive (its input field already covers the input): two runs."""

        def __init__(self):
            super().__init__()
            self.a5, self.a7 = nn.Conv2d(3, 3, 5, padding=2), nn.Conv2d(3, 3, 7, padding=3)
            self.mid = nn.Conv2d(3, 3, 3, padding=1)
            self.b5, self.b7 = nn.Conv2d(3, 3, 5, padding=2), nn.Conv2d(3, 3, 7, padding=3)

        def forward(self, x):
            y = self.a5(x) + self.a7(x) + x  # the identity keeps r_min at 1
            y = self.mid(y)
            return self.b5(y) + self.b7(y)

    # at 4 px: a5 (5 > 4) and a7 critical; mid r_min 3 (identity path): ok, ends the run;
    # b5 r_min 3 + 4 = 7 > 4 and b7 9 > 4 with inputs r_min 3 < 4: critical, a second run
    found = rf102(Two(), 4)
    assert [(f.layer, "first of 2" in f.message) for f in found] == [("a5", True), ("b5", True)]
