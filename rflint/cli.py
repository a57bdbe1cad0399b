"""The ``rflint`` command line. The only module that prints, reads the environment or picks
exit codes: 0 = no error-level findings, 1 = findings at error level, 2 = could not run.

Every command speaks one option vocabulary: the model options (``--input-size``,
``--input-shape``, ``--model-kwargs``, ``--leaf-module``, ``--trust-pickle``),
``--output-format``, ``-o/--output-file`` (repeatable, ``FORMAT:PATH`` or ``PATH``),
``--color``, ``--config``, ``--isolated`` and ``--verbose``; every command reads the nearest
config file and takes a configured model's ``name`` wherever it takes a target. Nothing here
imports torch at module level.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

from rflint import __version__
from rflint.dependencies import broken_install, error_line
from rflint.errors import RflintError, UsageError
from rflint.ir import Finding, Severity
from rflint.options import (
    CONFIG,
    IMAGE_SUFFIXES,
    MODEL,
    OUTPUT,
    Color,
    ColorOption,
    Command,
    ConfigFile,
    GraphFormat,
    Group,
    ImageFormat,
    InputShape,
    InputSize,
    Isolated,
    LeafModules,
    ModelKwargs,
    ModelOptions,
    OutputFiles,
    TableFormat,
    TextFormat,
    TrustPickle,
    Verbose,
    format_alias,
    format_option,
    load_command_config,
    parse_size,
    pick_format,
    resolve_models,
    split_selectors,
)
from rflint.outputs import Output, parse_outputs, write
from rflint.report import OutputFormat
from rflint.spec import ModelSpec


app = typer.Typer(
    name="rflint",
    help="Static receptive-field linter for PyTorch CNNs: finds layers that cannot add context.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    cls=Group,
)
command = app.command  # every command: app.command(cls=Command)

stderr = Console(stderr=True)

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


# ---------------------------------------------------------------------------------------------
# error handling


def fail(exc: BaseException, verbose: bool) -> None:
    """One line on stderr naming the problem (and a hint), or the traceback with --verbose. A
    dependency that fails to import is named as such (a broken install, not a bug)."""
    if verbose:
        traceback.print_exception(exc, file=sys.stderr)
    if isinstance(exc, RflintError):
        message, hint = str(exc), exc.hint
    else:
        message, hint = broken_install(exc) or (
            f"unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": "),
            "this may be a bug in rflint; rerun with --verbose for the traceback",
        )
    stderr.print(error_line(message, hint), markup=False, highlight=False, soft_wrap=True)


def run_guarded(verbose: bool, fn: Callable[[], int]) -> int:
    try:
        return fn()
    except (RflintError, Exception) as exc:  # noqa: BLE001 - every failure becomes exit 2
        fail(exc, verbose)
        return EXIT_ERROR


def note(text: str) -> None:
    """One plain line on stderr, prefixed ``rflint:``."""
    stderr.print(f"rflint: {text}", markup=False, highlight=False, soft_wrap=True)


# ---------------------------------------------------------------------------------------------
# rendering and writing

def use_color(choice: Color, stream: Any) -> bool:
    """``--color``: always/never win; auto honours NO_COLOR, then FORCE_COLOR, then the TTY."""
    if choice is Color.ALWAYS:
        return True
    if choice is Color.NEVER or os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return bool(getattr(stream, "isatty", lambda: False)())


def render_context(root: Path | str, output: Output, color: Color, wide: bool = False, **extra: Any) -> Any:
    """The render context for one output: colour and width follow the terminal when the output
    is a terminal; a file gets colour only with ``--color always``, and a width of 100 (200 for
    ``wide`` tables, which would otherwise fold every cell)."""
    from rflint.report.common import RenderContext

    stream = sys.stdout if output.to_stdout else None
    tty = bool(stream is not None and stream.isatty())
    width = stderr.width if tty else (200 if wide else 100)
    return RenderContext(root=str(root), color=use_color(color, stream), width=width, **extra)


def show_progress() -> bool:
    """A transient progress display only for a person at a terminal: never in CI or pre-commit."""
    return sys.stderr.isatty() and not os.environ.get("CI") and not os.environ.get("PRE_COMMIT")


@contextlib.contextmanager
def progress_display(total: int) -> Iterator[Callable[[ModelSpec], None] | None]:
    """A transient "checking MODEL" display on stderr for several models at a terminal; yields
    the engine's ``on_model`` callback (None when nothing is shown)."""
    if not (show_progress() and total > 1):
        yield None
        return
    from rich.progress import Progress

    progress = Progress(console=stderr, transient=True)
    task = progress.add_task("checking", total=total)
    started = False

    def on_model(spec: ModelSpec) -> None:
        nonlocal started
        if started:
            progress.advance(task)
        started = True
        progress.update(task, description=f"checking {spec.display_name}")

    progress.start()
    try:
        yield on_model
    finally:
        progress.stop()


