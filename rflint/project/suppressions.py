"""Suppression comments, layer definition lines, and RF100 unused-suppression.

A finding is suppressed by a comment on the line that defines its layer (``self.conv5 =
nn.Conv2d(...)``, or the element of an ``nn.Sequential(...)``) or on the layer's call-site line
in ``forward``::

    self.conv5 = nn.Conv2d(64, 64, 3)  # noqa: RF101
    x = self.conv5(x)                  # rflint: ignore[RF101]
    x = self.head(x)                   # noqa  (bare: every rflint rule on this line)

torch.fx only knows call sites (and, for children of an ``nn.Sequential``, only the line of
the Sequential call), so :func:`rflint.frontend.definitions.definition_sources` finds definition lines with its own AST
pass over the classes that own each layer. The frontend stores them in ``Layer.definition``.

Comments are read with :mod:`tokenize`, so ``"# noqa"`` inside a string is not a comment.
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from rflint.checks import ALL_RULES
from rflint.checks.unused_suppression import RULE as RF100
from rflint.sourcefiles import file_stamp, read_lines
from rflint.ir import Finding, Source

if TYPE_CHECKING:
    from rflint.results import ModelReport

# flake8's grammar: a bare noqa, or noqa + colon + codes split by commas or spaces (case-insensitive)
_NOQA = re.compile(r"#\s*noqa(?::\s?(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?", re.IGNORECASE)
_RFLINT = re.compile(r"#\s*rflint:\s*ignore(?:\[(?P<codes>[^\]]*)\])?")
#: what every suppression comment contains (either grammar); a file without it has none
_MARKER = re.compile(r"noqa|rflint:", re.IGNORECASE)
_NAMES = {rule.name: rule.code for rule in ALL_RULES}


@dataclass(frozen=True, slots=True)
class Suppression:
    """One suppression comment. ``codes`` None means every rflint rule (bare ``# noqa``)."""

    file: str
    line: int
    col: int
    kind: str  # "noqa" or "rflint"
    codes: frozenset[str] | None
    text: str

    def covers(self, code: str) -> bool:
        return self.codes is None or code in self.codes


# --- reading comments -------------------------------------------------------------------------


def parse_comment(comment: str) -> tuple[str, frozenset[str] | None] | None:
    """``(kind, codes)`` for a suppression comment, None for any other comment.

    Rule names in ``# rflint: ignore[...]`` are turned into codes.
    """
    m = _RFLINT.search(comment)
    if m:
        if m.group("codes") is None:
            return "rflint", None
        items = [c.strip() for c in m.group("codes").split(",") if c.strip()]
        return "rflint", frozenset(_NAMES.get(c, c) for c in items)
    m = _NOQA.search(comment)
    if m:
        codes = m.group("codes")
        if codes is None:
            return "noqa", None
        return "noqa", frozenset(c.upper() for c in re.split(r"[,\s]+", codes) if c)
    return None


def file_suppressions(file: str) -> Mapping[int, Suppression]:
    """Every suppression comment in ``file`` by line (empty if it cannot be read)."""
    return _file_suppressions(file, file_stamp(file))


@lru_cache(maxsize=256)
def _file_suppressions(file: str, stamp: tuple[int, int]) -> Mapping[int, Suppression]:
    try:
        text = Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    out: dict[int, Suppression] = {}
    if not _MARKER.search(text):  # no suppression comment: no need to tokenize (slow to start)
        return out
    try:
        comments = [
            (tok.start[0], tok.start[1] + 1, tok.string)
            for tok in tokenize.generate_tokens(io.StringIO(text).readline)
            if tok.type == tokenize.COMMENT
        ]
    except (tokenize.TokenError, SyntaxError):  # not Python: fall back to a plain scan
        comments = [(i, line.find("#") + 1, line[line.find("#") :]) for i, line in enumerate(text.splitlines(), 1) if "#" in line]
    for line, col, comment in comments:
        parsed = parse_comment(comment)
        if parsed is not None:
            out[line] = Suppression(file, line, col, parsed[0], parsed[1], comment.strip())
    return out


def source_lines(findings: Iterable[Finding]) -> dict[tuple[str, int], str]:
    """The text of each finding's source line, for the ``full`` output format (which does no I/O)."""
    out: dict[tuple[str, int], str] = {}
    for f in findings:
        if f.source is None or (f.source.file, f.source.line) in out:
            continue
        lines = read_lines(f.source.file)
        if 0 < f.source.line <= len(lines):
            out[(f.source.file, f.source.line)] = lines[f.source.line - 1]
    return out


# --- applying them ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SuppressionResult:
    kept: list[Finding]
    suppressed: list[Finding]
    #: (file, line, code) of every suppression code that silenced at least one finding
    used: frozenset[tuple[str, int, str]]


def layer_lines(report: ModelReport) -> dict[str, tuple[Source, ...]]:
    """Per layer qualname, the lines where a suppression for it may sit: definition, call site."""
    out: dict[str, tuple[Source, ...]] = {}
    for lrf in report.analysis.layers:
        layer = lrf.layer
        places = tuple(s for s in (layer.definition, layer.source) if s is not None)
        if places:
            out[layer.qualname] = tuple(dict.fromkeys(out.get(layer.qualname, ()) + places))
    return out


def apply_suppressions(findings: Iterable[Finding], reports: Sequence[ModelReport]) -> SuppressionResult:
    """Drop the findings silenced by a comment on their layer's definition or call-site line
    (or, for model-level findings, on their own source line)."""
    lines_by_model = {r.spec.display_name: layer_lines(r) for r in reports}
    kept: list[Finding] = []
    suppressed: list[Finding] = []
    used: set[tuple[str, int, str]] = set()
    for f in findings:
        places = list(lines_by_model.get(f.model, {}).get(f.layer, ())) if f.layer else []
        if f.source is not None and f.source not in places:
            places.append(f.source)
        hit = False
        for place in places:
            sup = file_suppressions(place.file).get(place.line)
            if sup is not None and sup.covers(f.code):
                used.add((sup.file, sup.line, f.code if sup.codes is not None else "*"))
                hit = True
        (suppressed if hit else kept).append(f)
    return SuppressionResult(kept, suppressed, frozenset(used))


def unused_suppressions(
    reports: Sequence[ModelReport],
    used: Iterable[tuple[str, int, str]],
    enabled: Iterable[str],
    extra_places: Mapping[str, Sequence[Source]] | None = None,
) -> list[Finding]:
    """RF100 findings: suppression comments on the lines of the checked layers that silenced
    nothing in this run.

    Only rflint's own codes are judged (``# noqa: E501, RF101`` is checked for RF101 only), and a
    bare ``# noqa`` is left alone, since it also serves other linters. A bare
    ``# rflint: ignore`` is judged. A suppression that names RF100 itself is never reported.

    Args:
        reports: the models checked in this run.
        used: ``SuppressionResult.used`` from :func:`apply_suppressions`.
        enabled: the codes enabled by the configuration (an unused code that is not enabled
            is reported as such).
        extra_places: per model name, more lines that count (e.g. the factory's line).
    """
    used = set(used)
    enabled = set(enabled)
    known = {rule.code for rule in ALL_RULES}
    seen: set[tuple[str, int]] = set()
    out: list[Finding] = []
    for report in reports:
        for qualname, place in _checked_places(report, (extra_places or {}).get(report.spec.display_name, ())):
            key = (place.file, place.line)
            sup = file_suppressions(place.file).get(place.line)
            if sup is None or key in seen:
                continue
            seen.add(key)  # a line shared by several layers or models is judged once
            problems = _unused_codes(sup, used, known, enabled)
            if problems:
                out.append(_unused_finding(sup, problems, report, qualname))
    return out


def _checked_places(report: ModelReport, extra: Sequence[Source]) -> list[tuple[str, Source]]:
    """(layer qualname, line) for every line of one model where a suppression may sit: each
    layer's definition and call site, then the model's extra lines (no layer: ``""``). Only
    these lines are judged: a comment on any other line is tied to no layer of this run."""
    places: list[tuple[str, Source]] = [(qualname, s) for qualname, sources in layer_lines(report).items() for s in sources]
    places += [("", s) for s in extra]
    return places


def _unused_codes(sup: Suppression, used: set[tuple[str, int, str]], known: set[str], enabled: set[str]) -> list[str]:
    """Why ``sup`` is unused, one phrase per rflint code that silenced nothing; empty when
    there is nothing to report. A bare ``# noqa`` and a comment naming RF100 are never
    judged: the first also serves other linters, the second asks for exactly this silence."""
    if sup.codes is None:
        if sup.kind == "noqa" or (sup.file, sup.line, "*") in used:
            return []
        return ["suppresses nothing"]
    if "RF100" in sup.codes:
        return []
    problems = []
    for code in sorted(c for c in sup.codes if c.startswith("RF")):
        if (sup.file, sup.line, code) in used:
            continue
        if code not in known:
            problems.append(f"{code} is not an rflint rule")
        elif code not in enabled:
            problems.append(f"{code} is not enabled")
        else:
            problems.append(f"no {code} finding on this line")
    return problems


def _unused_finding(sup: Suppression, problems: list[str], report: ModelReport, qualname: str) -> Finding:
    """The RF100 finding for one unused suppression, at the comment itself."""
    return Finding(
        code=RF100.code,
        name=RF100.name,
        severity=RF100.severity,
        message=f"unused suppression `{sup.text}`: {'; '.join(problems)}",
        model=report.spec.display_name,
        layer=qualname,
        source=Source(sup.file, sup.line, sup.col),
        input_size=report.analysis.graph.input_size,
        hint="remove the comment, or the codes it no longer needs",
    )
