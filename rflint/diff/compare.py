"""What a change does to each model's receptive field: the comparison behind ``rflint diff``.
Stdlib only, pure: it compares two revisions' :class:`~rflint.results.CheckResult` records
(each computed in its own process, see :mod:`rflint.diff.worker`) and never imports torch.

Matching rules, chosen so that a diff reads like a review and not like a line diff:

- **Models** are matched by display name (the configured ``name``, else the target). A model
  present at one revision only is *added* or *removed*; one that failed at one revision is
  *failed* and carries the reason; one that failed at both is *still failing*: a pre-existing
  failure, reported with its reasons but not an error of the change.
- **Layers** are matched by qualname and op (a name now held by another op is a replaced
  layer: removed and added). A layer that exists only at the base and one that exists
  only at HEAD are a *rename* when the match is unambiguous, in two passes:

  1. *same field*: same op, same kind and the same ``r_min``, ``r_max`` and jump on every axis,
     and no other unmatched layer on either side has that signature (a pure rename);
  2. *same place*: the unmatched layers between the same two matched neighbours (in graph
     order) have the same op sequence on both sides, or the same up to one contiguous run of
     layers inserted at the only place it fits; they are paired in order (a renamed submodule
     whose kernel also changed; a layer inserted into an ``nn.Sequential``, which renumbers
     the layers after it).

  Everything else is reported as added and removed.
- **Findings** are matched like baselines: by (model, layer, rule code) with counts, never by
  line, after mapping renamed layers to their new names (a pure rename adds no finding).
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import PurePosixPath

from rflint.ir import Finding, LayerRF, Number, Severity
from rflint.rf import tiling
from rflint.results import CheckResult, ModelReport

Values = tuple[Number, ...]  # one number per spatial axis


@dataclass(frozen=True)
class Revision:
    """One side of a diff as the user named it; ``commit`` is None for the working tree."""

    label: str
    commit: str | None = None

    @property
    def text(self) -> str:
        """``HEAD~1 (1a2b3c4)``, or the label alone for the working tree."""
        return f"{self.label} ({self.commit[:7]})" if self.commit and not self.commit.startswith(self.label) else self.label


@dataclass(frozen=True)
class RevisionResult:
    """What the worker produced for one revision.

    Attributes:
        revision: which revision.
        root: the directory it was checked out in (paths are shown relative to it).
        result: the check result; None when the whole revision could not be analysed.
        models: the names of the models analysed (or failed) there, in order.
        absent: requested targets whose file does not exist at this revision.
        error, hint: why the whole revision could not be analysed (a bad config, no model).
        warnings: things the user should know (a model imported from outside the revision).
    """

    revision: Revision
    root: str
    result: CheckResult | None = None
    models: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    error: str = ""
    hint: str = ""
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Change:
    """A per-axis quantity before and after; None on a side where it does not exist."""

    before: Values | None
    after: Values | None

    @property
    def changed(self) -> bool:
        return self.before != self.after

    @property
    def delta(self) -> Values | None:
        """``after - before`` per axis (0 when both are infinite); None unless both exist."""
        if self.before is None or self.after is None or len(self.before) != len(self.after):
            return None
        return tuple(0 if a == b else a - b for b, a in zip(self.before, self.after))


@dataclass(frozen=True)
class FindingRef:
    """A finding as a diff shows it: identity, severity, message and a revision-relative place."""

    code: str
    name: str
    severity: Severity
    layer: str
    message: str
    file: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class LayerRef:
    qualname: str
    op: str


@dataclass(frozen=True)
class Rename:
    before: str
    after: str
    op: str


@dataclass(frozen=True)
class LayerChange:
    """A layer present at both revisions (under its HEAD name) whose field changed."""

    layer: str
    op: str
    r_min: Change
    r_max: Change
    jump: Change

    @property
    def magnitude(self) -> float:
        """The largest change of ``r_min`` or ``r_max`` on any axis (inf when a field became or
        stopped being global): what "largest first" sorts by."""
        sizes = [0.0]
        for change in (self.r_min, self.r_max):
            for b, a in zip(change.before or (), change.after or ()):
                if a != b:
                    sizes.append(math.inf if math.isinf(a) or math.isinf(b) else abs(float(a - b)))
        return max(sizes)


@dataclass(frozen=True)
class SideFailure:
    """Why a model (or a whole revision) could not be analysed at one side."""

    side: str  # "base", "head", or "base and head"
    message: str
    hint: str = ""


class Status(str, Enum):
    UNCHANGED = "unchanged"
    CHANGED = "changed"
    ADDED = "added"
    REMOVED = "removed"
    FAILED = "failed"
    #: failed at the base and at HEAD: pre-existing, not the change's doing (reported, not fatal)
    STILL_FAILING = "still failing"


@dataclass(frozen=True)
class ModelDiff:
    """Everything that changed for one model."""

    model: str
    status: Status
    input_size: Change
    i_min: Change
    i_min_unproductive: Change
    i_max: Change
    #: refined (no RF103 among the raw findings) before and after; None where not analysed
    refined: tuple[bool | None, bool | None] = (None, None)
    findings_added: tuple[FindingRef, ...] = ()
    findings_removed: tuple[FindingRef, ...] = ()
    layers_added: tuple[LayerRef, ...] = ()
    layers_removed: tuple[LayerRef, ...] = ()
    layers_renamed: tuple[Rename, ...] = ()
    layers_changed: tuple[LayerChange, ...] = ()  # largest first
    failures: tuple[SideFailure, ...] = ()
    #: the tiling halo per axis before and after each unit (:mod:`rflint.rf.tiling`)
    halo_before: Change = Change(None, None)
    halo_after: Change = Change(None, None)

    @property
    def new_errors(self) -> tuple[FindingRef, ...]:
        """Added findings at error level (their severity as HEAD's configuration sets it)."""
        return tuple(f for f in self.findings_added if f.severity is Severity.ERROR)


@dataclass(frozen=True)
class Diff:
    """The comparison of two revisions."""

    base: Revision
    head: Revision
    models: tuple[ModelDiff, ...]
    failures: tuple[SideFailure, ...] = ()  # whole revisions that could not be analysed
    warnings: tuple[str, ...] = ()

    @property
    def new_errors(self) -> int:
        return sum(len(m.new_errors) for m in self.models)

    @property
    def failed(self) -> bool:
        return bool(self.failures) or any(m.status is Status.FAILED for m in self.models)

    @property
    def changed(self) -> bool:
        return self.failed or any(m.status not in (Status.UNCHANGED, Status.STILL_FAILING) for m in self.models)


# ---------------------------------------------------------------------------------------------
# comparing


def compare(base: RevisionResult, head: RevisionResult) -> Diff:
    """Compare two revisions' results model by model (see the module docstring for the rules)."""
    failures = tuple(SideFailure(side, relative_text(r.error, r.root), r.hint) for side, r in (("base", base), ("head", head)) if r.error)
    if len(failures) == 2 and failures[0].message == failures[1].message:  # the same problem: say it once
        failures = (replace(failures[0], side="base and head"),)
    warnings = tuple(f"{side}: {w}" for side, r in (("base", base), ("head", head)) for w in r.warnings)
    names = list(dict.fromkeys([*head.models, *base.models]))
    models = [_model_diff(name, base, head) for name in names]
    if not base.error and not head.error:
        failures += _nothing_to_compare(base, head, names)
    if not base.error and head.error:  # the base's models cannot be compared with anything
        models = [m if m.status is Status.FAILED else _failed_everywhere(m, "head") for m in models]
    if base.error and not head.error:
        models = [m if m.status is Status.FAILED else _failed_everywhere(m, "base") for m in models]
    return Diff(base.revision, head.revision, tuple(models), failures, warnings)


def _nothing_to_compare(base: RevisionResult, head: RevisionResult, names: Sequence[str]) -> tuple[SideFailure, ...]:
    """A requested model found at neither revision (a typo), or no model at all: an error, not
    a silent "no change"."""
    missing = [name for name in base.absent if name in head.absent]
    out = tuple(
        SideFailure("base and head", f"{name}: no such model file at either revision", "check the path (relative to the current folder)")
        for name in dict.fromkeys(missing)
    )
    if not names and not out:
        out = (SideFailure("base and head", "no model to compare", "list models in [tool.rflint.models] or pass --model TARGET --input-size N"),)
    return out


def _failed_at_both(failures: Sequence[SideFailure]) -> bool:
    """A model that could not be analysed at the base either: the change did not break it, so
    the diff judges the other models instead of failing on this one forever."""
    sides = {side for f in failures for side in f.side.split(" and ")}
    return {"base", "head"} <= sides


def _failed_everywhere(m: ModelDiff, side: str) -> ModelDiff:
    reason = SideFailure(side, f"the {side} revision could not be analysed (the error is reported once, for the revision)")
    return ModelDiff(m.model, Status.FAILED, m.input_size, m.i_min, m.i_min_unproductive, m.i_max, refined=m.refined, failures=(reason,), halo_before=m.halo_before, halo_after=m.halo_after)


def _model_diff(name: str, base: RevisionResult, head: RevisionResult) -> ModelDiff:
    before, after = _report(base, name), _report(head, name)
    failures = tuple(
        SideFailure(side, relative_text(f.message, r.root), f.hint)
        for side, r in (("base", base), ("head", head))
        for f in (r.result.failures if r.result else ())
        if f.spec.display_name == name
    )
    numbers = {
        key: Change(getattr(before.analysis, key) if before else None, getattr(after.analysis, key) if after else None)
        for key in ("i_min", "i_min_unproductive", "i_max")
    }
    numbers.update(halo_before=Change(_halo(before, "before"), _halo(after, "before")), halo_after=Change(_halo(before, "after"), _halo(after, "after")))
    sizes = Change(before.analysis.graph.input_size if before else None, after.analysis.graph.input_size if after else None)
    refined = (_refined(before), _refined(after))
    if len(failures) == 2 and failures[0].message == failures[1].message:  # the same problem: say it once
        failures = (replace(failures[0], side="base and head"),)
    if failures:
        status = Status.STILL_FAILING if _failed_at_both(failures) else Status.FAILED
        return ModelDiff(name, status, sizes, **numbers, refined=refined, failures=failures)
    if before is None or after is None:
        status = Status.ADDED if before is None else Status.REMOVED
        side = head if before is None else base
        found = _refs(_findings(side, name), side.root)
        return ModelDiff(
            name,
            status,
            sizes,
            **numbers,
            refined=refined,
            findings_added=found if status is Status.ADDED else (),
            findings_removed=found if status is Status.REMOVED else (),
        )
    old_layers, new_layers = before.analysis.layers, after.analysis.layers
    pairs, renames = match_layers(old_layers, new_layers)
    reused = {lrf.layer.qualname for lrf in new_layers}  # a name whose layer was replaced must not match
    finding_names = {q: pairs.get(q, f"{q} (replaced)" if q in reused else q) for q in (lrf.layer.qualname for lrf in old_layers)}
    added, removed = compare_findings(_findings(base, name), _findings(head, name), finding_names)
    kept = set(pairs.values())
    diff = ModelDiff(
        name,
        Status.CHANGED,
        sizes,
        **numbers,
        refined=refined,
        findings_added=_refs(added, head.root),
        findings_removed=_refs(removed, base.root),
        layers_added=tuple(LayerRef(x.layer.qualname, x.layer.op) for x in new_layers if x.layer.qualname not in kept),
        layers_removed=tuple(LayerRef(x.layer.qualname, x.layer.op) for x in old_layers if x.layer.qualname not in pairs),
        layers_renamed=renames,
        layers_changed=field_changes(old_layers, new_layers, pairs),
    )
    if _is_unchanged(diff):
        return ModelDiff(name, Status.UNCHANGED, sizes, **numbers, refined=refined)
    return diff


def _is_unchanged(m: ModelDiff) -> bool:
    return not (
        any(c.changed for c in (m.input_size, m.i_min, m.i_min_unproductive, m.i_max, m.halo_before, m.halo_after))
        or m.findings_added
        or m.findings_removed
        or m.layers_added
        or m.layers_removed
        or m.layers_renamed
        or m.layers_changed
    )


def _halo(report: ModelReport | None, side: str) -> tuple[Number, ...] | None:
    """The tiling halo of ``report``'s model on one side of each unit, per axis."""
    if report is None:
        return None
    return tuple(getattr(h, side) for h in tiling.halo(report.analysis))


def _report(side: RevisionResult, name: str) -> ModelReport | None:
    if side.result is None:
        return None
    return next((r for r in side.result.reports if r.spec.display_name == name), None)


def _findings(side: RevisionResult, name: str) -> list[Finding]:
    return [f for f in (side.result.findings if side.result else ()) if f.model == name]


def _refined(report: ModelReport | None) -> bool | None:
    """Refined for its input size: RF103 (whatever its configured severity) did not fire."""
    return None if report is None else not any(f.code == "RF103" for f in report.findings)


SEVERITY_ORDER = {Severity.ERROR: 0, Severity.WARN: 1, Severity.INFO: 2}


def _refs(findings: Iterable[Finding], root: str) -> tuple[FindingRef, ...]:
    """Findings for a diff: errors first (what a reviewer must see), then in report order."""
    ordered = sorted(findings, key=lambda f: SEVERITY_ORDER.get(f.severity, 3))
    return tuple(_ref(f, root) for f in ordered)


def _ref(finding: Finding, root: str) -> FindingRef:
    source = finding.source
    return FindingRef(
        finding.code,
        finding.name,
        finding.severity,
        finding.layer,
        relative_text(finding.message, root),
        relative_path(source.file, root) if source else None,
        source.line if source else None,
    )


def relative_path(file: str, root: str) -> str:
    """``file`` relative to the revision's ``root`` with ``/`` separators, when it lies under it
    (a base revision lives in a temporary directory the user never sees)."""
    if root and os.path.isabs(file):
        rel = os.path.relpath(file, root)
        if not rel.startswith(".."):
            return PurePosixPath(*rel.split(os.sep)).as_posix()
    return file


def relative_text(text: str, root: str) -> str:
    """A message with the revision's checkout directory taken out of the paths it names."""
    return text.replace(root.rstrip(os.sep) + os.sep, "") if root else text


# ---------------------------------------------------------------------------------------------
# layers and findings


def compare_findings(
    before: Iterable[Finding], after: Iterable[Finding], renames: dict[str, str]
) -> tuple[list[Finding], list[Finding]]:
    """(added, removed): findings matched by (layer, code) with counts, as baselines match
    them, after mapping the base's layer names through ``renames`` (base -> HEAD name)."""
    budget = Counter((renames.get(f.layer, f.layer), f.code) for f in before)
    added = []
    for f in after:
        key = (f.layer, f.code)
        if budget[key] > 0:
            budget[key] -= 1
        else:
            added.append(f)
    taken = Counter((f.layer, f.code) for f in after)
    removed = []
    for f in before:
        key = (renames.get(f.layer, f.layer), f.code)
        if taken[key] > 0:
            taken[key] -= 1
        else:
            removed.append(f)
    return added, removed


def _signature(lrf: LayerRF) -> tuple[object, ...]:
    return (lrf.layer.op, lrf.layer.kind, lrf.r_min, lrf.r_max, lrf.jump)


def match_layers(before: Sequence[LayerRF], after: Sequence[LayerRF]) -> tuple[dict[str, str], tuple[Rename, ...]]:
    """Which base layer is which HEAD layer: ``(pairs, renames)``, where ``pairs`` maps every
    matched base qualname to its HEAD qualname. A layer keeps its name when the name exists at
    both revisions with the same op (a name reused by another op is a replaced layer); the
    unambiguous renames (module docstring) are listed in HEAD order."""
    op_after = {lrf.layer.qualname: lrf.layer.op for lrf in after}
    pairs = {lrf.layer.qualname: lrf.layer.qualname for lrf in before if op_after.get(lrf.layer.qualname, None) == lrf.layer.op}
    kept = set(pairs.values())
    gone = [lrf for lrf in before if lrf.layer.qualname not in pairs]
    new = [lrf for lrf in after if lrf.layer.qualname not in kept]
    renamed: dict[str, str] = {}
    # first pass: a signature (op, kind, field) that only one unmatched layer has on each side
    by_sig_base: dict[tuple[object, ...], list[LayerRF]] = {}
    by_sig_head: dict[tuple[object, ...], list[LayerRF]] = {}
    for lrf in gone:
        by_sig_base.setdefault(_signature(lrf), []).append(lrf)
    for lrf in new:
        by_sig_head.setdefault(_signature(lrf), []).append(lrf)
    for sig, olds in by_sig_base.items():
        news = by_sig_head.get(sig, [])
        if len(olds) == 1 and len(news) == 1:
            renamed[olds[0].layer.qualname] = news[0].layer.qualname
    # second pass: the same place between matched neighbours, the same op sequence
    head_of = pairs | renamed
    matched_head = set(head_of.values())
    base_gaps = _gaps(before, lambda q: head_of.get(q))
    head_gaps = _gaps(after, lambda q: q if q in matched_head else None)
    for key, olds in base_gaps.items():
        renamed.update({o.layer.qualname: n.layer.qualname for o, n in _align(olds, head_gaps.get(key, []))})
    order = {lrf.layer.qualname: i for i, lrf in enumerate(after)}
    renames = sorted((Rename(b, h, op_after[h]) for b, h in renamed.items()), key=lambda r: order[r.after])
    return pairs | renamed, tuple(renames)


def _align(olds: Sequence[LayerRF], news: Sequence[LayerRF]) -> list[tuple[LayerRF, LayerRF]]:
    """Pair two runs of unmatched layers when their op sequences are the same, or the same up
    to one contiguous run inserted on one side at a single possible place (a layer added to an
    ``nn.Sequential`` renumbers the ones after it); otherwise nothing."""
    a = [(x.layer.op, x.layer.kind) for x in olds]
    b = [(x.layer.op, x.layer.kind) for x in news]
    if not a or not b:
        return []
    if a == b:
        return list(zip(olds, news))
    shorter = min(len(a), len(b))
    prefix = next((i for i in range(shorter) if a[i] != b[i]), shorter)
    suffix = next((i for i in range(shorter) if a[-1 - i] != b[-1 - i]), shorter)
    if prefix + suffix != shorter:  # not one insertion, or more than one place it could be
        return []
    tail = [(olds[len(olds) - 1 - i], news[len(news) - 1 - i]) for i in range(suffix)]
    return list(zip(olds[:prefix], news[:prefix])) + tail[::-1]


def _gaps(layers: Sequence[LayerRF], name_of: Callable[[str], str | None]) -> dict[tuple[str | None, str | None], list[LayerRF]]:
    """Runs of unmatched layers keyed by the HEAD names of the matched layers around them
    (``name_of``: a qualname's matched HEAD name, None when unmatched)."""
    gaps: dict[tuple[str | None, str | None], list[LayerRF]] = {}
    run: list[LayerRF] = []
    prev: str | None = None
    for lrf in layers:
        name = name_of(lrf.layer.qualname)
        if name is None:
            run.append(lrf)
            continue
        if run:
            gaps[(prev, name)] = run
            run = []
        prev = name
    if run:
        gaps[(prev, None)] = run
    return gaps


def field_changes(before: Sequence[LayerRF], after: Sequence[LayerRF], pairs: dict[str, str]) -> tuple[LayerChange, ...]:
    """Per matched layer (``pairs``: base qualname -> HEAD qualname), the change of ``r_min``,
    ``r_max`` and jump, largest first (then in HEAD's graph order)."""
    old_name = {h: b for b, h in pairs.items()}
    old = {lrf.layer.qualname: lrf for lrf in before}
    changes = []
    for index, lrf in enumerate(after):
        q = lrf.layer.qualname
        prev = old.get(old_name[q]) if q in old_name else None
        if prev is None:
            continue
        change = LayerChange(
            q, lrf.layer.op, Change(prev.r_min, lrf.r_min), Change(prev.r_max, lrf.r_max), Change(prev.jump, lrf.jump)
        )
        if change.r_min.changed or change.r_max.changed or change.jump.changed:
            changes.append((index, change))
    changes.sort(key=lambda item: (-item[1].magnitude, item[0]))
    return tuple(c for _, c in changes)
