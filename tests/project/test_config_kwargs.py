"""``[[tool.rflint.models]] kwargs`` holding classes, and the ``baseline`` config key.

The repository is nnU-Net's shape: the model (``nets/unet.py``) is assembled by a builder
function of another package (``blocks/stack.py``) from the classes it is given
(``conv_op=nn.Conv3d``, ``norm_op=nn.InstanceNorm3d``), which a TOML or JSON value can only
name: ``{ class = "torch.nn.Conv3d" }``.

Receptive fields by hand (3x3[x3] convs, stride 1, padding 1; a 2-kernel 2-stride pool after
the second): conv 3, conv 5, pool 6 (jump 2), then +4 per conv: 10, 14, 18, 22, 26. At 16 px
the sixth conv's input field is 18 >= 16 and the seventh's 22: two RF101.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rflint.cli import app

FILES = {
    "blocks/__init__.py": "",
    "blocks/stack.py": """\
        from torch import nn


        def conv_stack(conv_op, norm_op, nonlin, channels, depth, pool_after=2):
            layers = []
            for i in range(depth):
                layers += [conv_op(channels, channels, 3, padding=1), norm_op(channels), nonlin()]
                if i + 1 == pool_after:
                    layers.append(nn.MaxPool2d(2) if conv_op is nn.Conv2d else nn.MaxPool3d(2))
            return layers
        """,
    "blocks/custom.py": """\
        from torch import nn


        class Wrapped:
            class Conv(nn.Conv3d):
                pass
        """,
    "nets/__init__.py": "",
    "nets/unet.py": """\
        from torch import nn

        from blocks.stack import conv_stack


        class Plain(nn.Module):
            def __init__(self, conv_op=nn.Conv2d, norm_op=nn.BatchNorm2d, nonlin=nn.ReLU, channels=1, depth=7):
                super().__init__()
                self.spatial = 3 if issubclass(conv_op, nn.Conv3d) else 2
                self.stages = nn.Sequential(*[m for m in conv_stack(conv_op, norm_op, nonlin, channels, depth) if not isinstance(m, (nn.ReLU, nn.LeakyReLU))])

            def forward(self, x):
                return self.stages(x)


        def checked(conv_op, **kwargs):
            # insists on the project's own class object (nnU-Net compares ops with `is`)
            from blocks import custom

            if conv_op is not custom.Wrapped.Conv:
                raise TypeError("conv_op is a stale copy of blocks.custom.Wrapped.Conv")
            return Plain(conv_op=conv_op, norm_op=nn.InstanceNorm3d, **kwargs)
        """,
}

PYPROJECT = """\
[tool.rflint]
task = "classification"  # headless test nets: judged by Richter's centre-unit rule
{extra}