def emit(outputs: Sequence[Output], render: Callable[[Output], str | bytes], announce: bool = False) -> None:
    """Render and write every output (``announce``: say on stderr which files were written)."""
    for output in outputs:
        write(output, render(output), sys.stdout)
        if announce and not output.to_stdout:
            note(f"wrote {output.path}")


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


def say_notes(reports: Sequence[Any]) -> None:
    """Once per model on stderr: why the fallback tracer read it, and a guessed input shape."""
    for report in reports:
        name = report.spec.display_name
        if report.tracer_reason:
            note(f"{name}: traced with torch.export, because {report.tracer_reason}")
        for text in report.notes:
            note(f"{name}: {text}")


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
def check(
    targets: Annotated[Optional[list[str]], typer.Argument(help="Models: file.py[:attr], pkg.mod:attr, torchvision:NAME, timm:NAME, model.onnx, or a configured model's name; globs allowed. None: every \\[\\[tool.rflint.models]] entry.")] = None,
    input_size: InputSize = None,
    input_shape: InputShape = None,
    model_kwargs: ModelKwargs = None,
    leaf_module: LeafModules = None,
    trust_pickle: TrustPickle = False,
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
    verbose: Verbose = False,
) -> None:
    """Lint models: report unproductive and critical layers (exit 1 on error-level findings)."""
    from rflint import engine
    from rflint.report import SUMMARY_FORMATS, render, render_statistics
    from rflint.rule_docs import pages
    from rflint.suppressions import source_lines

    def body() -> int:
        config = load_command_config(config_file, isolated).with_selection(
            select=split_selectors(select), extend_select=split_selectors(extend_select) or (), ignore=split_selectors(ignore) or ()
        )
        if strict:
            config = config.with_severity("RF001", Severity.ERROR)
        opts = ModelOptions(input_size, input_shape, model_kwargs, tuple(leaf_module or ()), trust_pickle)
        specs = resolve_models(targets or [], opts, config, "check")
        names = [f.value for f in OutputFormat]
        to_terminal = any(o.primary and o.to_stdout for o in parse_outputs(output_file, "", names)) and sys.stdout.isatty()
        fmt = pick_format(output_format, format_, OutputFormat.FULL if to_terminal else OutputFormat.CONCISE)
        outputs = parse_outputs(output_file, fmt.value, names)
        formats = {o.fmt for o in outputs}
        with progress_display(len(specs)) as on_model:
            result = engine.check(
                specs,
                config,
                baseline=baseline,
                write_baseline=write_baseline,
                force=force,
                hints=OutputFormat.FULL.value in formats,
                on_model=on_model,
                on_failure=lambda spec, exc: fail(exc, verbose),
            )
        say_notes(result.reports)
        findings = list(result.findings)
        stdout_summary = any(o.to_stdout and o.fmt in SUMMARY_FORMATS and not (statistics and o.primary) for o in outputs)
        report_baseline(result.baseline, baseline or write_baseline, stdout_summary)
        extra = {
            "rule_docs": pages() if OutputFormat.SARIF.value in formats else {},
            "snippets": source_lines(findings) if OutputFormat.FULL.value in formats else {},
            "failed": len(result.failures),
            "baseline": result.baseline,
            "baseline_path": str(baseline or write_baseline or ""),
        }

        def text(output: Output) -> str:
            if statistics and output.primary:
                return render_statistics(findings, as_json=output.fmt in ("json", "json-lines"))
            ctx = render_context(config.root, output, color if output.fmt == "full" else Color.NEVER, **extra)
            return render(output.fmt, result.reports, findings, ctx)

        emit(outputs, text)
        return final_exit_code(findings, bool(result.failures), exit_zero)

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
    from rflint.rule_docs import render_all, render_rule

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


