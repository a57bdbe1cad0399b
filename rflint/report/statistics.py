"""``--statistics``: counts per rule, as ruff prints them (``count<TAB>code<TAB>name``), or JSON."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence

from rflint.ir import Finding


def statistics(findings: Sequence[Finding]) -> list[dict[str, object]]:
    """``[{code, name, count}]``, most frequent first, then by code."""
    counts = Counter((f.code, f.name) for f in findings)
    rows = sorted(counts.items(), key=lambda item: (-item[1], item[0][0]))
    return [{"code": code, "name": name, "count": n} for (code, name), n in rows]


def render_statistics(findings: Sequence[Finding], as_json: bool = False) -> str:
    rows = statistics(findings)
    if as_json:
        return json.dumps(rows, indent=2) + "\n"
    if not rows:
        return "All checks passed!\n"
    width = max(len(str(r["count"])) for r in rows)
    lines = [f"{r['count']:>{width}}\t{r['code']}\t{r['name']}" for r in rows]
    total = len(findings)
    lines.append(f"Found {total} finding{'s' if total != 1 else ''}.")
    return "\n".join(lines) + "\n"
