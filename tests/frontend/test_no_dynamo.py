"""The meta-device shape run does not import torch._dynamo (a 1.5-3.8 s import that buys
nothing outside torch.compile), and skipping it changes no result."""

from __future__ import annotations

import contextlib
import subprocess
import sys

import pytest

from rflint import serialize

from rflint.engine import pipeline as engine
from rflint.frontend import fx as fx_frontend
from rflint.spec import ModelSpec

# ops whose meta kernels go through torch._disable_dynamo: add, relu, mean, gelu, layer_norm,
# bilinear interpolation (clamp), batch_norm, hardswish, scaled dot-product attention
MODEL = """
import torch
from torch import nn
import torch.nn.functional as F

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, stride=2)
        self.norm = nn.LayerNorm(8)
        self.bn = nn.BatchNorm2d(8)

    def forward(self, x):
        x = F.relu(self.conv(x))
        x = x + F.gelu(x)
        x = F.hardswish(F.batch_norm(x, self.bn.running_mean, self.bn.running_var))
        x = self.conv2(x)
        x = F.interpolate(x, scale_factor=2, mode="bilinear")
        y = self.norm(x.permute(0, 2, 3, 1)).flatten(1, 2)
        y = F.scaled_dot_product_attention(y, y, y)
        return x.mean((2, 3)) + y.mean(1)

def build_model():
    return Net()
"""


@pytest.fixture()
def model_file(tmp_path):
    path = tmp_path / "net.py"
    path.write_text(MODEL)
    return path


def test_shape_run_does_not_import_dynamo(model_file):
    # (a plain model file: importing torchvision imports torch._dynamo by itself)
    code = (
        "import sys\n"
        "from rflint.engine import pipeline as engine\n"
        "from rflint.spec import ModelSpec\n"
        f"engine.lint(ModelSpec({str(model_file)!r}, input_size=(32,)))\n"
        "print('torch' in sys.modules, 'torch._dynamo' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "False"]


def test_shape_run_leaves_no_patched_attribute_behind(model_file):
    from rflint.frontend.no_dynamo import _ATTRIBUTE, _disabled_functions, without_dynamo

    functions = _disabled_functions()
    assert functions, "torch wraps no meta kernel in _disable_dynamo any more: drop rflint.frontend.no_dynamo"
    before = {id(fn): fn.__dict__.get(_ATTRIBUTE) for fn in functions}
    with without_dynamo():
        assert all(getattr(fn, _ATTRIBUTE, None) is not None for fn in functions)
    assert {id(fn): fn.__dict__.get(_ATTRIBUTE) for fn in functions} == before


@pytest.mark.parametrize("target", ["FILE", "torchvision:resnet18", "torchvision:swin_t"])
def test_reports_are_identical_with_and_without_dynamo(monkeypatch, model_file, target):
    spec = ModelSpec(str(model_file) if target == "FILE" else target, input_size=(64,))
    lean = engine.lint(spec)
    monkeypatch.setattr(fx_frontend, "without_dynamo", contextlib.nullcontext)
    plain = engine.lint(spec)
    assert serialize.to_data(lean.analysis) == serialize.to_data(plain.analysis)
    assert lean.findings == plain.findings
