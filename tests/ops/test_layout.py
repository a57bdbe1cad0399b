"""Tracking which tensor dim carries which spatial axis through reshapes and permutes."""

from __future__ import annotations

from rflint.ops import layout as L
from rflint.ir import Taps


def reshaped(lay, shape):
    out = L.reshape(lay, shape)
    assert out is not None
    return out


def test_input_layout_marks_trailing_dims_as_spatial():
    lay = L.initial((1, 3, 32, 24), ndim=2)
    assert [L.axes_of(d) for d in lay] == [frozenset(), frozenset(), {0}, {1}]
    assert L.axis_sizes(lay, 2) == (32, 24)


def test_flatten_merges_spatial_axes_into_one_token_dim():
    lay = L.initial((1, 8, 4, 4), 2)
    tokens = reshaped(lay, (1, 8, 16)).layout
    assert L.axes_of(tokens[2]) == {0, 1}
    assert L.axes_of(tokens[1]) == frozenset()


def test_unflatten_along_component_boundaries_restores_the_axes():
    lay = reshaped(L.initial((1, 8, 4, 6), 2), (1, 8, 24)).layout
    back = reshaped(lay, (1, 8, 4, 6))
    assert [L.spatial_axis(d) for d in back.layout] == [None, None, 0, 1]
    assert back.taps == {}


def test_cutting_an_axis_into_windows_keeps_both_pieces_and_merging_restores_it():
    lay = L.initial((1, 8, 16, 16), 2)
    windows = reshaped(lay, (1, 8, 4, 4, 4, 4)).layout
    assert [L.axes_of(d) for d in windows] == [frozenset(), frozenset(), {0}, {0}, {1}, {1}]
    # the outer piece moves 4 units per index, the inner one 1
    assert [c.step for d in windows[2:] for c in d] == [4, 1, 4, 1]
    merged = reshaped(windows, (1, 8, 16, 16))
    assert [L.spatial_axis(d) for d in merged.layout] == [None, None, 0, 1]
    assert L.axis_sizes(merged.layout, 2) == (16, 16)


def test_attention_inside_windows_mixes_each_window_only():
    # timm's window_partition: (B, H/4, 4, W/4, 4, C) -> (B*16, 4*4, C): window index into the batch
    lay = L.permute(L.initial((1, 8, 16, 16), 2), (0, 2, 3, 1))  # channels-last
    parts = reshaped(lay, (1, 4, 4, 4, 4, 8)).layout
    tokens = reshaped(L.permute(parts, (0, 1, 3, 2, 4, 5)), (16, 16, 8)).layout
    effects = L.mix(tokens, [1])  # softmax over the 16 tokens of one window
    # [hand] unit o = 4 q + p sees its whole window, units 4 q .. 4 q + 3, whatever its phase p
    block = Taps(4, 4, (0, 0, 0, 0), (3, 3, 3, 3))
    assert effects == {0: block, 1: block}
    # mixing the window index (grid attention) reaches the whole axis
    assert L.mix(parts, [1]) == {0: None}


def test_space_to_depth_by_reshape_collapses_into_a_window_of_the_block():
    # YOLOv5 Focus / TResNet stem / pixel_unshuffle written with view + permute + reshape
    lay = L.initial((1, 3, 8, 8), 2)
    split = reshaped(lay, (1, 3, 4, 2, 4, 2)).layout
    moved = L.permute(split, (0, 1, 3, 5, 2, 4))  # (B, C, 2, 2, H/2, W/2)
    out = reshaped(moved, (1, 12, 4, 4))
    assert out.taps == {0: Taps.window(2, 2), 1: Taps.window(2, 2)}  # each unit holds a 2x2 block
    assert [L.spatial_axis(d) for d in out.layout] == [None, None, 0, 1]
    assert L.axis_sizes(out.layout, 2) == (4, 4)


def test_channels_merged_after_an_axis_read_as_depth_to_space():
    lay = L.initial((1, 12, 4, 4), 2)
    split = reshaped(lay, (1, 3, 2, 2, 4, 4)).layout
    moved = L.permute(split, (0, 1, 4, 2, 5, 3))  # (B, C, H, 2, W, 2)
    out = reshaped(moved, (1, 3, 8, 8)).layout
    assert L.dim_axis(out[2]) == L.AxisRef(0, 1, 2)  # H with 2 channel positions per unit
    assert L.spatial_axis(out[2]) is False  # not a plain grid until a window op reads it


def test_channel_shuffle_reshape_keeps_spatial_axes():
    lay = L.initial((1, 8, 5, 5), 2)
    grouped = reshaped(lay, (1, 2, 4, 5, 5)).layout
    assert [L.spatial_axis(d) for d in grouped] == [None, None, None, 0, 1]


def test_permute_and_transpose_move_axes():
    lay = L.initial((1, 8, 5, 7), 2)
    last = L.permute(lay, (0, 2, 3, 1))
    assert [L.spatial_axis(d) for d in last] == [None, 0, 1, None]
    assert L.transpose(last, 1, 2)[1] == last[2]


def test_reduction_over_spatial_dims_is_global_on_those_axes():
    lay = L.initial((1, 8, 5, 7), 2)
    assert len(L.reduce(lay, (2, 3), keepdim=False)) == 2
    assert L.mix(lay, (2, 3)) == {0: None, 1: None}
    assert len(L.reduce(lay, (1,), keepdim=True)) == 4
    assert L.mix(lay, (1,)) == {}


def test_broadcast_prefers_the_non_broadcast_dim():
    x = L.initial((1, 8, 5, 5), 2)
    gate = L.resize(x, (1, 8, 1, 1))
    out = L.broadcast([gate, x], (1, 8, 5, 5))
    assert L.axis_sizes(out, 2) == (5, 5)


def test_channel_shuffle_on_a_1x1_map_keeps_the_unit_spatial_axes():
    lay = L.initial((1, 8, 1, 1), 2)
    grouped = reshaped(lay, (1, 2, 4, 1, 1)).layout
    assert [L.spatial_axis(d) for d in grouped] == [None, None, None, 0, 1]
    back = reshaped(L.transpose(grouped, 1, 2), (1, 8, 1, 1)).layout
    assert [L.spatial_axis(d) for d in back] == [None, None, 0, 1]


def test_queries_times_keys_mixes_the_keys_dim():
    tokens = reshaped(L.initial((1, 8, 4, 4), 2), (1, 8, 16)).layout
    scores = (tokens[0], tokens[2], tokens[2])  # (B, N_q, N_k): both token dims carry H and W
    out, effects = L.dedupe(scores)
    assert effects == {0: None, 1: None}  # every query sees every key: global
    assert L.axes_of(out[1]) == {0, 1} and L.axes_of(out[2]) == frozenset()


def test_a_class_token_keeps_the_axes_and_slicing_it_off_restores_them():
    tokens = reshaped(L.initial((1, 8, 4, 4), 2), (1, 8, 16)).layout
    with_cls = L.with_extra_positions(tokens[2], 17)
    assert L.axes_of(with_cls) == {0, 1} and L.spatial_axis(with_cls) is False
    sliced = L.resize((tokens[0], tokens[1], with_cls), (1, 8, 16))  # x[:, :, 1:]
    assert [L.spatial_axis(d) for d in reshaped(sliced, (1, 8, 4, 4)).layout] == [None, None, 0, 1]