# ---------------------------------------------------------------------------------------------
# inspect and suggest


@command(cls=Command)
def inspect(
    targets: Annotated[Optional[list[str]], typer.Argument(help="Models or configured model names (none: every configured model).")] = None,
    input_size: InputSize = None,
    input_shape: InputShape = None,
    model_kwargs: ModelKwargs = None,
    leaf_module: LeafModules = None,
    trust_pickle: TrustPickle = False,
    show_all: Annotated[bool, typer.Option("--all", help="Show pointwise and reshape layers too.", rich_help_panel=OUTPUT)] = False,
    output_format: Annotated[Optional[TableFormat], format_option("table or json.")] = None,
    format_: Annotated[Optional[TableFormat], format_alias()] = None,
    output_file: OutputFiles = None,
    color: ColorOption = Color.AUTO,
    config_file: ConfigFile = None,
    isolated: Isolated = False,
    verbose: Verbose = False,
) -> None:
    """Show every layer's receptive field, jump, feature-map size, channels, parameters, MACs and status."""

    def body() -> int:
        from rflint import engine
        from rflint.report import inspect as view

        fmt = pick_format(output_format, format_, TableFormat.TABLE)
        outputs = parse_outputs(output_file, fmt.value, [f.value for f in TableFormat])
        config = load_command_config(config_file, isolated)
        opts = ModelOptions(input_size, input_shape, model_kwargs, tuple(leaf_module or ()), trust_pickle)
        reports = [engine.lint(spec) for spec in resolve_models(targets or [], opts, config, "inspect")]
        say_notes(reports)

        def text(output: Output) -> str:
            ctx = render_context(config.root, output, color, wide=True)
            if output.fmt == TableFormat.JSON.value:
                return view.render_json(reports, show_all, ctx)
            return view.render_table(reports, show_all, ctx)

        emit(outputs, text)
        return EXIT_OK

    raise typer.Exit(run_guarded(verbose, body))


@command(cls=Command)
def suggest(
    target: Annotated[Optional[str], typer.Argument(help="The model to refine, or a configured model's name (none: the only configured model).")] = None,
    input_size: InputSize = None,
    input_shape: InputShape = None,
    model_kwargs: ModelKwargs = None,
    leaf_module: LeafModules = None,
    trust_pickle: TrustPickle = False,
    top: Annotated[int, typer.Option("--top", metavar="K", help="Candidates shown per direction.")] = 3,
    emit_python: Annotated[bool, typer.Option("--emit-python", help="Output a refine(model) function applying the chosen edit (the table goes to stderr).")] = False,
    pick: Annotated[int, typer.Option("--pick", metavar="ROW", help="Which row (#) --emit-python applies.")] = 1,
    no_verify: Annotated[bool, typer.Option("--no-verify", help="Skip re-tracing the candidates.")] = False,
    output_format: Annotated[Optional[TableFormat], format_option("table or json.")] = None,
    format_: Annotated[Optional[TableFormat], format_alias()] = None,
    output_file: OutputFiles = None,
    color: ColorOption = Color.AUTO,
    config_file: ConfigFile = None,
    isolated: Isolated = False,
    verbose: Verbose = False,
) -> None:
    """Suggest single edits (stride, kernel, tail cut) that bring I_min below the input size,
    verified by re-tracing the edited model."""

    def body() -> int:
        from rflint import engine
        from rflint.advisor import fmt_number
        from rflint.refine import emit_python as python_code
        from rflint.report import suggest as view

        fmt = pick_format(output_format, format_, TableFormat.TABLE)
        if top < 1:
            raise UsageError("--top must be at least 1")
        config = load_command_config(config_file, isolated)
        opts = ModelOptions(input_size, input_shape, model_kwargs, tuple(leaf_module or ()), trust_pickle)
        (spec,) = resolve_models([target] if target else [], opts, config, "suggest", many=False)
        advice = engine.suggest(spec, top=top, verify=not no_verify)
        rows = view.rows(advice)
        if not emit_python:

            def table(output: Output) -> str:
                if output.fmt == TableFormat.JSON.value:
                    return view.render_json(advice)
                return view.render_table(advice, render_context(config.root, output, color, wide=True))

            emit(parse_outputs(output_file, fmt.value, [f.value for f in TableFormat]), table)
            return EXIT_OK
        # with --emit-python the code is the data: it goes to stdout (or -o), the table to stderr
        table_ctx = render_context(config.root, Output("table", primary=False), color, wide=True)
        stderr.file.write(view.render_table(advice, replace(table_ctx, color=use_color(color, sys.stderr), width=stderr.width)))
        if not rows:
            raise UsageError("there is no edit to emit", hint="nothing to change at this input size")
        if not 1 <= pick <= len(rows):
            raise UsageError(f"--pick {pick} is not a row of the table (1..{len(rows)})")
        chosen = rows[pick - 1]
        summary = (
            f"{chosen.edit.text} ({spec.display_name} @ {'x'.join(str(s) for s in advice.input_size)}: "
            f"I_min {fmt_number(advice.base.i_min)} -> {fmt_number(chosen.i_min)}, MACs x{chosen.macs_ratio:.2f})"
        )
        emit(parse_outputs(output_file, "python", ["python"]), lambda o: python_code(chosen.edit, summary))
        return EXIT_OK

    raise typer.Exit(run_guarded(verbose, body))


