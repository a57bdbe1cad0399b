"""The result cache: a hit answers what the miss answered, everything a raw report depends on
invalidates it, configuration and suppressions act after it, and it never fails a run."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from rflint.engine import cache, cache_keys
from rflint.cli import app
from rflint.spec import ModelSpec

runner = CliRunner()

MODEL = '''\
import json
from pathlib import Path

from torch import nn

from {blocks} import block


def build_model():
    depth = json.loads((Path(__file__).parent / "arch.json").read_text())["depth"]
    layers = [block(3, 8)] + [block(8, 8) for _ in range(depth - 1)]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
'''
BLOCKS = '''\
from torch import nn


def block(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU())
'''


@pytest.fixture()
def project(tmp_path, monkeypatch):
    """A repository with one configured model that imports a sibling module (named after the
    test, since the test process keeps imported modules) and reads a JSON file."""
    blocks = f"blocks_{tmp_path.name.replace('-', '_')}"
    (tmp_path / "model.py").write_text(MODEL.format(blocks=blocks))
    (tmp_path / f"{blocks}.py").write_text(BLOCKS)
    (tmp_path / "arch.json").write_text('{"depth": 12}')
    (tmp_path / "README.md").write_text("unrelated\n")
    (tmp_path / "pyproject.toml").write_text('[tool.rflint]\n[[tool.rflint.models]]\ntarget = "model.py"\ninput-size = 16\n')
    monkeypatch.chdir(tmp_path)
    return SimpleNamespace(root=tmp_path, blocks=tmp_path / f"{blocks}.py")


def check(*args: str):
    return runner.invoke(app, ["check", "--output-format", "json", "-j", "1", *args])


def entries(root: Path) -> list[Path]:
    return sorted(root.glob("v*/*.json"))


def test_a_hit_answers_exactly_what_the_miss_answered(project, lint_calls):
    miss = check()
    hit = check()
    assert miss.exit_code == hit.exit_code == 1, miss.output
    assert hit.stdout == miss.stdout
    assert json.loads(hit.stdout)
    assert lint_calls == ["model.py"]


def test_the_entry_records_the_model_file_its_imports_and_the_data_it_read(project):
    check()
    (entry,) = entries(Path(os.environ["RFLINT_CACHE_DIR"]))
    files = json.loads(entry.read_text())["files"]
    for name in ("model.py", project.blocks.name, "arch.json"):
        assert str(project.root / name) in files


@pytest.mark.parametrize(
    "change",
    ["edit the model file", "edit an imported module", "edit a file the factory reads", "change the input size"],
)
def test_what_the_report_depends_on_invalidates_it(project, lint_calls, change):
    first = check()
    if change == "edit the model file":  # a code change: a comment alone stays a hit (test_cache_tokens.py)
        (project.root / "model.py").write_text((project.root / "model.py").read_text().replace("depth - 1", "depth - 2"))
    elif change == "edit an imported module":
        project.blocks.write_text(BLOCKS.replace("padding=1", "padding=1, dilation=1"))
    elif change == "edit a file the factory reads":
        (project.root / "arch.json").write_text('{"depth": 4}')
    second = check() if change != "change the input size" else check("model.py", "--input-size", "32")
    assert len(lint_calls) == 2, change
    if change == "edit a file the factory reads":  # fewer layers: the answer really changed
        assert second.stdout != first.stdout


@pytest.mark.parametrize("change", ["touch an imported module", "edit an unrelated file"])
def test_what_it_does_not_depend_on_keeps_the_hit(project, lint_calls, change):
    check()
    if change == "touch an imported module":
        later = time.time() + 5
        os.utime(project.blocks, (later, later))
    else:
        (project.root / "README.md").write_text("edited\n")
    check()
    assert lint_calls == ["model.py"]


def test_suppressions_and_selection_apply_after_the_cache(project, lint_calls):
    before = json.loads(check().stdout)
    assert any(f["code"] == "RF101" for f in before)
    model = project.root / "model.py"
    model.write_text(model.read_text())  # unchanged content: still a hit
    ignored = json.loads(check("--ignore", "RF101").stdout)
    assert ignored and not any(f["code"] == "RF101" for f in ignored)
    assert lint_calls == ["model.py"]


def test_a_new_noqa_comment_is_honoured_on_a_hit(tmp_path, monkeypatch, lint_calls):
    model = tmp_path / "deep.py"
    lines = ["from torch import nn", "", "class Deep(nn.Module):", "    def __init__(self):", "        super().__init__()"]
    lines += [f"        self.c{i} = nn.Conv2d(3, 3, 3, padding=1)  # layer {i}" for i in range(12)]
    lines += ["", "    def forward(self, x):"]
    lines += [f"        x = self.c{i}(x)  # call {i}" for i in range(12)]
    lines += ["        return x", "", "def build_model():", "    return Deep()", ""]
    model.write_text("\n".join(lines))
    (tmp_path / "pyproject.toml").write_text('[tool.rflint]\ntask = "classification"\n')  # a headless stack
    monkeypatch.chdir(tmp_path)
    findings = json.loads(check("deep.py", "-s", "16").stdout)
    flagged = [f for f in findings if f["code"] == "RF101"]
    line = flagged[0]["location"]["row"]
    text = model.read_text().splitlines()
    # a comment changes no code, so this run is a hit too, and the new noqa acts on it
    text[line - 1] = text[line - 1].split("  #")[0] + "  # noqa: RF101"
    model.write_text("\n".join(text) + "\n")
    after = json.loads(check("deep.py", "-s", "16").stdout)
    again = json.loads(check("deep.py", "-s", "16").stdout)
    assert len([f for f in after if f["code"] == "RF101"]) == len(flagged) - 1
    assert again == after
    assert lint_calls == ["deep.py"]


def test_no_cache_neither_reads_nor_writes(project, lint_calls):
    check("--no-cache")
    check("--no-cache")
    assert lint_calls == ["model.py", "model.py"]
    assert not Path(os.environ["RFLINT_CACHE_DIR"]).exists() or not entries(Path(os.environ["RFLINT_CACHE_DIR"]))


def test_the_default_cache_sits_next_to_the_config_file_with_tag_and_gitignore(project, monkeypatch):
    monkeypatch.delenv("RFLINT_CACHE_DIR")
    (project.root / "sub").mkdir()
    monkeypatch.chdir(project.root / "sub")
    result = runner.invoke(app, ["check", "--output-format", "concise", "-j", "1"])
    assert result.exit_code == 1, result.output
    root = project.root / ".rflint_cache"
    assert len(entries(root)) == 1
    assert (root / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")
    assert (root / ".gitignore").read_text().splitlines()[-1] == "*"
    assert not (project.root / "sub" / ".rflint_cache").exists()


def test_cache_dir_in_the_config_is_relative_to_the_config_file(project, monkeypatch):
    monkeypatch.delenv("RFLINT_CACHE_DIR")
    config = project.root / "pyproject.toml"
    config.write_text(config.read_text().replace("[tool.rflint]\n", '[tool.rflint]\ncache-dir = "build/lint-cache"\n'))
    check()
    assert len(entries(project.root / "build" / "lint-cache")) == 1
    assert not (project.root / ".rflint_cache").exists()


def test_the_environment_variable_wins_over_the_config(project, monkeypatch, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("env-cache")
    monkeypatch.setenv("RFLINT_CACHE_DIR", str(elsewhere))
    config = project.root / "pyproject.toml"
    config.write_text(config.read_text().replace("[tool.rflint]\n", '[tool.rflint]\ncache-dir = "build/lint-cache"\n'))
    check()
    assert len(entries(elsewhere)) == 1 and not (project.root / "build").exists()


def test_clean_removes_the_cache_and_refuses_a_folder_that_is_not_one(project, monkeypatch):
    root = Path(os.environ["RFLINT_CACHE_DIR"])
    check()
    assert entries(root)
    result = runner.invoke(app, ["clean"])
    assert result.exit_code == 0 and "removed" in result.stderr
    assert not root.exists()
    assert "no cache" in runner.invoke(app, ["clean"]).stderr
    monkeypatch.setenv("RFLINT_CACHE_DIR", str(project.root))  # a source folder, not a cache
    refused = runner.invoke(app, ["clean"])
    assert refused.exit_code == 2 and "is the project root" in refused.stderr
    assert (project.root / "model.py").exists()
    sources = project.root / "src"
    sources.mkdir()
    (sources / "keep.py").write_text("x = 1\n")
    monkeypatch.setenv("RFLINT_CACHE_DIR", str(sources))  # a folder with other files
    refused = runner.invoke(app, ["clean"])
    assert refused.exit_code == 2 and "no CACHEDIR.TAG written by rflint" in refused.stderr
    assert (sources / "keep.py").exists()


def test_a_corrupt_entry_is_a_miss_and_is_rewritten(project, lint_calls):
    good = check()
    (entry,) = entries(Path(os.environ["RFLINT_CACHE_DIR"]))
    entry.write_text('{"format": 1, "files": {}, "report": {"spec": ')
    again = check()
    assert again.exit_code == good.exit_code and again.stdout == good.stdout
    assert lint_calls == ["model.py", "model.py"]
    json.loads(entry.read_text())  # valid again
    check()
    assert len(lint_calls) == 2


def test_a_cache_that_cannot_be_written_does_not_fail_the_run(project, monkeypatch, lint_calls):
    blocker = project.root / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("RFLINT_CACHE_DIR", str(blocker / "cache"))  # mkdir fails, even for root
    first, second = check(), check()
    assert first.exit_code == second.exit_code == 1
    assert first.stdout == second.stdout and first.stderr == second.stderr == ""
    assert lint_calls == ["model.py", "model.py"]


def test_stale_entries_are_pruned_and_used_ones_kept(project):
    root = Path(os.environ["RFLINT_CACHE_DIR"])
    check()
    (used,) = entries(root)
    old_version = root / "v1-0.0.1"
    old_version.mkdir()
    stale = [used.with_name("0" * 40 + ".json"), old_version / ("1" * 40 + ".json"), used.with_name("x.123.tmp")]
    long_ago = time.time() - cache.MAX_AGE - 3600
    for path in stale:
        path.write_text("{}")
        os.utime(path, (long_ago, long_ago))
    os.utime(used, (long_ago, long_ago))  # an old entry that this run uses again
    check()
    assert entries(root) == [used]
    assert not old_version.exists()
    assert not any(p.exists() for p in stale)


# --- the key --------------------------------------------------------------------------------


def test_only_keys_that_act_after_the_cache_leave_the_context_unchanged():
    base = {"models": [{"target": "a.py", "input-size": 32}]}
    same = cache_keys.run_context(base)
    for key, value in [("select", ["RF101"]), ("ignore", ["RF102"]), ("rules", {"RF101": "warn"}), ("overrides", [{"ignore": ["RF101"]}])]:
        assert cache_keys.run_context({**base, key: value}) == same, key
    # a key the cache does not know (the custom-op table to come) invalidates by default
    assert cache_keys.run_context({**base, "ops": {"my.Op": "pointwise"}}) != same


def test_an_installed_distribution_change_changes_the_context(tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "somelib-1.0.dist-info").mkdir(parents=True)
    monkeypatch.syspath_prepend(str(site))
    before = cache_keys.run_context({})
    (site / "somelib-1.0.dist-info").rename(site / "somelib-1.1.dist-info")
    assert cache_keys.run_context({}) != before


def test_a_change_to_rflints_own_source_changes_the_fingerprint(tmp_path, monkeypatch):
    package = tmp_path / "rflint_copy"
    package.mkdir()
    (package / "algebra.py").write_text("X = 1\n")
    monkeypatch.setattr(cache_keys, "_PACKAGE_DIR", package)
    cache_keys.rflint_fingerprint.cache_clear()
    try:
        before = cache_keys.rflint_fingerprint()
        (package / "algebra.py").write_text("X = 2\n")
        cache_keys.rflint_fingerprint.cache_clear()
        assert cache_keys.rflint_fingerprint() != before
    finally:
        cache_keys.rflint_fingerprint.cache_clear()


def test_specs_that_differ_get_different_entries(tmp_path):
    store = cache.ResultCache(tmp_path, cache_keys.run_context({}))
    base = ModelSpec("m.py", input_size=(32,))
    variants = [
        ModelSpec("m.py", input_size=(64,)),
        ModelSpec("m.py", input_shape=(1, 3, 32, 32)),
        ModelSpec("m.py", input_size=(32,), kwargs={"num_classes": 10}),
        ModelSpec("m.py", input_size=(32,), leaf_modules=("pkg.Block",)),
        ModelSpec("m.py", input_size=(32,), name="other"),
    ]
    paths = {store.entry_path(s) for s in [base, *variants]}
    assert len(paths) == 1 + len(variants)


def test_only_project_files_are_dependencies():
    assert not cache_keys.is_project_file(json.__file__)  # the standard library
    assert not cache_keys.is_project_file(pytest.__file__)  # site-packages
    assert not cache_keys.is_project_file(cache.__file__)  # rflint itself
    assert cache_keys.is_project_file(__file__)
    assert not cache_keys.is_project_file(str(Path(__file__).parent / "__pycache__" / "x.pyc"))

