"""A 1-D model's fields in its own units: samples and milliseconds (``--sample-rate HZ``).

wav2vec 2.0's feature encoder (kernels 10,3,3,3,3,2,2, strides 5,2,2,2,2,2,2) has a field of 400
samples and a jump of 320: 25 ms and 20 ms at 16 kHz, as its paper states. Only 1-D models get
these columns: for an image the axis is not time.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from rflint.ir import INF, LayerRF, Number


def ms(samples: Number, rate: float) -> float | None:
    """``samples`` at ``rate`` Hz, in milliseconds (3 decimals); None for an infinite field."""
    if samples == INF:
        return None
    return round(float(Fraction(samples)) * 1000.0 / rate, 3)


def in_time(lrf: LayerRF, rate: float | None) -> dict[str, Any]:
    """The time columns of one 1-D layer's row (nothing without a sample rate or for 2-D/3-D)."""
    if rate is None or len(lrf.axes) != 1:
        return {}
    (axis,) = lrf.axes
    return {
        "r_min_ms": ms(axis.r_min, rate),
        "r_max_ms": ms(axis.r_max, rate),
        "jump_ms": ms(axis.j_max, rate),
        "lookahead_ms": ms(lrf.lookahead[0], rate) if lrf.lookahead else None,
        "history_ms": ms(lrf.history[0], rate) if lrf.history else None,
    }


def _num(x: Any) -> str:
    return "inf" if x is None else (f"{x:g}" if isinstance(x, float) else str(x))


def time_lines(report: Any, rows: Sequence[dict[str, Any]]) -> list[str]:
    """The lines under ``inspect``'s table for a 1-D model with a sample rate: each shown
    layer's field, jump, lookahead and history in samples and ms."""
    rate = report.spec.sample_rate
    if rate is None or len(report.analysis.graph.input_size) != 1:
        return []
    out = [f"at {rate:g} Hz (samples and milliseconds):"]
    for row in rows:
        if "r_max_ms" not in row:
            continue
        out.append(
            f"  {row['layer']}: field {_num(row['r_max'][0])} = {_num(row['r_max_ms'])} ms, "
            f"jump {_num(row['jump'][0])} = {_num(row['jump_ms'])} ms, "
            f"lookahead {_num(row['lookahead'][0])} = {_num(row['lookahead_ms'])} ms, "
            f"history {_num(row['history'][0])} = {_num(row['history_ms'])} ms"
        )
    return out
