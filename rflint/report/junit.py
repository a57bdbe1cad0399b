"""``junit``: JUnit XML for CI test-report viewers: one ``<testsuite>`` per model and one
``<testcase>`` per finding. Only error-level findings are failures, matching the exit code: a
warning or info is a passing test case whose message is in ``<system-out>``, so a report viewer
does not show a red build for a run that exits 0. A model without findings gets one passing
test case."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from rflint.results import ModelReport
from rflint.ir import Finding, Severity
from rflint.report.common import RenderContext, display_path, location_text


def render(reports: Sequence[ModelReport], findings: Sequence[Finding], ctx: RenderContext) -> str:
    models = list(dict.fromkeys([r.spec.display_name for r in reports] + [f.model for f in findings]))
    errors = sum(f.severity is Severity.ERROR for f in findings)
    root = ET.Element("testsuites", name="rflint", tests="0", failures=str(errors))
    total = 0
    for model in models:
        mine = [f for f in findings if f.model == model]
        failing = sum(f.severity is Severity.ERROR for f in mine)
        suite = ET.SubElement(root, "testsuite", name=model, tests=str(max(len(mine), 1)), failures=str(failing))
        facts = ctx.facts.get(model)
        if facts is not None:  # which tracer read the model, and why the fallback was needed
            props = ET.SubElement(suite, "properties")
            for key, value in facts.as_dict().items():
                ET.SubElement(props, "property", name=key, value=", ".join(map(str, value)) if isinstance(value, list) else str(value))
        total += max(len(mine), 1)
        if not mine:
            ET.SubElement(suite, "testcase", name="rflint", classname=model)
        for f in mine:
            attrs = {"name": f"{f.code} {f.layer or '<model>'}", "classname": model}
            if f.source is not None:
                attrs.update(file=display_path(f.source.file, ctx), line=str(f.source.line))
            case = ET.SubElement(suite, "testcase", attrs)
            body = f"{location_text(f, ctx)}: {f.code} [{f.severity.value}] {f.message}"
            if f.hint:
                body += f"\nhelp: {f.hint}"
            if f.severity is Severity.ERROR:
                ET.SubElement(case, "failure", message=f"[{f.severity.value}] {f.message}", type=f.code).text = body
            else:
                ET.SubElement(case, "system-out").text = body
    root.set("tests", str(total))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
