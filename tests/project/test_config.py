"""Configuration: discovery, schema validation with key paths, selection, severities, overrides."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from rflint.project.config import Config, apply_config, find_config_file, layer_matches, load_config
from rflint.spec import ModelSpec
from rflint.errors import ConfigError, UsageError
from rflint.ir import Finding, Severity


def finding(code: str, layer: str = "features.3", severity: Severity = Severity.ERROR, model: str = "net") -> Finding:
    names = {"RF001": "unknown-op", "RF100": "unused-suppression", "RF101": "unproductive-layer", "RF102": "critical-layer", "RF103": "input-below-minimum-resolution"}
    return Finding(code, names[code], severity, "msg", model=model, layer=layer)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --- discovery ------------------------------------------------------------------------------------


def test_pyproject_found_by_walking_up_from_the_cwd(tmp_path):
    write(tmp_path / "pyproject.toml", '[tool.rflint]\nignore = ["RF102"]\n')
    sub = tmp_path / "src" / "models"
    sub.mkdir(parents=True)
    config = load_config(cwd=sub)
    assert config.path == tmp_path / "pyproject.toml"
    assert config.ignore == ("RF102",)
    assert config.root == tmp_path.resolve()


def test_pyproject_without_a_tool_rflint_table_is_skipped(tmp_path):
    write(tmp_path / "pyproject.toml", '[tool.rflint]\nignore = ["RF102"]\n')
    write(tmp_path / "pkg" / "pyproject.toml", '[project]\nname = "pkg"\n')
    assert find_config_file(tmp_path / "pkg") == tmp_path / "pyproject.toml"


def test_rflint_toml_has_no_tool_prefix_and_wins_in_its_directory(tmp_path):
    write(tmp_path / "pyproject.toml", '[tool.rflint]\nignore = ["RF102"]\n')
    write(tmp_path / "rflint.toml", 'ignore = ["RF103"]\n')
    config = load_config(cwd=tmp_path)
    assert config.path == tmp_path / "rflint.toml"
    assert config.ignore == ("RF103",)


def test_explicit_config_overrides_discovery_and_isolated_ignores_everything(tmp_path):
    write(tmp_path / "pyproject.toml", '[tool.rflint]\nignore = ["RF102"]\n')
    other = write(tmp_path / "elsewhere" / "rflint.toml", 'ignore = ["RF001"]\n')
    assert load_config(other, cwd=tmp_path).ignore == ("RF001",)
    isolated = load_config(isolated=True, cwd=tmp_path)
    assert isolated.path is None and isolated.ignore == () and isolated.enabled == Config().enabled


def test_missing_explicit_config_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml", cwd=tmp_path)


def test_invalid_toml_names_the_file(tmp_path):
    bad = write(tmp_path / "rflint.toml", "select = [\n")
    with pytest.raises(ConfigError, match="rflint.toml: invalid TOML"):
        load_config(bad, cwd=tmp_path)


# --- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[tool.rflint]\nselct = ['RF1']\n", "unknown key tool.rflint.selct"),
        ("[tool.rflint]\nselect = 'RF101'\n", "tool.rflint.select: must be of type array"),
        ("[tool.rflint]\nselect = ['RF999']\n", "tool.rflint.select[0]: unknown rule code or name 'RF999'"),
        ("[tool.rflint]\nignore = ['RF101', 'not-a-rule']\n", "tool.rflint.ignore[1]: unknown rule code or name 'not-a-rule'"),
        ("[tool.rflint.rules]\nRF101 = 'loud'\n", "tool.rflint.rules.RF101: severity must be one of error, warn, info, ignore"),
        ("[tool.rflint.rules]\nRF999 = 'warn'\n", "tool.rflint.rules: unknown rule code or name 'RF999'"),
        ("[[tool.rflint.models]]\ninput-size = 32\n", "tool.rflint.models[0]: 'target' is a required property"),
        ("[[tool.rflint.models]]\ntarget = 'a.py'\ninput-size = 'big'\n", "tool.rflint.models[0].input-size: must be a positive integer"),
        ("[[tool.rflint.models]]\ntarget = 'a.py'\ninput-size = 0\n", "tool.rflint.models[0].input-size"),
        ("[[tool.rflint.models]]\ntarget = 'a.py'\ninput-size = 32\ninput-shape = [1, 3, 32, 32]\n", "not both"),
        ("[[tool.rflint.models]]\ntarget = 'a.py'\nlayers = 3\n", "unknown key tool.rflint.models[0].layers"),
        ("[[tool.rflint.overrides]]\nlayers = ['a.**']\nrules = { RF101 = 'off' }\n", "tool.rflint.overrides[0].rules.RF101"),
        ("[[tool.rflint.overrides]]\nlayers = ['a.**']\nignore = ['RF42']\n", "tool.rflint.overrides[0].ignore[0]: unknown rule code or name 'RF42'"),
    ],
)
def test_schema_errors_name_the_file_and_the_key_path(tmp_path, toml, message):
    path = write(tmp_path / "pyproject.toml", toml)
    with pytest.raises(ConfigError) as info:
        load_config(cwd=tmp_path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_rflint_toml_key_paths_have_no_tool_prefix(tmp_path):
    write(tmp_path / "rflint.toml", "[[models]]\ntarget = 'a.py'\nfoo = 1\n")
    with pytest.raises(ConfigError, match=r"unknown key models\[0\]\.foo"):
        load_config(cwd=tmp_path)


def test_full_config_parses_into_a_frozen_config(tmp_path):
    write(
        tmp_path / "pyproject.toml",
        """
