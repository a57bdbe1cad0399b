"""The ``rflint`` command line. The only module that prints, reads the environment or picks
exit codes: 0 = no error-level findings, 1 = findings at error level, 2 = could not run.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from dataclasses import replace
from collections.abc import Callable, Iterator, Sequence
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

from rflint import __version__
from rflint.config import Config
from rflint.spec import ModelSpec
from rflint.errors import RflintError, UsageError
from rflint.ir import Finding, Severity
from rflint.report import OutputFormat

app = typer.Typer(
    name="rflint",
    help="Static receptive-field linter for PyTorch CNNs: finds layers that cannot add context.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=False,
)

stderr = Console(stderr=True)

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


# ---------------------------------------------------------------------------------------------
# option parsing


def parse_size(text: str) -> tuple[int, ...]:
    """``224``, ``224x160`` or ``224,160`` -> a tuple of positive ints."""
    parts = [p for p in text.replace("x", ",").replace("X", ",").split(",") if p.strip()]
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise UsageError(f"invalid input size {text!r}: expected a positive integer like 224 or 224x160") from None
    if not values or any(v <= 0 for v in values):
        raise UsageError(f"invalid input size {text!r}: sizes must be positive integers")
    return values


def parse_shape(text: str) -> tuple[int, ...]:
    """``1,3,224,224`` (batch included) -> a tuple of positive ints."""
    values = parse_size(text)
    if len(values) < 3:
        raise UsageError(
            f"invalid input shape {text!r}: expected batch, channels and at least one spatial size, e.g. 1,3,224,224"
        )
    return values


def parse_kwargs(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--model-kwargs is not valid JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(value, dict):
        raise UsageError('--model-kwargs must be a JSON object, e.g. \'{"num_classes": 10}\'')
    return value


# ---------------------------------------------------------------------------------------------
# error handling


def fail(exc: BaseException, verbose: bool) -> None:
    """One line on stderr naming the problem (and a hint), or the traceback with --verbose."""
    if verbose:
        traceback.print_exception(exc, file=sys.stderr)
    if isinstance(exc, RflintError):
        message = str(exc)
        hint = exc.hint
    else:
        message = f"unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
        hint = "this may be a bug in rflint; rerun with --verbose for the traceback"
    line = f"rflint: error: {message}"
    if hint:
        line += f" (hint: {hint})"
    stderr.print(line, markup=False, highlight=False, soft_wrap=True)


def run_guarded(verbose: bool, fn: Callable[[], int]) -> int:
    try:
        return fn()
    except (RflintError, Exception) as exc:  # noqa: BLE001 - every failure becomes exit 2
        fail(exc, verbose)
        return EXIT_ERROR


# ---------------------------------------------------------------------------------------------
# shared options

InputSize = Annotated[
    Optional[str],
    typer.Option("--input-size", "-s", help="Spatial input size: 224, or per axis 224x160 (channels are inferred)."),
]
InputShape = Annotated[
    Optional[str],
    typer.Option("--input-shape", help="Full input shape, batch included: 1,3,224,224. Wins over --input-size."),
]
ModelKwargs = Annotated[
    Optional[str], typer.Option("--model-kwargs", help='JSON keyword arguments for the factory: \'{"num_classes": 10}\'.')
]
LeafModules = Annotated[
    Optional[list[str]],
    typer.Option("--leaf-module", help="Dotted class path not to trace through (repeatable)."),
]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks for errors.")]
TrustPickle = Annotated[
    bool,
    typer.Option("--trust-pickle", help="Allow loading pickled models (.pt/.pth/TorchScript): this EXECUTES code from the file."),
]


def make_spec(
    target: str,
    input_size: str | None,
    input_shape: str | None,
    model_kwargs: str | None,
    leaf_modules: Sequence[str] | None,
    trust_pickle: bool = False,
    name: str | None = None,
) -> ModelSpec:
    if input_size is None and input_shape is None:
        raise UsageError("no input size given", hint="pass --input-size N (e.g. 224) or --input-shape 1,3,224,224")
    return ModelSpec(
        target=target,
        input_size=parse_size(input_size) if input_size else None,
        input_shape=parse_shape(input_shape) if input_shape else None,
        name=name,
        kwargs=parse_kwargs(model_kwargs),
        leaf_modules=tuple(leaf_modules or ()),
        trust_pickle=trust_pickle,
    )


def human_context(root: str, stream: Any = None) -> Any:
    """The render context of the human tables (inspect, suggest): colour and width follow the
    terminal ``stream`` (stdout by default)."""
    from rflint.report.common import RenderContext

    stream = sys.stdout if stream is None else stream
    tty = bool(getattr(stream, "isatty", lambda: False)())
    return RenderContext(root=root, color=use_color(Color.AUTO, stream), width=stderr.width if tty else 200)


def expand(targets: Sequence[str]) -> list[str]:
    from rflint.targets import expand_targets

    return expand_targets(targets)


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


class Color(str, Enum):
    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


def use_color(choice: Color, stream: Any) -> bool:
    """``--color``: always/never win; auto honours NO_COLOR, then FORCE_COLOR, then the TTY."""
    if choice is Color.ALWAYS:
        return True
    if choice is Color.NEVER or os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return bool(getattr(stream, "isatty", lambda: False)())


def show_progress() -> bool:
    """A transient progress display only for a person at a terminal: never in CI or pre-commit."""
    return sys.stderr.isatty() and not os.environ.get("CI") and not os.environ.get("PRE_COMMIT")


def split_selectors(values: Sequence[str] | None) -> list[str] | None:
    """``--select RF101,RF102 --select RF001`` -> ``["RF101", "RF102", "RF001"]``."""
    if values is None:
        return None
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


Panel = "Output"


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


def report_baseline(outcome: Any, baseline: Path | None) -> None:
    """What a baseline did, on stderr: what was written, what is stale."""
    if outcome is None:
        return
    if outcome.written_path is not None:
        n = outcome.written_entries
        note(f"wrote {n} baseline entr{'y' if n == 1 else 'ies'} to {outcome.written_path}")
        return
    for model, layer, code, count in outcome.stale:
        where = f"{model} :: {layer}" if layer else model
        note(f"warning: stale baseline entry {code} {where} ({count} fixed)")
    if outcome.stale:
        note(f"hint: run with --write-baseline {baseline} to drop the fixed entries")


def note(text: str) -> None:
    """One plain line on stderr, prefixed ``rflint:``."""
    stderr.print(f"rflint: {text}", markup=False, highlight=False, soft_wrap=True)


@app.command()
def check(
    targets: Annotated[Optional[list[str]], typer.Argument(help="Models: file.py[:attr], pkg.mod:attr, torchvision:NAME, timm:NAME, model.onnx; globs allowed. None: every \\[\\[tool.rflint.models]] entry.")] = None,
    input_size: InputSize = None,
    input_shape: InputShape = None,
    model_kwargs: ModelKwargs = None,
    leaf_module: LeafModules = None,
    trust_pickle: TrustPickle = False,
    output_format: Annotated[Optional[OutputFormat], typer.Option("--output-format", envvar="RFLINT_OUTPUT_FORMAT", case_sensitive=False, help="Output format (default: full on a terminal, concise otherwise).", rich_help_panel=Panel)] = None,
    output_file: Annotated[Optional[Path], typer.Option("--output-file", "-o", help="Write the output to this file instead of stdout.", rich_help_panel=Panel)] = None,
    statistics: Annotated[bool, typer.Option("--statistics", help="Show counts per rule instead of the findings.", rich_help_panel=Panel)] = False,
    exit_zero: Annotated[bool, typer.Option("--exit-zero", help="Exit 0 even with error-level findings (2 for failures stays).", rich_help_panel=Panel)] = False,
    color: Annotated[Color, typer.Option("--color", case_sensitive=False, help="Colour: auto honours NO_COLOR and FORCE_COLOR.", rich_help_panel=Panel)] = Color.AUTO,
    config_file: Annotated[Optional[Path], typer.Option("--config", help="Config file (pyproject.toml or rflint.toml) instead of the nearest one.", rich_help_panel="Configuration")] = None,
    isolated: Annotated[bool, typer.Option("--isolated", help="Ignore every configuration file.", rich_help_panel="Configuration")] = False,
    select: Annotated[Optional[list[str]], typer.Option("--select", help="Rules to enable (codes, prefixes, names, ALL); replaces the config's select.", rich_help_panel="Configuration")] = None,
    extend_select: Annotated[Optional[list[str]], typer.Option("--extend-select", help="Rules to enable on top of select.", rich_help_panel="Configuration")] = None,
    ignore: Annotated[Optional[list[str]], typer.Option("--ignore", help="Rules to disable.", rich_help_panel="Configuration")] = None,
    baseline: Annotated[Optional[Path], typer.Option("--baseline", help="Hide the findings recorded in this baseline file.", rich_help_panel="Baseline")] = None,
    write_baseline: Annotated[Optional[Path], typer.Option("--write-baseline", help="Record the current findings (a rewrite only removes fixed ones).", rich_help_panel="Baseline")] = None,
    force: Annotated[bool, typer.Option("--force", help="With --write-baseline: also add new findings.", rich_help_panel="Baseline")] = False,
    no_cache: NoCache = False,
    jobs: Jobs = None,
    verbose: Verbose = False,
) -> None:
    """Lint models: report unproductive and critical layers (exit 1 on error-level findings)."""
    from rflint import engine
    from rflint.config import load_config
    from rflint.report import RenderContext, render, render_statistics
    from rflint.rule_docs import pages
    from rflint.suppressions import source_lines

    def body() -> int:
        config = load_config(config_file, isolated=isolated, memo=config_memo(no_cache)).with_selection(
            select=split_selectors(select), extend_select=split_selectors(extend_select) or (), ignore=split_selectors(ignore) or ()
        )
        explicit = input_size is not None or input_shape is not None
        specs = engine.resolve_specs(
            targets or [],
            config,
            lambda t: make_spec(t, input_size, input_shape, model_kwargs, leaf_module, trust_pickle),
            explicit,
        )
        out_stream = sys.stdout if output_file is None else None
        fmt = output_format or (OutputFormat.FULL if out_stream is not None and sys.stdout.isatty() else OutputFormat.CONCISE)
        linter = run_linter(config, no_cache)
        with progress_display(len(specs)) as on_model:
            result = engine.check(
                specs,
                config,
                baseline=baseline,
                write_baseline=write_baseline,
                force=force,
                hints=fmt is OutputFormat.FULL and not statistics,
                on_model=on_model,
                on_failure=lambda spec, exc: fail(exc, verbose),
                linter=linter,
                jobs=job_count(jobs),
            )
        prune_cache(linter)
        report_baseline(result.baseline, baseline)
        findings = list(result.findings)
        if statistics:
            text = render_statistics(findings, as_json=fmt in (OutputFormat.JSON, OutputFormat.JSON_LINES))
        else:
            ctx = RenderContext(
                root=str(config.root),
                color=fmt is OutputFormat.FULL and use_color(color, out_stream),
                width=stderr.width if out_stream is not None and sys.stdout.isatty() else 100,
                rule_docs=pages() if fmt is OutputFormat.SARIF else {},
                snippets=source_lines(findings) if fmt is OutputFormat.FULL else {},
                failed=len(result.failures),
            )
            text = render(fmt, result.reports, findings, ctx)
        if output_file is not None:
            output_file.write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)  # machine formats byte for byte: never through rich
        return final_exit_code(findings, bool(result.failures), exit_zero)

    raise typer.Exit(run_guarded(verbose, body))


# ---------------------------------------------------------------------------------------------
# the result cache and worker processes (issue 13)

CachePanel = "Cache and parallelism"
NoCache = Annotated[
    bool,
    typer.Option("--no-cache", envvar="RFLINT_NO_CACHE", help="Neither read nor write the result cache.", rich_help_panel=CachePanel),
]
Jobs = Annotated[
    Optional[int],
    typer.Option("--jobs", "-j", help="Processes for several models (default: the number of CPUs, one per 4 models to check at most; 1: serial).", rich_help_panel=CachePanel),
]


def job_count(jobs: int | None) -> int | None:
    """``-j``; None (not given) lets the engine use the CPUs when there are enough models."""
    if jobs is None:
        return None
    if jobs < 1:
        raise UsageError(f"--jobs must be at least 1, not {jobs}", hint="-j 1 checks the models one after the other")
    return jobs


def cache_root(config: Config) -> Path:
    """Where the cache of this configuration lives; ``$RFLINT_CACHE_DIR`` wins."""
    from rflint.cache import resolve_root

    return resolve_root(config.root, config.cache_dir, os.environ.get("RFLINT_CACHE_DIR"))


def config_memo(no_cache: bool) -> Any:
    """Remembers validated configuration tables in the cache (none with ``--no-cache``)."""
    if no_cache:
        return None
    from rflint.cache import ValidConfigs

    return ValidConfigs(os.environ.get("RFLINT_CACHE_DIR"))


def run_linter(config: Config, no_cache: bool) -> Callable[[ModelSpec], Any]:
    """The engine's linter for a ``check`` run: through the result cache unless ``--no-cache``."""
    from rflint import engine

    if no_cache:
        return engine.lint
    from rflint.cache import CachedLinter, ResultCache

    cache = ResultCache.for_run(config.root, config.table, config.cache_dir, os.environ.get("RFLINT_CACHE_DIR"))
    return CachedLinter(cache, engine.lint)


