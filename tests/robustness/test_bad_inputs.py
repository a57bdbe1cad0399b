"""A corpus of bad inputs for ``rflint check``: each must exit 2 with one ``rflint: error:`` line
that names the problem, and never show a traceback (unless ``--verbose``).

The model files live in tests/assets/bad/; pickles and ONNX files are written into tmp dirs by
the cases themselves, so that no binary (and nothing hostile) is checked into the repository.
Every case runs in an empty temporary working directory, so no project config leaks in.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rflint.cli import app

ASSETS = Path(__file__).parents[1] / "assets"
BAD = ASSETS / "bad"
TINY = ASSETS / "tiny_cnn.py"


class Marker:
    """Unpickling this creates ``path``: if the file exists afterwards, the pickle was run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


@dataclass(frozen=True)
class Case:
    """``args`` for ``rflint check`` (a callable gets the tmp dir and may write files there),
    and the fragments the single error line must contain."""

    id: str
    args: list[str] | Callable[[Path], list[str]]
    expect: tuple[str, ...]


def hostile_pickle(name: str) -> Callable[[Path], list[str]]:
    def make(tmp: Path) -> list[str]:
        (tmp / name).write_bytes(pickle.dumps(Marker(tmp / "PWNED")))
        return [str(tmp / name), "-s", "32"]

    return make


def hostile_torch_save(tmp: Path) -> list[str]:
    import torch

    torch.save(Marker(tmp / "PWNED"), tmp / "evil_zip.pt")  # torch's zip format, pickle inside
    return [str(tmp / "evil_zip.pt"), "-s", "32"]


def state_dict(tmp: Path) -> list[str]:
    import torch
    from torch import nn

    torch.save(nn.Conv2d(3, 4, 3).state_dict(), tmp / "weights.pth")
    return [str(tmp / "weights.pth"), "-s", "32", "--trust-pickle"]


def onnx_file(build: Callable[[Path], Path]) -> Callable[[Path], list[str]]:
    def make(tmp: Path) -> list[str]:
        return [str(build(tmp)), "-s", "32"]

    return make


def _onnx_conv(tmp: Path, location: str | None = None, kernel: int = 3) -> Path:
    """A one-conv ONNX model, its weight optionally claiming to live in external ``location``."""
    import onnx
    from onnx import TensorProto, helper

    weight = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, kernel, kernel], [0.0] * (12 * kernel * kernel))
    if location is not None:
        weight.ClearField("float_data")
        weight.data_location = TensorProto.EXTERNAL
        entry = weight.external_data.add()
        entry.key, entry.value = "location", location
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[kernel, kernel])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[weight],
    )
    folder = tmp / "model"
    folder.mkdir(exist_ok=True)
    path = folder / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def write(name: str, content: bytes) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        (tmp / name).write_bytes(content)
        return tmp / name

    return make


def malformed_config(tmp: Path) -> list[str]:
    (tmp / "pyproject.toml").write_text("[tool.rflint]\nselect = 5\n")
    return [str(TINY), "-s", "32"]


S32 = ["-s", "32"]