[[tool.rflint.models]]
target = "nets.unet:Plain"
name = "plain"
input-shape = {shape}
kwargs = {kwargs}
"""

THREE_D = '{ conv_op = { class = "torch.nn.Conv3d" }, norm_op = { class = "torch.nn:InstanceNorm3d" }, nonlin = { class = "torch.nn.LeakyReLU" } }'


def project(tmp_path: Path, kwargs: str = THREE_D, shape: str = "[1, 1, 16, 16, 16]", extra: str = "") -> Path:
    for rel, text in FILES.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text(PYPROJECT.format(kwargs=kwargs, shape=shape, extra=extra), encoding="utf-8")
    return tmp_path


def run(root: Path, monkeypatch, *args: str):
    monkeypatch.chdir(root)
    return CliRunner().invoke(app, list(args))


def inspect_json(root: Path, monkeypatch, *args: str) -> dict:
    result = run(root, monkeypatch, "inspect", *args, "--all", "--output-format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_class_in_config_kwargs_builds_the_3d_model(tmp_path, monkeypatch):
    data = inspect_json(project(tmp_path), monkeypatch, "plain")
    convs = [r for r in data["layers"] if r["op"] == "Conv3d"]
    norms = [r for r in data["layers"] if r["op"] == "InstanceNorm3d"]
    assert len(convs) == 7 and len(norms) == 7 and len(data["input_size"]) == 3
    # the hand-derived chain of the module docstring, on every axis
    assert [r["r_max"] for r in convs] == [[f] * 3 for f in (3, 5, 10, 14, 18, 22, 26)]


def test_the_check_reports_the_3d_model_s_unproductive_layers(tmp_path, monkeypatch):
    result = run(project(tmp_path), monkeypatch, "check", "--output-format", "json")
    findings = json.loads(result.stdout)
    flagged = sorted(f["layer"] for f in findings if f["code"] == "RF101")
    # input fields 18 and 22 of the last two convs are >= 16
    assert result.exit_code == 1 and len(flagged) == 2, result.output


def test_a_class_in_model_kwargs_json_and_a_nested_project_class(tmp_path, monkeypatch):
    root = project(tmp_path, kwargs="{}")
    kw = {"conv_op": {"class": "blocks.custom:Wrapped.Conv"}, "norm_op": {"class": "torch.nn.InstanceNorm3d"}}
    data = inspect_json(root, monkeypatch, "nets.unet:Plain", "--input-shape", "1,1,16,16,16", "--model-kwargs", json.dumps(kw))
    # the project's subclass is traced through (torch.fx keeps only torch's own classes as
    # leaves), so its 3-D convolutions show as the functional op they call
    assert [r["op"] for r in data["layers"] if r["kernel"] == [3, 3, 3]] == ["conv3d"] * 7


def test_a_plain_string_stays_a_string(tmp_path, monkeypatch):
    from rflint.kwargs import resolve

    assert resolve({"mode": "torch.nn.Conv3d", "n": [1, {"k": 2}]}) == {"mode": "torch.nn.Conv3d", "n": [1, {"k": 2}]}
    import torch

    assert resolve({"ops": [{"class": "torch.nn.Conv3d"}], "inner": {"norm": {"class": "torch.nn.BatchNorm3d"}}}) == {
        "ops": [torch.nn.Conv3d],
        "inner": {"norm": torch.nn.BatchNorm3d},
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ('{ conv_op = { class = "torch.nn.Conv3x" } }', "kwargs.conv_op: torch.nn has no attribute 'Conv3x'"),
        ('{ conv_op = { class = "torchh.nn.Conv3d" } }', "cannot import 'torchh.nn.Conv3d': no module 'torchh'"),
        ('{ conv_op = { class = "torch.nn.functional.relu" } }', "'torch.nn.functional.relu' is a function, not a class"),
    ],
)
def test_a_reference_that_names_no_class_is_one_line_exit_2(tmp_path, monkeypatch, kwargs, message):
    result = run(project(tmp_path, kwargs=kwargs), monkeypatch, "check")
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("rflint: error:")]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in result.output, result.output


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ('{ conv_op = { class = 3 } }', "tool.rflint.models[0].kwargs.conv_op.class: 3 is not a dotted path"),
        ('{ conv_op = { class = "torch.nn.Conv3d", bias = 1 } }', "a class reference holds only the key 'class', not 'bias'"),
        ('{ ops = [{ class = "torch nn" }] }', "tool.rflint.models[0].kwargs.ops[0].class: 'torch nn' is not a dotted path"),
    ],
)
def test_a_malformed_reference_is_a_config_error_before_any_import(tmp_path, monkeypatch, kwargs, message):
    result = run(project(tmp_path, kwargs=kwargs), monkeypatch, "check")
    assert result.exit_code == 2 and message in result.output and len(result.output.strip().splitlines()) == 1, result.output


def test_a_malformed_reference_in_model_kwargs_is_a_usage_error(tmp_path, monkeypatch):
    result = run(project(tmp_path), monkeypatch, "check", "nets.unet:Plain", "--model-kwargs", '{"conv_op": {"class": ["x"]}}')
    assert result.exit_code == 2 and "--model-kwargs.conv_op.class: ['x'] is not a dotted path" in result.output, result.output


# --------------------------------------------------------------------------- baseline key


def test_the_configured_baseline_hides_recorded_findings_and_the_flag_overrides_it(tmp_path, monkeypatch):
    root = project(tmp_path, extra='baseline = "ci/rf-baseline.json"')
    (root / "ci").mkdir()
    assert run(root, monkeypatch, "check").exit_code == 2  # configured but not written yet
    written = run(root, monkeypatch, "check", "--write-baseline", "ci/rf-baseline.json")
    assert written.exit_code == 0, written.output
    quiet = run(root, monkeypatch, "check", "--output-format", "json")
    assert quiet.exit_code == 0 and json.loads(quiet.stdout) == [], quiet.output
    # from a subfolder the key still means ci/rf-baseline.json next to pyproject.toml
    (root / "nets" / "sub").mkdir()
    deeper = run(root / "nets" / "sub", monkeypatch, "check", "--output-format", "json")
    assert deeper.exit_code == 0 and json.loads(deeper.stdout) == [], deeper.output
    # --baseline wins over the key: an empty baseline hides nothing
    (root / "empty.json").write_text(json.dumps({"version": 1, "models": {}}), encoding="utf-8")
    monkeypatch.chdir(root)
    loud = run(root, monkeypatch, "check", "--baseline", "empty.json", "--output-format", "json")
    assert loud.exit_code == 1 and "RF101" in {f["code"] for f in json.loads(loud.stdout)}, loud.output


def test_the_baseline_key_must_be_a_string(tmp_path, monkeypatch):
    result = run(project(tmp_path, extra="baseline = 3"), monkeypatch, "check")
    assert result.exit_code == 2 and "tool.rflint.baseline: must be of type string" in result.output, result.output


def test_a_project_class_is_the_object_the_model_s_code_imports_in_every_model_of_a_run(tmp_path, monkeypatch):
    root = project(tmp_path)
    entry = """
[[tool.rflint.models]]
target = "nets.unet:checked"
name = "{name}"
input-shape = [1, 1, 16, 16, 16]
kwargs = {{ conv_op = {{ class = "blocks.custom:Wrapped.Conv" }} }}
"""
    with (root / "pyproject.toml").open("a", encoding="utf-8") as f:
        f.write(entry.format(name="first") + entry.format(name="second"))
    result = run(root, monkeypatch, "check", "--no-cache", "--jobs", "1", "--output-format", "json")
    assert result.exit_code == 1 and "stale copy" not in result.output, result.output
    assert {f["model"] for f in json.loads(result.stdout)} >= {"first", "second"}