# ---------------------------------------------------------------------------------------------
# pictures and the effective receptive field (rflint.viz, rflint.erf)


@command(cls=Command)
def graph(
    target: Annotated[Optional[str], typer.Argument(help="The model to draw, or a configured model's name (none: the only configured model).")] = None,
    input_size: InputSize = None,
    input_shape: InputShape = None,
    model_kwargs: ModelKwargs = None,
    leaf_module: LeafModules = None,
    trust_pickle: TrustPickle = False,
    no_collapse: Annotated[bool, typer.Option("--no-collapse", help="Draw every layer; by default chains of pointwise/reshape layers are folded into their neighbour's box.")] = False,
    output_format: Annotated[Optional[GraphFormat], format_option("svg, or html (graph plus layer table); default: the file's extension, else svg.")] = None,
    output_file: OutputFiles = None,
    output_alias: Annotated[Optional[list[str]], typer.Option("--output", hidden=True)] = None,
    color: ColorOption = Color.AUTO,
    config_file: ConfigFile = None,
    isolated: Isolated = False,
    verbose: Verbose = False,
) -> None:
    """Draw the layer graph as SVG or HTML, boxes coloured by status (no graphviz needed)."""

    def body() -> int:
        from rflint import engine
        from rflint.viz import html as viz_html
        from rflint.viz import svg as viz_svg

        values = [*(output_file or ()), *(output_alias or ())]
        suffixes = {".svg": "svg", ".html": "html", ".htm": "html"}
        for value in values:
            if ":" not in value and value != "-" and output_format is None and Path(value).suffix.lower() not in suffixes:
                raise UsageError(f"cannot tell the format of {value!r}", hint="name the file .svg or .html, or pass --output-format")
        fmt = (output_format or GraphFormat.SVG).value
        outputs = parse_outputs(values, fmt, [f.value for f in GraphFormat], {} if output_format else suffixes)
        config = load_command_config(config_file, isolated)
        opts = ModelOptions(input_size, input_shape, model_kwargs, tuple(leaf_module or ()), trust_pickle)
        (spec,) = resolve_models([target] if target else [], opts, config, "graph", many=False)
        analysis = engine.lint(spec).analysis
        draw = {"svg": lambda: viz_svg.render(analysis, collapse=not no_collapse), "html": lambda: viz_html.graph_document(analysis, collapse=not no_collapse)}
        emit(outputs, lambda o: draw[o.fmt](), announce=True)
        return EXIT_OK

    raise typer.Exit(run_guarded(verbose, body))


