"""Models that fail: the failure is cached and replayed identically, ``rflint diff`` reports a
model failing at both revisions as pre-existing and judges the others, and the hints say what
went wrong (a forward that raised at its line, a missing module without a made-up ``pip
install``, a wrong channel guess retried instead of ending the run)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from torch import nn

from rflint.frontend.geometry import candidates

from research_repo import line_of, run_rflint, write_repo


def _check(root: Path, *args: str, flag: Path | None = None):
    env = {"TORCH_FLAG_FILE": str(flag)} if flag else None
    return run_rflint(root, "check", "--output-format", "concise", *args, env=env)


# ---------------------------------------------------------------------------------------------
# the result cache


def test_a_failing_model_is_cached_and_replayed_with_the_same_error(tmp_path):
    root = write_repo(tmp_path / "repo", broken=True)
    miss = _check(root, "broken", flag=tmp_path / "miss")
    hit = _check(root, "broken", flag=tmp_path / "hit")
    assert (tmp_path / "miss").read_text() == "torch imported"
    assert (tmp_path / "hit").read_text() == "torch not imported"  # no torch, no rebuild
    assert (hit.returncode, hit.stdout, hit.stderr) == (miss.returncode, miss.stdout, miss.stderr)
    assert miss.returncode == 2


def test_a_cached_failure_is_not_replayed_once_the_model_is_fixed(tmp_path):
    root = write_repo(tmp_path / "repo", broken=True)
    assert _check(root, "broken").returncode == 2
    model = root / "models/broken.py"
    model.write_text(model.read_text().replace("< 100", "< 1"), encoding="utf-8")
    fixed = _check(root, "broken")
    assert fixed.returncode == 0, fixed.stderr
    assert "error" not in fixed.stderr


def test_a_missing_module_is_named_in_its_package_and_creating_it_is_a_miss(tmp_path):
    root = write_repo(tmp_path / "repo")
    (root / "models/needs.py").write_text(
        "from lib.extra import width\nfrom torch import nn\n\n\ndef build():\n    return nn.Conv2d(3, width, 3)\n", encoding="utf-8"
    )
    failed = _check(root, "models/needs.py:build", "--input-size", "8")
    assert failed.returncode == 2
    assert "no module named 'lib.extra'" in failed.stderr
    assert "hint: lib (lib) has no module extra: add the file, or fix the import (imported at models/needs.py:1)" in failed.stderr
    assert "pip install" not in failed.stderr  # lib is the repository's own package, not a distribution
    (root / "lib/extra.py").write_text("width = 4\n", encoding="utf-8")
    fixed = _check(root, "models/needs.py:build", "--input-size", "8")
    assert fixed.returncode == 0, fixed.stderr


# ---------------------------------------------------------------------------------------------
# hints


def test_a_forward_that_raises_on_the_input_is_named_at_its_line_without_a_tracer_hint(tmp_path):
    root = write_repo(tmp_path / "repo", broken=True)
    result = _check(root, "broken", "--no-cache")
    line = line_of(root, "models/broken.py", "raise ValueError")
    (error,) = [x for x in result.stderr.splitlines() if x.startswith("rflint: error:")]
    assert error.startswith(f"rflint: error: broken: the model's forward raised at models/broken.py:{line}: ValueError: expects at least 100 px")
    assert "leaf" not in error and "control flow" not in error


DATA_DEPENDENT = """\
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        if x.sum() > 0:
            return self.conv(x)
        return x
"""


def test_a_real_tracer_limitation_keeps_the_tracer_hint(tmp_path):
    (tmp_path / "net.py").write_text(DATA_DEPENDENT, encoding="utf-8")
    result = _check(tmp_path, "net.py:Net", "--input-size", "8", "--no-cache")
    assert result.returncode == 2
    assert "torch.fx could not trace the model" in result.stderr
    assert "hint: mark the offending submodule as a leaf" in result.stderr
    assert "forward raised" not in result.stderr


class StaleCount(nn.Module):
    """ShuffleNetV2 as pytorch-cifar writes it: ``self.in_channels`` is the running channel
    count of the stage builder and ends at 464, the input has 3 channels."""

    def __init__(self):
        super().__init__()
        self.in_channels = 24
        self.stem = nn.Conv2d(3, 24, 3, padding=1)
        self.stages = nn.Sequential(*[self._make(c) for c in (116, 232, 464)])

    def _make(self, cout):
        layer = nn.Conv2d(self.in_channels, cout, 3, padding=1)
        self.in_channels = cout
        return layer


def test_a_mutated_in_channels_attribute_is_tried_after_the_first_convolution():
    shapes = [g.shape for g in candidates(StaleCount(), (32,), None)]
    assert shapes[0] == (1, 3, 32, 32)
    assert (1, 464, 32, 32) in shapes  # still tried, second


GUESS_FAILS_TO_TRACE = """\
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.num_channels = 5  # wrong: the stem reads 3
        self.mix = nn.Conv2d(5, 8, 1)
        self.stem = nn.Conv2d(3, 5, 3, padding=1)

    def forward(self, x):
        for _ in range(x.shape[1]):  # fx cannot trace range(Proxy): export runs it
            pass
        return self.mix(self.stem(x))
"""


def test_a_channel_guess_that_fails_inside_the_tracer_is_retried_with_the_common_counts(tmp_path):
    """5 channels fail in torch's convolution under export (a trace error, not a shape error);
    3 then runs. Fields: the 3x3 stem 3, the 1x1 mix 3: at 8 px nothing to report."""
    (tmp_path / "net.py").write_text(GUESS_FAILS_TO_TRACE, encoding="utf-8")
    result = _check(tmp_path, "net.py:Net", "--input-size", "8", "--no-cache")
    assert result.returncode == 0, result.stderr
    assert "analysed at input shape (1, 3, 8, 8) (a common channel count)" in result.stderr


# ---------------------------------------------------------------------------------------------
# rflint diff


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


@pytest.fixture()
def history(tmp_path) -> Path:
    """Two commits: the repository with its failing model, then ``head`` made one conv deeper
    (fields 11, 13, 15 at 8 px: ``head.2`` is a new unproductive layer)."""
    root = write_repo(tmp_path / "repo", broken=True)
    _git(root, "init", "-q")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    model = root / "models/blocknet.py"
    model.write_text(model.read_text().replace("make_stage(8, 8, depth=2)", "make_stage(8, 8, depth=3)"), encoding="utf-8")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "deeper head")
    return root


def test_diff_reports_a_model_failing_at_both_revisions_as_pre_existing_and_judges_the_rest(history):
    result = run_rflint(history, "diff", "HEAD~1", "HEAD", "--output-format", "json", "--no-cache")
    assert result.returncode == 1, result.stderr  # the new RF101, not 2 for the old failure
    models = {m["model"]: m for m in json.loads(result.stdout)["models"]}
    assert models["broken"]["status"] == "still failing"
    assert [f["side"] for f in models["broken"]["failures"]] == ["base and head"]  # one problem, said once
    assert [(f["code"], f["layer"]) for f in models["blocks"]["findings"]["added"]] == [("RF101", "head.2")]
    assert "rflint: warning: broken: base and head: the model's forward raised at" in result.stderr
    assert "error" not in result.stderr
