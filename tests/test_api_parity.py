"""``rflint.analyze`` accepts what ``rflint check`` accepts and builds the same way.

The repository is kuangliu/pytorch-cifar's shape: a ``models`` package whose ``__init__``
imports every model, a configured entry in ``pyproject.toml``, and a model whose constructor
turns a drop-path schedule into floats with ``Tensor.item()`` (ConvNeXt, Swin, RepLKNet do),
which cannot run under ``with torch.device("meta")``.

Fields by hand: VGG-ish ``Tiny`` is 3x3 convs (padding 1) with a 2x2 pool after every second:
3, 5, pool 6 (jump 2), 10, 14, pool 16 (jump 4), 24, 32. At 16 px the convs whose input field
is >= 16 (the last two: inputs 16 and 24) are unproductive.
"""

from __future__ import annotations

import json
import textwrap

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import rflint
from rflint.engine import pipeline as engine
from rflint.cli import app

FILES = {
    "models/__init__.py": "from .tiny import *\nfrom .droppath import *\n",
    "models/tiny.py": """\
        from torch import nn

        __all__ = ["Tiny", "tiny"]


        class Tiny(nn.Module):
            def __init__(self, width=4, num_classes=10):
                super().__init__()
                layers, c = [], 3
                for i in range(6):
                    layers += [nn.Conv2d(c, width, 3, padding=1), nn.ReLU()]
                    c = width
                    if i % 2 == 1 and i < 4:
                        layers.append(nn.MaxPool2d(2))
                self.features = nn.Sequential(*layers)
                self.head = nn.Linear(width, num_classes)

            def forward(self, x):
                return self.head(self.features(x).mean((2, 3)))


        def tiny(**kwargs):
            return Tiny(**kwargs)
        """,
    "models/droppath.py": """\
        import torch
        from torch import nn

        __all__ = ["DropPathNet"]


        class Block(nn.Module):
            def __init__(self, c, drop):
                super().__init__()
                self.drop = drop
                self.conv = nn.Conv2d(c, c, 3, padding=1)

            def forward(self, x):
                return x + self.conv(x)


        class DropPathNet(nn.Module):
            def __init__(self, depth=3, rate=0.1):
                super().__init__()
                dpr = [x.item() for x in torch.linspace(0, rate, depth)]  # ConvNeXt's schedule
                self.stem = nn.Conv2d(3, 8, 4, stride=4)
                self.blocks = nn.Sequential(*[Block(8, d) for d in dpr])

            def forward(self, x):
                return self.blocks(self.stem(x))
        """,
}

PYPROJECT = """\
[[tool.rflint.models]]
target = "models:tiny"
name = "tiny-cifar"
input-size = 16
kwargs = { width = 4 }
"""


@pytest.fixture
def repo(tmp_path, monkeypatch):
    for rel, text in FILES.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def cli_json(*args: str) -> dict:
    result = CliRunner().invoke(app, ["inspect", *args, "--all", "--output-format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def fields(report: rflint.Report) -> dict[str, tuple]:
    return {l.qualname: l.r_max for l in report.layers}


def test_a_configured_name_with_the_config_file_gives_what_the_cli_gives(repo):
    report = rflint.analyze("tiny-cifar", config=repo / "pyproject.toml")
    cli = cli_json("tiny-cifar")
    assert report.name == "tiny-cifar" and report.input_size == (16, 16)
    inf = float("inf")  # JSON writes a global field as null
    assert {r["layer"]: tuple(inf if x is None else x for x in r["r_max"]) for r in cli["layers"]} == fields(report)
    convs = [l for l in report.layers if l.op == "Conv2d"]
    assert [l.r_max[0] for l in convs] == [3, 5, 10, 14, 24, 32]  # the docstring's chain
    assert report.unproductive == ("features.10", "features.12")
    check = CliRunner().invoke(app, ["check", "--output-format", "json"])
    assert sorted((f["code"], f["layer"]) for f in json.loads(check.stdout)) == sorted((f.code, f.layer) for f in report.findings)


def test_a_configured_entry_takes_the_given_size_and_kwargs_on_top(repo):
    report = rflint.analyze("tiny-cifar", input_size=64, config="pyproject.toml", kwargs={"num_classes": 3})
    assert report.input_size == (64, 64) and report.unproductive == ()
    head = next(l.layer for l in report.analysis.layers if l.layer.qualname == "head")
    assert head.out_channels == 3 and head.in_channels == 4  # entry's width 4, given num_classes 3


def test_a_target_string_a_file_path_and_the_class_agree(repo):
    by_target = rflint.analyze("models:Tiny", input_size=16)
    by_file = rflint.analyze("models/tiny.py:Tiny", input_size=16)
    by_class = rflint.analyze(__import__("models").Tiny, input_size=16)
    assert fields(by_target) == fields(by_file) == fields(by_class)


def test_a_factory_calling_item_builds_on_the_cpu_as_the_cli_does(repo):
    from models import DropPathNet

    with pytest.raises(Exception, match="item|meta"):  # why the old README idiom fails
        with torch.device("meta"):
            DropPathNet()
    # stem 4 stride 4, then three 3x3 convs: 4 + 2 * 4 * 3 = 28 (hand-derived)
    for model in (DropPathNet, "models:DropPathNet", "models/droppath.py:DropPathNet"):
        report = rflint.analyze(model, input_size=32)
        assert report.layer("blocks.2.conv").r_max == (28, 28), model
    assert cli_json("models:DropPathNet", "-s", "32")["i_max"] == [28, 28]


def test_a_cpu_built_module_is_traced_as_a_meta_copy_and_left_as_it_is(repo, monkeypatch):
    from models import Tiny

    model = Tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seen = []
    real = engine.lint_module

    def spy(module, spec, *args, **kwargs):
        seen.append(all(t.is_meta for t in module.parameters()))
        return real(module, spec, *args, **kwargs)

    monkeypatch.setattr(engine, "lint_module", spy)
    report = rflint.analyze(model, input_size=16)
    assert seen == [True]  # the shape run saw meta tensors only: no real convolution ran
    assert all(not p.is_meta for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert [l.r_max[0] for l in report.layers if l.op == "Conv2d"] == [3, 5, 10, 14, 24, 32]


def test_kwargs_with_a_class_reach_the_factory(repo):
    from models import Tiny

    seen = {}

    def factory(act):
        seen["act"] = act
        return Tiny()

    rflint.analyze(factory, input_size=16, kwargs={"act": {"class": "torch.nn.GELU"}})
    assert seen["act"] is nn.GELU


def test_kwargs_for_a_built_module_and_unknown_objects_are_one_line_errors(repo):
    from models import Tiny

    # bad API arguments are the one documented type (issue 20): rflint.ArgumentError
    with pytest.raises(rflint.ArgumentError, match="model is already built"):
        rflint.analyze(Tiny(), input_size=16, kwargs={"width": 8})
    with pytest.raises(rflint.ArgumentError, match="not int 3"):
        rflint.analyze(3, input_size=16)
