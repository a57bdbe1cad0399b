"""The two spine commands end to end: exit codes, the finding line format, inspect's JSON."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from rflint.cli import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
runner = CliRunner()


def invoke(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, list(args), env=env)


def test_vgg16_at_32px_exits_1_and_lists_the_ten_unproductive_layers():
    result = invoke("check", "torchvision:vgg16", "--input-size", "32", "--output-format", "concise")
    assert result.exit_code == 1, result.output
    flagged = [line.split("RF101 ")[1].split("] ", 1)[1].split(" ")[0] for line in result.stdout.splitlines() if " RF101 " in line]
    # brief B.2: VGG16 @32 has 10 unproductive layers, the first features.14 (input r_min exactly 32)
    assert flagged[0] == "features.14"
    assert len(flagged) == 10
    assert "input receptive field 32 >= input size 32" in result.stdout


def test_resnet18_at_224px_exits_0():
    result = invoke("check", "torchvision:resnet18", "--input-size", "224", "--output-format", "concise")
    assert result.exit_code == 0, result.output
    assert "RF101" not in result.stdout


def test_example_cifar_resnet_fails_and_its_refined_version_passes():
    bad = invoke("check", f"{EXAMPLES / 'cifar_resnet.py'}:build_model", "--input-size", "32", "--output-format", "concise")
    assert bad.exit_code == 1, bad.output
    assert {"layers.2.1.conv2", "layers.3.0.conv2", "layers.3.1.conv2"} <= {
        line.split("RF101 ")[1].split("] ", 1)[1].split(" ")[0] for line in bad.stdout.splitlines() if " RF101 " in line
    }
    # the finding points at the example file and a line inside it
    assert "cifar_resnet.py:" in bad.stdout
    good = invoke("check", str(EXAMPLES / "cifar_resnet_refined.py"), "--input-size", "32", "--output-format", "concise")
    assert good.exit_code == 0, good.output


def test_inspect_json_has_per_layer_fields_and_resolution_bounds():
    result = invoke("inspect", "torchvision:resnet18", "--input-size", "32", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["schema_version"] == 1 and data["tracer"] == "fx"
    assert data["i_min"] == [139, 139] and data["i_max"] == [435, 435]  # brief B.2
    rows = {row["layer"]: row for row in data["layers"]}
    conv = rows["layer4.1.conv2"]
    assert (conv["r_min"], conv["r_max"], conv["input_r_min"]) == ([139, 139], [435, 435], [75, 75])
    assert conv["status"] == "unproductive" and conv["kernel"] == [3, 3] and conv["feature_map"] == [1, 1]


def test_inspect_table_shows_the_resolution_bounds():
    result = invoke("inspect", "torchvision:vgg16", "--input-size", "224")
    assert result.exit_code == 0, result.output
    # brief B.1: VGG16's last r_min is 212 (at 224 px the 7x7 adaptive pool is an identity)
    assert "features.14" in result.stdout and "I_max 212" in result.stdout


def test_missing_input_size_is_a_usage_error_with_exit_2():
    result = invoke("check", "torchvision:resnet18")
    assert result.exit_code == 2
    assert "no input size given" in result.stderr
    assert "Traceback" not in result.output


def test_full_output_shows_one_snippet_for_the_findings_of_one_source_line():
    result = invoke("check", "torchvision:vgg16", "--input-size", "32", "--output-format", "full", env={"COLUMNS": "100"})
    assert result.exit_code == 1, result.output
    out = result.stdout
    assert out.count("x = self.features(x)") == 1  # ten findings, one snippet
    headlines = [line for line in out.splitlines() if line.startswith("RF101 [error] ")]
    assert [h.split()[2] for h in headlines][:2] == ["features.14", "features.16"] and len(headlines) == 10
    assert "  = features.30: input 32x32, input_r_min 196" in out  # each layer keeps its numbers
    assert out.count("= help: remove the layer") == 1  # the shared hint once
    source = {line for line in out.splitlines() if " | " in line or line.lstrip().startswith("-->")}
    assert all(len(line) <= 100 for line in out.splitlines() if line not in source)  # prose wraps, code does not


def test_inspect_shows_output_channels_parameters_and_macs_per_layer_and_in_total():
    import torch
    from torchvision.models import resnet18

    result = invoke("inspect", "torchvision:resnet18", "--input-size", "32", "--output-format", "json", "--all")
    data = json.loads(result.stdout)
    rows = {row["layer"]: row for row in data["layers"]}
    stem = rows["conv1"]  # 7x7/2, 3 -> 64 channels, 16x16 output at 32 px
    assert (stem["out_channels"], stem["params"], stem["macs"]) == (64, 7 * 7 * 3 * 64, 7 * 7 * 3 * 64 * 16 * 16)
    assert rows["fc"]["params"] == rows["fc"]["macs"] == 512 * 1000
    with torch.device("meta"):
        model = resnet18()
    weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))
    assert data["params_total"] == weights  # conv and linear weights, bias not counted
    assert data["macs_total"] == sum(row["macs"] for row in rows.values())
    table = invoke("inspect", "torchvision:resnet18", "--input-size", "32", env={"COLUMNS": "200"}).stdout
    assert all(col in table for col in ("out ch", "params", "MACs"))
    assert f"Total: 11.7M parameters ({weights:,})" in table
