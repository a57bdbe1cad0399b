"""What every renderer shares: the render context and small pure helpers."""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from rflint._version import __version__
from rflint.rf.display import fmt_axes
from rflint.checks import ALL_RULES, Rule
from rflint.ir import Finding, Severity
from rflint.results import BaselineOutcome, ModelReport
from rflint.project.rule_docs import rule_url


@dataclass(frozen=True)
class RenderContext:
    """Everything a renderer needs besides the findings; filled by the CLI.

    Attributes:
        root: absolute directory that paths are shown relative to (the repository root);
            "" shows paths as the findings hold them.
        color: emit ANSI colour (``full`` only).
        width: line width for ``full``.
        rules: the rule registry (SARIF ``tool.driver.rules``, markdown columns).
        rule_docs: rule code -> Markdown page (SARIF ``fullDescription``).
        snippets: (file, line) -> source line text (``full`` shows it under the location).
        failed: how many models could not be checked (the summary must not claim success).
        baseline: what ``--baseline``/``--write-baseline`` did (the summary says it).
        baseline_path: the baseline file that was read (``--baseline``).
        facts: model name -> what was seen of it beyond the findings (:func:`model_facts`),
            filled by :func:`rflint.report.render` from the reports.
    """

    root: str = ""
    color: bool = False
    width: int = 100
    version: str = __version__
    rules: tuple[Rule, ...] = ALL_RULES
    rule_docs: Mapping[str, str] = field(default_factory=dict)
    snippets: Mapping[tuple[str, int], str] = field(default_factory=dict)
    failed: int = 0
    baseline: BaselineOutcome | None = None
    baseline_path: str = ""
    facts: Mapping[str, ModelFacts] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelFacts:
    """What every format says about a model besides its findings: which tracer read it and why
    the fallback was needed, how many layers are lower bounds behind unknown ops, and the
    global ops whose context reaches the output."""

    tracer: str = "fx"
    tracer_reason: str = ""
    unknown_ops: int = 0
    lower_bounds: int = 0
    global_context: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    #: how layers were judged ("classification" or "dense") and who chose ("auto", "config")
    task: str = "classification"
    task_source: str = "config"

    def as_dict(self) -> dict[str, object]:
        return {
            "task": self.task,
            "task_source": self.task_source,
            "tracer": self.tracer,
            "tracer_reason": self.tracer_reason,
            "unknown_ops": self.unknown_ops,
            "lower_bound_layers": self.lower_bounds,
            "global_context": list(self.global_context),
            "notes": list(self.notes),
        }


def model_facts(reports: Sequence[ModelReport]) -> dict[str, ModelFacts]:
    """:class:`ModelFacts` per model name."""
    from rflint.ir import Kind

    out = {}
    for r in reports:
        a = r.analysis
        out[r.spec.display_name] = ModelFacts(
            tracer=a.graph.tracer,
            tracer_reason=r.tracer_reason,
            unknown_ops=sum(1 for lrf in a.layers if lrf.layer.kind is Kind.UNKNOWN),
            lower_bounds=sum(1 for lrf in a.layers if lrf.uncertain and lrf.layer.kind is not Kind.UNKNOWN),
            global_context=a.global_via,
            notes=r.notes,
            task=a.task,
            task_source=a.task_source,
        )
    return out


def task_line(ctx: RenderContext) -> str:
    """Which models were judged per unit (the dense task); nothing when all are classifiers,
    the criterion of Richter et al. that every rule page describes first."""
    dense = [name for name, f in ctx.facts.items() if f.task == "dense"]
    if not dense:
        return ""
    how = "auto: an output keeps spatial axes" if all(ctx.facts[n].task_source == "auto" for n in dense) else "task = dense"
    names = ", ".join(dense[:3]) + (f" and {len(dense) - 3} more" if len(dense) > 3 else "")
    return f"Judged per unit, corners included (dense task, {how}): {names}."


def facts_line(ctx: RenderContext) -> str:
    """What the summary adds when a number is a lower bound: how many layers, behind how many
    unknown ops, and how to declare those ops."""
    unknown = sum(f.unknown_ops for f in ctx.facts.values())
    if not unknown:
        return ""
    bounds = sum(f.lower_bounds for f in ctx.facts.values())
    return (
        f"{plural(bounds, 'layer')} after {plural(unknown, 'unknown op')} {'has' if bounds == 1 else 'have'} "
        "lower-bound fields (declare the ops in [tool.rflint.ops], or run with --strict to fail on them)."
    )


#: the same words everywhere: ``139``, ``139x75``, ``inf``
axes_text = fmt_axes


def string_console(ctx: RenderContext, **options: Any) -> tuple[Any, Any]:
    """A rich console writing into a string buffer (renderers do no I/O): colour only when
    ``ctx.color``, rich's environment lookups off so that the text depends on the arguments
    alone. ``options`` override the console's defaults. Returns ``(console, buffer)``."""
    from io import StringIO

    from rich.console import Console

    buffer = StringIO()
    settings: dict[str, Any] = {
        "force_terminal": ctx.color,
        "no_color": not ctx.color,
        "color_system": "standard" if ctx.color else None,
        "width": ctx.width,
        "highlight": False,
        "emoji": False,
        "_environ": {},
    }
    return Console(file=buffer, **{**settings, **options}), buffer


def render_rich(parts: Sequence[object], ctx: RenderContext, soft_wrap: bool = False) -> str:
    """Print rich renderables (tables, markup strings) into a string. ``soft_wrap`` keeps long
    text lines whole (tables still fit)."""
    from rich.text import Text

    console, buffer = string_console(ctx)
    for part in parts:
        console.print(part, soft_wrap=soft_wrap and isinstance(part, (str, Text)))
    return buffer.getvalue()


