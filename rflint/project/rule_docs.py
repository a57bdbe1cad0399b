"""Rule pages: ``rules/RFxxx.md``, one per rule, with ruff's headings.

The pages live at the repository's top level and are force-included in the wheel as
``rflint/rules``; they are read through :mod:`importlib.resources` from the installed package,
falling back to the repository's ``rules/`` for an editable install. ``rflint rule RF101``
prints a page, ``rflint rule --all --output-format json`` dumps the registry, and SARIF reuses
the pages as ``fullDescription``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from rflint.errors import UsageError

HOMEPAGE = "https://github.com/rflint/rflint"
RULE_URL = HOMEPAGE + "/blob/main/rules/{code}.md"

#: the headings every page has, in this order (after the ``# RF101 unproductive-layer`` title)
REQUIRED_HEADINGS = (
    "## What it does",
    "## Why is this bad?",
    "## Example",
    "## Use instead",
    "## Options",
    "## References",
)

_CODE_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def rule_url(code: str) -> str:
    """The documentation URL of a rule (JSON ``url``, SARIF ``helpUri``)."""
    return RULE_URL.format(code=code)


def rules_dir() -> Traversable:
    """Where the pages are: ``rflint/rules`` in a wheel, ``<repo>/rules`` in a checkout."""
    packaged = resources.files("rflint").joinpath("rules")
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "rules"


def pages() -> dict[str, str]:
    """Every page, by the code in its file name."""
    directory = rules_dir()
    if not directory.is_dir():
        return {}
    out = {}
    for entry in sorted(directory.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".md"):
            out[entry.name[: -len(".md")]] = entry.read_text(encoding="utf-8")
    return out


def page(code: str) -> str:
    """The page of one rule.

    Raises:
        UsageError: the rule has no page.
    """
    entry = rules_dir().joinpath(f"{code}.md")
    if not entry.is_file():
        raise UsageError(f"no documentation page for rule {code}")
    return entry.read_text(encoding="utf-8")


def sections(text: str) -> dict[str, str]:
    """``{"## What it does": body, ...}`` for the ``##`` sections of a page."""
    out: dict[str, str] = {}
    current = None
    for line in text.splitlines(keepends=True):
        if line.startswith("## "):
            current = line.strip()
            out[current] = ""
        elif current is not None:
            out[current] += line
    return out


def code_blocks(text: str, heading: str) -> list[str]:
    """The ```` ```python ```` blocks under one ``##`` heading of a page."""
    return _CODE_BLOCK.findall(sections(text).get(heading, ""))


def find_rule(code_or_name: str):  # -> Rule (import kept local: checks imports nothing from here)
    """A registered rule by code (case-insensitive) or kebab-case name.

    Raises:
        UsageError: no such rule.
    """
    from rflint.checks import ALL_RULES

    for rule in ALL_RULES:
        if code_or_name.upper() == rule.code or code_or_name == rule.name:
            return rule
    raise UsageError(f"unknown rule {code_or_name!r}", hint="run `rflint rule --all` for the list of rules")


def rule_json(rule) -> dict[str, object]:  # noqa: ANN001 - rflint.checks.Rule
    """One rule as ``rflint rule --output-format json`` shows it (ruff's field names where they fit)."""
    return {
        "code": rule.code,
        "name": rule.name,
        "summary": rule.summary,
        "severity": rule.severity.value,
        "url": rule_url(rule.code),
        "explanation": page(rule.code),
    }


def render_rule(code_or_name: str, as_json: bool = False) -> str:
    """``rflint rule CODE``: the Markdown page, or its JSON object."""
    rule = find_rule(code_or_name)
    if as_json:
        return json.dumps(rule_json(rule), indent=2) + "\n"
    return page(rule.code)


def render_all(as_json: bool = False, rules: Iterable | None = None) -> str:
    """``rflint rule --all``: every page one after another, or a JSON array of the registry."""
    from rflint.checks import ALL_RULES

    rules = tuple(ALL_RULES if rules is None else rules)
    if as_json:
        return json.dumps([rule_json(rule) for rule in rules], indent=2) + "\n"
    return "\n".join(page(rule.code) for rule in rules)
