"""Corrupt output: user strings (layer names, model names, paths, messages) in every format.

A layer name is an ``nn.ModuleDict`` key: any string. Every output format must stay a valid
document (JSON parses, SARIF validates against its schema, JUnit and HTML parse) and no text
format may carry a raw control character to the reader's terminal or log viewer, whatever the
names hold. Two layers of tests: hypothesis drives the renderers with arbitrary strings (fast,
no torch), and one real model with hostile ModuleDict keys goes through the CLI in every format
at once.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rflint.ir import Finding, Severity, Source
from rflint.report import FAMILIES, FORMATS, render
from rflint.report import escape
from rflint.report.common import ModelFacts, RenderContext

SARIF_SCHEMA = json.loads((Path(__file__).parents[1] / "data" / "sarif-schema-2.1.0.json").read_text())
#: what no output may carry raw: C0 controls but tab and newline, DEL, C1, bidi controls,
#: line/paragraph separators, lone surrogates
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
HOSTILE = [
    "esc\x1b[31mred\x1b[0m",
    "cr\roverwrite",
    "new\nline",
    "del\x7f",
    "c1\x85\x9bcsi",
    'dq"uote',
    "sq'uote",
    "<tag>&amp;",
    "uni\u00e9\u4e2d\U0001f600",
    "bidi\u202egnp_exe",
    "nul\x00byte",
    "bell\x07\x08",
    "tab\tx",
    "ls\u2028ps\u2029",
]


def _finding(model: str, layer: str, message: str, path: str) -> Finding:
    return Finding(
        "RF101", "unproductive-layer", Severity.ERROR, message, model, layer, Source(path, 3, 2), (32, 32), {"r_min": [5, 5]}, hint=message
    )


def _ctx(model: str, reason: str) -> RenderContext:
    return RenderContext(root="/repo", facts={model: ModelFacts(tracer="export", tracer_reason=reason, global_context=(reason,), notes=(reason,))})


def check_document(fmt: str, out: str) -> None:
    """``out`` is a valid document of ``fmt`` with no raw control character."""
    assert not RAW.search(out), f"{fmt}: raw {RAW.search(out).group()!r}"
    if fmt == "json":
        json.loads(out)
    elif fmt == "json-lines":
        for line in out.splitlines():
            json.loads(line)
    elif fmt == "sarif":
        jsonschema.validate(json.loads(out), SARIF_SCHEMA)
    elif fmt == "junit":
        ET.fromstring(out.encode("utf-8"))
    elif fmt == "html":
        HTMLParser().feed(out)
    out.encode("utf-8")  # writable as UTF-8: no lone surrogates


names = st.text(st.characters(codec=None, exclude_categories=()), min_size=1, max_size=12) | st.sampled_from(HOSTILE)


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "html"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=names, layer=names, message=names, path=names)
def test_every_format_is_a_valid_document_whatever_the_strings_hold(fmt, model, layer, message, path):
    findings = [_finding(model, layer, message, f"/repo/{path}.py"), _finding(model, f"{layer}.1", "plain", "/repo/m.py")]
    out = render(fmt, [], findings, _ctx(model, message))
    check_document(fmt, out)


@given(value=st.text())
def test_json_escaping_keeps_the_data_exact(value):
    document = escape.json_document(json.dumps({"layer": value}, ensure_ascii=False))
    assert not RAW.search(document)
    assert json.loads(document) == {"layer": value}


@given(value=st.text())
def test_text_escaping_leaves_one_line_without_control_characters(value):
    shown = escape.text(value)
    assert not RAW.search(shown) and "\n" not in shown and "\t" not in shown
    assert escape.text(value, multiline=True).count("\n") == value.count("\n")


def test_text_escapes_are_visible():
    assert escape.text("a\x1b[1mb\r\x9b\u202e") == "a\\x1b[1mb\\x0d\\x9b\\u202e"


def test_every_format_has_an_escaping_family():
    assert set(FAMILIES) == set(FORMATS)


# ---------------------------------------------------------------------------------------------
# a real model through the CLI

MODEL = '''\
from torch import nn

NAMES = {names!r}


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleDict({{n: nn.Conv2d(3, 3, 3, padding=1) for n in NAMES}})

    def forward(self, x):
        for block in self.blocks.values():
            x = block(x)
        return x


def build():
    return Net()
'''


def test_every_output_format_of_a_model_with_hostile_layer_names_is_valid(tmp_path):
    """One run writes every format (``-o FORMAT:PATH``); at input 4 most of the 3x3 layers
    are unproductive, so each hostile name appears in findings."""
    (tmp_path / "net.py").write_text(MODEL.format(names=HOSTILE))
    outs = {fmt: tmp_path / f"out.{fmt}" for fmt in FORMATS}
    args = [sys.executable, "-m", "rflint", "check", "net.py:build", "--input-size", "4", "--task", "classification", "--no-cache", "--output-format", "concise"]
    for fmt, path in outs.items():
        args += ["-o", f"{fmt}:{path}"]
    run = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, errors="surrogateescape", timeout=300)
    assert run.returncode == 1, run.stderr
    assert not RAW.search(run.stdout) and not RAW.search(run.stderr)
    for fmt, path in outs.items():
        check_document(fmt, path.read_text(encoding="utf-8"))
    layers = {f["layer"] for f in json.loads(outs["json"].read_text(encoding="utf-8"))}
    assert {f"blocks.{n}" for n in HOSTILE[1:]} <= layers  # JSON keeps the names exactly
    concise = outs["concise"].read_text(encoding="utf-8")
    assert "blocks.cr\\x0doverwrite" in concise and "blocks.c1\\x85\\x9bcsi" in concise  # shown, escaped


def test_an_error_line_with_control_characters_stays_one_line(tmp_path):
    """The model's own exception message reaches rflint's error line: it is escaped there."""
    (tmp_path / "net.py").write_text('def build():\n    raise ValueError("\\x1b[2J\\rwiped\\x9b")\n')
    run = subprocess.run(
        [sys.executable, "-m", "rflint", "check", "net.py:build", "--input-size", "8", "--no-cache"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 2
    (line,) = run.stderr.strip().splitlines()
    assert not RAW.search(line) and "\\x1b[2J" in line and "wiped\\x9b" in line
