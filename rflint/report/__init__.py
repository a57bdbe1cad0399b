"""Output formats. One module per format, each exposing the same pure function::

    render(reports: Sequence[ModelReport], findings: Sequence[Finding], ctx: RenderContext) -> str

``reports`` are the models that were checked (for per-model tables and empty test suites),
``findings`` are the findings to show after configuration, suppressions and baseline (sorted by
location here, once, for every format), and ``ctx`` carries everything else a renderer may need. Renderers do no I/O, read no environment
and check no TTY: the CLI decides colour, reads source lines and rule pages, and writes.

``FORMATS`` is the whole registry: adding a format is a module and a line here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from enum import Enum

from rflint.results import ModelReport
from rflint.ir import Finding
from rflint.report import concise, full, github, json_format, json_lines, junit, markdown, sarif
from rflint.report.common import RenderContext, by_location, model_facts
from rflint.report.statistics import render_statistics
from rflint.viz import html as html_report

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


FORMATS: dict[str, Renderer] = {
    OutputFormat.FULL.value: full.render,
    OutputFormat.CONCISE.value: concise.render,
    OutputFormat.JSON.value: json_format.render,
    OutputFormat.JSON_LINES.value: json_lines.render,
    OutputFormat.GITHUB.value: github.render,
    OutputFormat.SARIF.value: sarif.render,
    OutputFormat.JUNIT.value: junit.render,
    OutputFormat.MARKDOWN.value: markdown.render,
    OutputFormat.HTML.value: html_report.render,
}

#: formats whose output is for programs: written to stdout byte for byte, never through rich
MACHINE_FORMATS = frozenset({"json", "json-lines", "github", "sarif", "junit"})
#: formats that end with a summary line (what was found, what a baseline hid or recorded)
SUMMARY_FORMATS = frozenset({"full", "concise", "markdown"})


def render(fmt: str | OutputFormat, reports: Sequence[ModelReport], findings: Sequence[Finding], ctx: RenderContext) -> str:
    """Render ``findings`` in format ``fmt``, sorted by location."""
    key = fmt.value if isinstance(fmt, OutputFormat) else fmt
    if not ctx.facts:
        ctx = replace(ctx, facts=model_facts(reports))
    return FORMATS[key](reports, by_location(findings, ctx), ctx)


__all__ = ["FORMATS", "MACHINE_FORMATS", "SUMMARY_FORMATS", "OutputFormat", "RenderContext", "Renderer", "render", "render_statistics"]