[tool.rflint]
select = ["RF1"]
extend-select = ["unknown-op"]
ignore = ["RF102"]

[tool.rflint.rules]
unproductive-layer = "warn"
RF103 = "error"

[[tool.rflint.models]]
target = "models/net.py:build"
name = "net"
input-size = [32, 24]
kwargs = { width = 2 }
leaf-modules = ["pkg.Block"]

[[tool.rflint.models]]
target = "torchvision:resnet18"
input-shape = [1, 3, 64, 64]

[[tool.rflint.overrides]]
models = ["net"]
layers = ["backbone.layer4.**", "!backbone.layer4.0.*"]
ignore = ["RF101"]
rules = { RF103 = "info" }
""",
    )
    config = load_config(cwd=tmp_path)
    assert config.select == ("RF1",) and config.extend_select == ("unknown-op",)
    assert dict(config.severities) == {"RF101": Severity.WARN, "RF103": Severity.ERROR}
    net, resnet = config.models
    root = str(tmp_path.resolve())
    assert net == ModelSpec(
        f"{root}/models/net.py:build",
        input_size=(32, 24),
        name="net",
        kwargs={"width": 2},
        leaf_modules=("pkg.Block",),
        pythonpath=(root,),
    )
    assert resnet.input_shape == (1, 3, 64, 64) and resnet.input_size is None
    assert config.overrides[0].layers == ("backbone.layer4.**", "!backbone.layer4.0.*")
    assert config.enabled == {"RF001", "RF100", "RF101", "RF103", "RF104", "RF105", "RF106"}  # select = RF1
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.select = ()  # type: ignore[misc]


def test_file_targets_are_relative_to_the_config_file_and_keep_their_name(tmp_path):
    write(tmp_path / "pyproject.toml", "[[tool.rflint.models]]\ntarget = 'models/net.py:build'\ninput-size = 32\n")
    sub = tmp_path / "docs"
    sub.mkdir()
    (spec,) = load_config(cwd=sub).models
    assert Path(spec.target.split(":")[0]) == (tmp_path / "models" / "net.py").resolve()  # loads from any cwd
    assert spec.display_name == "models/net.py:build"  # findings and baselines do not depend on the cwd


def test_pythonpath_is_relative_to_the_config_file_and_searched_before_the_project_root(tmp_path):
    (tmp_path / "src").mkdir()
    write(tmp_path / "pyproject.toml", "[tool.rflint]\npythonpath = ['src']\n\n[[tool.rflint.models]]\ntarget = 'pkg.net:build'\ninput-size = 8\n")
    sub = tmp_path / "src"
    config = load_config(cwd=sub)
    root = tmp_path.resolve()
    assert config.pythonpath == (root / "src",)
    assert config.search_path == (str(root / "src"), str(root))
    assert config.models[0].pythonpath == config.search_path  # what the loader imports with
    assert load_config(isolated=True, cwd=sub).search_path == (str(sub.resolve()),)


def test_a_pythonpath_entry_that_is_not_a_folder_is_a_config_error(tmp_path):
    write(tmp_path / "pyproject.toml", "[tool.rflint]\npythonpath = ['scr']\n")
    with pytest.raises(ConfigError, match=r"tool.rflint.pythonpath\[0\]: 'scr' is not a folder"):
        load_config(cwd=tmp_path)


# --- selection ------------------------------------------------------------------------------------


NEW = {"RF104", "RF105", "RF106"}  # the causal, dead-position and checkerboard rules (RF1xx)


@pytest.mark.parametrize(
    ("select", "extend", "ignore", "enabled"),
    [
        (None, (), (), {"RF001", "RF100", "RF101", "RF102", "RF103"} | NEW),
        (("RF1",), (), (), {"RF100", "RF101", "RF102", "RF103"} | NEW),
        (("RF1",), (), ("RF101",), {"RF100", "RF102", "RF103"} | NEW),
        (("RF101",), (), ("RF1",), {"RF101"}),  # the more specific selector wins
        (("RF10",), (), ("RF10",), set()),  # same specificity: ignore wins
        (("ALL",), (), ("critical-layer",), {"RF001", "RF100", "RF101", "RF103"} | NEW),
        (("unproductive-layer",), ("RF001",), (), {"RF001", "RF101"}),
        ((), ("RF103",), (), {"RF103"}),
    ],
)
def test_selection_follows_ruff_precedence(select, extend, ignore, enabled):
    assert Config(select=select, extend_select=extend, ignore=ignore).enabled == enabled


def test_severity_ignore_disables_a_rule():
    from types import MappingProxyType

    assert "RF102" not in Config(severities=MappingProxyType({"RF102": Severity.IGNORE})).enabled


def test_cli_selection_replaces_select_and_extends_the_rest():
    base = Config(select=("RF101",), ignore=("RF102",))
    assert base.with_selection(select=["RF103"]).enabled == {"RF103"}
    assert base.with_selection(extend_select=["RF001"]).enabled == {"RF001", "RF101"}
    assert base.with_selection(ignore=["RF101"]).enabled == set()
    with pytest.raises(UsageError, match="--select: unknown rule code or name 'RF9'"):
        base.with_selection(select=["RF9"])


# --- apply_config ---------------------------------------------------------------------------------


def test_apply_config_drops_unselected_and_sets_severities(tmp_path):
    write(tmp_path / "rflint.toml", 'ignore = ["RF102"]\n[rules]\nRF101 = "warn"\n')
    config = load_config(cwd=tmp_path)
    out = apply_config([finding("RF101"), finding("RF102", severity=Severity.INFO)], config, "net")
    assert [(f.code, f.severity) for f in out] == [("RF101", Severity.WARN)]


def test_overrides_match_models_and_layer_globs_later_wins(tmp_path):
    write(
        tmp_path / "rflint.toml",
        """
