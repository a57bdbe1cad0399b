"""``rflint suggest``: the refinement advisor's candidates as tables (people) or JSON."""

from __future__ import annotations

import json
from typing import Any

from rich.table import Table
from rich.text import Text

from rflint.advise.advisor import Advice, Candidate, feature_map_term, fmt_number
from rflint.rf.display import display
from rflint.report.common import RenderContext, axes_text, render_rich

SCHEMA_VERSION = 1


def candidate_dict(c: Candidate) -> dict[str, object]:
    """A candidate for JSON output."""
    return {
        "edit": c.edit.text,
        "kind": c.edit.kind,
        "changes": [
            {
                "module": ch.qualname,
                **({"remove": True} if ch.remove else {}),
                **({"kernel": list(ch.kernel), "old_kernel": list(ch.old_kernel)} if ch.kernel is not None else {}),
                **({"stride": list(ch.stride), "old_stride": list(ch.old_stride)} if ch.stride is not None else {}),
                **({"padding": list(ch.padding)} if ch.padding is not None else {}),
                **({"in_channels": ch.in_channels} if ch.in_channels is not None else {}),
            }
            for ch in c.edit.changes
        ],
        "i_min": [display(x) for x in c.i_min],
        "i_max": [display(x) for x in c.i_max],
        "unproductive": c.unproductive,
        "macs": c.macs,
        "macs_ratio": round(c.macs_ratio, 4),
        "params": c.params,
        "params_delta": c.params_delta,
        "verified": c.verified,
        **({"note": c.note} if c.note else {}),
    }


def advice_dict(advice: Advice) -> dict[str, object]:
    """The whole advice for JSON output (``rflint suggest --output-format json``)."""
    base = advice.base
    return {
        "schema_version": SCHEMA_VERSION,
        "model": base.graph.name,
        "input_size": list(advice.input_size),
        "base": {
            "i_min": [display(x) for x in base.i_min],
            "i_min_unproductive": [display(x) for x in base.i_min_unproductive],
            "i_max": [display(x) for x in base.i_max],
            "i_min_feature_map_term": [display(x) for x in feature_map_term(base)],
            "unproductive": advice.base_unproductive,
            "macs": advice.base_macs,
            "params": advice.base_params,
        },
        "refined": advice.already_refined,
        "nothing_to_change": advice.nothing_to_change,
        "performance": [candidate_dict(c) for c in advice.performance],
        "efficiency": [candidate_dict(c) for c in advice.efficiency],
        "candidates_evaluated": advice.evaluated,
        "candidates_invalid": advice.invalid,
        "verification_dropped": advice.dropped,
        "dropped": [{"edit": c.edit.text, "reason": c.note} for c in advice.failures],
        "seconds": {k: round(v, 4) for k, v in advice.timings.items()},
    }


def render_json(advice: Advice) -> str:
    return json.dumps(advice_dict(advice), indent=2) + "\n"


def rows(advice: Advice) -> list[Candidate]:
    """The candidates in the order the table numbers them (``--pick`` counts in this order)."""
    return list(advice.performance) + list(advice.efficiency)


def _parts(advice: Advice) -> list[Any]:
    size = axes_text(list(advice.input_size))
    base = advice.base
    out: list[Any] = [
        Text(
            f"{base.graph.name} @ {size}: I_min {fmt_number(base.i_min)}, I_max {fmt_number(base.i_max)}, "
            f"{advice.base_unproductive} unproductive layer(s), {advice.base_macs / 1e9:.3g} GMACs"
        )
    ]
    if advice.nothing_to_change:
        out.append(Text(f"I_min {fmt_number(base.i_min)} < {size} and no unproductive layer: nothing to change."))
    elif advice.already_refined:
        out.append(Text(f"I_min {fmt_number(base.i_min)} < {size}: already refined."))
    sections = [
        ("performance: I_min below the input size, least extra compute first", advice.performance),
        ("efficiency: fewer unproductive layers, less compute", advice.efficiency),
    ]
    row = 0
    for title, cands in sections:
        if not cands:
            if title.startswith("performance") and not advice.already_refined:
                out.append(Text(f"No single edit brings I_min below {size}."))
            continue
        table = Table(title=title, title_justify="left")
        for col in ("#", "edit", "I_min", "unproductive", "MACs x", "params", "verified"):
            table.add_column(col, overflow="fold")
        for c in cands:
            row += 1
            verified = {True: "[green]yes[/]", False: "[red]no[/]", None: "-"}[c.verified]
            table.add_row(
                str(row),
                Text(c.edit.text),
                f"{fmt_number(base.i_min)} -> {fmt_number(c.i_min)}",
                str(c.unproductive),
                f"{c.macs_ratio:.2f}",
                f"{c.params_delta / 1e6:+.2f}M",
                verified,
            )
        out.append(table)
    if advice.already_refined:
        return out
    verify_note = f", {advice.dropped} dropped by verification" if advice.dropped else ""
    invalid_note = f" ({advice.invalid} more dropped: they break a residual add or concat)" if advice.invalid else ""
    out.append(Text(f"{advice.evaluated} candidate edits analysed on the IR in {advice.seconds:.2f} s{invalid_note}{verify_note}."))
    out.extend(Text(f"dropped: {failed.edit.text}: {failed.note}") for failed in advice.failures)
    return out


def render_table(advice: Advice, ctx: RenderContext) -> str:
    return render_rich(_parts(advice), ctx)
