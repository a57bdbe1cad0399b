"""Output formats. One module per format, each exposing the same pure function::

    render(reports: Sequence[ModelReport], findings: Sequence[Finding], ctx: RenderContext) -> str

``reports`` are the models that were checked (for per-model tables and empty test suites),
``findings`` are the findings to show after configuration, suppressions and baseline (sorted by
location here, once, for every format), and ``ctx`` carries everything else a renderer may need. Renderers do no I/O, read no environment
and check no TTY: the CLI decides colour, reads source lines and rule pages, and writes.

``FORMATS`` is the whole registry: adding a format is a module and a line here. A renderer's
module is imported when that format is used: the HTML page alone pulls in ``xml.sax`` and with
it ``urllib.request``, ``http`` and ``ssl``, a tenth of a cached ``rflint check``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from enum import Enum

from rflint.results import ModelReport
from rflint.ir import Finding
from rflint.report.common import RenderContext, by_location, model_facts
from rflint.report.statistics import render_statistics

Renderer = Callable[[Sequence[ModelReport], Sequence[Finding], RenderContext], str]


class OutputFormat(str, Enum):
    """Values of ``--output-format`` (and ``RFLINT_OUTPUT_FORMAT``)."""

    FULL = "full"
    CONCISE = "concise"
    JSON = "json"
    JSON_LINES = "json-lines"
    GITHUB = "github"
    SARIF = "sarif"
    JUNIT = "junit"
    MARKDOWN = "markdown"
    HTML = "html"


class _Renderers(Mapping[str, Renderer]):
    """Format name -> its module's ``render``, imported on first use."""

    def __init__(self, modules: Mapping[str, str]) -> None:
        self._modules = dict(modules)

    def __getitem__(self, key: str) -> Renderer:
        return importlib.import_module(self._modules[key]).render

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __len__(self) -> int:
        return len(self._modules)


FORMATS: Mapping[str, Renderer] = _Renderers(
    {
        OutputFormat.FULL.value: "rflint.report.full",
        OutputFormat.CONCISE.value: "rflint.report.concise",
        OutputFormat.JSON.value: "rflint.report.json_format",
        OutputFormat.JSON_LINES.value: "rflint.report.json_lines",
        OutputFormat.GITHUB.value: "rflint.report.github",
        OutputFormat.SARIF.value: "rflint.report.sarif",
        OutputFormat.JUNIT.value: "rflint.report.junit",
        OutputFormat.MARKDOWN.value: "rflint.report.markdown",
        OutputFormat.HTML.value: "rflint.report.html",
    }
)

#: formats whose output is for programs: written to stdout byte for byte, never through rich
MACHINE_FORMATS = frozenset({"json", "json-lines", "github", "sarif", "junit"})
#: how each format treats untrusted text (:mod:`rflint.report.escape`): a format's family is
#: part of registering it
FAMILIES: Mapping[str, str] = {
    "full": "text", "concise": "text", "github": "text", "markdown": "text",
    "junit": "xml", "html": "xml",
    "json": "json", "json-lines": "json", "sarif": "json",
}
#: formats that end with a summary line (what was found, what a baseline hid or recorded)
SUMMARY_FORMATS = frozenset({"full", "concise", "markdown"})


def render(fmt: str | OutputFormat, reports: Sequence[ModelReport], findings: Sequence[Finding], ctx: RenderContext) -> str:
    """Render ``findings`` in format ``fmt``, sorted by location, with the user's strings
    (names, paths, messages) escaped as the format's family needs (:data:`FAMILIES`)."""
    from rflint.report import escape

    key = fmt.value if isinstance(fmt, OutputFormat) else fmt
    if not ctx.facts:
        ctx = replace(ctx, facts=model_facts(reports))
    ordered = by_location(findings, ctx)
    family = FAMILIES[key]
    if family == "text":
        shown, ordered, ctx = escape.text_inputs(reports, ordered, ctx)
        return FORMATS[key](shown, ordered, ctx)
    document = FORMATS[key](reports, ordered, ctx)
    return escape.xml_document(document) if family == "xml" else escape.json_document(document)


__all__ = ["FAMILIES", "FORMATS", "MACHINE_FORMATS", "SUMMARY_FORMATS", "OutputFormat", "RenderContext", "Renderer", "render", "render_statistics"]
