"""Bad configuration: one line on stderr naming the key and the fix, exit 2, never a silent
default, never "unexpected ... this may be a bug". And valid configuration never exits 2."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from rflint.cli import app

runner = CliRunner()

BOXNET = """\
from torch import nn


class BoxFilter2d(nn.Module):
    \"\"\"A box filter from integral images: rflint cannot see its window, so it is declared.\"\"\"

    def __init__(self, radius=2):
        super().__init__()
        self.size = 2 * radius + 1
        self.zero = 0
        self.pair = (3, 3)

    def forward(self, x):
        return x.cumsum(-1).cumsum(-2)


def build():
    return nn.Sequential(nn.Conv2d(3, 4, 3), BoxFilter2d(), nn.Conv2d(4, 4, 3))
"""
MODEL = '[[tool.rflint.models]]\ntarget = "boxnet.py:build"\ninput-size = 32\n'


def run_with(tmp_path, monkeypatch, toml: str, content: bytes | None = None):
    """Check the project; its module is named after the test (``boxnet_<n>``), since the test
    process keeps the ``boxnet`` an earlier test's declaration imported."""
    module = f"boxnet_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(BOXNET)
    path = tmp_path / "pyproject.toml"
    path.write_bytes(content if content is not None else f"[tool.rflint]\n{toml}".replace("boxnet", module).encode())
    monkeypatch.chdir(tmp_path)
    return runner.invoke(app, ["check", "--no-cache"])


def one_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, (result.exit_code, result.stderr)
    assert "unexpected" not in lines[0] and "may be a bug" not in lines[0]
    return lines[0]


OP = '[tool.rflint.ops."boxnet.BoxFilter2d"]\n'
BAD = {
    # ops: read at load time
    "unknown-kind": (OP + 'kind = "windw"\nkernel = 5\n' + MODEL, ["kind", "must be one of", "window"]),
    "window-without-kernel": (OP + 'kind = "window"\n' + MODEL, ["BoxFilter2d'", "needs a kernel"]),
    "stride-zero": (OP + 'kind = "window"\nkernel = 5\nstride = 0\n' + MODEL, ["stride", "positive"]),
    "dilation-negative": (OP + 'kind = "window"\nkernel = 5\ndilation = -1\n' + MODEL, ["dilation", "positive"]),
    "kernel-float": (OP + 'kind = "window"\nkernel = 2.5\n' + MODEL, ["kernel"]),
    "kernel-empty-list": (OP + 'kind = "window"\nkernel = []\n' + MODEL, ["kernel"]),
    "lists-disagree": (OP + 'kind = "window"\nkernel = [5, 5]\nstride = [1, 1, 1]\n' + MODEL, ["kernel has 2", "stride has 3"]),
    "unknown-op-key": (OP + 'kind = "window"\nkernel = 5\nsize = 3\n' + MODEL, ["unknown key", "size"]),
    # ops: checked against the op's tensor when it runs
    "kernel-arity": (OP + 'kind = "window"\nkernel = [5, 5, 5, 5]\n' + MODEL, ["kernel", "4 values", "2 spatial axes"]),
    "attribute-zero": (OP + 'kind = "window"\nkernel = "zero"\n' + MODEL, ["kernel", "positive", "0"]),
    "attribute-missing": (OP + 'kind = "window"\nkernel = "radius_px"\n' + MODEL, ["kernel", "radius_px"]),
    "padding-arity": (OP + 'kind = "window"\nkernel = 5\npadding = [1, 1, 1]\n' + MODEL, ["padding", "3 values"]),
    # models
    "duplicate-names": (MODEL + 'name = "box"\n' + MODEL + 'name = "box"\n', ["models[1]", "'box'", "models[0]"]),
    "duplicate-targets": (MODEL + MODEL, ["models[1]", "models[0]"]),
    "name-not-string": (MODEL + "name = 3\n", ["name", "string"]),
    "input-size-string": ('[[tool.rflint.models]]\ntarget = "boxnet.py:build"\ninput-size = "32"\n', ["input-size"]),
    "input-size-zero": ('[[tool.rflint.models]]\ntarget = "boxnet.py:build"\ninput-size = 0\n', ["input-size"]),
    "target-missing": ("[[tool.rflint.models]]\ninput-size = 3\n", ["target"]),
    "models-not-array": ('models = "boxnet.py"\n', ["models", "array"]),
    "kwargs-not-table": (MODEL + "kwargs = [1]\n", ["kwargs", "object"]),
    "unknown-rule": ('select = ["RF9999"]\n' + MODEL, ["RF9999", "unknown rule code"]),
    "pythonpath-missing": ('pythonpath = ["nowhere"]\n' + MODEL, ["pythonpath", "not a folder"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_configuration_is_one_line_naming_the_key(tmp_path, monkeypatch, case):
    toml, words = BAD[case]
    line = one_line(run_with(tmp_path, monkeypatch, toml))
    for word in words:
        assert word in line, line


def test_an_unknown_op_kind_is_not_called_an_unknown_rule(tmp_path, monkeypatch):
    line = one_line(run_with(tmp_path, monkeypatch, OP + 'kind = "box"\nkernel = 5\n' + MODEL))
    assert "rule" not in line


@pytest.mark.parametrize(
    "content",
    ["[tool.rflint]\nselect = ['caf\xe9']\n".encode("latin-1"), b"\xff\xfe[\x00t\x00o\x00o\x00l\x00]\x00", b"[tool.rflint\n", b'tool = "rflint"\n[tool.x]\n'],
    ids=["latin-1", "utf-16", "invalid-toml", "tool-twice"],
)
def test_an_unreadable_config_file_is_one_line(tmp_path, monkeypatch, content):
    line = one_line(run_with(tmp_path, monkeypatch, "", content=content))
    assert "pyproject.toml" in line


def test_tool_that_is_not_a_table_holds_no_configuration(tmp_path, monkeypatch):
    (tmp_path / "boxnet.py").write_text(BOXNET)
    (tmp_path / "pyproject.toml").write_text('tool = "rflint"\n')
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["check", "--no-cache", "boxnet.py:build", "-s", "32"]).exit_code in (0, 1)


@pytest.mark.parametrize(
    "declaration",
    ['kind = "window"\nkernel = "size"', 'kind = "window"\nkernel = 5\nstride = 1\ndilation = [1, 1]', 'kind = "window"\nkernel = "pair"', 'kind = "pointwise"', 'kind = "global"'],
)
def test_an_op_defined_next_to_the_config_file_is_importable(tmp_path, monkeypatch, declaration):
    """``boxnet.py`` sits in the project root, which is on the models' import path: the op
    declaration imports from there too, and valid input never exits 2."""
    result = run_with(tmp_path, monkeypatch, OP + declaration + "\n" + MODEL)
    assert result.exit_code in (0, 1), result.stderr
    assert "RF001" not in result.stdout  # declared, so known


def test_a_baseline_that_is_not_utf8_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "base.json").write_bytes('{"version": 1, "models": {"caf\xe9": {}}}'.encode("latin-1"))
    (tmp_path / "boxnet.py").write_text(BOXNET)
    (tmp_path / "pyproject.toml").write_text(f"[tool.rflint]\n{MODEL}")
    monkeypatch.chdir(tmp_path)
    line = one_line(runner.invoke(app, ["check", "--no-cache", "--baseline", "base.json"]))
    assert "base.json" in line and "UTF-8" in line
