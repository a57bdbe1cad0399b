"""Suppression comments, definition lines found by the AST pass, and RF100 unused-suppression."""

from __future__ import annotations

import importlib.util
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from rflint.rf.algebra import analyse
from rflint.project.config import Config
from rflint.results import ModelReport
from rflint.spec import ModelSpec
from rflint.ir import Finding, Graph, Kind, Layer, Severity, Source
from rflint.frontend.definitions import definition_sources
from rflint.engine.pipeline import resolve_findings
from rflint.project.locations import model_source
from rflint.project.suppressions import (
    apply_suppressions,
    file_suppressions,
    parse_comment,
    unused_suppressions,
)


@pytest.mark.parametrize(
    ("comment", "expected"),
    [
        ("# noqa", ("noqa", None)),
        ("# NOQA", ("noqa", None)),
        ("# noqa: RF101", ("noqa", {"RF101"})),
        ("# noqa:RF101,RF102", ("noqa", {"RF101", "RF102"})),
        ("# noqa: E501, RF101 -- the stem stays", ("noqa", {"E501", "RF101"})),
        ("# rflint: ignore[RF101]", ("rflint", {"RF101"})),
        ("# rflint: ignore[RF101, critical-layer]", ("rflint", {"RF101", "RF102"})),  # names become codes
        ("# rflint: ignore", ("rflint", None)),
        ("# type: ignore[attr-defined]", None),
        ("# a plain comment about noqa", None),
    ],
)
def test_parse_comment(comment, expected):
    parsed = parse_comment(comment)
    if expected is None:
        assert parsed is None
    else:
        assert parsed is not None
        assert parsed[0] == expected[0]
        assert (parsed[1] if parsed[1] is None else set(parsed[1])) == expected[1]


def test_only_real_comments_count(tmp_path):
    path = tmp_path / "m.py"
    path.write_text('x = "# noqa: RF101"\ny = 1  # noqa: RF101\n', encoding="utf-8")
    sups = file_suppressions(str(path))
    assert list(sups) == [2]
    assert sups[2].col == 8


