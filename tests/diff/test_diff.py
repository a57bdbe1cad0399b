"""``rflint diff``: what a change does to the receptive field, end to end on a temporary git
repository, plus the matching rules on models checked in this process.

The repository has one model and five tagged commits: ``broken`` (the model fails to import),
``refined`` (refined at 32 px), ``block`` (three 3x3 convs after the last downsampling: the
third is unproductive), ``rename`` (only that layer renamed) and ``size`` (only the config's
input size changed, 32 -> 48). Commits have fixed authors and dates, so their ids, and the
markdown snapshot, are the same on every machine.
"""

from __future__ import annotations

import json
import os
import subprocess
from functools import cache
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from rflint.engine import pipeline as engine
from rflint.cli import FailOn, app, diff_exit_code
from rflint.diff import diff as run_diff
from rflint.project.config import load_config
from rflint.diff.compare import Revision, RevisionResult, Status, compare
from rflint.diff.worker import Request, child_sys_path
from rflint.views import diff as view
from rflint.report.common import RenderContext
from rflint.spec import ModelSpec

SNAPSHOT = Path(__file__).parents[1] / "report" / "snapshots" / "diff-markdown.md"
SCHEMA = json.loads((Path(view.__file__).parent / "diff_schema.json").read_text(encoding="utf-8"))

NET = '''from torch import nn
{imports}

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1)
        self.down = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1){block}
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.conv1(self.stem(x)).relu()
        x = self.conv2(self.down(x)).relu(){calls}
        return self.fc(self.pool(x).flatten(1))


def build_model():
    return Net()
'''
BLOCK = """
        self.extra1 = nn.Conv2d(16, 16, 3, padding=1)
        self.extra2 = nn.Conv2d(16, 16, 3, padding=1)
        self.{last} = nn.Conv2d(16, 16, 3, padding=1)"""
CALLS = "\n        x = self.{last}(self.extra2(self.extra1(x)))"
CONFIG = """[tool.rflint]

[[tool.rflint.models]]
target = "models/net.py:build_model"
name = "net"
input-size = {size}
"""


def net(block: str | None = None, broken: bool = False) -> str:
    return NET.format(
        imports="import not_installed_dependency_xyz\n" if broken else "",
        block=BLOCK.format(last=block) if block else "",
        calls=CALLS.format(last=block) if block else "",
    )


