"""Every command speaks the same language: the same options, configured model names, the config
found from any subfolder, several outputs from one run, and exit code 2 with one line for a
broken installation. The project is the new-user repository of ``tests/project.py``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from project import add_refiner, write_project
from rflint._version import __version__
from rflint.cli import app

ROOT = Path(__file__).resolve().parents[2]
MODEL_COMMANDS = ["check", "inspect", "suggest", "graph", "plot", "erf"]
VOCABULARY = ["--output-format", "--output-file", "-o", "--color", "--config", "--isolated", "--verbose"]
CLEAN_ENV = {"NO_COLOR": None, "FORCE_COLOR": None, "RFLINT_OUTPUT_FORMAT": None, "CI": None, "PRE_COMMIT": None, "COLUMNS": "200"}
SUBFOLDERS = ["", "src/acme/models"]


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), env=CLEAN_ENV, prog_name="rflint")


@pytest.fixture
def repo(tmp_path, monkeypatch):
    root = write_project(tmp_path / "acme")
    add_refiner(root)  # one unproductive layer at 32 px
    for key in CLEAN_ENV:
        monkeypatch.delenv(key, raising=False)
    return root


# --------------------------------------------------------------------------- the vocabulary


@pytest.mark.parametrize("name", MODEL_COMMANDS)
def test_every_model_command_takes_the_same_options_and_help_has_no_type_noise(name):
    result = invoke(name, "--help")
    assert result.exit_code == 0, result.output
    for option in VOCABULARY:
        assert f"{option} " in result.stdout or f"{option}," in result.stdout, option
    for option in ("--input-size", "--input-shape", "--model-kwargs", "--leaf-module", "--trust-pickle"):
        assert option in result.stdout
    assert "<bool>" not in result.stdout
    assert "--format " not in result.stdout  # the old spelling is accepted but not advertised


def test_rule_takes_the_output_options_too():
    result = invoke("rule", "--help")
    assert "--output-format" in result.stdout and "--output-file" in result.stdout and "<bool>" not in result.stdout


def test_version_and_shell_completion(monkeypatch):
    assert invoke("-V").stdout == invoke("--version").stdout == f"rflint {__version__}\n"
    top = invoke("--help").stdout
    assert "--install-completion" in top and "--show-completion" in top and "<bool>" not in top
    # typer asks shellingham for the shell among this process's ancestors; a test run detached
    # from any shell (a daemon, some CI runners) has none, so the test names it
    import shellingham

    monkeypatch.setattr(shellingham, "detect_shell", lambda *args, **kwargs: ("bash", "/bin/bash"))
    script = invoke("--show-completion")
    assert script.exit_code == 0 and "_RFLINT_COMPLETE" in script.stdout, (script.output, repr(script.exception))


def test_the_old_format_spelling_still_works(repo, monkeypatch):
    monkeypatch.chdir(repo)
    new = invoke("inspect", "acme-net", "--output-format", "json")
    old = invoke("inspect", "acme-net", "--format", "json")
    assert new.exit_code == old.exit_code == 0 and json.loads(new.stdout) == json.loads(old.stdout)


# --------------------------------------------------------------------------- configured models


@pytest.mark.parametrize("where", SUBFOLDERS)
def test_check_finds_the_config_from_a_subfolder_and_reports_root_relative_paths(repo, monkeypatch, where):
    monkeypatch.chdir(repo / where)
    result = invoke("check", "--output-format", "json")
    assert result.exit_code == 1, result.output
    found = json.loads(result.stdout)
    assert {f["filename"] for f in found} == {"src/acme/models/net.py"}  # from the root, never ../..
    assert {f["model"] for f in found} == {"acme-net"}
    assert [f["layer"] for f in found if f["code"] == "RF101"] == ["refine.2.0"]


@pytest.mark.parametrize("where", SUBFOLDERS)
def test_inspect_suggest_graph_plot_and_erf_take_a_configured_name_from_any_folder(repo, monkeypatch, where, tmp_path):
    monkeypatch.chdir(repo / where)
    inspected = invoke("inspect", "acme-net", "--output-format", "json")
    assert inspected.exit_code == 0, inspected.output
    data = json.loads(inspected.stdout)
    assert data["model"] == "acme-net" and data["input_size"] == [32, 32]  # the config's size
    assert "stages.1.conv.0" in {row["layer"] for row in data["layers"]}
    assert "stages.2.conv.0" not in {row["layer"] for row in data["layers"]}  # kwargs: stages = 2
    assert json.loads(invoke("inspect", "--output-format", "json").stdout)["model"] == "acme-net"  # bare: every model

    advice = invoke("suggest", "acme-net", "--no-verify", "--output-format", "json")
    assert advice.exit_code == 0, advice.output
    assert json.loads(advice.stdout)["model"] == "acme-net"

    picture = tmp_path / "out" / "net.svg"
    drawn = invoke("graph", "acme-net", "-o", str(picture))
    assert drawn.exit_code == 0, drawn.output
    assert "<svg" in picture.read_text()

    plotted = invoke("plot", "-s", "32", "-s", "64", "-o", str(tmp_path / "growth.png"))  # bare: every model
    assert plotted.exit_code == 0, plotted.output
    assert (tmp_path / "growth.png").read_bytes()[:4] == b"\x89PNG"

    measured = invoke("erf", "--samples", "2", "--output-format", "json")  # bare: the only model
    assert measured.exit_code == 0, measured.output
    assert json.loads(measured.stdout)["model"] == "acme-net"


def test_the_command_line_size_and_kwargs_apply_on_top_of_a_configured_model(repo, monkeypatch):
    monkeypatch.chdir(repo)
    data = json.loads(invoke("inspect", "acme-net", "-s", "64", "--model-kwargs", '{"width": 4}', "--output-format", "json").stdout)
    assert data["input_size"] == [64, 64]
    layers = {row["layer"]: row for row in data["layers"]}
    assert layers["stem.0"]["out_channels"] == 4  # the command line's width
    assert "stages.2.conv.0" not in layers  # the config's stages = 2 stays


def test_a_single_model_command_names_the_choices_when_several_are_configured(repo, monkeypatch):
    monkeypatch.chdir(repo)
    with (repo / "pyproject.toml").open("a", encoding="utf-8") as f:
        f.write('\n[[tool.rflint.models]]\ntarget = "src/acme/models/net.py:build"\nname = "acme-wide"\ninput-size = 32\nkwargs = { width = 16 }\n')
    result = invoke("graph")
    assert result.exit_code == 2
    assert "rflint graph works on one model, but 2 are selected (acme-net, acme-wide)" in result.stderr


# --------------------------------------------------------------------------- several outputs


def test_one_run_writes_several_formats(repo, monkeypatch):
    monkeypatch.chdir(repo)
    result = invoke(
        "check", "--output-format", "github", "--output-file", "sarif:reports/rflint.sarif", "--output-file", "markdown:summary.md"
    )
    assert result.exit_code == 1, result.output
    assert result.stdout.startswith("::") and "::error title=rflint (RF101),file=src/acme/models/net.py" in result.stdout
    sarif = json.loads((repo / "reports/rflint.sarif").read_text())  # the missing folder was created
    assert {r["ruleId"] for r in sarif["runs"][0]["results"]} == {"RF101", "RF102", "RF103"}
    assert (repo / "summary.md").read_text().startswith("## rflint\n")


def test_a_plain_output_path_takes_the_output_format_and_stdout_stays_empty(repo, monkeypatch):
    monkeypatch.chdir(repo)
    result = invoke("check", "--output-format", "json", "-o", "findings.json", "-o", "concise:-")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[-1].startswith("Found 3 findings")  # concise went to stdout
    assert len(json.loads((repo / "findings.json").read_text())) == 3
    clash = invoke("check", "-o", "json:-")  # the concise default wants stdout too
    assert clash.exit_code == 2 and "only one output can go to stdout" in clash.stderr


def test_html_shows_repo_relative_paths(repo, monkeypatch):
    monkeypatch.chdir(repo / "src/acme")
    assert invoke("check", "--output-format", "html", "-o", "report.html").exit_code == 1
    page = (repo / "src/acme/report.html").read_text()
    assert "src/acme/models/net.py:" in page and str(repo) not in page


# --------------------------------------------------------------------------- a broken install


def _run(args: list[str], fake: dict[str, str], tmp_path: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m rflint ARGS`` with fake packages first on the path."""
    for name, body in fake.items():
        (tmp_path / "fake" / name).mkdir(parents=True, exist_ok=True)
        (tmp_path / "fake" / name / "__init__.py").write_text(body, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "fake"), str(ROOT)])}
    return subprocess.run([sys.executable, "-m", "rflint", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    ("args", "package"),
    [
        (["check"], "torch"),  # a torch whose CUDA libraries are missing
        (["inspect", "acme-net"], "torch"),
        (["--version"], "typer"),  # the CLI's own dependency
    ],
)
def test_a_dependency_that_fails_to_import_exits_2_with_one_line_naming_it(repo, tmp_path, args, package):
    broken = {
        "torch": 'raise OSError("libcudnn.so.9: cannot open shared object file: No such file or directory")\n',
        "typer": 'raise ImportError("cannot import name \'Context\' from \'click\'")\n',
    }
    result = _run(args, {package: broken[package]}, tmp_path, repo)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith(f"rflint: error: the installed package '{package}' fails to import")
    assert f"pip install --force-reinstall {package}" in lines[0]
