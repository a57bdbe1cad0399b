"""``rflint check`` (with its result cache and ``rflint clean``) and ``rflint rule``.

No ``from __future__ import annotations`` here: typer reads every command's annotations on
every run, and strings would each be compiled and evaluated (a tenth of a cached answer).
"""

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from rflint.errors import UsageError
from rflint.ir import Finding, Severity
from rflint.cli.options import (
    CONFIG,
    OUTPUT,
    Color,
    ColorOption,
    Command,
    ConfigFile,
    Isolated,
    Jobs,
    ModelOptions,
    model_options,
    NoCache,
    OutputFiles,
    TextFormat,
    Timeout,
    Verbose,
    cache_root,
    config_memo,
    format_alias,
    format_option,
    job_count,
    load_command_config,
    pick_format,
    resolve_models,
    split_selectors,
    timeout_seconds,
)
from rflint.cli.outputs import Output, parse_outputs
from rflint.report import OutputFormat
from rflint.spec import ModelSpec

if TYPE_CHECKING:
    from rflint.project.config import Config

from rflint.cli.base import (
    EXIT_ERROR,
    EXIT_FINDINGS,
    EXIT_OK,
    command,
    emit,
    fail,
    note,
    progress_display,
    render_context,
    run_guarded,
    say_notes,
)

# ---------------------------------------------------------------------------------------------
# check


def final_exit_code(findings: Sequence[Finding], failed: bool, exit_zero: bool = False) -> int:
    """2 if a model could not be checked (``--exit-zero`` never masks it), else 1 if a reported
    finding is at error level (unless ``--exit-zero``), else 0."""
    if failed:
        return EXIT_ERROR
    if not exit_zero and any(f.severity is Severity.ERROR for f in findings):
        return EXIT_FINDINGS
    return EXIT_OK


def report_baseline(outcome: Any, baseline: Path | None, summarised: bool) -> None:
    """What a baseline did, on stderr: stale entries always; what was written or hidden only
    when no summary line on stdout says it already."""
    from rflint.report.common import baseline_summary

    if outcome is None:
        return
    for model, layer, code, count in outcome.stale:
        where = f"{model} :: {layer}" if layer else model
        note(f"warning: stale baseline entry {code} {where} ({count} fixed)")
    if outcome.stale:
        note(f"hint: run with --write-baseline {baseline} to drop the fixed entries")
    text = baseline_summary(outcome, str(baseline or ""))
    if text and not summarised:
        note(text)


