"""Target strings -> modules: every accepted form, the meta device, the memory guard, globs and
the pickle refusal. The model files live in tests/assets/."""

from __future__ import annotations

import pickle
import resource
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from rflint.errors import TargetError
from rflint.sources.load import (
    FACTORY_NAMES,
    LoadedModel,
    expand_targets,
    is_onnx_target,
    is_pickle_target,
    load_model,
    split_target,
)

ASSETS = Path(__file__).parents[1] / "assets"
TINY = ASSETS / "tiny_cnn.py"


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("models/net.py", ("models/net.py", None)),
        ("models/net.py:build", ("models/net.py", "build")),
        ("pkg.mod:Outer.factory", ("pkg.mod", "Outer.factory")),
        ("C:\\models\\net.py", ("C:\\models\\net.py", None)),  # a drive letter is not an attribute
        ("C:\\models\\net.py:make", ("C:\\models\\net.py", "make")),
        ("dir:with:colons/net.py", ("dir:with:colons/net.py", None)),
    ],
)
def test_split_target_only_splits_a_trailing_identifier(target, expected):
    assert split_target(target) == expected


def test_onnx_and_pickle_targets_are_recognised_by_extension():
    assert is_onnx_target("exports/model.ONNX")
    assert not is_onnx_target("model.py")
    for name in ("m.pt", "m.pth", "m.pt2", "m.pkl", "m.ckpt"):
        assert is_pickle_target(name)
    assert not is_pickle_target("m.py")


# --------------------------------------------------------------------------- accepted forms


def test_file_target_autodiscovers_build_model_on_meta():
    loaded = load_model(str(TINY))
    assert isinstance(loaded, LoadedModel)
    assert type(loaded.module).__name__ == "TinyCNN"
    assert loaded.on_meta
    assert all(p.is_meta for p in loaded.module.parameters())
    assert loaded.source is not None and Path(loaded.source.file) == TINY
    line = TINY.read_text().splitlines()[loaded.source.line - 1]
    assert line.startswith("def build_model")


def test_autodiscovery_order_is_documented():
    assert FACTORY_NAMES == ("build_model", "create_model", "get_model", "model")


def test_class_target_is_called_with_kwargs():
    loaded = load_model(f"{TINY}:TinyCNN", kwargs={"num_classes": 3, "width": 5})
    assert loaded.module.fc.out_features == 3
    assert loaded.module.stem.out_channels == 5
    line = TINY.read_text().splitlines()[loaded.source.line - 1]
    assert line.startswith("class TinyCNN")


def test_factory_kwargs_reach_the_factory():
    loaded = load_model(f"{TINY}:build_model", kwargs={"num_classes": 7})
    assert loaded.module.fc.out_features == 7


def test_instance_target_is_returned_as_is():
    loaded = load_model(f"{TINY}:instance")
    assert type(loaded.module).__name__ == "TinyCNN"
    assert not loaded.on_meta  # built at import time, on the CPU


def test_instance_target_refuses_kwargs():
    with pytest.raises(TargetError, match="already-built module"):
        load_model(f"{TINY}:instance", kwargs={"num_classes": 2})


def test_package_module_target(monkeypatch):
    monkeypatch.syspath_prepend(str(ASSETS))
    loaded = load_model("rflint_test_pkg.models:small", kwargs={"width": 6})
    assert loaded.module[0].out_channels == 6
    assert loaded.on_meta


def test_file_folder_is_on_sys_path_only_while_importing(tmp_path):
    (tmp_path / "helper_block.py").write_text("from torch import nn\nBlock = lambda: nn.Conv2d(3, 4, 3)\n")
    (tmp_path / "net.py").write_text("from helper_block import Block\ndef build_model():\n    return Block()\n")
    loaded = load_model(str(tmp_path / "net.py"))
    assert isinstance(loaded.module, nn.Conv2d)
    assert str(tmp_path) not in sys.path


def test_two_files_with_the_same_name_do_not_collide(tmp_path):
    for width in (3, 5):
        folder = tmp_path / f"v{width}"
        folder.mkdir()
        (folder / "model.py").write_text(f"from torch import nn\ndef build_model():\n    return nn.Conv2d(3, {width}, 3)\n")
    a = load_model(str(tmp_path / "v3" / "model.py"))
    b = load_model(str(tmp_path / "v5" / "model.py"))
    assert (a.module.out_channels, b.module.out_channels) == (3, 5)


def test_user_prints_go_to_stderr(tmp_path, capsys):
    (tmp_path / "chatty.py").write_text(
        "from torch import nn\nprint('importing')\ndef build_model():\n    print('building')\n    return nn.Conv2d(3, 4, 3)\n"
    )
    load_model(str(tmp_path / "chatty.py"))
    out, err = capsys.readouterr()
    assert out == ""
    assert "importing" in err and "building" in err


