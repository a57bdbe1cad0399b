"""``rflint diff``'s three views of a :class:`~rflint.diff.compare.Diff`: ``full`` (terminal),
``markdown`` (a pull-request comment or ``$GITHUB_STEP_SUMMARY``) and ``json``
(``diff_schema.json``). Pure: a diff in, text out.

The human views lead each model with one sentence (``I_min 139 -> 203 at 32 px: no longer
refined; 1 new unproductive layer: layer4.2.conv2``), then a before / after / delta table, the
changed findings, the layers added, removed and renamed, and the layers whose field changed,
largest first. Neighbouring rows with the same change (a conv and its norm and activation)
are folded into one ``first (+n)`` row, and at most ``max_layers`` rows are
shown (0: all); ``json`` always lists every layer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from rich.table import Table
from rich.text import Text

from rflint.rf.display import display
from rflint.diff.compare import Change, Diff, FindingRef, LayerChange, LayerRef, ModelDiff, Revision, Status, Values
from rflint.ir import Severity
from rflint.report.common import RenderContext, axes_text, render_rich
from rflint.project.rule_docs import rule_url

SCHEMA_VERSION = 1
ROWS = (
    ("input_size", "input size"),
    ("i_min", "I_min"),
    ("i_min_unproductive", "I_min (no unproductive layer)"),
    ("i_max", "I_max"),
    ("halo_before", "tiling halo before"),
    ("halo_after", "tiling halo after"),
)
#: rows the human tables show only when they changed (a classifier's halo is the whole input)
WHEN_CHANGED = frozenset({"halo_before", "halo_after"})


def shown_rows(m: ModelDiff) -> list[tuple[str, str]]:
    """The rows of a model's before / after table."""
    return [(key, label) for key, label in ROWS if key not in WHEN_CHANGED or getattr(m, key).changed]
STYLES = {Severity.ERROR: "bold red", Severity.WARN: "yellow", Severity.INFO: "cyan"}


# ---------------------------------------------------------------------------------------------
# numbers


#: a field size for people and JSON: an int where exact, a float after upsampling, None for global
number = display


def values_text(values: Values | None) -> str:
    return "-" if values is None else axes_text([number(x) for x in values])


def delta_text(change: Change) -> str:
    """``+64`` (per axis ``+64x+32``); empty when nothing changed or a side is missing."""
    delta = change.delta
    if not change.changed or delta is None:
        return ""
    shown = []
    for d in delta:
        if math.isinf(d):
            shown.append("+inf" if d > 0 else "-inf")
        else:
            n = number(d)
            shown.append(f"+{n}" if d > 0 else str(n))
    return shown[0] if len(set(shown)) == 1 else "x".join(shown)


def change_text(change: Change, arrow: str = "->") -> str:
    """``139 -> 203 (+64)``, or the one value when it did not change."""
    if not change.changed:
        return values_text(change.after)
    delta = delta_text(change)
    return f"{values_text(change.before)} {arrow} {values_text(change.after)}" + (f" ({delta})" if delta else "")