def prune_cache(linter: Any) -> None:
    cache = getattr(linter, "cache", None)
    if cache is not None:
        cache.prune()


@app.command()
def clean(
    config_file: Annotated[Optional[Path], typer.Option("--config", help="Config file whose cache-dir to clean instead of the nearest one's.")] = None,
    verbose: Verbose = False,
) -> None:
    """Remove the result cache (.rflint_cache next to the config file, cache-dir, or $RFLINT_CACHE_DIR)."""

    def body() -> int:
        from rflint.cache import clean as remove
        from rflint.config import load_config

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


class RuleFormat(str, Enum):
    TEXT = "text"
    JSON = "json"


@app.command()
def rule(
    code: Annotated[Optional[str], typer.Argument(help="Rule code or name, e.g. RF101 or unproductive-layer.")] = None,
    show_all: Annotated[bool, typer.Option("--all", help="Every rule.")] = False,
    output_format: Annotated[RuleFormat, typer.Option("--output-format", case_sensitive=False, help="text (the Markdown page) or json.")] = RuleFormat.TEXT,
) -> None:
    """Explain a rule: print its documentation page (or the whole registry with --all)."""
    from rflint.rule_docs import render_all, render_rule

    def body() -> int:
        as_json = output_format is RuleFormat.JSON
        if show_all:
            text = render_all(as_json=as_json)
        elif code:
            text = render_rule(code, as_json=as_json)
        else:
            raise UsageError("give a rule code (rflint rule RF101) or --all")
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return EXIT_OK

    raise typer.Exit(run_guarded(False, body))


