"""What a run produces: per-model reports and the outcome of a whole ``check``. Stdlib only.

The engine fills these records; the report renderers, the cache and ``rflint diff`` read them.
Everything here is a frozen dataclass over :mod:`rflint.ir` records, so it round-trips through
JSON (:mod:`rflint.serialize`) and can be rendered without torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rflint.ir import Analysis, Finding, Source
from rflint.spec import ModelSpec


@dataclass(frozen=True)
class ModelReport:
    """The outcome for one model: its analysis and its findings (before configuration).

    ``tracer_reason`` says why the primary tracer (torch.fx) was not used, when it was not;
    ``notes`` are things the user should be told once (an input geometry that was guessed).
    """

    spec: ModelSpec
    analysis: Analysis
    findings: tuple[Finding, ...]
    timings: Mapping[str, float] = field(default_factory=dict)
    tracer_reason: str = ""
    notes: tuple[str, ...] = ()
    #: where the model's factory or class is defined (model-level findings point there)
    source: Source | None = None


@dataclass(frozen=True)
class Failure:
    """A model that could not be checked, and the one-line reason."""

    spec: ModelSpec
    message: str
    hint: str = ""


@dataclass(frozen=True)
class BaselineOutcome:
    """What a baseline did to a run: findings it hid, entries that no longer match, and what a
    ``--write-baseline`` wrote."""

    hidden: int = 0
    stale: tuple[tuple[str, str, str, int], ...] = ()  # (model, layer, code, fixed count)
    written_path: str | None = None
    written_entries: int = 0


@dataclass(frozen=True)
class CheckResult:
    """Everything ``rflint check`` computed: the reports of the models that could be checked,
    the findings to show (configuration, suppressions and baseline applied, in report order),
    the models that failed, and the baseline's outcome."""

    reports: tuple[ModelReport, ...]
    findings: tuple[Finding, ...]
    failures: tuple[Failure, ...] = ()
    baseline: BaselineOutcome | None = None