def test_a_rewritten_file_is_read_again(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("y = 1  # noqa: RF101\n", encoding="utf-8")
    assert set(file_suppressions(str(path))) == {1}
    path.write_text("x = 0\ny = 1  # rflint: ignore[RF102]\n", encoding="utf-8")
    assert set(file_suppressions(str(path))) == {2}


# --- definition lines ----------------------------------------------------------------------------

MODELS = '''\
from collections import OrderedDict

import torch.nn as nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(8, 8, 3)
        self.add_module("conv2", nn.Conv2d(8, 8, 3))


class Stage(nn.Sequential):
    def __init__(self):
        super().__init__(nn.Conv2d(8, 8, 3),
                         nn.ReLU())


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3)
        self.features = nn.Sequential(
            nn.Conv2d(8, 8, 3),
            nn.Sequential(nn.MaxPool2d(2),
                          nn.Conv2d(8, 8, 3)),
        )
        layers = [nn.Conv2d(8, 8, 3)]
        layers.append(nn.Conv2d(8, 8, 3))
        self.body = nn.Sequential(*layers)
        self.blocks = nn.ModuleList([Block(),
                                     Block()])
        self.named = nn.Sequential(OrderedDict([
            ("a", nn.Conv2d(8, 8, 1)),
        ]))
        self.stage = Stage()
        self.looped = self._make()

    def _make(self):
        out = []
        for _ in range(2):
            out.append(nn.Conv2d(8, 8, 3))
        return nn.Sequential(*out)
'''


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    path = tmp_path_factory.mktemp("defs") / "defs_models.py"
    path.write_text(MODELS, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("defs_models", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["defs_models"] = module
    spec.loader.exec_module(module)
    yield module.Net(), str(path)
    del sys.modules["defs_models"]


@pytest.mark.parametrize(
    ("qualname", "line", "col"),
    [
        ("stem", 22, 9),  # self.stem = ...
        ("features.0", 24, 13),  # positional argument of nn.Sequential(...)
        ("features.1.1", 26, 27),  # nested Sequential, second argument on its own line
        ("body.0", 28, 19),  # element of the list literal
        ("body.1", 29, 23),  # straight-line append
        ("blocks.1", 32, 38),  # ModuleList([...]) element
        ("blocks.1.conv1", 9, 9),  # inside the owning class
        ("blocks.0.conv2", 10, 9),  # add_module
        ("named.a", 34, 19),  # OrderedDict entry
        ("stage.1", 16, 26),  # super().__init__ of an nn.Sequential subclass
    ],
)
def test_definition_sources_find_the_defining_line(net, qualname, line, col):
    model, path = net
    assert definition_sources(model, [qualname]) == {qualname: Source(path, line, col)}


def test_definition_sources_leave_out_what_cannot_be_resolved(net):
    model, _ = net
    # built in a loop (index not static), a function node, a name that is not a module
    assert definition_sources(model, ["looped.0", "add", "stem.weight", ""]) == {}


def test_definition_sources_in_library_code():
    import torchvision
    with __import__("torch").device("meta"):
        model = torchvision.models.resnet18()
    found = definition_sources(model, ["layer4.1.conv2"])
    src = found["layer4.1.conv2"]
    assert src.file.endswith("resnet.py")
    assert "self.conv2 =" in Path(src.file).read_text().splitlines()[src.line - 1]


# --- applying suppressions and RF100 -----------------------------------------------------------

SOURCE = '''\
import torch.nn as nn


def build():  # noqa: RF103
    return Net()


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3)  # noqa: RF101
        self.b = nn.Conv2d(8, 8, 3)
        self.c = nn.Conv2d(8, 8, 3)  # rflint: ignore[RF101, RF102]
        self.d = nn.Conv2d(8, 8, 3)  # noqa: E501, RF101

    def forward(self, x):
        x = self.a(x)
        x = self.b(x)  # noqa
        x = self.c(x)
        return self.d(x)  # noqa: RF100
'''


def _report(path: str, name: str = "net") -> ModelReport:
    one = (Fraction(1), Fraction(1))

    def conv(n, prev, def_line, call_line):
        return Layer(n, n, "Conv2d", Kind.WINDOW, (prev,), (3, 3), one, (1, 1),
                     source=Source(path, call_line), definition=Source(path, def_line, 9))

    layers = (
        Layer("x", "input", "input", Kind.INPUT),
        conv("a", "x", 11, 17),
        conv("b", "a", 12, 18),
        conv("c", "b", 13, 19),
        conv("d", "c", 14, 20),
    )
    graph = Graph(layers, (8, 8), name=name)
    return ModelReport(ModelSpec(f"{path}:build", input_size=(8,), name=name), analyse(graph), (), {})


def _finding(code: str, layer: str, path: str | None = None) -> Finding:
    src = Source(path, 1) if path else None
    return Finding(code, "x", Severity.ERROR, "m", model="net", layer=layer, source=src)


@pytest.fixture
def source_file(tmp_path):
    path = tmp_path / "supp_model.py"
    path.write_text(SOURCE, encoding="utf-8")
    return str(path)


def test_suppressions_on_definition_or_call_site_lines(source_file):
    report = _report(source_file)
    findings = [
        _finding("RF101", "a"),  # noqa: RF101 on the definition line
        _finding("RF102", "a"),  # not covered: the comment names RF101 only
        _finding("RF101", "b"),  # bare noqa on the call-site line
        _finding("RF102", "c"),  # rflint: ignore[RF101, RF102]
        _finding("RF101", "d"),  # noqa: E501, RF101
    ]
    result = apply_suppressions(findings, [report])
    assert [(f.code, f.layer) for f in result.kept] == [("RF102", "a")]
    assert len(result.suppressed) == 4


def test_unused_suppressions_are_reported_as_rf100(source_file):
    report = _report(source_file)
    result = apply_suppressions([_finding("RF101", "a")], [report])
    unused = unused_suppressions([report], result.used, enabled={"RF101", "RF102", "RF103"})
    got = {(f.source.line, f.layer): f.message for f in unused}
    assert set(got) == {(13, "c"), (14, "d")}  # not the bare noqa (other linters), not RF100 itself
    assert "no RF101 finding on this line; no RF102 finding on this line" in got[(13, "c")]
    assert all(f.code == "RF100" and f.severity is Severity.WARN for f in unused)
    assert unused[0].source.col == 38  # the comment's column
    not_enabled = unused_suppressions([report], result.used, enabled={"RF102"})
    assert any("RF101 is not enabled" in f.message for f in not_enabled)


def test_model_level_finding_suppressed_on_the_factory_line(source_file):
    report = _report(source_file)
    factory = model_source(report.spec)
    assert factory == Source(source_file, 4, 1)
    result = apply_suppressions([Finding("RF103", "x", Severity.WARN, "m", model="net", layer="", source=factory)], [report])
    assert result.kept == [] and len(result.suppressed) == 1


def test_resolve_findings_applies_config_suppressions_and_rf100(source_file):
    report = _report(source_file)
    report = ModelReport(
        report.spec,
        report.analysis,
        (_finding("RF101", "a"), _finding("RF102", "d"), Finding("RF103", "input-below-minimum-resolution", Severity.WARN, "m", model="net", layer="")),
        {},
        source=model_source(report.spec),  # the factory's line, found when the model is built
    )
    out = resolve_findings([report], Config())
    # kept: RF102 on d (its comment names E501 and RF101 only); the RF103 is silenced on the
    # factory's def line; unused: c's RF101 and RF102, d's RF101
    assert [(f.code, f.layer) for f in out] == [("RF102", "d"), ("RF100", "c"), ("RF100", "d")]
    out = resolve_findings([report], Config(ignore=("RF100",)))
    assert [(f.code, f.layer) for f in out] == [("RF102", "d")]


# --- end to end through the real frontend ----------------------------------------------------------

REAL = '''\
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 16, 3, padding=1),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 16, 3, padding=1),
            nn.Conv2d(16, 16, 3, padding=1),
        )

    def forward(self, x):
        return self.features(x)
'''


def test_end_to_end_suppression_on_the_sequential_call_site(tmp_path):
    from rflint.engine.pipeline import lint

    path = tmp_path / "real_model.py"
    path.write_text(REAL.replace("return self.features(x)", "return self.features(x)  # noqa: RF101"), encoding="utf-8")
    report = lint(ModelSpec(f"{path}:Net", input_size=(16,), task="classification"))  # a headless stack
    assert any(f.code == "RF101" for f in report.findings)  # r_min 18 >= 16 before features.5
    out = resolve_findings([report], Config())
    assert not any(f.code in ("RF101", "RF100") for f in out)


def test_model_level_findings_without_a_factory_point_at_the_config_entry(tmp_path):
    from rflint.project.locations import config_entry_source

    config = tmp_path / "pyproject.toml"
    config.write_text(
        '[tool.rflint]\n\n[[tool.rflint.models]]\ntarget = "torchvision:resnet18"  # noqa: RF103\ninput-size = 32\n',
        encoding="utf-8",
    )
    spec = ModelSpec("torchvision:resnet18", input_size=(32,))
    assert model_source(spec) is None  # a library registry has no useful line
    assert config_entry_source(config, spec) == Source(str(config.resolve()), 4, 1)
    assert config_entry_source(config, ModelSpec("other.py:Net")) is None
    assert config_entry_source(None, spec) is None
    # and the comment on that line suppresses the model-level finding
    one = (Fraction(1),)
    graph = Graph((Layer("x", "input", "input", Kind.INPUT), Layer("c", "c", "Conv1d", Kind.WINDOW, ("x",), (3,), one, (1,))), (32,))
    report = ModelReport(spec, analyse(graph), (Finding("RF103", "input-below-minimum-resolution", Severity.WARN, "m", model=spec.display_name, layer=""),), {})
    from rflint.project.config import load_config

    assert resolve_findings([report], load_config(cwd=tmp_path)) == []