# ---------------------------------------------------------------------------------------------
# inspect

@app.command()
def inspect(
    target: Annotated[str, typer.Argument(help="The model to inspect.")],
    input_size: InputSize = None,
    input_shape: InputShape = None,
    model_kwargs: ModelKwargs = None,
    leaf_module: LeafModules = None,
    trust_pickle: TrustPickle = False,
    output_format: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    show_all: Annotated[bool, typer.Option("--all", help="Show pointwise and reshape layers too.")] = False,
    verbose: Verbose = False,
) -> None:
    """Show every layer's receptive field, jump, feature-map size and status."""

    def body() -> int:
        from rflint import engine
        from rflint.report import inspect as view

        if output_format not in ("table", "json"):
            raise UsageError(f"unknown --format {output_format!r}: use table or json")
        report = engine.lint(make_spec(target, input_size, input_shape, model_kwargs, leaf_module, trust_pickle))
        ctx = human_context(os.getcwd())  # paths relative to the working directory, as in findings
        text = view.render_json([report], show_all, ctx) if output_format == "json" else view.render_table([report], show_all, ctx)
        sys.stdout.write(text)
        return EXIT_OK

    raise typer.Exit(run_guarded(verbose, body))


# ---------------------------------------------------------------------------------------------
# suggest (the refinement advisor, issue 6)