def test_torchvision_target_builds_on_meta():
    loaded = load_model("torchvision:resnet18")
    assert type(loaded.module).__name__ == "ResNet"
    assert loaded.on_meta
    assert loaded.source is not None and loaded.source.file.endswith("resnet.py")


def test_model_that_fails_on_meta_is_retried_on_cpu():
    loaded = load_model(str(ASSETS / "meta_incompatible.py"))
    assert type(loaded.module).__name__ == "NeedsRealTensors"
    assert sys.modules[type(loaded.module).__module__].devices == ["meta", "cpu"]


def test_torchvision_regnet_builds_although_it_fails_on_meta():
    # torchvision's RegNet init raises NotImplementedError on the meta device (checked below)
    import torchvision

    with pytest.raises(NotImplementedError), torch.device("meta"):
        torchvision.models.regnet_y_400mf()
    assert type(load_model("torchvision:regnet_y_400mf").module).__name__ == "RegNet"


def test_torchvision_kwargs():
    loaded = load_model("torchvision:resnet18", kwargs={"num_classes": 10})
    assert loaded.module.fc.out_features == 10


def test_timm_target_builds_on_meta():
    loaded = load_model("timm:resnet18")
    assert type(loaded.module).__name__ == "ResNet"
    assert loaded.on_meta
    assert loaded.source is not None and loaded.source.file.endswith("resnet.py")


def test_timm_accepts_pretrained_tags_without_downloading():
    loaded = load_model("timm:resnet18.a1_in1k", kwargs={"num_classes": 4})
    assert loaded.module.fc.out_features == 4


def test_missing_timm_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm -> ImportError
    with pytest.raises(TargetError, match="timm is not installed") as info:
        load_model("timm:resnet18")
    assert "pip install timm" in info.value.hint


# --------------------------------------------------------------------------- memory


def test_100_gb_model_is_built_on_meta_without_allocating():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    loaded = load_model(str(ASSETS / "huge_on_meta.py"))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    n_params = sum(p.numel() for p in loaded.module.parameters())
    assert n_params * 4 > 100e9  # really a 100 GB model
    assert loaded.on_meta
    assert after - before < 512 * 1024  # peak RSS grew by less than 512 MiB


def test_explicit_cpu_allocation_past_the_limit_is_refused():
    limit_before = resource.getrlimit(resource.RLIMIT_AS)
    with pytest.raises(TargetError, match="memory limit"):
        load_model(str(ASSETS / "bad" / "allocates_100gb_cpu.py"))
    assert resource.getrlimit(resource.RLIMIT_AS) == limit_before  # the cap is lifted again


def test_memory_limit_is_configurable(tmp_path):
    (tmp_path / "m.py").write_text(
        "import torch\nfrom torch import nn\ndef build_model():\n"
        "    m = nn.Conv2d(3, 4, 3)\n    m.register_buffer('b', torch.ones(64 * 2**20, device='cpu'))\n    return m\n"
    )  # a 256 MiB buffer
    with pytest.raises(TargetError, match="memory limit"):
        load_model(str(tmp_path / "m.py"), memory_limit=64 * 2**20)
    assert load_model(str(tmp_path / "m.py"), memory_limit=4 * 2**30).module.b.numel() == 64 * 2**20


# --------------------------------------------------------------------------- pickles


