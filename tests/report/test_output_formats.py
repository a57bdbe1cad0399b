"""Every output format rendered from one shared list of findings, against reviewed snapshots,
plus the properties each format promises (valid SARIF 2.1.0, escaped workflow commands, ...)."""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from rflint.report import FORMATS, MACHINE_FORMATS, OutputFormat, render, render_statistics
from rflint.report.github import escape_data, escape_property

DATA = Path(__file__).parent.parent / "data"
EXTENSIONS = {"json": "json", "sarif": "sarif.json", "junit": "xml", "markdown": "md", "json-lines": "jsonl"}
# html is the visualisation's format (rflint/report/html.py, ~150 KB of page per render): its own
# tests cover it; a snapshot here would break on every style change.
SNAPSHOT_FORMATS = sorted(set(FORMATS) - {"html"})


def test_registry_has_one_renderer_per_output_format():
    assert set(FORMATS) == {f.value for f in OutputFormat}
    assert MACHINE_FORMATS <= set(FORMATS)


@pytest.mark.parametrize("fmt", SNAPSHOT_FORMATS)
def test_format_matches_snapshot(fmt, reports, findings, ctx, snapshot):
    snapshot(f"{fmt}.{EXTENSIONS.get(fmt, 'txt')}", render(fmt, reports, findings, ctx))


@pytest.mark.parametrize("fmt", SNAPSHOT_FORMATS)
def test_format_without_findings_matches_snapshot(fmt, reports, ctx, snapshot):
    snapshot(f"{fmt}-clean.{EXTENSIONS.get(fmt, 'txt')}", render(fmt, reports, [], ctx))


@pytest.mark.parametrize("fmt", sorted(MACHINE_FORMATS))
def test_machine_formats_carry_no_ansi_escapes(fmt, reports, findings, ctx):
    from dataclasses import replace

    assert "\x1b[" not in render(fmt, reports, findings, replace(ctx, color=True))


def test_full_colour_is_decided_by_the_context_only(reports, findings, ctx):
    from dataclasses import replace

    assert "\x1b[" not in render("full", reports, findings, ctx)
    assert "\x1b[" in render("full", reports, findings, replace(ctx, color=True))


def test_every_format_lists_findings_by_file_line_and_column(reports, findings, ctx):
    shuffled = list(reversed(findings))
    objects = json.loads(render("json", reports, shuffled, ctx))
    located = [(o["filename"], o["location"]["row"]) for o in objects if o["location"]]
    assert located == [("models/net.py", 5), ("models/net.py", 13), ("models/net.py", 14), (findings[3].source.file, 84)]
    assert objects[-1]["location"] is None  # a finding without a location comes last
    assert render("concise", reports, shuffled, ctx) == render("concise", reports, findings, ctx)


def test_concise_lines_are_path_line_col_code_message(reports, findings, ctx):
    lines = render("concise", reports, findings, ctx).splitlines()
    assert lines[2] == "models/net.py:14:13: RF101 [net] features.3 is unproductive: input receptive field 8 >= input size 8"
    assert lines[4] == "torchvision:resnet18: RF103 input size 64 is not above I_min 12"  # no location: the model
    assert lines[-1] == "Found 5 findings (1 error, 3 warnings, 1 info)."


def test_json_objects_are_ruff_shaped_plus_rflint_fields(reports, findings, ctx):
    objects = json.loads(render("json", reports, findings, ctx))
    assert len(objects) == len(findings)
    first = objects[2]  # sorted by location: net.py lines 5, 13, 14
    ruff_keys = {"code", "name", "message", "filename", "location", "end_location", "severity", "url", "fix", "noqa_row"}
    assert ruff_keys | {"model", "layer", "receptive_field", "input_size"} <= set(first)
    assert first["filename"] == "models/net.py"  # repo-relative
    assert first["location"] == {"row": 14, "column": 13}
    assert first["receptive_field"]["input_r_min"] == [8, 8]
    assert first["url"].endswith("/rules/RF101.md")
    assert objects[4]["filename"] is None and objects[4]["location"] is None
    lines = render("json-lines", reports, findings, ctx).splitlines()
    assert [json.loads(line) for line in lines] == objects


def test_github_annotations_escape_data_and_properties(reports, findings, ctx):
    lines = render("github", reports, findings, ctx).splitlines()
    assert len(lines) == len(findings)
    assert lines[2].startswith("::error title=rflint (RF101),file=models/net.py,line=14,col=13,endLine=14,endColumn=13::")
    assert lines[1].startswith("::notice ")  # info -> notice
    assert lines[0].startswith("::warning ")  # warn -> warning
    odd = lines[3]
    assert "%25" in odd and "%0A" in odd and "\n" not in odd  # 100% and the newline of the message
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    assert escape_data("a:b,c%\r\n") == "a:b,c%25%0D%0A"
    assert lines[4] == (
        "::warning title=rflint (RF103)::RF103 input size 64 is not above I_min 12%0A  model: torchvision:resnet18"
    )


