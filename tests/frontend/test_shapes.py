"""The arithmetic output shapes of rflint.frontend.shapes equal what torch's own meta kernels
give (the oracle), over sweeps of sizes and options; where torch would raise, the rule answers
None so that torch still raises with its own message."""

from __future__ import annotations

import itertools
import operator

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rflint.frontend import shapes

META = torch.device("meta")


def _meta(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.empty(shape, device=META, dtype=dtype)


def _agree(rule_out, run) -> None:
    """The rule gave an answer, and it is torch's (shape and dtype, per output)."""
    expected = run()
    assert rule_out is not None
    if isinstance(expected, tuple):
        for got, want in zip(rule_out, expected):
            assert (got is None) == (want is None)
            if want is not None:
                assert (tuple(got.shape), got.dtype, got.device) == (tuple(want.shape), want.dtype, want.device)
    else:
        assert (tuple(rule_out.shape), rule_out.dtype, rule_out.device) == (tuple(expected.shape), expected.dtype, expected.device)


def _declines_where_torch_raises(rule_out, run) -> None:
    try:
        run()
    except Exception:
        assert rule_out is None
        return
    _agree(rule_out, run)


def test_conv_shapes_match_the_meta_kernel_over_a_sweep():
    for k, s, p, d, size in itertools.product((1, 2, 3, 4, 7), (1, 2, 3), (0, 1, 3), (1, 2), (1, 5, 8, 13)):
        with torch.device("meta"):
            conv = nn.Conv2d(4, 6, (k, 2), stride=(s, 1), padding=(p, 0), dilation=(d, 1))
        x = _meta(2, 4, size, 9)
        _declines_where_torch_raises(shapes.module_output(conv, (x,), {}), lambda: conv(x))


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_string_padding_and_every_rank_and_unbatched_inputs(padding, rank):
    cls = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[rank]
    with torch.device("meta"):
        conv = cls(3, 5, 4, padding=padding, dilation=2, padding_mode="reflect" if rank < 3 else "zeros")
    for x in (_meta(1, 3, *(11,) * rank), _meta(3, *(10,) * rank)):
        _agree(shapes.module_output(conv, (x,), {}), lambda: conv(x))


def test_max_pool_shapes_match_over_a_sweep_including_ceil_mode():
    for k, s, p, d, ceil, size in itertools.product((1, 2, 3, 5), (1, 2, 3), (0, 1, 2), (1, 2), (False, True), (3, 7, 8, 14)):
        pool = nn.MaxPool2d(k, s, p, d, ceil_mode=ceil)
        x = _meta(1, 2, size, size + 1)
        _declines_where_torch_raises(shapes.module_output(pool, (x,), {}), lambda: pool(x))


def test_avg_pool_shapes_match_over_a_sweep():
    for k, s, p, ceil, size in itertools.product((2, 3), (1, 2, None), (0, 1), (False, True), (4, 7, 9)):
        for pool, x in (
            (nn.AvgPool2d(k, s, p, ceil_mode=ceil), _meta(1, 2, size, size)),
            (nn.AvgPool2d(k, s, p, ceil_mode=ceil, divisor_override=3), _meta(1, 2, size, size)),
            (nn.AvgPool1d(k, s, p, ceil_mode=ceil), _meta(2, size)),
            (nn.AvgPool3d(k, s, p, ceil_mode=ceil), _meta(1, 1, size, 5, size)),
        ):
            _declines_where_torch_raises(shapes.module_output(pool, (x,), {}), lambda: pool(x))


def test_pools_that_return_indices_run_on_the_meta_device():
    assert shapes.module_output(nn.MaxPool2d(2, return_indices=True), (_meta(1, 1, 4, 4),), {}) is None
    assert shapes.module_output(nn.AdaptiveMaxPool2d(2, return_indices=True), (_meta(1, 1, 4, 4),), {}) is None


@pytest.mark.parametrize("out", [1, 3, (2, None), (None, 5), (7, 7)])
def test_adaptive_pools_keep_none_axes(out):
    for pool in (nn.AdaptiveAvgPool2d(out), nn.AdaptiveMaxPool2d(out)):
        x = _meta(2, 3, 9, 10)
        _agree(shapes.module_output(pool, (x,), {}), lambda: pool(x))


@pytest.mark.parametrize("shape", [(5, 8), (2, 7, 8), (1, 3, 4, 8), (8,)])
def test_linear_acts_on_the_last_dim(shape):
    with torch.device("meta"):
        lin = nn.Linear(8, 3)
    x = _meta(*shape)
    _agree(shapes.module_output(lin, (x,), {}), lambda: lin(x))
    assert shapes.module_output(lin, (_meta(2, 7),), {}) is None  # torch raises on the mismatch


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("options", [{}, {"need_weights": False}, {"average_attn_weights": False}])
def test_multihead_attention_output_and_weights(batch_first, options):
    with torch.device("meta"):
        mha = nn.MultiheadAttention(16, 4, batch_first=batch_first).eval()
    q, kv = (_meta(2, 5, 16), _meta(2, 7, 16)) if batch_first else (_meta(5, 2, 16), _meta(7, 2, 16))
    with torch.no_grad():
        _agree(shapes.module_output(mha, (q, kv, kv), options), lambda: mha(q, kv, kv, **options))
        _agree(shapes.module_output(mha, (q[0], kv[0], kv[0]), options), lambda: mha(q[0], kv[0], kv[0], **options))


def test_attention_that_does_not_fit_still_raises():
    with torch.device("meta"):
        mha = nn.MultiheadAttention(16, 4, batch_first=True).eval()
    q = _meta(2, 5, 16)
    assert shapes.module_output(mha, (q, _meta(2, 7, 8), _meta(2, 7, 8)), {}) is None
    assert shapes.module_output(mha, (q, _meta(2, 7, 16), _meta(2, 6, 16)), {}) is None


@pytest.mark.parametrize("op", [operator.add, operator.sub, operator.mul, operator.truediv, torch.add, torch.mul])
@pytest.mark.parametrize("a,b", [((2, 3, 4), (2, 3, 4)), ((2, 3, 4), (3, 1)), ((1, 4), (5, 1)), ((3,), (2, 1, 3)), ((), (2, 2))])
def test_broadcasting_arithmetic(op, a, b):
    x, y = _meta(*a), _meta(*b)
    _agree(shapes.function_output(op, (x, y), {}), lambda: op(x, y))
    _agree(shapes.function_output(op, (x, 2.0), {}), lambda: op(x, 2.0))
    _agree(shapes.function_output(op, (3, y), {}), lambda: op(3, y))


def test_arithmetic_that_promotes_or_cannot_broadcast_runs_on_the_meta_device():
    assert shapes.function_output(operator.add, (_meta(2, 3), _meta(2, 3, dtype=torch.float16)), {}) is None
    assert shapes.function_output(operator.mul, (_meta(2, 3, dtype=torch.int64), 0.5), {}) is None
    assert shapes.function_output(operator.add, (_meta(2, 3), _meta(4, 3)), {}) is None
    assert shapes.function_output(torch.add, (_meta(2, 3), _meta(2, 3)), {"alpha": 2}) is None


@pytest.mark.parametrize("dim", [0, 1, -1, -3])
def test_cat_sums_the_joined_dim(dim):
    parts = [_meta(2, 3, 4), _meta(2, 3, 4)]
    sizes = list(parts[0].shape)
    sizes[dim] = 5
    parts.append(_meta(*sizes))
    _agree(shapes.function_output(torch.cat, (parts, dim), {}), lambda: torch.cat(parts, dim))
    _agree(shapes.function_output(torch.cat, (parts,), {"dim": dim}), lambda: torch.cat(parts, dim=dim))
    assert shapes.function_output(torch.cat, ([_meta(2, 3), _meta(3, 4)], 0), {}) is None


@pytest.mark.parametrize("fn,extra", [(F.relu, {}), (F.gelu, {"approximate": "tanh"}), (F.layer_norm, None), (torch.sigmoid, {})])
def test_shape_keeping_functions(fn, extra):
    x = _meta(2, 5, 6)
    args = (x, (6,)) if extra is None else (x,)
    kwargs = extra or {}
    _agree(shapes.function_output(fn, args, kwargs), lambda: fn(*args, **kwargs))


def test_layer_norm_that_does_not_fit_still_raises():
    x = _meta(2, 5, 6)
    assert shapes.function_output(F.layer_norm, (x, (5,)), {}) is None
    assert shapes.function_output(F.layer_norm, (x, (6,), _meta(5)), {}) is None
    _agree(shapes.function_output(F.layer_norm, (x, (5, 6), _meta(5, 6), _meta(5, 6)), {}), lambda: F.layer_norm(x, (5, 6), _meta(5, 6), _meta(5, 6)))


def test_cpu_tensors_are_never_short_cut():
    """A model built on the CPU runs for real: its values are the user's."""
    conv = nn.Conv2d(1, 1, 3)
    assert shapes.module_output(conv, (torch.zeros(1, 1, 5, 5),), {}) is None
    assert shapes.function_output(operator.add, (torch.zeros(2), torch.zeros(2)), {}) is None


def test_swin_windowed_attention_keeps_its_input_shape():
    """torchvision's shifted_window_attention (10 ms per call on the meta device) is a leaf
    function of the tracer; its output has the input's shape."""
    import torchvision
    from torchvision.models.swin_transformer import ShiftedWindowAttention

    with torch.device("meta"):
        attn = ShiftedWindowAttention(32, [4, 4], [2, 2], 4)
    x = _meta(1, 8, 12, 32)
    swa = torchvision.models.swin_transformer.shifted_window_attention
    args = (x, attn.qkv.weight, attn.proj.weight, attn.get_relative_position_bias(), attn.window_size, attn.num_heads)
    _agree(shapes.function_output(swa, args, {"shift_size": attn.shift_size}), lambda: swa(*args, shift_size=attn.shift_size))


def test_subclasses_that_override_forward_run_on_the_meta_device():
    """timm's Conv2dSame pads by the input's size before its conv: the parent class's
    arithmetic would give the wrong size (this broke maxvit_tiny_tf_224's window partition)."""

    class PaddedConv(nn.Conv2d):
        def forward(self, x):
            return super().forward(F.pad(x, (1, 1, 1, 1)))

    with torch.device("meta"):
        conv = PaddedConv(2, 2, 3)
    x = _meta(1, 2, 8, 8)
    assert shapes.module_output(conv, (x,), {}) is None
    assert tuple(conv(x).shape) == (1, 2, 8, 8)

    class Plain(nn.Conv2d):
        pass

    with torch.device("meta"):
        plain = Plain(2, 2, 3)
    _agree(shapes.module_output(plain, (x,), {}), lambda: plain(x))


def test_timm_same_padding_models_trace_with_the_right_sizes():
    """The sizes of a model with Conv2dSame / MaxPool2dSame leaves equal the meta kernels'."""
    import timm

    from rflint.frontend import fx as rfx

    with torch.device("meta"):
        model = timm.create_model("tf_efficientnet_b0", pretrained=False).eval()
    gm = rfx.trace(model)
    with_rules = {n.name: out for n, (_, _, out) in rfx.run(gm, (1, 3, 225, 225)).items()}
    module_output, function_output = shapes.module_output, shapes.function_output
    try:
        shapes.module_output = shapes.function_output = lambda *a: None
        without = {n.name: out for n, (_, _, out) in rfx.run(gm, (1, 3, 225, 225)).items()}
    finally:
        shapes.module_output, shapes.function_output = module_output, function_output
    assert with_rules == without
