"""Tracking which tensor dim carries which spatial axis through reshapes and permutes."""

from __future__ import annotations

from rflint.frontend import layout as L


def test_input_layout_marks_trailing_dims_as_spatial():
    lay = L.initial((1, 3, 32, 24), ndim=2)
    assert [L.axes_of(d) for d in lay] == [frozenset(), frozenset(), {0}, {1}]
    assert L.axis_sizes(lay, 2) == (32, 24)


def test_flatten_merges_spatial_axes_into_one_token_dim():
    lay = L.initial((1, 8, 4, 4), 2)
    tokens = L.reshape(lay, (1, 8, 16))
    assert L.axes_of(tokens[2]) == {0, 1}
    assert L.axes_of(tokens[1]) == frozenset()


def test_unflatten_along_component_boundaries_restores_the_axes():
    lay = L.reshape(L.initial((1, 8, 4, 6), 2), (1, 8, 24))
    back = L.reshape(lay, (1, 8, 4, 6))
    assert [L.spatial_axis(d) for d in back] == [None, None, 0, 1]


def test_cutting_a_spatial_axis_into_windows_is_not_expressible():
    lay = L.initial((1, 8, 16, 16), 2)
    assert L.reshape(lay, (1, 8, 4, 4, 4, 4)) is None


def test_channel_shuffle_reshape_keeps_spatial_axes():
    lay = L.initial((1, 8, 5, 5), 2)
    grouped = L.reshape(lay, (1, 2, 4, 5, 5))
    assert [L.spatial_axis(d) for d in grouped] == [None, None, None, 0, 1]


def test_permute_and_transpose_move_axes():
    lay = L.initial((1, 8, 5, 7), 2)
    last = L.permute(lay, (0, 2, 3, 1))
    assert [L.spatial_axis(d) for d in last] == [None, 0, 1, None]
    assert L.transpose(last, 1, 2)[1] == last[2]


def test_reduction_over_spatial_dims_reports_the_axes():
    lay = L.initial((1, 8, 5, 7), 2)
    out, axes = L.reduce(lay, (2, 3), keepdim=False)
    assert axes == {0, 1} and len(out) == 2
    out, axes = L.reduce(lay, (1,), keepdim=True)
    assert axes == frozenset() and len(out) == 4


def test_broadcast_prefers_the_non_broadcast_dim():
    x = L.initial((1, 8, 5, 5), 2)
    gate = L.resize(x, (1, 8, 1, 1))
    out = L.broadcast([gate, x], (1, 8, 5, 5))
    assert L.axis_sizes(out, 2) == (5, 5)


def test_channel_shuffle_on_a_1x1_map_keeps_the_unit_spatial_axes():
    lay = L.initial((1, 8, 1, 1), 2)
    grouped = L.reshape(lay, (1, 2, 4, 1, 1))
    assert [L.spatial_axis(d) for d in grouped] == [None, None, None, 0, 1]
    back = L.reshape(L.transpose(grouped, 1, 2), (1, 8, 1, 1))
    assert [L.spatial_axis(d) for d in back] == [None, None, 0, 1]


def test_window_partition_keeps_the_axis_on_its_pieces_when_asked():
    lay = L.initial((1, 8, 16, 16), 2)
    windows = L.reshape(lay, (1, 8, 4, 4, 4, 4), cut_axes=True)
    assert [L.axes_of(d) for d in windows] == [frozenset(), frozenset(), {0}, {0}, {1}, {1}]
    merged = L.reshape(L.permute(windows, (0, 1, 2, 3, 4, 5)), (1, 8, 16, 16))
    assert [L.spatial_axis(d) for d in merged] == [None, None, 0, 1]
    assert L.axis_sizes(merged, 2) == (16, 16)


def test_a_class_token_keeps_the_axes_and_slicing_it_off_restores_them():
    tokens = L.reshape(L.initial((1, 8, 4, 4), 2), (1, 8, 16))
    with_cls = L.with_extra_positions(tokens[2], 17)
    assert L.axes_of(with_cls) == {0, 1} and L.spatial_axis(with_cls) is False
    sliced = L.resize((tokens[0], tokens[1], with_cls), (1, 8, 16))  # x[:, :, 1:]
    assert L.reshape(sliced, (1, 8, 4, 4)) is not None
    assert [L.spatial_axis(d) for d in L.reshape(sliced, (1, 8, 4, 4))] == [None, None, 0, 1]