@command(cls=Command)
@model_options
def check(
    targets: Annotated[Optional[list[str]], typer.Argument(help="Models: file.py[:attr], pkg.mod:attr, torchvision:NAME, timm:NAME, model.onnx, or a configured model's name; globs allowed. None: every \\[\\[tool.rflint.models]] entry.")] = None,
    given: ModelOptions = ModelOptions(),
    output_format: Annotated[Optional[OutputFormat], format_option("Output format (default: full on a terminal, concise otherwise).", envvar="RFLINT_OUTPUT_FORMAT")] = None,
    format_: Annotated[Optional[OutputFormat], format_alias()] = None,
    output_file: OutputFiles = None,
    statistics: Annotated[bool, typer.Option("--statistics", help="Show counts per rule instead of the findings.", rich_help_panel=OUTPUT)] = False,
    exit_zero: Annotated[bool, typer.Option("--exit-zero", help="Exit 0 even with error-level findings (2 for failures stays).", rich_help_panel=OUTPUT)] = False,
    color: ColorOption = Color.AUTO,
    config_file: ConfigFile = None,
    isolated: Isolated = False,
    select: Annotated[Optional[list[str]], typer.Option("--select", metavar="RULES", help="Rules to enable (codes, prefixes, names, ALL); replaces the config's select.", rich_help_panel=CONFIG)] = None,
    extend_select: Annotated[Optional[list[str]], typer.Option("--extend-select", metavar="RULES", help="Rules to enable on top of select.", rich_help_panel=CONFIG)] = None,
    ignore: Annotated[Optional[list[str]], typer.Option("--ignore", metavar="RULES", help="Rules to disable.", rich_help_panel=CONFIG)] = None,
    baseline: Annotated[Optional[Path], typer.Option("--baseline", metavar="FILE", help="Hide the findings recorded in this baseline file.", rich_help_panel="Baseline")] = None,
    write_baseline: Annotated[Optional[Path], typer.Option("--write-baseline", metavar="FILE", help="Record the current findings (a rewrite only removes fixed ones).", rich_help_panel="Baseline")] = None,
    force: Annotated[bool, typer.Option("--force", help="With --write-baseline: also add new findings.", rich_help_panel="Baseline")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Fail on unknown ops (RF001 as an error): the fields after them are lower bounds.", rich_help_panel=CONFIG)] = False,
    no_cache: NoCache = False,
    jobs: Jobs = None,
    timeout: Timeout = None,
    verbose: Verbose = False,
) -> None:
    """Lint models: report unproductive and critical layers (exit 1 on error-level findings)."""
    from rflint.engine import pipeline as engine
    from rflint.report import SUMMARY_FORMATS, render, render_statistics
    from rflint.project.rule_docs import pages
    from rflint.project.suppressions import source_lines

    def body() -> int:
        config = load_command_config(config_file, isolated, memo=config_memo(no_cache)).with_selection(
            select=split_selectors(select), extend_select=split_selectors(extend_select) or (), ignore=split_selectors(ignore) or ()
        )
        if strict:
            config = config.with_severity("RF001", Severity.ERROR)
        opts = given
        specs = resolve_models(targets or [], opts, config, "check")
        names = [f.value for f in OutputFormat]
        to_terminal = any(o.primary and o.to_stdout for o in parse_outputs(output_file, "", names)) and sys.stdout.isatty()
        fmt = pick_format(output_format, format_, OutputFormat.FULL if to_terminal else OutputFormat.CONCISE)
        outputs = absolute_outputs(parse_outputs(output_file, fmt.value, names))
        formats = {o.fmt for o in outputs}
        linter = run_linter(config, no_cache)
        from rflint.engine.sandbox import Sandbox  # its process machinery: not on a hit

        sandbox = Sandbox(timeout_seconds(timeout, config.timeout))
        applied = configured_baseline(baseline, write_baseline, config)
        with progress_display(len(specs)) as on_model:
            result = engine.check(
                specs,
                config,
                baseline=applied,
                write_baseline=write_baseline,
                force=force,
                hints=refinement_hint() if OutputFormat.FULL.value in formats else None,
                on_model=on_model,
                on_failure=lambda spec, exc: fail(exc, verbose, spec.display_name),
                linter=linter,
                jobs=job_count(jobs),
                sandbox=sandbox,
            )
        say_notes(result.reports)
        prune_cache(linter)
        findings = list(result.findings)
        stdout_summary = any(o.to_stdout and o.fmt in SUMMARY_FORMATS and not (statistics and o.primary) for o in outputs)
        report_baseline(result.baseline, applied or write_baseline, stdout_summary)
        extra = {
            "rule_docs": pages() if OutputFormat.SARIF.value in formats else {},
            "snippets": source_lines(findings) if OutputFormat.FULL.value in formats else {},
            "failed": len(result.failures),
            "baseline": result.baseline,
            "baseline_path": str(applied or write_baseline or ""),
        }

        def text(output: Output) -> str:
            if statistics and output.primary:
                failed = [f.spec.display_name for f in result.failures]
                return render_statistics(findings, as_json=output.fmt in ("json", "json-lines"), failed=failed)
            ctx = render_context(config.root, output, color if output.fmt == "full" else Color.NEVER, **extra)
            return render(output.fmt, result.reports, findings, ctx)

        emit(outputs, text)
        return final_exit_code(findings, bool(result.failures), exit_zero)

    raise typer.Exit(run_guarded(verbose, body))


def refinement_hint() -> Callable[[Any], str | None]:
    """The advisor's best edit for RF103 (imported only for the format that shows it)."""
    from rflint.advise.advisor import hint_for_rf103

    return hint_for_rf103


def absolute_outputs(outputs: Sequence[Output]) -> list[Output]:
    """Output files resolved against the working directory the command started in, before any
    model's code runs (defence in depth: that code runs in a child, see rflint.engine.sandbox)."""
    return [o if o.to_stdout else replace(o, path=os.path.abspath(o.path)) for o in outputs]


# ---------------------------------------------------------------------------------------------
# the result cache


def configured_baseline(flag: Path | None, write: Path | None, config: "Config") -> Path | None:
    """``--baseline FILE``, else the config's ``baseline`` key; none while ``--write-baseline``
    records a new one (it reads only the file it writes, or ``--baseline``)."""
    if flag is not None or write is not None or config.baseline is None:
        return flag
    try:  # shown as the user writes it from here
        return config.baseline.relative_to(Path.cwd())
    except ValueError:
        return config.baseline


def run_linter(config: "Config", no_cache: bool) -> Callable[[ModelSpec], Any]:
    """The engine's linter for a ``check`` run: through the result cache unless ``--no-cache``."""
    from rflint.engine import pipeline as engine

    if no_cache:
        return engine.lint
    from rflint.engine.cache import CachedLinter, ResultCache

    cache = ResultCache.for_run(config.root, config.table, config.cache_dir, os.environ.get("RFLINT_CACHE_DIR"))
    return CachedLinter(cache, engine.lint)


def prune_cache(linter: Any) -> None:
    cache = getattr(linter, "cache", None)
    if cache is not None:
        cache.prune()


@command(cls=Command)
def clean(
    config_file: Annotated[Optional[Path], typer.Option("--config", help="Config file whose cache-dir to clean instead of the nearest one's.")] = None,
    verbose: Verbose = False,
) -> None:
    """Remove the result cache (.rflint_cache next to the config file, cache-dir, or $RFLINT_CACHE_DIR)."""

    def body() -> int:
        from rflint.engine.cache_dir import clean as remove
        from rflint.project.config import load_config

        root = cache_root(load_config(config_file))
        try:
            removed = remove(root)
        except ValueError as exc:
            raise UsageError(str(exc), hint="point cache-dir or RFLINT_CACHE_DIR at the cache, or delete the folder yourself") from None
        except OSError as exc:
            raise UsageError(f"cannot remove {root}: {exc.strerror or exc}") from None
        note(f"removed {root}" if removed else f"no cache at {root}")
        return EXIT_OK

    raise typer.Exit(run_guarded(verbose, body))


@command(cls=Command)
def rule(
    code: Annotated[Optional[str], typer.Argument(help="Rule code or name, e.g. RF101 or unproductive-layer.")] = None,
    show_all: Annotated[bool, typer.Option("--all", help="Every rule.")] = False,
    output_format: Annotated[Optional[TextFormat], format_option("text (the Markdown page) or json.")] = None,
    format_: Annotated[Optional[TextFormat], format_alias()] = None,
    output_file: OutputFiles = None,
    verbose: Verbose = False,
) -> None:
    """Explain a rule: print its documentation page (or the whole registry with --all)."""
    from rflint.project.rule_docs import render_all, render_rule

    def body() -> int:
        fmt = pick_format(output_format, format_, TextFormat.TEXT)
        outputs = parse_outputs(output_file, fmt.value, [f.value for f in TextFormat])
        if not show_all and not code:
            raise UsageError("give a rule code (rflint rule RF101) or --all")

        def text(output: Output) -> str:
            as_json = output.fmt == TextFormat.JSON.value
            page = render_all(as_json=as_json) if show_all else render_rule(code or "", as_json=as_json)
            return page if page.endswith("\n") else page + "\n"

        emit(outputs, text)
        return EXIT_OK

    raise typer.Exit(run_guarded(verbose, body))


