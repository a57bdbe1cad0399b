"""Untrusted text in reports: one helper per family of output formats.

Layer names are ``nn.ModuleDict`` keys, model names and paths come from the user's project, and
messages quote both: any of them can hold control characters. Written raw they let a model
rewrite the reader's terminal (ESC sequences, ``\\r`` overwriting a line, C1 controls such as
CSI ``\\x9b``), forge extra lines in line-based formats, reorder text with bidirectional
overrides ("trojan source"), or make a JUnit file ill-formed XML. Each family gets one helper:

- **text** (``full``, ``concise``, ``github``, ``markdown``, and rflint's own lines on stderr):
  :func:`text` turns every such character into a visible escape (``\\x1b``, ``\\u202e``) in
  the *data* before it is laid out, so a renderer's own colours and line breaks are untouched;
- **XML** (``junit``, ``html``): the markup escapes ``<>&"'`` itself (ElementTree,
  ``html.escape``), and :func:`xml_document` replaces every character XML 1.0 forbids or a
  terminal would act on with the same visible escape; markup never holds such a character, so
  only data is changed;
- **JSON** (``json``, ``json-lines``, ``sarif``): ``json.dumps`` escapes C0 controls and quotes
  and keeps the data exact; :func:`json_document` adds ``\\uXXXX`` escapes for what it leaves
  raw (DEL, C1, line and paragraph separators, bidi controls, lone surrogates from
  undecodable file names), which in JSON can only sit inside strings.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from rflint.ir import Finding

if TYPE_CHECKING:
    from rflint.report.common import RenderContext
    from rflint.results import ModelReport

#: characters a reader's terminal or parser acts on, beyond the C0 controls: DEL and C1,
#: line/paragraph separators, bidirectional embeddings/overrides/isolates, the BOM, lone
#: surrogates (a file name that is not UTF-8) and the non-characters U+FFFE/U+FFFF
_ACTIVE = "\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff\ud800-\udfff\ufffe\uffff"
_TEXT_LINE = re.compile(f"[\x00-\x1f{_ACTIVE}]")
_TEXT_LINES = re.compile(f"[\x00-\x09\x0b-\x1f{_ACTIVE}]")
_XML = re.compile(f"[\x00-\x08\x0b-\x1f{_ACTIVE}]")  # tab and newline are markup's own whitespace
_JSON = re.compile(f"[{_ACTIVE}]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def text(value: str, multiline: bool = False) -> str:
    """``value`` with every control character shown as an escape (``\\x1b``, ``\\r``
    becomes ``\\x0d``); with ``multiline`` newlines are kept (a message's paragraphs)."""
    return (_TEXT_LINES if multiline else _TEXT_LINE).sub(_visible, value)


def xml_document(document: str) -> str:
    """An XML or HTML document with every character XML 1.0 forbids, or a terminal acts on,
    shown as an escape; the markup itself is left as it is."""
    return _XML.sub(_visible, document)


def json_document(document: str) -> str:
    """A JSON document (from ``json.dumps(..., ensure_ascii=False)``) with the characters that
    encoder leaves raw written as ``\\uXXXX`` escapes: the parsed data is unchanged."""
    return _JSON.sub(lambda m: "".join(f"\\u{u:04x}" for u in _utf16(m.group())), document)


def _utf16(char: str) -> list[int]:
    code = ord(char)
    if code < 0x10000:
        return [code]
    code -= 0x10000
    return [0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF)]


# ---------------------------------------------------------------------------------------------
# the text family: the data, before a renderer lays it out


def text_finding(f: Finding) -> Finding:
    source = f.source if f.source is None else replace(f.source, file=text(f.source.file))
    return replace(
        f, model=text(f.model), layer=text(f.layer), message=text(f.message, multiline=True), hint=text(f.hint, multiline=True), source=source
    )


def text_inputs(
    reports: Sequence[ModelReport], findings: Sequence[Finding], ctx: RenderContext
) -> tuple[list[ModelReport], list[Finding], RenderContext]:
    """What a text renderer gets: every user-supplied string escaped with :func:`text`
    (model and layer names, paths, messages, hints, source lines, tracer notes)."""
    shown = [replace(r, spec=replace(r.spec, name=text(r.spec.display_name))) for r in reports]
    facts = {
        text(model): replace(
            fact,
            tracer_reason=text(fact.tracer_reason),
            global_context=tuple(text(g) for g in fact.global_context),
            notes=tuple(text(n) for n in fact.notes),
        )
        for model, fact in ctx.facts.items()
    }
    snippets = {(text(file), line): text(source) for (file, line), source in ctx.snippets.items()}
    out = replace(ctx, facts=facts, snippets=snippets, baseline_path=text(ctx.baseline_path))
    return shown, [text_finding(f) for f in findings], out
