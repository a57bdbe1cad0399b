"""``json``: an array of ruff-shaped objects (``code``, ``name``, ``message``, ``filename``,
``location``, ``end_location``, ``severity``, ``url``) plus ``model``, ``layer``,
``input_size``, ``receptive_field``, ``hint`` and a stable ``fingerprint``."""

from __future__ import annotations

import json
from collections.abc import Sequence

from rflint.results import ModelReport
from rflint.ir import Finding
from rflint.report.common import RenderContext, finding_dict


def render(reports: Sequence[ModelReport], findings: Sequence[Finding], ctx: RenderContext) -> str:
    return json.dumps([finding_dict(f, ctx) for f in findings], indent=2, ensure_ascii=False) + "\n"