class _Marker:
    """Unpickling this creates ``path``: proof that the pickle was executed."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".pkl", ".pt2", ".ckpt"])
def test_pickles_are_refused_without_being_opened(tmp_path, suffix):
    marker = tmp_path / "pwned"
    target = tmp_path / f"evil{suffix}"
    target.write_bytes(pickle.dumps(_Marker(marker)))
    with pytest.raises(TargetError, match="refusing to unpickle") as info:
        load_model(str(target))
    assert "--trust-pickle" in info.value.hint
    assert not marker.exists()


def test_trusted_pickle_of_a_whole_module_loads(tmp_path):
    path = tmp_path / "whole.pt"
    torch.save(nn.Sequential(nn.Conv2d(3, 4, 3)), path)
    loaded = load_model(str(path), trust_pickle=True)
    assert isinstance(loaded.module[0], nn.Conv2d)


def test_trusted_torchscript_loads_with_jit(tmp_path):
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(nn.Sequential(nn.Conv2d(3, 4, 3))), str(path))
    loaded = load_model(str(path), trust_pickle=True)
    assert isinstance(loaded.module, torch.jit.ScriptModule)


def test_trusted_exported_program_loads(tmp_path):
    path = tmp_path / "exported.pt2"
    program = torch.export.export(nn.Sequential(nn.Conv2d(3, 4, 3)), (torch.randn(1, 3, 8, 8),))
    torch.export.save(program, str(path))
    loaded = load_model(str(path), trust_pickle=True)
    assert isinstance(loaded.module, nn.Module)
    assert loaded.module(torch.randn(1, 3, 8, 8)).shape == (1, 4, 6, 6)


def test_trusted_state_dict_is_explained(tmp_path):
    path = tmp_path / "weights.pth"
    torch.save(nn.Conv2d(3, 4, 3).state_dict(), path)
    with pytest.raises(TargetError, match="state_dict"):
        load_model(str(path), trust_pickle=True)


# --------------------------------------------------------------------------- globs


def test_torchvision_glob_expands_over_classification_models():
    import torchvision

    names = expand_targets(["torchvision:resnet*"])
    expected = sorted(n for n in torchvision.models.list_models(module=torchvision.models) if n.startswith("resnet"))
    assert sorted(names) == [f"torchvision:{n}" for n in expected]
    assert "torchvision:resnet18" in names


def test_timm_glob_expands():
    names = expand_targets(["timm:resnet1*"])
    assert "timm:resnet18" in names
    assert all(n.startswith("timm:resnet1") for n in names)


def test_globs_keep_order_and_drop_duplicates(tmp_path):
    for name in ("b.py", "a.py"):
        (tmp_path / name).write_text("")
    targets = expand_targets(["torchvision:resnet18", str(tmp_path / "*.py"), "torchvision:resnet1?"])
    assert targets[0] == "torchvision:resnet18"
    assert targets[1:3] == [str(tmp_path / "a.py"), str(tmp_path / "b.py")]
    assert targets.count("torchvision:resnet18") == 1


def test_glob_matching_nothing_is_an_error():
    with pytest.raises(TargetError, match="matches no model"):
        expand_targets(["torchvision:nonexistent_net*"])


def test_plain_targets_pass_through_unchanged():
    assert expand_targets(["a.py:m", "pkg.mod:f"]) == ["a.py:m", "pkg.mod:f"]


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("target", "pattern"),
    [
        ("torchvision:resnet19", r"unknown torchvision model 'resnet19'; did you mean .*resnet18"),
        ("timm:resnet5O", r"unknown timm model 'resnet5O'"),
        ("rflint_no_such_package.models:build", r"importing rflint_no_such_package.models failed: no module named 'rflint_no_such_package'; sys.path tried: "),
        ("rflint.ir:Nope", r"rflint.ir has no attribute 'Nope'"),
        ("justaword", r"cannot interpret model target"),
        ("model.onnx", r"ONNX files are read by rflint.frontend.onnx.graph_from_onnx"),
        ("model.onnx:graph", r"takes no :graph"),
        (f"{TINY}:buld_model", r"has no attribute 'buld_model'; did you mean 'build_model'\?"),
        (str(ASSETS / "bad"), r"is a directory"),
        (str(ASSETS / "bad" / "nope.py"), r"no such file"),
        (str(ASSETS / "bad" / "empty.py"), r"is empty"),
        (str(ASSETS / "bad" / "syntax_error.py"), r"syntax_error.py:4: syntax error"),
        (str(ASSETS / "bad" / "factory_raises.py"), r"raised ValueError: unsupported depth 7"),
        (str(ASSETS / "bad" / "returns_dict.py"), r"returned an object of type dict, not a torch.nn.Module"),
        (str(ASSETS / "bad" / "no_factory.py"), r"defines none of build_model.*candidates: Backbone, make_backbone"),
        (str(ASSETS / "bad" / "not_callable.py"), r"is of type int"),
        (f"{ASSETS / 'bad' / 'not_module_class.py'}:Config", r"does not derive from torch.nn.Module"),
        (str(ASSETS / "bad" / "sys_exit.py"), r"sys_exit.py: the model.s code exited the process \(exit status 3\)"),
        (str(ASSETS / "bad" / "infinite_recursion.py"), r"raised RecursionError"),
    ],
)
def test_bad_targets_raise_one_line_target_errors(target, pattern):
    with pytest.raises(TargetError, match=pattern) as info:
        load_model(target)
    assert "\n" not in str(info.value)


def test_factory_error_message_is_one_line_even_for_multiline_exceptions(tmp_path):
    (tmp_path / "m.py").write_text("def build_model():\n    raise ValueError('first\\nsecond\\n\\nthird')\n")
    with pytest.raises(TargetError) as info:
        load_model(str(tmp_path / "m.py"))
    assert str(info.value).endswith("ValueError: first second third")
