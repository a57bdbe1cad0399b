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


#: the row that counts models which could not be checked (ruff counts its syntax errors the same way)
FAILED = "model-failed"


def render_statistics(findings: Sequence[Finding], as_json: bool = False, failed: Sequence[str] = ()) -> str:
    """The counts per rule, and the models that could not be checked (``failed``: their names)
    as a row of their own: a run that checked nothing must not read as a clean one."""
    rows = statistics(findings)
    if failed:
        rows.append({"code": None, "name": FAILED, "count": len(failed), "models": list(failed)})
    if as_json:
        return json.dumps(rows, indent=2) + "\n"
    if not rows:
        return "All checks passed!\n"
    width = max(len(str(r["count"])) for r in rows)
    lines = [f"{r['count']:>{width}}\t{r['code'] or '-'}\t{r['name']}" + (f" ({', '.join(failed)})" if r["code"] is None else "") for r in rows]
    total = len(findings)
    end = f" {len(failed)} model{'s' if len(failed) != 1 else ''} could not be checked." if failed else ""
    lines.append(f"Found {total} finding{'s' if total != 1 else ''}.{end}")
    return "\n".join(lines) + "\n"