@app.command()
def suggest(
    target: Annotated[str, typer.Argument(help="The model to refine.")],
    input_size: InputSize = None,
    input_shape: InputShape = None,
    model_kwargs: ModelKwargs = None,
    leaf_module: LeafModules = None,
    trust_pickle: TrustPickle = False,
    top: Annotated[int, typer.Option("--top", help="Candidates shown per direction.")] = 3,
    output_format: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    emit_python: Annotated[
        bool, typer.Option("--emit-python", help="Print a refine(model) function applying the chosen edit (stdout).")
    ] = False,
    pick: Annotated[int, typer.Option("--pick", help="Which row (#) --emit-python applies.")] = 1,
    no_verify: Annotated[bool, typer.Option("--no-verify", help="Skip re-tracing the candidates.")] = False,
    verbose: Verbose = False,
) -> None:
    """Suggest single edits (stride, kernel, tail cut) that bring I_min below the input size,
    verified by re-tracing the edited model."""

    def body() -> int:
        from rflint import engine
        from rflint.advisor import fmt_number
        from rflint.refine import emit_python as emit
        from rflint.report import suggest as view

        if output_format not in ("table", "json"):
            raise UsageError(f"unknown --format {output_format!r}: use table or json")
        if top < 1:
            raise UsageError("--top must be at least 1")
        spec = make_spec(target, input_size, input_shape, model_kwargs, leaf_module, trust_pickle)
        advice = engine.suggest(spec, top=top, verify=not no_verify)
        rows = view.rows(advice)
        # with --emit-python the code is the data: it goes to stdout, the table to stderr
        if output_format == "json" and not emit_python:
            sys.stdout.write(view.render_json(advice))
        elif emit_python:
            stderr.file.write(view.render_table(advice, human_context(os.getcwd(), stream=sys.stderr)))
        else:
            sys.stdout.write(view.render_table(advice, human_context(os.getcwd())))
        if emit_python:
            if not rows:
                raise UsageError("there is no edit to emit", hint="nothing to change at this input size")
            if not 1 <= pick <= len(rows):
                raise UsageError(f"--pick {pick} is not a row of the table (1..{len(rows)})")
            chosen = rows[pick - 1]
            summary = (
                f"{chosen.edit.text} ({spec.display_name} @ {'x'.join(str(s) for s in advice.input_size)}: "
                f"I_min {fmt_number(advice.base.i_min)} -> {fmt_number(chosen.i_min)}, MACs x{chosen.macs_ratio:.2f})"
            )
            sys.stdout.write(emit(chosen.edit, summary))
        return EXIT_OK

    raise typer.Exit(run_guarded(verbose, body))