[[overrides]]
models = ["res*"]
layers = ["backbone.layer4.**", "!backbone.layer4.0.*"]
ignore = ["RF101"]

[[overrides]]
layers = ["backbone.layer4.1.conv2"]
rules = { RF101 = "info" }

[[overrides]]
rules = { RF103 = "error" }
""",
    )
    config = load_config(cwd=tmp_path)
    spec = ModelSpec("torchvision:resnet18", name="resnet")
    findings = [
        finding("RF101", "backbone.layer4.1.conv1"),  # ignored by the first override
        finding("RF101", "backbone.layer4.0.conv1"),  # excluded from it by the ! pattern
        finding("RF101", "backbone.layer4.1.conv2"),  # ignored, then set to info: later wins
        finding("RF101", "backbone.layer3.1.conv2"),  # untouched
        finding("RF103", "", Severity.WARN),  # model-level: only overrides without layers apply
    ]
    out = apply_config(findings, config, spec)
    assert [(f.layer, f.severity) for f in out] == [
        ("backbone.layer4.0.conv1", Severity.ERROR),
        ("backbone.layer4.1.conv2", Severity.INFO),
        ("backbone.layer3.1.conv2", Severity.ERROR),
        ("", Severity.ERROR),
    ]
    other = apply_config(findings[:1], config, ModelSpec("models/net.py", name="net"))
    assert [f.severity for f in other] == [Severity.ERROR]  # models = ["res*"] does not match


@pytest.mark.parametrize(
    ("patterns", "name", "expected"),
    [
        (["backbone.*"], "backbone.conv", True),
        (["backbone.*"], "backbone.layer4.conv", False),  # * is one segment
        (["backbone.**"], "backbone.layer4.1.conv2", True),
        (["backbone.**"], "backbone", True),  # ** is any depth, zero included
        (["backbone.**"], "head.fc", False),
        (["layer*.0.conv?"], "layer4.0.conv2", True),
        (["**.conv2"], "layer4.1.conv2", True),
        (["**", "!**.bn*"], "layer1.0.bn1", False),
        (["!layer4.**"], "layer3.0.conv1", True),  # only exclusions: everything else included
        (["!layer4.**"], "layer4.0.conv1", False),
        (["!layer4.**", "layer4.1.*"], "layer4.1.conv1", True),  # later wins
    ],
)
def test_layer_globs(patterns, name, expected):
    assert layer_matches(patterns, name) is expected


def test_the_config_schema_is_a_valid_json_schema():
    """(checked here rather than on every run: the metaschema check costs 30 ms)"""
    import jsonschema

    from rflint.project.config_schema import config_schema

    schema = config_schema()
    jsonschema.validators.validator_for(schema).check_schema(schema)
