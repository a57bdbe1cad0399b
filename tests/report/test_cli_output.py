"""The output options through the real CLI on a real model: one snapshot per format with its exit
code, and the contract around them (stdout vs stderr, env vars, colour, exit codes, config,
baseline, ``rflint rule``)."""

from __future__ import annotations

import json
import textwrap

import pytest
from typer.testing import CliRunner

from rflint.cli import app
from rflint.report import FORMATS

# At 16x16: features.6 is critical (r 18 > 16, input r 10), features.8 is unproductive (input r
# 18 >= 16), I_min = 26 (receptive fields 3, 4, 8, 10, 18, 26; see rules/RF101.md).
MODEL = textwrap.dedent(
    """\
    import torch.nn as nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 16, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(16, 32, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(32, 64, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(64, 64, 3, padding=1),
                nn.ReLU(),
            )
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))

        def forward(self, x):
            return self.head(self.features(x))
    """
)
SNAPSHOT_FORMATS = sorted(set(FORMATS) - {"html"})
EXTENSIONS = {"json": "json", "sarif": "sarif.json", "junit": "xml", "markdown": "md", "json-lines": "jsonl"}
CLEAN_ENV = {"NO_COLOR": None, "FORCE_COLOR": None, "RFLINT_OUTPUT_FORMAT": None, "CI": None, "PRE_COMMIT": None}


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "cli_net.py").write_text(MODEL, encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text(
        '[tool.rflint]\n\n[[tool.rflint.models]]\ntarget = "cli_net.py:Net"\nname = "net"\ninput-size = 16\n',
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    for key in CLEAN_ENV:
        monkeypatch.delenv(key, raising=False)
    return tmp_path


def invoke(*args: str, env: dict[str, str | None] | None = None):
    return CliRunner().invoke(app, list(args), env={**CLEAN_ENV, **(env or {})})


def normalise(text: str, root) -> str:
    return text.replace(root.as_uri(), "file:///ROOT").replace(str(root), "/ROOT")


@pytest.mark.parametrize("fmt", SNAPSHOT_FORMATS)
def test_cli_format_snapshot_with_exit_code(project, fmt, snapshot):
    result = invoke("check", "--output-format", fmt)
    assert result.exit_code == 1, result.output  # RF101 is an error
    assert result.stderr == ""
    stdout = result.stdout
    if fmt == "sarif":  # the rule pages are checked here, not snapshotted: a doc edit is no output change
        stdout = json.dumps(_without_pages(json.loads(stdout)), indent=2, ensure_ascii=False) + "\n"
    snapshot(f"cli-{fmt}.{EXTENSIONS.get(fmt, 'txt')}", f"exit code: {result.exit_code}\n" + normalise(stdout, project))


def _without_pages(log: dict) -> dict:
    from rflint.project.rule_docs import page

    for rule in log["runs"][0]["tool"]["driver"]["rules"]:
        text = page(rule["id"])
        assert rule["fullDescription"] == {"text": text, "markdown": text}
        assert rule["help"]["markdown"] == text
        rule["fullDescription"] = {"text": f"<rules/{rule['id']}.md>", "markdown": f"<rules/{rule['id']}.md>"}
        rule["help"]["markdown"] = f"<rules/{rule['id']}.md>"
    return log


def test_bare_check_runs_every_configured_model_and_the_default_is_concise(project):
    result = invoke("check")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert any(line.startswith("cli_net.py:") and " RF101 [net] features.8 (Conv2d 3x3) is unproductive" in line for line in lines)
    assert lines[-1] == "Found 3 findings (1 error, 1 warning, 1 info)."


def test_a_configured_model_can_be_named_on_the_command_line(project):
    assert invoke("check", "net", "--output-format", "concise").exit_code == 1


def test_env_var_picks_the_format_and_the_option_wins(project):
    assert json.loads(invoke("check", env={"RFLINT_OUTPUT_FORMAT": "json"}).stdout)[0]["model"] == "net"
    assert invoke("check", "--output-format", "concise", env={"RFLINT_OUTPUT_FORMAT": "json"}).stdout.startswith("cli_net.py:")


def test_output_file_leaves_stdout_empty(project):
    result = invoke("check", "--output-format", "sarif", "-o", "out.sarif")
    assert result.exit_code == 1 and result.stdout == ""
    assert json.loads((project / "out.sarif").read_text())["version"] == "2.1.0"


def test_statistics(project):
    result = invoke("check", "--statistics")
    assert result.stdout.splitlines() == ["1\tRF101\tunproductive-layer", "1\tRF102\tcritical-layer", "1\tRF103\tinput-below-minimum-resolution", "Found 3 findings."]
    rows = json.loads(invoke("check", "--statistics", "--output-format", "json").stdout)
    assert {r["code"] for r in rows} == {"RF101", "RF102", "RF103"}


def test_exit_zero_masks_findings_but_never_a_failure(project):
    assert invoke("check", "--exit-zero").exit_code == 0
    failing = invoke("check", "net", "no_such_file.py:Net", "--exit-zero")
    assert failing.exit_code == 2
    assert "rflint: error:" in failing.stderr


@pytest.mark.parametrize(
    ("args", "env", "coloured"),
    [
        (["--color", "always"], {"NO_COLOR": "1"}, True),
        (["--color", "never"], {"FORCE_COLOR": "1"}, False),
        ([], {"FORCE_COLOR": "1"}, True),
        ([], {"NO_COLOR": "1", "FORCE_COLOR": "1"}, False),
        ([], {}, False),  # not a terminal
    ],
)
def test_colour_follows_the_option_then_no_color_then_force_color(project, args, env, coloured):
    result = invoke("check", "--output-format", "full", *args, env=env)
    assert ("\x1b[" in result.stdout) is coloured


def test_colour_never_reaches_machine_formats(project):
    result = invoke("check", "--output-format", "json", "--color", "always")
    assert "\x1b[" not in result.stdout
    json.loads(result.stdout)


def test_selection_options_and_config_flags(project):
    assert invoke("check", "--select", "RF103").exit_code == 0  # warn only
    only = json.loads(invoke("check", "--select", "RF1", "--ignore", "RF101,RF102", "--output-format", "json").stdout)
    assert [f["code"] for f in only] == ["RF103"]
    assert invoke("check", "--extend-select", "RF999").exit_code == 2
    (project / "strict.toml").write_text('[rules]\nRF103 = "error"\nRF101 = "ignore"\n', encoding="utf-8")
    # --config replaces pyproject.toml: it lists no models, so the model is named explicitly
    result = invoke("check", "cli_net.py:Net", "--input-size", "16", "--config", "strict.toml", "--output-format", "json")
    assert result.exit_code == 1
    assert {f["code"]: f["severity"] for f in json.loads(result.stdout)} == {"RF102": "info", "RF103": "error"}
    assert invoke("check", "--isolated").exit_code == 2  # no config: no models to check


def test_config_errors_exit_2_with_the_key_path(project):
    (project / "pyproject.toml").write_text("[tool.rflint]\nselct = []\n", encoding="utf-8")
    result = invoke("check")
    assert result.exit_code == 2
    assert "unknown key tool.rflint.selct" in result.stderr and result.stdout == ""


def test_baseline_round_trip(project):
    written = invoke("check", "--write-baseline", "rflint-baseline.json")
    assert written.exit_code == 0  # everything is in the baseline now
    # says what it wrote, not "All checks passed!"
    assert written.stdout.strip() == "Wrote 3 findings to the baseline rflint-baseline.json."
    assert written.stderr == ""  # the summary line already says it
    assert json.loads((project / "rflint-baseline.json").read_text())["models"]["net"]["features.8"] == {"RF101": 1}
    clean = invoke("check", "--baseline", "rflint-baseline.json")
    assert clean.exit_code == 0
    assert clean.stdout.strip() == "All checks passed! 3 findings hidden by the baseline rflint-baseline.json."
    as_json = invoke("check", "--baseline", "rflint-baseline.json", "--output-format", "json")
    assert json.loads(as_json.stdout) == []  # machine formats stay pure: the note goes to stderr
    assert as_json.stderr.strip() == "rflint: 3 findings hidden by the baseline rflint-baseline.json."
    # train at 32 instead: every finding is fixed, so every entry is stale
    (project / "pyproject.toml").write_text(
        (project / "pyproject.toml").read_text().replace("input-size = 16", "input-size = 32"), encoding="utf-8"
    )
    stale = invoke("check", "--baseline", "rflint-baseline.json")
    assert stale.exit_code == 0 and stale.stderr.count("stale baseline entry") == 3
    invoke("check", "--write-baseline", "rflint-baseline.json")
    assert json.loads((project / "rflint-baseline.json").read_text())["models"] == {}


def test_rewriting_a_baseline_does_not_add_new_findings_without_force(project):
    (project / "pyproject.toml").write_text(
        (project / "pyproject.toml").read_text().replace("input-size = 16", "input-size = 24"), encoding="utf-8"
    )
    invoke("check", "--write-baseline", "b.json", "--select", "RF101,RF102")
    before = json.loads((project / "b.json").read_text())["models"]
    assert before == {"net": {"features.8": {"RF102": 1}}}  # at 24 features.8 is critical (26 > 24)
    (project / "pyproject.toml").write_text(
        (project / "pyproject.toml").read_text().replace("input-size = 24", "input-size = 16"), encoding="utf-8"
    )
    ratchet = invoke("check", "--write-baseline", "b.json", "--select", "RF101,RF102")
    # at 16 features.8 is unproductive and features.6 critical: the old entry is fixed and
    # removed, and the two new findings are NOT added
    assert json.loads((project / "b.json").read_text())["models"] == {}
    assert ratchet.exit_code == 1  # and the new finding still fails
    assert ratchet.stdout.splitlines()[-1] == (
        "Wrote 0 findings to the baseline b.json. Found 2 findings (1 error, 1 info) not in the baseline (--force adds them)."
    )
    forced = invoke("check", "--write-baseline", "b.json", "--select", "RF101,RF102", "--force")
    assert forced.exit_code == 0
    assert json.loads((project / "b.json").read_text())["models"] == {
        "net": {"features.6": {"RF102": 1}, "features.8": {"RF101": 1}}
    }


def test_rule_command(project):
    page = invoke("rule", "RF101")
    assert page.exit_code == 0 and page.stdout.startswith("# RF101 unproductive-layer\n")
    assert invoke("rule", "unused-suppression").stdout.startswith("# RF100 unused-suppression")
    rows = json.loads(invoke("rule", "--all", "--output-format", "json").stdout)
    assert [r["code"] for r in rows] == ["RF001", "RF100", "RF101", "RF102", "RF103", "RF104", "RF105", "RF106"]
    unknown = invoke("rule", "RF999")
    assert unknown.exit_code == 2 and "unknown rule 'RF999'" in unknown.stderr


def test_cli_sarif_validates_against_the_schema(project):
    from pathlib import Path

    import jsonschema

    schema_path = Path(__file__).parent.parent / "data" / "sarif-schema-2.1.0.json"
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    log = json.loads(invoke("check", "--output-format", "sarif").stdout)
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
    assert not list(validator.iter_errors(log))
    uris = {loc["physicalLocation"]["artifactLocation"]["uri"] for r in log["runs"][0]["results"] for loc in r["locations"]}
    assert uris == {"cli_net.py"}  # repo-relative


class _Tty:
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("env", "shown"), [({}, True), ({"CI": "true"}, False), ({"PRE_COMMIT": "1"}, False)])
def test_progress_only_for_a_person_at_a_terminal(monkeypatch, env, shown):
    import sys

    from rflint.cli import show_progress

    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("PRE_COMMIT", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(sys, "stderr", _Tty())
    assert show_progress() is shown
    monkeypatch.setattr(sys, "stderr", object.__new__(type("NotTty", (), {"isatty": lambda self: False})))
    assert show_progress() is False
