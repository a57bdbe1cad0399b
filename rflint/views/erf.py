"""``rflint erf``: the measured effective receptive field beside the theoretical one."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


def _axes(values: Sequence[Any], fmt: str = "{}") -> str:
    shown = ["inf" if v is None else fmt.format(v) for v in values]
    return shown[0] if len(set(shown)) == 1 else " x ".join(shown)


def render_text(result: Any) -> str:
    """The numbers of one :class:`rflint.engine.erf.ErfResult`, one per line."""
    size = "x".join(str(s) for s in result.input_shape[2:])
    lines = [
        f"{result.model} @ {size}: {result.layer} (output {'x'.join(map(str, result.output_size))}, centre unit {tuple(result.centre)})",
        f"  ERF size (centred square with 95 % of |grad|): {result.side} px",
        f"  ERF Gaussian sigma per axis:                    {_axes(result.sigma, '{:.1f}')} px",
        f"  theoretical r_max (rflint):                     {_axes(result.r_max)}   (r_min {_axes(result.r_min)})",
        f"  ratio ERF size / r_max:                         {_axes(result.ratio, '{:.2f}')}",
        f"  ratio sigma / r_max:                            {_axes(result.sigma_ratio, '{:.3f}')}",
        f"  {result.samples} samples ({result.inputs}) on {result.device}; peak at {tuple(result.peak)}, "
        f"centroid ({', '.join(f'{c:.1f}' for c in result.centroid)})",
    ]
    lines += [f"  note: {n}" for n in result.notes]
    return "\n".join(lines) + "\n"


def render_json(result: Any) -> str:
    return json.dumps(result.to_dict(), indent=1) + "\n"
