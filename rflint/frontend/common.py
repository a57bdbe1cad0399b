"""What the frontends (torch.fx, torch.export, ONNX) share once a node is lowered. Pure Python."""

from __future__ import annotations

from typing import Any, Protocol

from rflint.ops import layout as L
from rflint.ir import Layer, Source


class LoweredNode(Protocol):
    """A frontend's lowering of one node: the receptive-field fields of its Layer."""

    kind: Any
    kernel: tuple[int, ...]
    stride: tuple
    dilation: tuple[int, ...]
    padding: tuple[int, ...]
    global_axes: tuple[bool, ...]
    taps: Any
    side_global: tuple[bool, ...]
    in_channels: int | None
    out_channels: int | None
    groups: int
    note: str


def make_layer(
    low: LoweredNode,
    *,
    name: str,
    qualname: str,
    op: str,
    inputs: tuple[str, ...],
    out_layout: L.Layout | None,
    ndim: int,
    module_type: str = "",
    source: Source | None = None,
) -> Layer:
    """The IR layer for a lowered node; the feature-map size comes from its output layout."""
    return Layer(
        name=name,
        qualname=qualname,
        op=op,
        kind=low.kind,
        inputs=inputs,
        kernel=low.kernel,
        stride=low.stride,
        dilation=low.dilation,
        padding=low.padding,
        global_axes=low.global_axes,
        taps=low.taps,
        side_global=low.side_global,
        out_size=L.axis_sizes(out_layout, ndim) if out_layout is not None else None,
        in_channels=low.in_channels,
        out_channels=low.out_channels,
        groups=low.groups,
        module_type=module_type,
        source=source,
        note=low.note,
    )


def unique_qualname(qualname: str, used: dict[str, int]) -> str:
    """``layer1.0.add``, then ``layer1.0.add_1``, ... for repeated names in one graph."""
    if qualname in used:
        used[qualname] += 1
        return f"{qualname}_{used[qualname]}"
    used[qualname] = 0
    return qualname


#: the most elements rflint builds an input of: torch sizes a tensor's storage in bytes with an
#: int64 (8-byte elements at most), and ONNX stores dims as int64
MAX_INPUT_ELEMENTS = 2**60


def check_input_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` if a tensor of that shape can exist at all.

    Raises:
        ShapeError: a non-positive size, or more elements than an int64 can address.
    """
    from math import prod

    from rflint.errors import ShapeError

    if any(s <= 0 for s in shape):
        raise ShapeError(f"input shape {shape} has a non-positive size")
    if prod(shape) > MAX_INPUT_ELEMENTS:
        raise ShapeError(
            f"input shape {'x'.join(map(str, shape))} has {prod(shape):.3g} elements, more than a tensor can hold (2^60)",
            hint="pass a realistic --input-size (receptive fields do not depend on sizes far above them)",
        )
    return shape
