"""Zoo sweep: rflint checks every torchvision classification model (at 224 and 32 px) and a list of
timm models (at their native size). Every model yields a report or fails with a documented,
specific reason; none crashes.

Two kinds of documented outcomes are kept below, each with the reason:

- ``*_FAILS``: the model cannot be checked at that size; rflint raises an :class:`RflintError`
  (exit 2) whose message contains the given text.
- ``*_UNKNOWN_OPS``: the model is checked, but some ops are opaque to rflint (rule RF001). A
  model may not report an unknown op that is not listed for it: a new one is a regression.

Receptive-field numbers are checked elsewhere (tests/oracle/test_torchvision_oracle.py).
"""

from __future__ import annotations

import fnmatch
import warnings

import pytest
import timm  # test extra (pip install -e ".[test]"): a missing one fails here, it is not skipped
import torchvision

from rflint.rf.display import display
from rflint.engine.pipeline import lint
from rflint.spec import ModelSpec
from rflint.errors import RflintError
from rflint.ir import Kind

pytestmark = pytest.mark.slow

TORCHVISION = sorted(torchvision.models.list_models(module=torchvision.models))

#: (model glob, size) -> text of the error. All are genuine: the model does not accept the input.
TORCHVISION_FAILS = {
    # five 3x3 max-pools of stride 2 leave 0x0 at 32 px
    ("alexnet", 32): "Output size is too small",
    # the stem shrinks 32 px to 1x1 before a 3x3 conv without padding
    ("inception_v3", 32): "Kernel size can't be greater than actual input size",
    # 32 px / 32 = 1, not a multiple of the 7x7 partition window
    ("maxvit_t", 32): "is invalid for input of size",
    # torchvision's ViT asserts its fixed image size
    ("vit_*", 32): "Wrong image height! Expected 224",
}

#: model glob -> ops rflint reports unknown (RF001) in it, at every size. (torchvision's Swin has
#: rules for its fx-opaque shifted_window_attention and _patch_merging_pad, so none there.)
TORCHVISION_UNKNOWN_OPS: dict[str, set[str]] = {
    # (MaxViT's window and grid partition reshapes are followed: the batch dim holds the window
    # index, the rows the in-window offset; tests/oracle/test_shifted_windows.py)
}

#: timm models: a spread of CNN, ViT, hybrid and MLP families, small variants to save time.
TIMM = [
    "resnet50", "efficientnet_b0", "convnext_atto", "vit_tiny_patch16_224", "deit_tiny_patch16_224",
    "swin_tiny_patch4_window7_224", "beit_base_patch16_224", "levit_128s", "coat_lite_tiny",
    "crossvit_tiny_240", "maxvit_tiny_tf_224", "coatnet_0_rw_224", "poolformer_s12", "mixer_s16_224",
    "nfnet_l0", "dla34", "hrnet_w18_small", "eva02_tiny_patch14_224", "efficientvit_b0", "fastvit_t8",
    "hiera_tiny_224", "mobilenetv4_conv_small", "ghostnetv2_100", "regnety_002", "rexnet_100",
    "mobilevit_xxs", "tiny_vit_5m_224", "edgenext_xx_small", "pvt_v2_b0", "efficientformer_l1",
    "repvgg_a0", "cspdarknet53",
]  # fmt: skip

TIMM_FAILS: dict[str, str] = {}

#: models that torch.fx cannot handle and torch.export can (rflint falls back to it)
TIMM_EXPORTED = {
    # fx traces through timm's autowrapped get_resized_mask, and the recorded graph then calls .view
    # on the None it returns: the fx graph fails its meta run, so rflint falls back to export
    "hiera_tiny_224",
}

# Swin's, MaxViT's and Hiera's window partitions and reverses (timm's autowrapped
# window_reverse / grid_reverse included), CoaT's class-token slot (a constant pad of the token
# dim) are followed, so they have no unknown op (tests/oracle/test_shifted_windows.py).
TIMM_UNKNOWN_OPS = {
    # timm.layers._fx registers these as no-trace (leaf) modules / autowrapped functions
    "crossvit_*": {"timm.models.crossvit.scale_image"},
    "nfnet_*": {"NormFreeBlock"},
    "efficientvit_*": {"LiteMLA"},
    "mobilevit_*": {"MobileVitBlock"},
    "tiny_vit_*": {"TinyVitBlock"},
}


def _lookup(table: dict, name: str, size: int | None = None):
    for key, value in table.items():
        pattern, key_size = key if isinstance(key, tuple) else (key, None)
        if fnmatch.fnmatchcase(name, pattern) and (key_size is None or key_size == size):
            return value
    return None


def _check(target: str, name: str, size: int, fails: dict, unknown_ops: dict) -> None:
    reason = _lookup(fails, name, size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if reason is not None:
            with pytest.raises(RflintError) as info:
                lint(ModelSpec(target, input_size=(size,)))
            assert reason in str(info.value), str(info.value)
            return
        report = lint(ModelSpec(target, input_size=(size,)))
    analysis = report.analysis
    assert analysis.graph.tracer == ("export" if name in TIMM_EXPORTED and target.startswith("timm:") else "fx")
    assert analysis.graph.input_size == (size, size)
    assert any(lrf.layer.grows_field for lrf in analysis.layers), "no layer grows the receptive field"
    assert all(display(x) is not None for x in analysis.i_min)
    unknown = {lrf.layer.op for lrf in analysis.layers if lrf.layer.kind is Kind.UNKNOWN}
    undocumented = unknown - (_lookup(unknown_ops, name) or set())
    assert not undocumented, f"{target} @ {size}: undocumented unknown ops {sorted(undocumented)}"
    assert set(report.timings) >= {"load", "trace", "propagate", "rules"}


def test_the_sweep_covers_the_whole_torchvision_zoo_and_25_timm_models():
    assert len(TORCHVISION) >= 80
    assert len(TIMM) >= 25
    assert all(timm.is_model(name) for name in TIMM)
    # every documented failure names a model that exists
    for pattern, _ in TORCHVISION_FAILS:
        assert fnmatch.filter(TORCHVISION, pattern), pattern
    for name in TIMM_FAILS:
        assert name in TIMM


@pytest.mark.parametrize("size", [224, 32])
@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_model_is_checked_or_fails_with_its_documented_reason(name, size):
    _check(f"torchvision:{name}", name, size, TORCHVISION_FAILS, TORCHVISION_UNKNOWN_OPS)


@pytest.mark.parametrize("name", TIMM)
def test_timm_model_is_checked_or_fails_with_its_documented_reason(name):
    cfg = timm.get_pretrained_cfg(name)
    size = cfg.input_size[-1] if cfg is not None else 224
    _check(f"timm:{name}", name, size, TIMM_FAILS, TIMM_UNKNOWN_OPS)