def _yes_no(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# ---------------------------------------------------------------------------------------------
# sentences shared by the human views


def headline(m: ModelDiff, arrow: str = "->") -> str:
    """One sentence: what the change did to this model."""
    if m.status is Status.FAILED:
        return "could not be analysed at " + " and ".join(dict.fromkeys(f.side for f in m.failures))
    if m.status is Status.STILL_FAILING:
        return "fails at both revisions (pre-existing, not compared)"
    size = values_text(m.input_size.after if m.input_size.after is not None else m.input_size.before)
    if m.status is Status.ADDED:
        return f"added (I_min {values_text(m.i_min.after)} at {size} px)"
    if m.status is Status.REMOVED:
        return "removed"
    if m.status is Status.UNCHANGED:
        return "no change"
    parts = []
    if m.input_size.changed:
        parts.append(f"input size {change_text(m.input_size, arrow)}")
    if m.i_min.changed:
        parts.append(f"I_min {values_text(m.i_min.before)} {arrow} {values_text(m.i_min.after)} at {size} px")
    elif m.i_max.changed:
        parts.append(f"I_max {values_text(m.i_max.before)} {arrow} {values_text(m.i_max.after)}")
    before, after = m.refined
    if before is True and after is False:
        parts.append("no longer refined")
    elif before is False and after is True:
        parts.append("now refined")
    new = [f.layer for f in m.findings_added if f.code == "RF101"]
    fixed = [f.layer for f in m.findings_removed if f.code == "RF101"]
    if new:
        parts.append(f"{_plural(len(new), 'new unproductive layer')}: {', '.join(new[:3])}{', ...' if len(new) > 3 else ''}")
    if fixed:
        parts.append(f"{_plural(len(fixed), 'unproductive layer')} fixed")
    if not parts:
        parts.append(_counts_sentence(m))
    return "; ".join(parts)


def _counts_sentence(m: ModelDiff) -> str:
    bits = [
        f"{_plural(len(items), noun)} {verb}"
        for items, noun, verb in (
            (m.findings_added, "finding", "added"),
            (m.findings_removed, "finding", "removed"),
            (m.layers_added, "layer", "added"),
            (m.layers_removed, "layer", "removed"),
            (m.layers_renamed, "layer", "renamed"),
            (m.layers_changed, "field", "changed"),
        )
        if items
    ]
    return ", ".join(bits) or "changed"


def summary(diff: Diff) -> str:
    """The last line: new errors, models changed, or "No change"."""
    counts = {status: sum(1 for m in diff.models if m.status is status) for status in Status}
    if diff.failures and not diff.models:
        return f"Could not compare the revisions ({_plural(len(diff.failures), 'error')})."
    if not diff.changed and not counts[Status.STILL_FAILING]:
        return f"No change: {_plural(len(diff.models), 'model')} compared, same receptive fields, layers and findings."
    parts = []
    if diff.new_errors:
        parts.append(f"{_plural(diff.new_errors, 'new error-level finding')}")
    for status in (Status.CHANGED, Status.ADDED, Status.REMOVED, Status.FAILED, Status.STILL_FAILING, Status.UNCHANGED):
        if counts[status]:
            parts.append(f"{_plural(counts[status], 'model')} {status.value}")
    if diff.failures:
        parts.append(_plural(len(diff.failures), "error"))
    return ", ".join(parts) + "."


def grouped(changes: Sequence[LayerChange]) -> list[tuple[LayerChange, int]]:
    """Neighbouring rows with the same change folded: (first, count)."""
    groups: list[tuple[LayerChange, int]] = []
    for change in changes:
        key = (change.r_min, change.r_max, change.jump)
        if groups and (groups[-1][0].r_min, groups[-1][0].r_max, groups[-1][0].jump) == key:
            groups[-1] = (groups[-1][0], groups[-1][1] + 1)
        else:
            groups.append((change, 1))
    return groups


def _layer_label(first: LayerChange, n: int, code: str = "") -> str:
    """The first layer of a folded group, and how many follow it with the same change."""
    return f"{code}{first.layer}{code}" + (f" (+{n - 1})" if n > 1 else "")


def _layer_list(layers: Sequence[LayerRef], other: Sequence[LayerRef], code: str = "") -> str:
    """Qualnames, with the op where the same name is on the other list (a replaced layer)."""
    names = {x.qualname for x in other}
    return ", ".join(f"{code}{x.qualname}{code}" + (f" ({x.op})" if x.qualname in names else "") for x in layers)


def _shown(groups: list[Any], max_layers: int) -> tuple[list[Any], int]:
    if max_layers <= 0 or len(groups) <= max_layers:
        return groups, 0
    return groups[:max_layers], sum(g[1] for g in groups[max_layers:])


def _where(f: FindingRef) -> str:
    return f"{f.file}:{f.line}" if f.file and f.line else (f.file or "")


# ---------------------------------------------------------------------------------------------
# full


def render_full(diff: Diff, ctx: RenderContext, max_layers: int = 10) -> str:
    """The terminal view (coloured when ``ctx.color``)."""
    parts: list[Any] = [Text(f"rflint diff {diff.base.text} -> {diff.head.text}", style="bold"), Text("")]
    for failure in diff.failures:
        parts.append(Text(f"error: {failure.side}: {failure.message}", style="bold red"))
        if failure.hint:
            parts.append(Text(f"  hint: {failure.hint}"))
    for m in diff.models:
        if m.status is Status.UNCHANGED:
            continue
        parts += _full_model(m, diff, max_layers)
    unchanged = [m.model for m in diff.models if m.status is Status.UNCHANGED]
    if unchanged and diff.changed:
        parts.append(f"unchanged: {', '.join(unchanged)}")
        parts.append("")
    parts.append(Text(summary(diff), style="bold"))
    parts = [Text(p) if isinstance(p, str) else p for p in parts]  # plain text: "[...]" is no markup
    # long lines stay whole: a terminal wraps them, a CI log keeps them greppable
    return "\n".join(line.rstrip() for line in render_rich(parts, ctx, soft_wrap=True).splitlines()) + "\n"


def _full_model(m: ModelDiff, diff: Diff, max_layers: int) -> list[Any]:
    style = "bold red" if m.new_errors or m.status is Status.FAILED else "bold"
    out: list[Any] = [Text.assemble((m.model, "bold"), ": ", (headline(m), style))]
    for failure in m.failures:
        out.append(f"  {failure.side}: {failure.message}" + (f" (hint: {failure.hint})" if failure.hint else ""))
    table = Table(box=None, padding=(0, 2, 0, 2), show_edge=False)
    for name, justify in (("", "left"), ("before", "right"), ("after", "right"), ("delta", "right")):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for key, label in shown_rows(m):
        change: Change = getattr(m, key)
        table.add_row(*map(Text, (label, values_text(change.before), values_text(change.after), delta_text(change))))
    table.add_row(*map(Text, ("refined", _yes_no(m.refined[0]), _yes_no(m.refined[1]), "")))
    out.append(table)
    for sign, items, word in (("+", m.findings_added, "added"), ("-", m.findings_removed, "removed")):
        if items:
            out.append(f"  findings {word} ({len(items)}):")
            for f in items:
                text = Text(f"    {sign} ")
                text.append(f"{f.severity.value} {f.code}", style=STYLES.get(f.severity, ""))
                text.append(f" {f.layer or m.model}: {f.message}")
                if _where(f):
                    text.append(f"  ({_where(f)})", style="dim")
                out.append(text)
    for items, other, word in ((m.layers_added, m.layers_removed, "added"), (m.layers_removed, m.layers_added, "removed")):
        if items:
            out.append(f"  layers {word} ({len(items)}): {_layer_list(items, other)}")
    if m.layers_renamed:
        out.append(f"  layers renamed ({len(m.layers_renamed)}): " + ", ".join(f"{r.before} -> {r.after}" for r in m.layers_renamed))
    if m.layers_changed:
        groups, hidden = _shown(grouped(m.layers_changed), max_layers)
        out.append(f"  receptive field changed in {_plural(len(m.layers_changed), 'layer')}, largest first ((+n): n more layers after it, same change):")
        layers = Table(box=None, padding=(0, 2, 0, 4), show_edge=False)
        for name in ("layer", "op", "r_min", "r_max", "jump"):
            layers.add_column(name, overflow="fold")  # a narrow terminal wraps a cell, never cuts it
        for first, n in groups:
            cells = (_layer_label(first, n), first.op, change_text(first.r_min), change_text(first.r_max), change_text(first.jump))
            layers.add_row(*map(Text, cells))
        out.append(layers)
        if hidden:
            out.append(f"    ... and {_plural(hidden, 'more layer')} (--max-layers 0 shows all, --output-format json lists them)")
    out.append("")
    return out


# ---------------------------------------------------------------------------------------------
# markdown


def _cell(text: str) -> str:
    from rflint.report.escape import text as visible

    return visible(text.replace("\n", " ")).replace("|", "\\|")


def render_markdown(diff: Diff, ctx: RenderContext, max_layers: int = 10) -> str:
    """One section per changed model: a before / after / delta table and the changed findings."""
    out = [f"## rflint diff: {_md_revision(diff.base)} → {_md_revision(diff.head)}", "", f"**{summary(diff)}**", ""]
    for failure in diff.failures:
        out.append(f"- :x: **{failure.side}** could not be analysed: {_cell(failure.message)}" + (f" (hint: {_cell(failure.hint)})" if failure.hint else ""))
    if diff.failures:
        out.append("")
    for m in diff.models:
        if m.status is not Status.UNCHANGED:
            out += _markdown_model(m, max_layers)
    unchanged = [f"`{_cell(m.model)}`" for m in diff.models if m.status is Status.UNCHANGED]
    if unchanged and diff.changed:
        out += [f"Unchanged: {', '.join(unchanged)}", ""]
    for warning in diff.warnings:
        out.append(f"> warning: {_cell(warning)}")
    return "\n".join(out).rstrip("\n") + "\n"


def _md_revision(revision: Revision) -> str:
    """```origin/main` (1a2b3c4)``; the working tree as plain words."""
    if revision.commit is None:
        return _cell(revision.label)
    return f"`{_cell(revision.label)}`" + ("" if revision.commit.startswith(revision.label) else f" ({revision.commit[:7]})")


def _markdown_model(m: ModelDiff, max_layers: int) -> list[str]:
    out = [f"### `{_cell(m.model)}`: {_cell(headline(m, '→'))}", ""]
    for failure in m.failures:
        out.append(f"- **{failure.side}**: {_cell(failure.message)}" + (f" (hint: {_cell(failure.hint)})" if failure.hint else ""))
    if m.failures:
        out.append("")
    out += ["| | before | after | delta |", "| --- | ---: | ---: | ---: |"]
    for key, label in shown_rows(m):
        change: Change = getattr(m, key)
        out.append(f"| {label} | {values_text(change.before)} | {values_text(change.after)} | {delta_text(change)} |")
    out += [f"| refined | {_yes_no(m.refined[0])} | {_yes_no(m.refined[1])} | |", ""]
    for items, word in ((m.findings_added, "added"), (m.findings_removed, "removed")):
        if items:
            out += [f"**Findings {word}**", ""]
            for f in items:
                where = f" (`{_cell(_where(f))}`)" if _where(f) else ""
                layer = f" `{_cell(f.layer)}`" if f.layer else ""
                out.append(f"- **{f.severity.value}** [{f.code}]({rule_url(f.code)}){layer}{where}: {_cell(f.message)}")
            out.append("")
    layer_lines = []
    for items, other, word in ((m.layers_added, m.layers_removed, "added"), (m.layers_removed, m.layers_added, "removed")):
        if items:
            layer_lines.append(f"- {word} ({len(items)}): " + _cell(_layer_list(items, other, "`")))
    if m.layers_renamed:
        layer_lines.append(f"- renamed ({len(m.layers_renamed)}): " + ", ".join(f"`{_cell(r.before)}` → `{_cell(r.after)}`" for r in m.layers_renamed))
    if layer_lines:
        out += ["**Layers**", "", *layer_lines, ""]
    if m.layers_changed:
        groups, hidden = _shown(grouped(m.layers_changed), max_layers)
        out += [
            f"<details><summary>Receptive field changed in {_plural(len(m.layers_changed), 'layer')}, largest first</summary>",
            "",
            "(+n): n more layers after it have the same change.",
            "",
            "| layer | op | r_min | r_max | jump |",
            "| --- | --- | ---: | ---: | ---: |",
        ]
        for first, n in groups:
            cells = [_cell(_layer_label(first, n, "`")), _cell(first.op), *(change_text(c, "→") for c in (first.r_min, first.r_max, first.jump))]
            out.append("| " + " | ".join(cells) + " |")
        if hidden:
            out += ["", f"... and {_plural(hidden, 'more layer')} (`--max-layers 0` shows all)."]
        out += ["", "</details>", ""]
    return out


# ---------------------------------------------------------------------------------------------
# json


def render_json(diff: Diff) -> str:
    """The whole diff (every changed layer) as ``diff_schema.json`` describes it."""
    data = {
        "schema_version": SCHEMA_VERSION,
        "base": {"revision": diff.base.label, "commit": diff.base.commit},
        "head": {"revision": diff.head.label, "commit": diff.head.commit},
        "changed": diff.changed,
        "new_errors": diff.new_errors,
        "failures": [{"side": f.side, "message": f.message, "hint": f.hint} for f in diff.failures],
        "warnings": list(diff.warnings),
        "models": [_json_model(m) for m in diff.models],
    }
    return json.dumps(data, indent=2) + "\n"


def _json_change(change: Change) -> dict[str, Any]:
    def listed(values: Values | None) -> list[int | float | None] | None:
        return None if values is None else [number(x) for x in values]

    delta = change.delta
    return {
        "before": listed(change.before),
        "after": listed(change.after),
        "delta": None if delta is None else [None if math.isinf(d) else number(d) for d in delta],
    }


def _json_finding(f: FindingRef) -> dict[str, Any]:
    return {
        "code": f.code,
        "name": f.name,
        "severity": f.severity.value,
        "layer": f.layer,
        "message": f.message,
        "filename": f.file,
        "line": f.line,
        "url": rule_url(f.code),
    }


def _json_model(m: ModelDiff) -> dict[str, Any]:
    return {
        "model": m.model,
        "status": m.status.value,
        "summary": headline(m),
        "failures": [{"side": f.side, "message": f.message, "hint": f.hint} for f in m.failures],
        **{key: _json_change(getattr(m, key)) for key, _ in ROWS},
        "refined": {"before": m.refined[0], "after": m.refined[1]},
        "findings": {"added": [_json_finding(f) for f in m.findings_added], "removed": [_json_finding(f) for f in m.findings_removed]},
        "layers": {
            "added": [{"layer": x.qualname, "op": x.op} for x in m.layers_added],
            "removed": [{"layer": x.qualname, "op": x.op} for x in m.layers_removed],
            "renamed": [{"before": r.before, "after": r.after, "op": r.op} for r in m.layers_renamed],
            "changed": [
                {"layer": c.layer, "op": c.op, "r_min": _json_change(c.r_min), "r_max": _json_change(c.r_max), "jump": _json_change(c.jump)}
                for c in m.layers_changed
            ],
        },
    }
