"""Declared ops: ``[tool.rflint.ops]`` and ``rflint.register_op`` for what rflint cannot trace.

The running example is a box filter built from an integral image (prefix sums and four offset
slices). Undeclared, rflint sees the prefix sums, whose widest unit reads a whole row: a global
path (an upper bound), never a silent 1x1 and never RF001. Declared as a 9x9 window, it gives
the exact field, which the autograd oracle confirms.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from oracle import measure_support
from typer.testing import CliRunner

import rflint
from rflint.rf.display import display
from rflint.cli import app
from rflint.project.config import Config
from rflint.engine.pipeline import lint
from rflint.ops.table import unregister_op
from rflint.ir import Kind
from rflint.spec import ModelSpec

ASSETS = Path(__file__).parents[1] / "assets" / "custom_ops"
sys.path.insert(0, str(ASSETS))

import boxnet  # noqa: E402  (the asset folder is put on sys.path above)


def last(report):
    return report.analysis.layers[-1]


def oracle_box() -> tuple[int, ...]:
    # the prefix sums cancel exactly in real numbers; float64 leaves residues ~1e-16 of the
    # largest gradient beyond the box, which are not support
    return measure_support(boxnet.BoxNet(), (1, 3, 40, 40), rtol=1e-9)


def test_the_oracle_sees_13_pixels_through_the_integral_image():
    # [hand] 3x3 conv (3) + 9x9 box (+8) + 3x3 conv (+2) = 13
    assert oracle_box() == (13, 13)


def test_undeclared_the_prefix_sums_are_a_global_upper_bound_not_a_1x1():
    report = lint(ModelSpec(f"{ASSETS / 'boxnet.py'}:BoxNet", input_size=(32,)))
    cumsums = [l for l in report.analysis.layers if l.layer.op == "cumsum"]
    assert cumsums and all(l.layer.kind is Kind.GLOBAL for l in cumsums)
    assert not [f for f in report.findings if f.code == "RF001"]
    assert report.analysis.layers[-1].r_max == (float("inf"), float("inf"))
    assert any(v.startswith("box.") for v in report.analysis.global_via)


def test_register_op_declares_the_box_as_a_window():
    rflint.register_op(boxnet.BoxFilter, {"kind": "window", "kernel": "size"})
    try:
        report = rflint.analyze(boxnet.BoxNet(), input_size=32)
    finally:
        unregister_op(boxnet.BoxFilter)
    box = report.layer("box")
    assert box.kind == "window" and box.r_max == (11, 11)  # [hand] 3 + 8
    assert report.layer("c2").r_max == (13, 13) == oracle_box()


def test_register_op_accepts_a_function_returning_a_declaration():
    rflint.register_op(boxnet.BoxFilter, lambda call: {"kind": "window", "kernel": call.module.size})
    try:
        report = rflint.analyze(boxnet.BoxNet(), input_size=32)
    finally:
        unregister_op(boxnet.BoxFilter)
    assert report.layer("c2").r_max == (13, 13)


def test_a_declared_function_is_kept_opaque_and_declared():
    rflint.register_op(boxnet.box_blur, {"kind": "window", "kernel": 5})
    try:
        report = rflint.analyze(boxnet.BlurNet(), input_size=32)
    finally:
        unregister_op(boxnet.box_blur)
    assert [l.op for l in report.layers] == ["input", "Conv2d", "box_blur"]
    assert report.layers[-1].r_max == (7, 7)  # [hand] 3 + 4


def test_declarations_hold_under_the_export_fallback_too():
    spec = ModelSpec(
        f"{ASSETS / 'boxnet.py'}:BoxNetNoFx", input_size=(32,), ops={"boxnet.BoxFilter": {"kind": "window", "kernel": 9}}
    )
    report = lint(spec)
    assert report.analysis.graph.tracer == "export"
    box = next(l for l in report.analysis.layers if l.layer.qualname == "box")
    assert box.layer.op == "BoxFilter" and [display(x) for x in box.r_max] == [11, 11]
    c2 = next(l for l in report.analysis.layers if l.layer.qualname == "c2")
    assert [display(x) for x in c2.r_max] == [13, 13]


def project(tmp_path: Path, ops: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [tool.rflint]
            [[tool.rflint.models]]
            target = "{ASSETS / 'boxnet.py'}:BoxNet"
            name = "box"
            input-size = 32
            {ops}
            """
        )
    )
    return tmp_path


def invoke(path: Path, *args: str):
    return CliRunner().invoke(app, ["check", "--config", str(path / "pyproject.toml"), "--output-format", "json", *args])


def test_config_declaration_reaches_the_analysis_and_reads_an_attribute(tmp_path):
    path = project(tmp_path, '[tool.rflint.ops."boxnet.BoxFilter"]\nkind = "window"\nkernel = "size"')
    report = rflint.analyze(f"{ASSETS / 'boxnet.py'}:BoxNet", input_size=32, config=path / "pyproject.toml")
    assert report.layer("box").r_max == (11, 11) and report.layer("c2").r_max == (13, 13)
    assert invoke(path).exit_code == 0


def test_a_declaration_naming_no_class_is_a_config_error(tmp_path):
    path = project(tmp_path, '[tool.rflint.ops."boxnet.NoSuchFilter"]\nkind = "window"\nkernel = 9')
    result = invoke(path)
    assert result.exit_code == 2
    assert "tool.rflint.ops" in result.stderr and "NoSuchFilter" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_declaration_naming_no_attribute_is_a_config_error(tmp_path):
    path = project(tmp_path, '[tool.rflint.ops."boxnet.BoxFilter"]\nkind = "window"\nkernel = "radius"')
    result = invoke(path)
    assert result.exit_code == 2
    assert "radius" in result.stderr and "Traceback" not in result.stderr


def test_a_declaration_with_an_unknown_kind_is_a_schema_error(tmp_path):
    path = project(tmp_path, '[tool.rflint.ops."boxnet.BoxFilter"]\nkind = "box"')
    result = invoke(path)
    assert result.exit_code == 2 and "tool.rflint.ops" in result.stderr


def test_config_parses_the_ops_table():
    from rflint.project.config import parse_config

    config = parse_config({"ops": {"pkg.mod.Box": {"kind": "window", "kernel": [3, 5]}}}, source=Path("pyproject.toml"))
    assert dict(config.ops["pkg.mod.Box"]) == {"kind": "window", "kernel": [3, 5]}
    assert isinstance(config, Config)
