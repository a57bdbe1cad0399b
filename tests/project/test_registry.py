"""The rule registry and the rule pages cannot drift apart."""

from __future__ import annotations

import re

from rflint.checks import ALL_RULES, RULES_BY_CODE
from rflint.ir import Severity
from rflint.project.rule_docs import REQUIRED_HEADINGS, pages


def test_codes_are_unique_and_well_formed():
    codes = [rule.code for rule in ALL_RULES]
    assert len(codes) == len(set(codes)) == len(RULES_BY_CODE)
    # flake8's code grammar, and ruff's noqa grammar (letters then digits)
    assert all(re.fullmatch(r"RF[0-9]{3}", code) for code in codes)


def test_names_are_unique_kebab_case():
    names = [rule.name for rule in ALL_RULES]
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"[a-z]+(-[a-z]+)*", name) for name in names)


def test_rules_have_a_default_severity_and_a_summary():
    for rule in ALL_RULES:
        assert rule.severity in (Severity.ERROR, Severity.WARN, Severity.INFO)
        assert rule.summary and not rule.summary.endswith(".")


def test_every_rule_has_exactly_one_page_and_every_page_a_rule():
    docs = pages()
    assert set(docs) == {rule.code for rule in ALL_RULES}


def test_pages_have_the_title_and_ruff_headings_in_order():
    docs = pages()
    for rule in ALL_RULES:
        text = docs[rule.code]
        assert text.splitlines()[0] == f"# {rule.code} {rule.name}"
        positions = [text.find(f"\n{h}\n") for h in REQUIRED_HEADINGS]
        assert all(p >= 0 for p in positions), (rule.code, dict(zip(REQUIRED_HEADINGS, positions)))
        assert positions == sorted(positions), rule.code
        assert f"**{rule.severity.value}**" in text.split("\n## ")[0]  # the stated default matches the code


def test_pages_cite_both_papers():
    for code, text in pages().items():
        refs = text.split("## References")[1]
        assert "2106.12307" in refs and "2211.14487" in refs, code
