"""``concise``: one line per finding, ``path:line:col: RF101 [model] message`` (flake8/ruff
style). The model's name follows the code: two models built by one factory report at the same
line, and only the name tells their findings apart. A finding without a location is shown at
the model's name, which then is not repeated."""

from __future__ import annotations

from collections.abc import Sequence

from rflint.results import ModelReport
from rflint.ir import Finding
from rflint.report.common import RenderContext, location_text, run_summary


def render(reports: Sequence[ModelReport], findings: Sequence[Finding], ctx: RenderContext) -> str:
    # one line per finding, always: a newline inside a message would break line-based tools
    lines = [f"{location_text(f, ctx)}: {f.code} {_model(f)}{' '.join(f.message.splitlines())}" for f in findings]
    lines.append(run_summary(findings, ctx))
    return "\n".join(lines) + "\n"


def _model(finding: Finding) -> str:
    return "" if finding.source is None else f"[{finding.model}] "