def test_sarif_validates_against_the_sarif_2_1_0_schema(reports, findings, ctx):
    log = json.loads(render("sarif", reports, findings, ctx))
    schema = json.loads((DATA / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(log), key=str)
    assert not errors, errors[0]


def test_the_schema_check_would_catch_a_broken_log(reports, findings, ctx):
    log = json.loads(render("sarif", reports, findings, ctx))
    log["runs"][0]["results"][0]["level"] = "fatal"  # not a SARIF level
    schema = json.loads((DATA / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
    assert list(jsonschema.Draft4Validator(schema).iter_errors(log))


def test_sarif_rules_fingerprints_and_uris(reports, findings, ctx):
    run = json.loads(render("sarif", reports, findings, ctx))["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [r.code for r in ctx.rules]
    rf101 = rules[[r["id"] for r in rules].index("RF101")]
    assert rf101["helpUri"].endswith("/rules/RF101.md")
    assert rf101["fullDescription"]["text"].startswith("# RF101 unproductive-layer")
    assert rf101["defaultConfiguration"]["level"] == "error"
    first = run["results"][2]
    expected = hashlib.sha256(b"RF101|net|features.3").hexdigest()
    assert first["partialFingerprints"] == {"rflint/v1": expected}
    assert first["locations"][0]["physicalLocation"]["artifactLocation"] == {"uri": "models/net.py", "uriBaseId": "%SRCROOT%"}
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == "file:///repo/"
    outside = run["results"][3]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert outside == {"uri": "file:///usr/lib/python3/site-packages/torchvision/models/resnet.py"}
    assert "physicalLocation" not in run["results"][4]["locations"][0]  # model-level, no source


def test_sarif_fingerprint_ignores_line_numbers(reports, findings, ctx):
    from dataclasses import replace

    moved = [replace(findings[0], source=replace(findings[0].source, line=99))]
    a = json.loads(render("sarif", reports, findings[:1], ctx))["runs"][0]["results"][0]["partialFingerprints"]
    b = json.loads(render("sarif", reports, moved, ctx))["runs"][0]["results"][0]["partialFingerprints"]
    assert a == b


def test_junit_has_a_suite_per_model_and_a_case_per_finding_failing_only_for_errors(reports, findings, ctx):
    root = ET.fromstring(render("junit", reports, findings, ctx))
    assert root.tag == "testsuites" and root.get("tests") == "5" and root.get("failures") == "1"  # one error
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == {"net", "torchvision:resnet18"}
    assert [c.get("name") for c in suites["net"].findall("testcase[failure]")] == ["RF101 features.3"]
    assert len(suites["net"].findall("testcase/system-out")) == 2  # the warning and the info pass
    assert suites["torchvision:resnet18"].get("failures") == "0"
    clean = ET.fromstring(render("junit", reports, [], ctx))
    assert clean.get("failures") == "0" and len(list(clean.iter("testcase"))) == 2


def test_markdown_table_has_a_row_per_model_with_bounds_and_counts(reports, findings, ctx):
    text = render("markdown", reports, findings, ctx)
    header = next(line for line in text.splitlines() if line.startswith("| Model"))
    assert header.split("|")[1:5] == [" Model ", " Input size ", " I_min ", " I_max "]
    row = next(line for line in text.splitlines() if line.startswith("| `net`"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    codes = [c.strip() for c in header.strip("|").split("|")][4:]
    # hand-computed on the fixture graph: r = 3, 4 (J 2), 8, 12 -> I_min 12, I_max 12
    assert cells[1:4] == ["8", "12", "12"]
    assert dict(zip(codes, cells[4:])) == {
        "RF001": "0", "RF100": "0", "RF101": "1", "RF102": "1", "RF103": "1", "RF104": "0", "RF105": "0", "RF106": "0",
    }  # fmt: skip
    assert "\\|" in text  # the pipe in a message is escaped


def test_statistics_counts_per_rule(findings, snapshot):
    text = render_statistics(findings)
    assert text.splitlines()[0] == "2\tRF103\tinput-below-minimum-resolution"
    snapshot("statistics.txt", text)
    rows = json.loads(render_statistics(findings, as_json=True))
    assert {r["code"]: r["count"] for r in rows} == {"RF103": 2, "RF101": 1, "RF102": 1, "RF001": 1}
