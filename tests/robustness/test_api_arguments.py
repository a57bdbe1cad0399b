"""Wrong arguments to the Python API: every one raises ``rflint.ArgumentError`` (a
``ValueError`` and a ``TypeError``) naming the argument and the fix, before any model code
runs, and never a report for a size nobody asked for."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import rflint
from rflint.errors import RflintError


def small() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3))


#: (id, positional arguments, keyword arguments, the argument named, a fragment of the fix)
BAD = [
    ("model-none", (None,), {"input_size": 32}, "model", "pass the built model"),
    # a model class is built as `rflint check pkg.mod:Net` builds it (issue 21); one that cannot be
    # built with the kwargs given is a bad argument, named before anything runs
    ("model-class-missing-arguments", (nn.Conv2d,), {"input_size": 32}, "model", "pass its arguments as kwargs="),
    ("model-class-not-a-module", (dict,), {"input_size": 32}, "model", "pass an nn.Module"),
    ("model-int", (3,), {"input_size": 32}, "model", "torchvision:resnet18"),
    ("model-empty-string", ("  ",), {"input_size": 32}, "model", "torchvision:resnet18"),
    ("model-a-tensor", (torch.zeros(1, 3, 8, 8),), {"input_size": 32}, "model", "pass the built model"),
    ("size-float", (small(),), {"input_size": 32.5}, "input_size", "input_size=224"),
    ("size-whole-float", (small(),), {"input_size": 32.0}, "input_size", "input_size=224"),
    ("size-string", (small(),), {"input_size": "32"}, "input_size", "input_size=224"),
    ("size-bytes", (small(),), {"input_size": b"32"}, "input_size", "input_size=224"),
    ("size-bool", (small(),), {"input_size": True}, "input_size", "input_size=224"),
    ("size-zero", (small(),), {"input_size": 0}, "input_size", "input_size=224"),
    ("size-negative", (small(),), {"input_size": -32}, "input_size", "input_size=224"),
    ("size-one-axis-zero", (small(),), {"input_size": (32, 0)}, "input_size", "input_size=224"),
    ("size-empty", (small(),), {"input_size": ()}, "input_size", "input_size=224"),
    ("size-past-int64", (small(),), {"input_size": 2**64}, "input_size", "input_size=224"),
    ("size-a-dict", (small(),), {"input_size": {"h": 32}}, "input_size", "input_size=224"),
    ("size-strings-inside", (small(),), {"input_size": ("32", "32")}, "input_size", "input_size=224"),
    ("shape-string", (small(),), {"input_shape": "1,3,32,32"}, "input_shape", "input_shape=(1, 3, 224, 224)"),
    ("shape-no-spatial-axis", (small(),), {"input_shape": (1, 3)}, "input_shape", "input_shape=(1, 3, 224, 224)"),
    ("shape-negative", (small(),), {"input_shape": (1, 3, -2, 32)}, "input_shape", "input_shape=(1, 3, 224, 224)"),
    ("shape-float", (small(),), {"input_shape": (1, 3, 32.5, 32)}, "input_shape", "input_shape=(1, 3, 224, 224)"),
    ("rules-unknown", (small(),), {"input_size": 32, "rules": ["RF999"]}, "rules", "rflint rule --all"),
    ("rules-not-strings", (small(),), {"input_size": 32, "rules": [101]}, "rules", "rules=['RF101'"),
    ("config-int", (small(),), {"input_size": 32, "config": 5}, "config", "config='pyproject.toml'"),
    ("config-missing-file", (small(),), {"input_size": 32, "config": "no/such/pyproject.toml"}, "config", "pyproject.toml"),
    ("name-int", (small(),), {"input_size": 32, "name": 7}, "name", "name='my-model'"),
    ("leaf-modules-ints", (small(),), {"input_size": 32, "leaf_modules": [1]}, "leaf_modules", "leaf_modules=['pkg.module.Block']"),
    ("kwargs-list", ("torchvision:resnet18",), {"input_size": 32, "kwargs": [("a", 1)]}, "kwargs", "kwargs={'num_classes': 10}"),
    ("kwargs-for-a-built-model", (small(),), {"input_size": 32, "kwargs": {"num_classes": 3}}, "kwargs", "build the model"),
]


@pytest.mark.parametrize(("args", "kwargs", "argument", "fix"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_a_bad_argument_raises_argument_error_naming_it_and_the_fix(args, kwargs, argument, fix):
    with pytest.raises(rflint.ArgumentError) as info:
        rflint.analyze(*args, **kwargs)
    error = info.value
    assert str(error).startswith(argument), str(error)
    assert fix in error.hint, error.hint
    assert isinstance(error, ValueError) and isinstance(error, TypeError) and isinstance(error, RflintError)


def test_the_exception_is_exported_and_documented():
    assert "ArgumentError" in rflint.__all__
    assert "ArgumentError" in rflint.__doc__ and "ArgumentError" in rflint.analyze.__doc__


@pytest.mark.parametrize(
    "size",
    [32, np.int64(32), (32, 32), [32, 32], np.array([32, 32])[0], (np.int32(32), 32)],
    ids=["int", "numpy-int", "tuple", "list", "numpy-scalar", "mixed"],
)
def test_integral_sizes_of_any_integer_type_are_accepted(size):
    # two 3x3 convs: I_min 5 (receptive field 5), whatever the integer type
    report = rflint.analyze(small(), input_size=size)
    assert report.input_size == (32, 32)
    assert report.i_min == (5, 5)  # hand-derived: 1 + 2 + 2


def test_a_path_like_target_is_a_target(tmp_path):
    (tmp_path / "net.py").write_text("from torch import nn\n\ndef build_model():\n    return nn.Conv2d(3, 3, 3)\n")
    report = rflint.analyze(tmp_path / "net.py", input_size=16)
    assert report.i_min == (3, 3)  # hand-derived: one 3x3 convolution