@command(cls=Command)
def plot(
    targets: Annotated[Optional[list[str]], typer.Argument(help="Models or configured model names, overlaid (none: every configured model).")] = None,
    input_size: Annotated[Optional[list[str]], typer.Option("--input-size", "-s", metavar="SIZE", help="Spatial input size (repeatable: each size is overlaid).", rich_help_panel=MODEL)] = None,
    input_shape: InputShape = None,
    model_kwargs: ModelKwargs = None,
    leaf_module: LeafModules = None,
    trust_pickle: TrustPickle = False,
    axis: Annotated[int, typer.Option("--axis", metavar="N", help="Spatial axis to plot for non-square inputs (0 = height).")] = 0,
    title: Annotated[Optional[str], typer.Option("--title", metavar="TEXT", help="Figure title.")] = None,
    output_format: Annotated[Optional[ImageFormat], format_option("Image format (default: the file's extension).")] = None,
    output_file: Annotated[Optional[list[str]], typer.Option("--output-file", "-o", metavar="[FORMAT:]PATH", help="Image file(s), the format follows the extension (png, svg, pdf); - for stdout. Default: growth.png.", rich_help_panel=OUTPUT)] = None,
    output_alias: Annotated[Optional[list[str]], typer.Option("--output", hidden=True)] = None,
    color: ColorOption = Color.AUTO,
    config_file: ConfigFile = None,
    isolated: Isolated = False,
    verbose: Verbose = False,
) -> None:
    """Plot r_min and r_max against depth, with the input size and the unproductive region.

    Log y axis; several targets or --input-size values are overlaid. Needs matplotlib (the
    plot extra).
    """

    def body() -> int:
        from rflint import engine
        from rflint.viz.plot import Series, figure_bytes, growth_figure, require_matplotlib

        plt = require_matplotlib()  # fail before the (slow) tracing when it is missing
        values = [*(output_file or ()), *(output_alias or ())] or ["growth.png"]
        fmt = (output_format or ImageFormat.PNG).value
        outputs = parse_outputs(values, fmt, [f.value for f in ImageFormat], {} if output_format else IMAGE_SUFFIXES)
        config = load_command_config(config_file, isolated)
        sizes = list(input_size or [])
        opts = ModelOptions(sizes[0] if sizes else None, input_shape, model_kwargs, tuple(leaf_module or ()), trust_pickle)
        series = []
        for spec in resolve_models(targets or [], opts, config, "plot"):
            for size in sizes or [None]:
                sized = replace(spec, input_size=parse_size(size), input_shape=None) if size else spec
                label = spec.display_name if len(sizes) <= 1 else f"{spec.display_name} @ {size}"
                series.append(Series(label, engine.lint(sized).analysis))
        ndim = len(series[0].analysis.graph.input_size)
        if not 0 <= axis < ndim:
            raise UsageError(f"--axis {axis} is out of range: the model has {ndim} spatial axes")
        figure = growth_figure(series, axis=axis, title=title)
        try:
            emit(outputs, lambda o: figure_bytes(figure, o.fmt), announce=True)
        finally:
            plt.close(figure)
        return EXIT_OK

    raise typer.Exit(run_guarded(verbose, body))


