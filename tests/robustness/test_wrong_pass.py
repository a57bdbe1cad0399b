"""Wrong passes: a model whose forward produced nothing rflint can analyse must fail the gate
(exit 2, one line naming what forward returned), never report "All checks passed!"."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import rflint
from rflint.errors import OutputError

#: forward runs a real conv on its input and then returns ``RETURN``
MODEL = textwrap.dedent(
    """
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3)

        def forward(self, x):
            y = self.conv(x)
            {body}

    def build_model():
        return Net()
    """
)

NOTHING = [
    ("return None", "forward() returned None"),
    ("return", "forward() returned None"),
    ("return {'label': 'cat', 'score': 'high'}", "forward() returned a dict of str"),
    ("return y.shape", "forward() returned a torch.Size"),
    ("return y.shape[-1]", "forward() returned an int"),
    ("return ('a', 1)", "forward() returned a tuple of str, int"),
    ("return []", "forward() returned an empty list"),
    ("return torch.zeros(1, 10)", "a tensor of shape (1, 10) that does not depend on the input"),
    ("return torch.zeros_like(y)", "a tensor of shape (1, 8, 30, 30) that does not depend on the input"),
    ("return {'logits': torch.ones(1, 10), 'name': 'x'}", "forward() returned a dict of tensor, str"),
]
SOMETHING = [
    "return y",
    "return y.mean((2, 3))",  # a classifier's logits: no spatial axes left, still computed from x
    "return {'out': y, 'aux': 'text'}",
    "return (None, [y])",
    "return y.flatten(1)",
]


def write_model(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "net.py"
    path.write_text(MODEL.format(body=body))
    return path


def check(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rflint", "check", *args], cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize(("body", "named"), NOTHING, ids=[b for b, _ in NOTHING])
def test_a_forward_that_returns_nothing_computed_from_the_input_fails_naming_it(tmp_path, body, named):
    write_model(tmp_path, body)
    with pytest.raises(OutputError, match="net.py") as info:
        rflint.analyze(str(tmp_path / "net.py"), input_size=32, name="net.py")
    assert named in str(info.value)


@pytest.mark.parametrize("body", SOMETHING)
def test_a_forward_that_returns_a_tensor_computed_from_the_input_is_analysed(tmp_path, body):
    write_model(tmp_path, body)
    report = rflint.analyze(str(tmp_path / "net.py"), input_size=32)
    assert any(layer.op == "Conv2d" for layer in report.layers)


@pytest.mark.parametrize("fmt", ["concise", "json"])
def test_the_command_line_exits_2_with_one_line_and_no_pass(tmp_path, fmt):
    write_model(tmp_path, "return None")
    result = check(tmp_path, "net.py", "-s", "32", "--no-cache", "--output-format", fmt)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("rflint: error:")]
    assert errors == [errors[0]] and "net.py: forward() returned None" in errors[0], result.stderr
    assert "All checks passed" not in result.stdout
    assert "Traceback" not in result.stderr
    if fmt == "json":
        assert json.loads(result.stdout) == []


def test_the_fallback_tracer_checks_what_forward_returned_too(tmp_path):
    # fx cannot trace a branch on the input's shape; torch.export can, and must refuse None
    write_model(tmp_path, "if x.shape[-1] > 10:\n            y = y + 1\n        return None")
    with pytest.raises(OutputError, match="forward\\(\\) returned None"):
        rflint.analyze(str(tmp_path / "net.py"), input_size=32)