COMMITS = [  # tag, model file, input size
    ("broken", net(broken=True), 32),
    ("refined", net(), 32),
    ("block", net("extra3"), 32),
    ("rename", net("last_conv"), 32),
    ("size", net("last_conv"), 48),
]


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("diff") / "project"
    (work / "models").mkdir(parents=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=work, env=env, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    for day, (tag, model, size) in enumerate(COMMITS, start=1):
        (work / "models" / "net.py").write_text(model, encoding="utf-8")
        (work / "pyproject.toml").write_text(CONFIG.format(size=size), encoding="utf-8")
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = f"2026-01-0{day}T12:00:00+00:00"
        git("add", "-A")
        git("commit", "-q", "-m", tag)
        git("tag", tag)
    return work


@cache
def _diff(repo: Path, base: str, head: str):
    return run_diff(base, head, Request(), cwd=str(repo))


@pytest.fixture
def diff_of(repo):
    """``diff_of(base, head)``: the engine's diff of two tags (each pair analysed once)."""
    return lambda base, head: _diff(repo, base, head)


def worktrees(repo: Path) -> list[str]:
    out = subprocess.run(["git", "worktree", "list", "--porcelain"], cwd=repo, capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line.startswith("worktree ")]


# ---------------------------------------------------------------------------------------------
# end to end on the repository


def test_a_block_after_the_last_downsampling_is_reported_with_its_unproductive_layer(diff_of, repo):
    d = diff_of("refined", "block")
    (m,) = d.models
    assert m.status is Status.CHANGED
    assert (m.i_min.before, m.i_min.after) == ((19, 19), (43, 43))
    assert m.refined == (True, False)
    assert [(f.code, f.layer) for f in m.new_errors] == [("RF101", "extra3")]
    assert m.new_errors[0].file == "models/net.py"  # relative to the revision, not the temporary worktree
    assert [x.qualname for x in m.layers_added] == ["extra1", "extra2", "extra3"]
    assert not m.layers_removed and not m.layers_renamed
    assert diff_exit_code(d, FailOn.NEW_FINDINGS) == 1
    assert diff_exit_code(d, FailOn.NEVER) == 0
    text = view.render_full(d, RenderContext())
    assert "net: I_min 19 -> 43 at 32 px; no longer refined; 1 new unproductive layer: extra3" in text
    assert "+ error RF101 extra3: extra3 (Conv2d 3x3) is unproductive" in text
    assert worktrees(repo) == [f"worktree {repo.resolve()}"]  # the temporary checkout is gone


def test_the_json_output_follows_its_schema(diff_of):
    data = json.loads(view.render_json(diff_of("refined", "block")))
    jsonschema.validate(data, SCHEMA)
    (model,) = data["models"]
    assert data["base"]["revision"] == "refined" and len(data["base"]["commit"]) == 40
    assert data["new_errors"] == 1 and model["status"] == "changed"
    assert model["i_min"] == {"before": [19, 19], "after": [43, 43], "delta": [24, 24]}
    assert model["findings"]["added"][0]["layer"] == "extra3"


def test_renaming_a_layer_is_a_rename_not_a_new_finding(diff_of):
    d = diff_of("block", "rename")
    (m,) = d.models
    assert [(r.before, r.after) for r in m.layers_renamed] == [("extra3", "last_conv")]
    assert not m.findings_added and not m.findings_removed
    assert not m.layers_added and not m.layers_removed and not m.layers_changed
    assert not m.i_min.changed
    assert diff_exit_code(d, FailOn.NEW_FINDINGS) == 0
    assert diff_exit_code(d, FailOn.ANY_CHANGE) == 1
    assert "layers renamed (1): extra3 -> last_conv" in view.render_full(d, RenderContext())


def test_changing_only_the_configured_input_size_changes_the_findings_not_the_fields(diff_of):
    d = diff_of("rename", "size")
    (m,) = d.models
    assert (m.input_size.before, m.input_size.after) == ((32, 32), (48, 48))
    assert not m.i_min.changed and not m.layers_changed
    assert m.refined == (False, True)
    assert {(f.code, f.layer) for f in m.findings_removed} == {("RF101", "last_conv"), ("RF102", "extra2"), ("RF103", "")}
    assert not m.findings_added
    assert diff_exit_code(d, FailOn.NEW_FINDINGS) == 0
    assert view.headline(m).startswith("input size 32 -> 48 (+16); now refined; 1 unproductive layer fixed")


def test_a_base_whose_model_fails_to_import_is_reported_with_its_reason_and_exits_2(diff_of, repo):
    d = diff_of("broken", "refined")
    (m,) = d.models
    assert m.status is Status.FAILED
    (failure,) = m.failures
    assert failure.side == "base"
    assert "importing models/net.py failed: no module named 'not_installed_dependency_xyz'" in failure.message
    assert "not_installed_dependency_xyz" in failure.message
    assert m.i_min.after == (19, 19) and m.i_min.before is None
    assert diff_exit_code(d, FailOn.NEVER) == 2  # never masked
    assert "### `net`: could not be analysed at base" in view.render_markdown(d, RenderContext())
    assert worktrees(repo) == [f"worktree {repo.resolve()}"]


def test_markdown_snapshot_and_exit_1_through_the_command_line(repo, monkeypatch, request):
    monkeypatch.chdir(repo)
    result = CliRunner().invoke(app, ["diff", "refined", "block", "--output-format", "markdown"])
    assert result.exit_code == 1, result.output
    if request.config.getoption("--update-snapshots"):
        SNAPSHOT.write_text(result.stdout, encoding="utf-8")
    assert SNAPSHOT.exists(), "no snapshot: run pytest with --update-snapshots and review the file"
    assert result.stdout == SNAPSHOT.read_text(encoding="utf-8"), "markdown differs from the snapshot (review, then --update-snapshots)"


def test_an_unchanged_working_tree_says_no_change_and_exits_0(repo, monkeypatch):
    monkeypatch.chdir(repo / "models")  # from a subfolder: the config is still found at each revision
    result = CliRunner().invoke(app, ["diff", "HEAD"])
    assert result.exit_code == 0, result.output
    assert "No change: 1 model compared" in result.stdout


def test_a_repeated_diff_answers_both_revisions_from_the_working_trees_cache(repo, tmp_path):
    from rflint.diff.revisions import analyse

    cache = tmp_path / "cache"
    first = analyse("refined", "block", Request(), cwd=str(repo), cache_dir=str(cache))
    again = analyse("refined", "block", Request(), cwd=str(repo), cache_dir=str(cache))
    assert [("cache" in r.timings) for side in first for r in side.result.reports] == [False, False]
    assert [("cache" in r.timings) for side in again for r in side.result.reports] == [True, True]  # the base too:
    # its commit is checked out at the same place each time, so its models' paths repeat
    assert compare(*again) == compare(*first)
    assert worktrees(repo) == [f"worktree {repo.resolve()}"]


def test_a_name_that_is_not_a_revision_is_a_one_line_error(repo, monkeypatch):
    monkeypatch.chdir(repo)
    result = CliRunner().invoke(app, ["diff", "no-such-branch"])
    assert result.exit_code == 2
    assert result.stderr.startswith("rflint: error: 'no-such-branch' is not a revision of this repository (hint:")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_outside_a_git_repository_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    result = CliRunner().invoke(app, ["diff", "HEAD~1"])
    assert result.exit_code == 2
    assert "is not inside a git repository" in result.stderr and "Traceback" not in result.output


# ---------------------------------------------------------------------------------------------
# the matching rules, on models checked in this process


def _side(tmp_path: Path, label: str, models: dict[str, str], size: int = 32, config: str = "") -> RevisionResult:
    """One revision's result from model sources (name -> source), checked here."""
    root = tmp_path / label
    root.mkdir()
    specs = []
    for name, source in models.items():
        (root / f"{name}.py").write_text(source, encoding="utf-8")
        # headless conv stacks keep their spatial axes (``task = "auto"`` would judge them per
        # unit): these tests compare Richter's numbers
        specs.append(ModelSpec(str(root / f"{name}.py"), input_size=(size,), name=name, task="classification"))
    (root / "rflint.toml").write_text(config, encoding="utf-8")
    result = engine.check(specs, load_config(cwd=root))
    return RevisionResult(Revision(label), str(root), result, tuple(s.display_name for s in specs))


SEQ = "from torch import nn\n\ndef build_model():\n    return nn.Sequential({})\n"
CONV = "nn.Conv2d(8, 8, {k}, padding={p})"
STEM = "nn.Conv2d(3, 8, 3, stride=2, padding=1)"


def seq(*kernels: int) -> str:
    return SEQ.format(", ".join([STEM, *(CONV.format(k=k, p=k // 2) for k in kernels)]))


def named(**layers: str) -> str:
    """A model whose layers have names: ``named(a="nn.ReLU()", ...)``, called in order."""
    body = "".join(f"        self.{n} = {v}\n" for n, v in layers.items())
    calls = "".join(f"        x = self.{n}(x)\n" for n in layers)
    return (
        "from torch import nn\n\nclass Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        f"{body}\n    def forward(self, x):\n{calls}        return x\n\ndef build_model():\n    return Net()\n"
    )


def test_layer_changes_are_listed_largest_first(tmp_path):
    base = _side(tmp_path, "base", {"m": seq(3, 3, 3)})
    head = _side(tmp_path, "head", {"m": seq(5, 3, 3)})  # the first conv grows by 2, so does everything after it
    (m,) = compare(base, head).models
    assert [c.layer for c in m.layers_changed] == ["1", "2", "3"]
    assert all(c.r_max.delta == (4, 4) for c in m.layers_changed)  # 2 * jump 2
    bigger = _side(tmp_path, "bigger", {"m": seq(3, 3, 7)})
    (m,) = compare(base, bigger).models
    assert [c.layer for c in m.layers_changed] == ["3"] and m.layers_changed[0].magnitude == 8


def test_a_layer_whose_name_now_holds_another_op_is_replaced_not_changed(tmp_path):
    base = _side(tmp_path, "base", {"m": SEQ.format(f"{STEM}, nn.ReLU()")})
    head = _side(tmp_path, "head", {"m": SEQ.format(f"{STEM}, {CONV.format(k=3, p=1)}, nn.ReLU()")})
    (m,) = compare(base, head).models
    assert [(x.qualname, x.op) for x in m.layers_added] == [("1", "Conv2d")]
    assert [(r.before, r.after) for r in m.layers_renamed] == [("1", "2")]  # the ReLU moved one index on
    assert not m.layers_removed


def test_a_renamed_layer_whose_kernel_changed_is_paired_by_its_place(tmp_path):
    base = _side(tmp_path, "base", {"m": named(stem=STEM, old=CONV.format(k=3, p=1), act="nn.ReLU()")})
    head = _side(tmp_path, "head", {"m": named(stem=STEM, new=CONV.format(k=5, p=2), act="nn.ReLU()")})
    (m,) = compare(base, head).models
    assert [(r.before, r.after) for r in m.layers_renamed] == [("old", "new")]
    assert [c.layer for c in m.layers_changed][:1] == ["new"]


def test_an_ambiguous_rename_stays_added_and_removed(tmp_path):
    relu = "nn.ReLU()"
    base = _side(tmp_path, "base", {"m": named(stem=STEM, a=relu, b=relu, out=CONV.format(k=3, p=1))})
    head = _side(tmp_path, "head", {"m": named(stem=STEM, c=relu, out=CONV.format(k=3, p=1))})
    (m,) = compare(base, head).models
    assert not m.layers_renamed  # which of a and b became c? Not decidable: reported as it is
    assert [x.qualname for x in m.layers_removed] == ["a", "b"] and [x.qualname for x in m.layers_added] == ["c"]


def test_rf103_is_a_new_error_only_where_the_head_config_makes_it_one(tmp_path):
    refined, unrefined = seq(3), seq(3, 3, 3, 3, 3, 3, 3, 3)  # I_min 7 -> 35 at 32 px, no input r_min >= 32
    strict = '[rules]\nRF103 = "error"\n'
    for config, errors in (("", []), (strict, ["RF103"])):
        tag = "strict" if config else "default"
        d = compare(_side(tmp_path, f"b-{tag}", {"m": refined}, config=config), _side(tmp_path, f"h-{tag}", {"m": unrefined}, config=config))
        (m,) = d.models
        assert m.refined == (True, False)
        assert [f.code for f in m.new_errors] == errors
        assert diff_exit_code(d, FailOn.NEW_FINDINGS) == (1 if errors else 0)


def test_models_added_and_removed_by_the_change(tmp_path):
    d = compare(_side(tmp_path, "base", {"a": seq(3), "old": seq(3)}), _side(tmp_path, "head", {"a": seq(3), "new": seq(3, 3, 3, 3, 3, 3, 3, 3, 3, 3)}))
    status = {m.model: m.status for m in d.models}
    assert status == {"a": Status.UNCHANGED, "new": Status.ADDED, "old": Status.REMOVED}
    new = next(m for m in d.models if m.model == "new")
    assert "RF101" in {f.code for f in new.new_errors} and not new.findings_removed
    assert diff_exit_code(d, FailOn.NEW_FINDINGS) == 1  # a new model with an unproductive layer


def test_a_revision_result_survives_the_trip_between_processes(tmp_path):
    from rflint.serialize import from_data, to_data

    side = _side(tmp_path, "base", {"m": seq(3, 5)})
    assert from_data(RevisionResult, json.loads(json.dumps(to_data(side)))) == side


def test_the_child_imports_the_revision_not_the_working_tree(tmp_path):
    top, root = str(tmp_path / "repo"), str(tmp_path / "checkout")
    venv = os.path.join(top, ".venv", "lib", "python3.11", "site-packages")
    path = child_sys_path(["", os.path.join(top, "src"), venv, "/usr/lib/python3.11"], top, root, os.path.join(root, "sub"))
    assert path == (os.path.join(root, "sub"), os.path.join(root, "src"), venv, "/usr/lib/python3.11")


def test_the_comparing_process_never_needs_torch():
    """Only the children import torch and the models; the parent resolves, compares and renders."""
    import sys

    code = (
        "import sys\nsys.modules['torch'] = None\n"
        "import rflint.diff.compare, rflint.diff.revisions, rflint.diff.worker, rflint.views.diff, rflint.engine.pipeline\nprint('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_a_change_of_the_tiling_halo_is_reported_and_only_then_shown():
    """The halo of a conv stack grows with its kernels (a stride-2 stem, then 3x3 / 5x5 convs:
    halo = sum of (k - 1) / 2 * jump before each unit, by hand 1 + 2 + 2 = 5 and 1 + 2 + 4 = 7
    on the input grid), and the human table shows the halo rows only when they changed."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        base = _side(Path(tmp), "base", {"m": seq(3, 3)})
        head = _side(Path(tmp), "head", {"m": seq(3, 5)})
        same = _side(Path(tmp), "same", {"m": seq(3, 3)})
    (m,) = compare(base, head).models
    assert m.halo_before.changed and m.halo_after.changed
    assert m.halo_before.before == (5, 5) and m.halo_before.after == (7, 7)
    assert "tiling halo before" in view.render_markdown(compare(base, head), RenderContext(root="."), 10)
    (unchanged,) = compare(base, same).models
    assert not unchanged.halo_before.changed
    assert "tiling halo" not in view.render_markdown(compare(base, same), RenderContext(root="."), 10)
    data = json.loads(view.render_json(compare(base, head)))
    jsonschema.validate(data, SCHEMA)
    assert data["models"][0]["halo_before"] == {"before": [5, 5], "after": [7, 7], "delta": [2, 2]}