CASES = [
    # --- the target cannot be found or imported
    Case("missing-file", [str(BAD / "does_not_exist.py"), *S32], ("does_not_exist.py", "no such file")),
    Case("directory", [str(BAD), *S32], ("is a directory",)),
    Case("empty-file", [str(BAD / "empty.py"), *S32], ("empty.py is empty",)),
    Case("syntax-error", [str(BAD / "syntax_error.py"), *S32], ("syntax_error.py:4", "syntax error")),
    Case("binary-junk-py", [str(BAD / "binary_junk.py"), *S32], ("binary_junk.py", "syntax error", "null bytes")),
    Case("missing-dependency", [str(BAD / "missing_dependency.py"), *S32], ("no module named 'rflint_nonexistent_dependency'", "sys.path tried", "neither in the project nor installed")),
    Case("import-raises", [str(BAD / "import_raises.py"), *S32], ("importing", "RuntimeError: this module refuses to be imported")),
    Case("sys-exit-on-import", [str(BAD / "sys_exit.py"), *S32], ("sys_exit.py: the model's code exited the process", "exit status 3")),
    Case("no-factory", [str(BAD / "no_factory.py"), *S32], ("defines none of build_model", "Backbone", "make_backbone")),
    Case("wrong-attribute", [f"{TINY}:buld_model", *S32], ("no attribute 'buld_model'", "did you mean 'build_model'")),
    Case("unknown-module", ["rflint_no_such_package.models:build", *S32], ("no module named 'rflint_no_such_package'", "sys.path tried",)),
    Case("uninterpretable-target", ["justaword", *S32], ("cannot interpret model target 'justaword'",)),
    Case("unknown-torchvision", ["torchvision:resnet19", *S32], ("unknown torchvision model 'resnet19'", "resnet18")),
    Case("unknown-timm", ["timm:resnet5O", *S32], ("unknown timm model 'resnet5O'", "resnet50")),
    Case("glob-matches-nothing", ["torchvision:no_such_net*", *S32], ("matches no model",)),
    # --- the target is found but does not give a model
    Case("factory-raises", [str(BAD / "factory_raises.py"), *S32], ("factory_raises.py:build_model", "ValueError: unsupported depth 7")),
    Case("factory-returns-dict", [str(BAD / "returns_dict.py"), *S32], ("type dict, not a torch.nn.Module",)),
    Case("factory-returns-tuple", [str(BAD / "returns_tuple.py"), *S32], ("type tuple, not a torch.nn.Module",)),
    Case("factory-returns-none", [str(BAD / "returns_none.py"), *S32], ("type NoneType, not a torch.nn.Module",)),
    Case("not-callable", [str(BAD / "not_callable.py"), *S32], ("model is of type int",)),
    Case("class-not-a-module", [f"{BAD / 'not_module_class.py'}:Config", *S32], ("does not derive from torch.nn.Module",)),
    Case("infinite-recursion", [str(BAD / "infinite_recursion.py"), *S32], ("RecursionError",)),
    Case("allocates-100gb", [str(BAD / "allocates_100gb_cpu.py"), *S32], ("memory limit",)),
    Case("unexpected-model-kwarg", [str(TINY), *S32, "--model-kwargs", '{"depth": 3}'], ("TypeError", "unexpected keyword argument 'depth'")),
    Case("kwargs-on-instance", [f"{TINY}:instance", *S32, "--model-kwargs", '{"num_classes": 3}'], ("already-built module",)),
    Case("model-kwargs-not-json", [str(TINY), *S32, "--model-kwargs", "{num_classes: 3}"], ("--model-kwargs is not valid JSON",)),
    Case("model-kwargs-not-object", [str(TINY), *S32, "--model-kwargs", "[1, 2]"], ("--model-kwargs must be a JSON object",)),
    # --- input geometry
    Case("negative-input-size", [str(TINY), "--input-size=-3"], ("invalid input size '-3'",)),
    Case("zero-input-size", [str(TINY), "--input-size", "0"], ("invalid input size '0'",)),
    Case("non-numeric-input-size", [str(TINY), "--input-size", "abc"], ("invalid input size 'abc'",)),
    Case("fractional-input-size", [str(TINY), "--input-size", "22.5"], ("invalid input size '22.5'",)),
    Case("too-many-axes", [str(TINY), "--input-size", "32x32x32"], ("--input-size has 3 axes",)),
    Case("input-shape-wrong-rank", [str(TINY), "--input-shape", "1,3,32"], ("input shape (1, 3, 32)",)),
    Case("input-shape-too-short", [str(TINY), "--input-shape", "3,32"], ("invalid input shape '3,32'",)),
    Case("input-smaller-than-stem", [str(TINY), "--input-size", "4"], ("(1, 3, 4, 4)", "Kernel size")),
    Case("data-dependent-control-flow", [str(BAD / "control_flow.py"), *S32], ("control flow",)),
    # --- pickles: refused, never opened
    Case("hostile-pickle-pt", hostile_pickle("evil.pt"), ("refusing to unpickle",)),
    Case("hostile-pickle-pth", hostile_pickle("evil.pth"), ("refusing to unpickle",)),
    Case("hostile-pickle-pkl", hostile_pickle("evil.pkl"), ("refusing to unpickle",)),
    Case("hostile-torch-save-zip", hostile_torch_save, ("refusing to unpickle",)),
    Case("hostile-pickle-as-onnx", hostile_pickle("evil.onnx"), ("not a valid ONNX model",)),
    Case("hostile-pickle-as-py", hostile_pickle("evil.py"), ("evil.py", "syntax error")),
    Case("trusted-state-dict", state_dict, ("holds a state_dict",)),
    # --- ONNX
    Case("onnx-external-data-outside", onnx_file(lambda t: _onnx_conv(t, "../../etc/passwd")), ("points outside the model's folder",)),
    Case("onnx-external-data-absolute", onnx_file(lambda t: _onnx_conv(t, "/etc/passwd")), ("points outside the model's folder",)),
    Case("onnx-empty", onnx_file(write("empty.onnx", b"")), ("empty.onnx is empty",)),
    Case("onnx-garbage", onnx_file(write("junk.onnx", b"\xff\xfe not protobuf at all")), ("not a valid ONNX model",)),
    Case("onnx-missing", [str(BAD / "missing.onnx"), *S32], ("no such file",)),
    Case("onnx-input-too-small", lambda t: [str(_onnx_conv(t, kernel=7)), "-s", "4"], ("input 4x4 is too small",)),
    # --- configuration
    Case("malformed-config", malformed_config, ("select",)),
]


@pytest.fixture
def in_tmp(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_check(args: list[str]):
    return CliRunner().invoke(app, ["check", *args])


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("rflint: error:")]


def test_corpus_has_at_least_30_cases():
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_exits_2_with_one_line(case, in_tmp):
    args = case.args(in_tmp) if callable(case.args) else case.args
    result = run_check(args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    for fragment in case.expect:
        assert fragment in lines[0], lines[0]
    assert not (in_tmp / "PWNED").exists(), "a pickle was executed"


def test_verbose_shows_the_traceback(in_tmp):
    result = run_check([str(BAD / "factory_raises.py"), *S32, "--verbose"])
    assert result.exit_code == 2
    assert "Traceback" in result.stderr
    assert "ValueError: unsupported depth 7" in result.stderr


def test_100_gb_model_is_checked_on_meta_not_refused(in_tmp):
    result = run_check([str(ASSETS / "huge_on_meta.py"), *S32])
    assert result.exit_code in (0, 1), result.output
    assert not error_lines(result)


def test_a_bad_model_does_not_stop_the_others(in_tmp):
    # at 8 px TinyCNN's 3x3 conv (receptive field 7 + 2*2 = 11) is critical: a finding proves it ran
    result = run_check([str(BAD / "factory_raises.py"), str(TINY), "-s", "8", "--output-format", "concise"])
    assert result.exit_code == 2  # the max over models
    assert len(error_lines(result)) == 1
    assert "tiny_cnn.py" in result.stdout