@command(cls=Command)
def erf(
    target: Annotated[Optional[str], typer.Argument(help="The model to measure, or a configured model's name (none: the only configured model).")] = None,
    input_size: InputSize = None,
    input_shape: InputShape = None,
    model_kwargs: ModelKwargs = None,
    leaf_module: LeafModules = None,
    trust_pickle: TrustPickle = False,
    layer: Annotated[Optional[str], typer.Option("--layer", metavar="QUALNAME", help="Layer qualname (see `rflint inspect`); default: the last spatial layer before global pooling.")] = None,
    samples: Annotated[int, typer.Option("--samples", metavar="N", help="Random inputs (or at most this many images) to average over.")] = 32,
    batch_size: Annotated[int, typer.Option("--batch-size", metavar="N", help="Inputs per forward/backward pass.")] = 8,
    weights: Annotated[Optional[Path], typer.Option("--weights", metavar="FILE", help="state_dict file, read with torch.load(weights_only=True); default: random initialisation.")] = None,
    images: Annotated[Optional[Path], typer.Option("--images", metavar="DIR", help="Folder of images (resized to the input size) instead of random inputs.")] = None,
    device: Annotated[str, typer.Option("--device", metavar="DEVICE", help="cpu or cuda.")] = "cpu",
    seed: Annotated[int, typer.Option("--seed", metavar="N", help="Seed for inputs and random initialisation.")] = 0,
    output_format: Annotated[Optional[TextFormat], format_option("text or json (json includes the whole gradient map).")] = None,
    format_: Annotated[Optional[TextFormat], format_alias()] = None,
    output_file: Annotated[Optional[list[str]], typer.Option("--output-file", "-o", metavar="[FORMAT:]PATH", help="Write to a file: an image extension (png, svg, pdf) draws the heatmap (needs matplotlib); FORMAT:PATH writes text or json (repeatable).", rich_help_panel=OUTPUT)] = None,
    output_alias: Annotated[Optional[list[str]], typer.Option("--output", hidden=True)] = None,
    color: ColorOption = Color.AUTO,
    config_file: ConfigFile = None,
    isolated: Isolated = False,
    verbose: Verbose = False,
) -> None:
    """Measure the effective receptive field (Luo et al. 2016) next to the theoretical r_max.

    The gradient of the centre unit of a layer's output with respect to the input, |grad|
    averaged over random inputs or images; reports the side of the centred square holding 95 %
    of it and a Gaussian sigma per axis.
    """

    def body() -> int:
        fmt = pick_format(output_format, format_, TextFormat.TEXT)
        if batch_size < 1:
            raise UsageError("--batch-size must be at least 1")
        known = [*(f.value for f in TextFormat), *(f.value for f in ImageFormat)]
        values = [*(output_file or ()), *(output_alias or ())]
        outputs = parse_outputs(values, fmt.value, known, IMAGE_SUFFIXES, stdout_default=False)
        if not any(o.fmt not in IMAGE_SUFFIXES.values() and (o.primary or o.to_stdout) for o in outputs):
            outputs.insert(0, Output(fmt.value))  # a heatmap is an extra: the numbers still go to stdout
        if any(o.fmt in IMAGE_SUFFIXES.values() for o in outputs):
            from rflint.viz.plot import require_matplotlib

            require_matplotlib()
        from rflint import engine
        from rflint.report import erf as view

        config = load_command_config(config_file, isolated)
        opts = ModelOptions(input_size, input_shape, model_kwargs, tuple(leaf_module or ()), trust_pickle)
        (spec,) = resolve_models([target] if target else [], opts, config, "erf", many=False)
        result = engine.erf(
            spec, layer=layer, samples=samples, batch_size=batch_size, weights=weights, images=images, device=device, seed=seed
        )

        def data(output: Output) -> str | bytes:
            if output.fmt in IMAGE_SUFFIXES.values():
                from rflint.viz.plot import erf_figure, figure_bytes, require_matplotlib

                figure = erf_figure(result)
                try:
                    return figure_bytes(figure, output.fmt)
                finally:
                    require_matplotlib().close(figure)
            return view.render_json(result) if output.fmt == "json" else view.render_text(result)

        emit(outputs, data, announce=True)
        return EXIT_OK

    raise typer.Exit(run_guarded(verbose, body))


# ---------------------------------------------------------------------------------------------
# diff (issue 14)


class DiffFormat(str, Enum):
    FULL = "full"
    MARKDOWN = "markdown"
    JSON = "json"


class FailOn(str, Enum):
    NEVER = "never"
    NEW_FINDINGS = "new-findings"
    ANY_CHANGE = "any-change"


def diff_exit_code(result: Any, fail_on: FailOn) -> int:
    """2 if a model or a revision could not be analysed (never masked); else 1 when
    ``--fail-on`` says so: a new error-level finding (new-findings, the default) or any change
    at all (any-change); else 0."""
    if result.failed:
        return EXIT_ERROR
    if fail_on is FailOn.NEW_FINDINGS and result.new_errors:
        return EXIT_FINDINGS
    if fail_on is FailOn.ANY_CHANGE and result.changed:
        return EXIT_FINDINGS
    return EXIT_OK


