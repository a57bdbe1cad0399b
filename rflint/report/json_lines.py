"""``json-lines``: the ``json`` objects, one per line."""

from __future__ import annotations

import json
from collections.abc import Sequence

from rflint.results import ModelReport
from rflint.ir import Finding
from rflint.report.common import RenderContext, finding_dict


def render(reports: Sequence[ModelReport], findings: Sequence[Finding], ctx: RenderContext) -> str:
    return "".join(json.dumps(finding_dict(f, ctx), ensure_ascii=False) + "\n" for f in findings)