def display_path(file: str, ctx: RenderContext) -> str:
    """``file`` relative to ``ctx.root`` with ``/`` separators when it lies under it, else as is."""
    if ctx.root and os.path.isabs(file):
        rel = os.path.relpath(file, ctx.root)
        if not rel.startswith(".."):
            return PurePosixPath(*rel.split(os.sep)).as_posix()
    return file


def is_relative(file: str, ctx: RenderContext) -> bool:
    return not os.path.isabs(display_path(file, ctx))


def fingerprint(finding: Finding) -> str:
    """Stable identity of a finding across runs and line moves: sha256(rule|model|layer)."""
    return hashlib.sha256(f"{finding.code}|{finding.model}|{finding.layer}".encode()).hexdigest()


def severity_counts(findings: Iterable[Finding]) -> Counter[Severity]:
    return Counter(f.severity for f in findings)


def found_text(findings: Sequence[Finding]) -> str:
    """``Found 3 findings (1 error, 1 warning, 1 info)`` (no full stop)."""
    counts = severity_counts(findings)
    parts = []
    for sev, word in ((Severity.ERROR, "error"), (Severity.WARN, "warning"), (Severity.INFO, "info")):
        n = counts.get(sev, 0)
        if n:
            parts.append(f"{n} {word}{'s' if n != 1 and word != 'info' else ''}")
    return f"Found {plural(len(findings), 'finding')} ({', '.join(parts)})"


def summary_line(findings: Sequence[Finding], failed: int = 0) -> str:
    """``Found 3 findings (1 error, 1 warning, 1 info).`` or ``All checks passed!``, and how
    many models could not be checked, if any."""
    not_checked = f" {plural(failed, 'model')} could not be checked." if failed else ""
    if not findings:
        return f"No findings.{not_checked}" if failed else "All checks passed!"
    return f"{found_text(findings)}.{not_checked}"


def plural(n: int, word: str) -> str:
    """``1 finding``, ``3 findings``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def baseline_summary(outcome: BaselineOutcome | None, path: str = "") -> str:
    """What a baseline did, in one sentence ("" when nothing is worth saying)."""
    if outcome is None:
        return ""
    if outcome.written_path is not None:
        return f"Wrote {plural(outcome.written_entries, 'finding')} to the baseline {outcome.written_path}."
    if outcome.hidden:
        return f"{plural(outcome.hidden, 'finding')} hidden by the baseline{f' {path}' if path else ''}."
    return ""


def run_summary(findings: Sequence[Finding], ctx: RenderContext) -> str:
    """The last line of the human formats: what was found, what the baseline hid or recorded
    (never "All checks passed!" after ``--write-baseline``), and models that failed."""
    outcome = ctx.baseline
    said = baseline_summary(outcome, ctx.baseline_path)
    bounds = f"{facts_line(ctx)} {task_line(ctx)}".strip()
    if outcome is None or outcome.written_path is None:
        return f"{summary_line(findings, ctx.failed)} {said} {bounds}".strip().replace("  ", " ")
    not_checked = f" {plural(ctx.failed, 'model')} could not be checked." if ctx.failed else ""
    left = f" {found_text(findings)} not in the baseline (--force adds them)." if findings else ""
    return f"{said}{left}{not_checked}"


def by_location(findings: Sequence[Finding], ctx: RenderContext) -> list[Finding]:
    """Findings sorted by file, line and column (files under the root first, findings without
    a location last, per model); findings at the same place keep their order (layer order)."""

    def key(item: tuple[int, Finding]) -> tuple[object, ...]:
        index, f = item
        if f.source is None:
            return (2, f.model, 0, 0, index)
        shown = display_path(f.source.file, ctx)
        return (int(os.path.isabs(shown)), shown, f.source.line, f.source.col, index)

    return [f for _, f in sorted(enumerate(findings), key=key)]


def location_text(finding: Finding, ctx: RenderContext) -> str:
    """``path:line:col`` or, with no source, the model name."""
    if finding.source is None:
        return finding.model
    s = finding.source
    return f"{display_path(s.file, ctx)}:{s.line}:{s.col}"


def finding_dict(finding: Finding, ctx: RenderContext) -> dict[str, object]:
    """One finding as a ruff-shaped JSON object, plus rflint's model, layer and field numbers."""
    loc = None if finding.source is None else {"row": finding.source.line, "column": finding.source.col}
    return {
        "code": finding.code,
        "name": finding.name,
        "message": finding.message,
        "severity": finding.severity.value,
        "filename": None if finding.source is None else display_path(finding.source.file, ctx),
        "location": loc,
        "end_location": loc,
        "noqa_row": None if finding.source is None else finding.source.line,
        "fix": None,
        "url": rule_url(finding.code),
        "model": finding.model,
        "layer": finding.layer,
        "input_size": list(finding.input_size),
        "receptive_field": dict(finding.receptive_field),
        "hint": finding.hint,
        "fingerprint": fingerprint(finding),
        "built_at": [{"filename": display_path(r.file, ctx), "row": r.line, "column": r.col} for r in finding.related],
        **_tracer_fields(finding.model, ctx),
    }


def _tracer_fields(model: str, ctx: RenderContext) -> dict[str, object]:
    facts = ctx.facts.get(model)
    if facts is None:
        return {}
    return {"tracer": facts.tracer, "tracer_reason": facts.tracer_reason, "task": facts.task}