@command(cls=Command)
def diff(
    base: Annotated[str, typer.Argument(help="The base git revision: origin/main, HEAD~1, a tag or a commit.")],
    head: Annotated[Optional[str], typer.Argument(help="The revision to compare with it (default: the working tree, uncommitted changes included).")] = None,
    model: Annotated[Optional[list[str]], typer.Option("--model", "-m", help="Model target or configured name (repeatable; default: every \\[\\[tool.rflint.models]] entry of each revision).", rich_help_panel=MODEL)] = None,
    input_size: InputSize = None,
    input_shape: InputShape = None,
    model_kwargs: ModelKwargs = None,
    leaf_module: LeafModules = None,
    trust_pickle: TrustPickle = False,
    output_format: Annotated[Optional[DiffFormat], format_option("full (terminal), markdown (PR comment, job summary) or json.")] = None,
    format_: Annotated[Optional[DiffFormat], format_alias()] = None,
    output_file: OutputFiles = None,
    fail_on: Annotated[FailOn, typer.Option("--fail-on", case_sensitive=False, help="Exit 1 on: new-findings (a new error-level finding), any-change, or never. Exit 2 (could not run) is never masked.", rich_help_panel=OUTPUT)] = FailOn.NEW_FINDINGS,
    max_layers: Annotated[int, typer.Option("--max-layers", help="Rows of changed layers per model in full and markdown (0: all).", rich_help_panel=OUTPUT)] = 10,
    color: ColorOption = Color.AUTO,
    config_file: ConfigFile = None,
    isolated: Isolated = False,
    verbose: Verbose = False,
) -> None:
    """Compare two git revisions: I_min, I_max, findings and per-layer fields before and after.

    Each revision is analysed in its own process with its own config (the base in a temporary git worktree).

    Exit 1 when the change adds an error-level finding (see --fail-on), 2 when a model cannot be analysed.
    """

    def body() -> int:
        from rflint import engine
        from rflint.diff_worker import Request
        from rflint.report import diff as view

        if max_layers < 0:
            raise UsageError("--max-layers must be 0 (all) or more")
        fmt = pick_format(output_format, format_, DiffFormat.FULL)
        outputs = parse_outputs(output_file, fmt.value, [f.value for f in DiffFormat])
        opts = ModelOptions(input_size, input_shape, model_kwargs, tuple(leaf_module or ()), trust_pickle)
        from rflint.config import Config

        template = opts.spec("", Config()) if opts.gives_geometry else None
        request = Request(tuple(model or ()), template, None if config_file is None else str(config_file), isolated)
        if show_progress():
            with stderr.status(f"analysing {base} and {head or 'the working tree'}"):
                result = engine.diff(base, head, request, verbose=verbose)
        else:
            result = engine.diff(base, head, request, verbose=verbose)
        for warning in result.warnings:
            note(f"warning: {warning}")
        whole = {side for f in result.failures for side in f.side.split(" and ")}  # a revision that failed as a whole
        problems = [(f, "") for f in result.failures] + [(f, f"{m.model}: ") for m in result.models for f in m.failures if f.side not in whole]
        for failure, model_name in problems:  # the log says why the exit code is 2, whatever the format
            hint = f" (hint: {failure.hint})" if failure.hint else ""
            note(f"error: {model_name}{failure.side}: {failure.message}{hint}")

        def text(output: Output) -> str:
            if output.fmt == DiffFormat.JSON.value:
                return view.render_json(result)
            ctx = render_context(Path.cwd(), output, color if output.fmt == "full" else Color.NEVER)
            render = view.render_full if output.fmt == DiffFormat.FULL.value else view.render_markdown
            return render(result, ctx, max_layers)

        emit(outputs, text)
        return diff_exit_code(result, fail_on)

    raise typer.Exit(run_guarded(verbose, body))


# ---------------------------------------------------------------------------------------------


def _version_callback(value: bool) -> None:
    if value:
        print(f"rflint {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", "-V", callback=_version_callback, is_eager=True, help="Show the version and exit.")] = False,
) -> None:
    """rflint: receptive-field linter for PyTorch models."""


def main() -> None:
    """Run the CLI (the console script goes through :func:`rflint.__main__.main`, which also
    catches a broken install of the CLI's own dependencies)."""
    app()
