"""``rflint halo``: the tiling halo of each model, one line per axis (or JSON).

What the numbers mean and how they are derived is :mod:`rflint.rf.tiling`'s docstring; the rows
are :func:`rflint.views.inspection.halo_rows`, so ``inspect`` and ``halo`` never disagree.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from rflint.report.common import axes_text
from rflint.views.inspection import SCHEMA_VERSION, halo_rows, output_rows
from rflint.results import ModelReport


def axis_line(h: dict) -> str:
    """``H: before 3 after 2 grid 4 (tile origins and sizes multiples of 4; halo 4/4)``."""
    if h["before"] is None or h["after"] is None:
        return f"{h['axis']}: whole axis (a global path reaches the output: tiles cannot be exact)"
    line = f"{h['axis']}: before {h['before']} after {h['after']} grid {h['granularity']}"
    if h["granularity"] != 1:
        line += f" (cut tiles on multiples of {h['granularity']}: halo {h['before_aligned']} before, {h['after_aligned']} after)"
    if not h["exact"]:
        line += " (at least: an op of unknown effect lies on the way, see RF001)"
    return line


def render_text(reports: Sequence[ModelReport]) -> str:
    lines = []
    for r in reports:
        lines.append(f"{r.spec.display_name} @ {axes_text(r.analysis.graph.input_size)}")
        lines.extend(axis_line(h) for h in halo_rows(r))
    return "\n".join(lines) + "\n"


def render_json(reports: Sequence[ModelReport]) -> str:
    payloads = [
        {
            "schema_version": SCHEMA_VERSION,
            "model": r.spec.display_name,
            "input_size": list(r.analysis.graph.input_size),
            "halo": halo_rows(r),
            "outputs": output_rows(r),
        }
        for r in reports
    ]
    return json.dumps(payloads[0] if len(payloads) == 1 else payloads, indent=2) + "\n"