# ---------------------------------------------------------------------------------------------
# pictures and the effective receptive field (rflint.viz, rflint.erf)


def _write_output(path: str, data: str | bytes) -> None:
    """Write a picture or report; ``-`` means stdout."""
    if path == "-":
        if isinstance(data, bytes):
            sys.stdout.buffer.write(data)
        else:
            sys.stdout.write(data)
        return
    try:
        if isinstance(data, bytes):
            Path(path).write_bytes(data)
        else:
            Path(path).write_text(data, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    note(f"wrote {path}")


@app.command()
def graph(
    target: Annotated[str, typer.Argument(help="The model to draw.")],
    input_size: InputSize = None,
    input_shape: InputShape = None,
    model_kwargs: ModelKwargs = None,
    leaf_module: LeafModules = None,
    trust_pickle: TrustPickle = False,
    output: Annotated[str, typer.Option("--output", "-o", help="model.svg or model.html (graph plus layer table); - for SVG on stdout.")] = "-",
    no_collapse: Annotated[bool, typer.Option("--no-collapse", help="Draw every layer; by default chains of pointwise/reshape layers are folded into their neighbour's box.")] = False,
    verbose: Verbose = False,
) -> None:
    """Draw the layer graph as SVG or HTML, boxes coloured by status (no graphviz needed)."""

    def body() -> int:
        from rflint import engine
        from rflint.viz import html as viz_html
        from rflint.viz import svg as viz_svg

        suffix = Path(output).suffix.lower() if output != "-" else ".svg"
        if suffix not in (".svg", ".html", ".htm"):
            raise UsageError(f"cannot tell the format of {output!r}", hint="name the file .svg or .html")
        report = engine.lint(make_spec(target, input_size, input_shape, model_kwargs, leaf_module, trust_pickle))
        if suffix == ".svg":
            text = viz_svg.render(report.analysis, collapse=not no_collapse)
        else:
            text = viz_html.graph_document(report.analysis, collapse=not no_collapse)
        _write_output(output, text)
        return EXIT_OK

    raise typer.Exit(run_guarded(verbose, body))


@app.command()
def plot(
    targets: Annotated[list[str], typer.Argument(help="One or more models; several are overlaid.")],
    input_size: Annotated[Optional[list[str]], typer.Option("--input-size", "-s", help="Spatial input size (repeatable: each size is overlaid).")] = None,
    input_shape: InputShape = None,
    model_kwargs: ModelKwargs = None,
    leaf_module: LeafModules = None,
    trust_pickle: TrustPickle = False,
    output: Annotated[str, typer.Option("--output", "-o", help="Image file; the format follows the extension (png, svg, pdf).")] = "growth.png",
    axis: Annotated[int, typer.Option("--axis", help="Spatial axis to plot for non-square inputs (0 = height).")] = 0,
    title: Annotated[Optional[str], typer.Option("--title", help="Figure title.")] = None,
    verbose: Verbose = False,
) -> None:
    """Plot r_min and r_max against depth, with the input size and the unproductive region.

    Log y axis; several targets or --input-size values are overlaid. Needs matplotlib (the
    plot extra).
    """

    def body() -> int:
        from rflint import engine
        from rflint.viz.plot import Series, growth_figure, require_matplotlib, save_figure

        require_matplotlib()  # fail before the (slow) tracing when it is missing
        sizes: list[str | None] = list(input_size or []) or [None]
        series = []
        for name in expand(targets):
            for size in sizes:
                report = engine.lint(make_spec(name, size, input_shape, model_kwargs, leaf_module, trust_pickle))
                label = name if len(sizes) == 1 else f"{name} @ {size}"
                series.append(Series(label, report.analysis))
        if not series:
            raise UsageError("no model to plot")
        ndim = len(series[0].analysis.graph.input_size)
        if not 0 <= axis < ndim:
            raise UsageError(f"--axis {axis} is out of range: the model has {ndim} spatial axes")
        save_figure(growth_figure(series, axis=axis, title=title), output)
        note(f"wrote {output}")
        return EXIT_OK

    raise typer.Exit(run_guarded(verbose, body))


@app.command()
def erf(
    target: Annotated[str, typer.Argument(help="The model to measure.")],
    input_size: InputSize = None,
    input_shape: InputShape = None,
    model_kwargs: ModelKwargs = None,
    leaf_module: LeafModules = None,
    trust_pickle: TrustPickle = False,
    layer: Annotated[Optional[str], typer.Option("--layer", help="Layer qualname (see `rflint inspect`); default: the last spatial layer before global pooling.")] = None,
    samples: Annotated[int, typer.Option("--samples", help="Random inputs (or at most this many images) to average over.")] = 32,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Inputs per forward/backward pass.")] = 8,
    weights: Annotated[Optional[Path], typer.Option("--weights", help="state_dict file, read with torch.load(weights_only=True); default: random initialisation.")] = None,
    images: Annotated[Optional[Path], typer.Option("--images", help="Folder of images (resized to the input size) instead of random inputs.")] = None,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu",
    seed: Annotated[int, typer.Option("--seed", help="Seed for inputs and random initialisation.")] = 0,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Heatmap image (png, svg, pdf); needs matplotlib.")] = None,
    output_format: Annotated[str, typer.Option("--format", help="text or json (json includes the whole gradient map).")] = "text",
    verbose: Verbose = False,
) -> None:
    """Measure the effective receptive field (Luo et al. 2016) next to the theoretical r_max.

    The gradient of the centre unit of a layer's output with respect to the input, |grad|
    averaged over random inputs or images; reports the side of the centred square holding 95 %
    of it and a Gaussian sigma per axis.
    """

    def body() -> int:
        if output_format not in ("text", "json"):
            raise UsageError(f"unknown --format {output_format!r}: use text or json")
        if batch_size < 1:
            raise UsageError("--batch-size must be at least 1")
        if output is not None:
            from rflint.viz.plot import require_matplotlib

            require_matplotlib()
        from rflint import engine
        from rflint.report import erf as view

        spec = make_spec(target, input_size, input_shape, model_kwargs, leaf_module, trust_pickle)
        result = engine.erf(
            spec, layer=layer, samples=samples, batch_size=batch_size, weights=weights, images=images, device=device, seed=seed
        )
        if output is not None:
            from rflint.viz.plot import erf_figure, save_figure

            save_figure(erf_figure(result), output)
            note(f"wrote {output}")
        sys.stdout.write(view.render_json(result) if output_format == "json" else view.render_text(result))
        return EXIT_OK

    raise typer.Exit(run_guarded(verbose, body))


# ---------------------------------------------------------------------------------------------


def _version_callback(value: bool) -> None:
    if value:
        print(f"rflint {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Show the version.")] = False,
) -> None:
    """rflint: receptive-field linter for PyTorch models."""


def main() -> None:
    """Console-script entry point."""
    app()
