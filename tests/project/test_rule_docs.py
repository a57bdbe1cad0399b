"""Executable rule documentation (as pylint does): each page's Example makes its rule fire,
and its Use instead does not, through the real engine, configuration and suppressions."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

from rflint.checks import ALL_RULES
from rflint.project.config import Config
from rflint.engine.pipeline import lint
from rflint.spec import ModelSpec
from rflint.errors import UsageError
from rflint.project.rule_docs import code_blocks, page, pages, render_all, render_rule, rules_dir
from rflint.engine.pipeline import resolve_findings

COMMAND = re.compile(
    r"^# \$ rflint check example\.py:(\w+) --input-size (\d+)((?: --(?:causal|task) \w+)*)$", re.MULTILINE
)
CASES = [(rule.code, heading) for rule in ALL_RULES for heading in ("## Example", "## Use instead")]


def run_block(block: str, tmp_path, stem: str) -> set[str]:
    """Write a page's code block to a file and lint it as the block's last line says."""
    m = COMMAND.search(block)
    assert m, "a code block must end with `# $ rflint check example.py:NAME --input-size N`"
    path = tmp_path / f"{stem}.py"
    path.write_text(block, encoding="utf-8")
    options = dict(re.findall(r"--(causal|task) (\w+)", m.group(3)))
    spec = ModelSpec(f"{path}:{m.group(1)}", input_size=(int(m.group(2)),))
    if "causal" in options:
        spec = replace(spec, causal=(options["causal"],))
    if "task" in options:
        spec = replace(spec, task=options["task"])
    report = lint(spec)
    return {f.code for f in resolve_findings([report], Config())}


@pytest.mark.parametrize(("code", "heading"), CASES, ids=[f"{c}-{h[3:].replace(' ', '-')}" for c, h in CASES])
def test_page_examples_run(code, heading, tmp_path):
    blocks = code_blocks(page(code), heading)
    assert len(blocks) == 1, f"{code} {heading}: expected one python block"
    codes = run_block(blocks[0], tmp_path, f"doc_{code}_{heading[3:].replace(' ', '_').lower()}")
    if heading == "## Example":
        assert code in codes
    else:
        assert code not in codes


def test_rflint_rule_prints_the_page_by_code_or_name():
    assert render_rule("RF101") == page("RF101")
    assert render_rule("rf101") == render_rule("unproductive-layer")
    obj = json.loads(render_rule("RF101", as_json=True))
    assert obj["code"] == "RF101" and obj["name"] == "unproductive-layer" and obj["explanation"] == page("RF101")
    with pytest.raises(UsageError, match="unknown rule 'RF999'"):
        render_rule("RF999")


def test_rflint_rule_all_dumps_the_registry():
    rows = json.loads(render_all(as_json=True))
    assert [r["code"] for r in rows] == [rule.code for rule in ALL_RULES]
    assert {"code", "name", "summary", "severity", "url", "explanation"} <= set(rows[0])
    assert render_all().count("\n## What it does\n") == len(ALL_RULES)


def test_pages_come_from_the_package_or_the_checkout():
    assert rules_dir().joinpath("RF101.md").is_file()
    assert set(pages()) == {rule.code for rule in ALL_RULES}
