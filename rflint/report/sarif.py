"""``sarif``: SARIF 2.1.0 for GitHub code scanning and other SARIF viewers.

- ``tool.driver.rules``: every registered rule with ``shortDescription`` (the summary),
  ``fullDescription``/``help`` (the rule page), ``helpUri`` and ``defaultConfiguration.level``.
- results carry ``partialFingerprints["rflint/v1"] = sha256(rule|model|layer)``, so an alert
  survives line moves and edits elsewhere in the file (GitHub deduplicates by it).
- locations are repo-relative URIs with ``uriBaseId: %SRCROOT%``; files outside the root get an
  absolute ``file://`` URI. A model-level finding without a source has only a logical location.
- a layer built by a helper (library code, a builder elsewhere in the project) is located at
  the user's line that asked for it, and the helper's line is a ``relatedLocations`` entry.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from rflint.checks import Rule
from rflint.results import ModelReport
from rflint.ir import Finding, Severity, Source
from rflint.report.common import RenderContext, display_path, fingerprint, is_relative
from rflint.project.rule_docs import HOMEPAGE, rule_url

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {Severity.ERROR: "error", Severity.WARN: "warning", Severity.INFO: "note", Severity.IGNORE: "none"}


def _descriptor(rule: Rule, ctx: RenderContext) -> dict[str, object]:
    page = ctx.rule_docs.get(rule.code, "")
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": page or rule.summary, **({"markdown": page} if page else {})},
        "help": {"text": f"{rule.summary}. See {rule_url(rule.code)}", **({"markdown": page} if page else {})},
        "helpUri": rule_url(rule.code),
        "defaultConfiguration": {"level": LEVELS[rule.severity]},
        "properties": {"tags": ["architecture", "receptive-field"]},
    }


def _location(finding: Finding, ctx: RenderContext) -> dict[str, object]:
    logical = {
        "fullyQualifiedName": f"{finding.model}::{finding.layer}" if finding.layer else finding.model,
        "kind": "module",
    }
    location: dict[str, object] = {"logicalLocations": [logical]}
    if finding.source is not None:
        location["physicalLocation"] = _physical(finding.source, ctx)
    return location


def _physical(s: Source, ctx: RenderContext) -> dict[str, object]:
    if is_relative(s.file, ctx):
        artifact = {"uri": quote(display_path(s.file, ctx)), "uriBaseId": "%SRCROOT%"}
    else:
        artifact = {"uri": Path(s.file).as_uri()}
    return {"artifactLocation": artifact, "region": {"startLine": s.line, "startColumn": s.col}}


def _related(finding: Finding, ctx: RenderContext) -> list[dict[str, object]]:
    """Where a helper (library or builder code) constructed the layer the finding is about."""
    return [
        {"id": i, "physicalLocation": _physical(r, ctx), "message": {"text": "the layer is built here"}}
        for i, r in enumerate(finding.related)
    ]


def _result(finding: Finding, index: dict[str, int], ctx: RenderContext) -> dict[str, object]:
    result: dict[str, object] = {
        "ruleId": finding.code,
        "level": LEVELS.get(finding.severity, "warning"),
        "message": {"text": finding.message + (f"\nhelp: {finding.hint}" if finding.hint else "")},
        "locations": [_location(finding, ctx)],
        "partialFingerprints": {"rflint/v1": fingerprint(finding)},
        "properties": {
            "model": finding.model,
            "layer": finding.layer,
            "input_size": list(finding.input_size),
            "receptive_field": dict(finding.receptive_field),
            **({"tracer": ctx.facts[finding.model].tracer, "task": ctx.facts[finding.model].task} if finding.model in ctx.facts else {}),
        },
    }
    if finding.related:
        result["relatedLocations"] = _related(finding, ctx)
    if finding.code in index:
        result["ruleIndex"] = index[finding.code]
    return result


def sarif_log(reports: Sequence[ModelReport], findings: Sequence[Finding], ctx: RenderContext) -> dict[str, object]:
    rules = list(ctx.rules)
    index = {rule.code: i for i, rule in enumerate(rules)}
    run: dict[str, object] = {
        "tool": {
            "driver": {
                "name": "rflint",
                "version": ctx.version,
                "semanticVersion": ctx.version,
                "informationUri": HOMEPAGE,
                "rules": [_descriptor(rule, ctx) for rule in rules],
            }
        },
        "columnKind": "unicodeCodePoints",
        "results": [_result(f, index, ctx) for f in findings],
    }
    if ctx.facts:  # which tracer read each model, and why the fallback was needed
        run["properties"] = {"models": {name: facts.as_dict() for name, facts in ctx.facts.items()}}
    if ctx.root:
        run["originalUriBaseIds"] = {"%SRCROOT%": {"uri": Path(ctx.root).as_uri().rstrip("/") + "/"}}
    return {"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}


def render(reports: Sequence[ModelReport], findings: Sequence[Finding], ctx: RenderContext) -> str:
    return json.dumps(sarif_log(reports, findings, ctx), indent=2, ensure_ascii=False) + "\n"
