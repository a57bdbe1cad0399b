"""The ``rflint`` command line. The only module that prints, reads the environment or picks
exit codes: 0 = no error-level findings, 1 = findings at error level, 2 = could not run.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from dataclasses import replace
from collections.abc import Callable, Sequence
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from rflint import __version__
from rflint.algebra import display, layer_status
from rflint.config import Config
from rflint.engine import ModelReport, ModelSpec, lint
from rflint.errors import RflintError, UsageError
from rflint.ir import Finding, Kind, Severity
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


def expand(targets: Sequence[str]) -> list[str]:
    from rflint.load import expand_targets

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


def specs_for(targets: Sequence[str], config: Config, cli_spec: Callable[[str], ModelSpec], explicit_size: bool) -> list[ModelSpec]:
    """What to check: the targets (a configured model's name or target reuses its entry unless
    the command line gives an input size), or every ``[[tool.rflint.models]]`` entry."""
    if not targets:
        if not config.models:
            raise UsageError(
                "no model to check",
                hint="pass a target such as torchvision:resnet18 or list models in [tool.rflint.models]",
            )
        return list(config.models)
    by_key = {k: spec for spec in config.models for k in (spec.target, spec.display_name)}
    specs = []
    for target in targets:
        if not explicit_size and target in by_key:
            specs.append(by_key[target])
        else:
            specs.extend(cli_spec(name) for name in expand([target]))
    return specs


Panel = "Output"


def with_refinement_hints(findings: Sequence[Finding], reports: Sequence[ModelReport]) -> list[Finding]:
    """RF103's hint names the best single edit the refinement advisor finds on the IR (not yet
    verified: `rflint suggest` does that). Computed only for the human format that shows it,
    since the search costs about a second per model."""
    from rflint.advisor import hint_for_rf103

    analyses = {r.spec.display_name: r.analysis for r in reports}
    out = []
    for f in findings:
        if f.code == "RF103" and f.model in analyses:
            hint = hint_for_rf103(analyses[f.model])
            f = replace(f, hint=hint) if hint else f
        out.append(f)
    return out


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
    verbose: Verbose = False,
) -> None:
    """Lint models: report unproductive and critical layers (exit 1 on error-level findings)."""
    from rflint import baseline as bl
    from rflint.config import load_config
    from rflint.report import RenderContext, render, render_statistics
    from rflint.rule_docs import pages
    from rflint.suppressions import resolve_findings, source_lines

    def body() -> int:
        config = load_config(config_file, isolated=isolated).with_selection(
            select=split_selectors(select), extend_select=split_selectors(extend_select) or (), ignore=split_selectors(ignore) or ()
        )
        explicit = input_size is not None or input_shape is not None
        specs = specs_for(
            targets or [],
            config,
            lambda t: make_spec(t, input_size, input_shape, model_kwargs, leaf_module, trust_pickle),
            explicit,
        )
        reports: list[ModelReport] = []
        failed_count = 0
        progress = None
        if show_progress() and len(specs) > 1:
            from rich.progress import Progress

            progress = Progress(console=stderr, transient=True)
            progress.start()
        task = progress.add_task("checking", total=len(specs)) if progress else None
        try:
            for spec in specs:
                if progress is not None:
                    progress.update(task, description=f"checking {spec.display_name}")
                try:
                    reports.append(lint(spec))
                except Exception as exc:  # noqa: BLE001 - report and go on with the other models
                    fail(exc, verbose)
                    failed_count += 1
                if progress is not None:
                    progress.advance(task)
        finally:
            if progress is not None:
                progress.stop()

        findings = resolve_findings(reports, config)
        checked = [r.spec.display_name for r in reports]
        if write_baseline is not None:
            old_path = baseline or write_baseline
            old = bl.read_baseline(old_path) if (not force and Path(old_path).exists()) else None
            written = bl.update_baseline(old, findings, force=force, checked_models=checked)
            bl.write_baseline(write_baseline, written)
            entries = sum(n for layers in written.values() for codes in layers.values() for n in codes.values())
            stderr.print(f"rflint: wrote {entries} baseline entr{'y' if entries == 1 else 'ies'} to {write_baseline}", markup=False, highlight=False)
            findings = bl.apply_baseline(findings, written, checked).new
        elif baseline is not None:
            result = bl.apply_baseline(findings, bl.read_baseline(baseline), checked)
            findings = result.new
            for entry in result.stale:
                where = f"{entry.model} :: {entry.layer}" if entry.layer else entry.model
                stderr.print(f"rflint: warning: stale baseline entry {entry.code} {where} ({entry.count} fixed)", markup=False, highlight=False)
            if result.stale:
                stderr.print(f"rflint: hint: run with --write-baseline {baseline} to drop the fixed entries", markup=False, highlight=False)

        out_stream = sys.stdout if output_file is None else None
        fmt = output_format or (OutputFormat.FULL if out_stream is not None and sys.stdout.isatty() else OutputFormat.CONCISE)
        if fmt is OutputFormat.FULL:
            findings = with_refinement_hints(findings, reports)
        if statistics:
            text = render_statistics(findings, as_json=fmt in (OutputFormat.JSON, OutputFormat.JSON_LINES))
        else:
            ctx = RenderContext(
                root=str(config.root),
                color=fmt is OutputFormat.FULL and use_color(color, out_stream),
                width=stderr.width if out_stream is not None and sys.stdout.isatty() else 100,
                rule_docs=pages() if fmt is OutputFormat.SARIF else {},
                snippets=source_lines(findings) if fmt is OutputFormat.FULL else {},
                failed=failed_count,
            )
            text = render(fmt, reports, findings, ctx)
        if output_file is not None:
            output_file.write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)  # machine formats byte for byte: never through rich
        return final_exit_code(findings, failed_count > 0, exit_zero)

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

SHOWN_KINDS = {Kind.INPUT, Kind.WINDOW, Kind.UPSAMPLE, Kind.MERGE, Kind.GLOBAL, Kind.UNKNOWN}
STATUS_STYLE = {"ok": "green", "critical": "yellow", "unproductive": "bold red", "unknown": "magenta", "global": "cyan"}


def _axes_text(values: Sequence[Any]) -> str:
    shown = ["inf" if v is None else str(v) for v in values]
    return shown[0] if len(set(shown)) == 1 else "x".join(shown)


def analysis_rows(report: ModelReport, show_all: bool) -> list[dict[str, Any]]:
    """One dict per layer with everything `inspect` shows, in JSON-friendly types."""
    from rflint.report.common import RenderContext, display_path

    analysis = report.analysis
    size = analysis.graph.input_size
    here = RenderContext(root=os.getcwd())  # paths relative to the working directory, as in findings
    rows = []
    for lrf in analysis.layers:
        layer = lrf.layer
        if not show_all and layer.kind not in SHOWN_KINDS:
            continue
        rows.append(
            {
                "layer": layer.qualname,
                "op": layer.op,
                "kind": layer.kind.value,
                "kernel": list(layer.kernel),
                "stride": [display(s) for s in layer.stride],
                "dilation": list(layer.dilation),
                "r_min": [display(x) for x in lrf.r_min],
                "r_max": [display(x) for x in lrf.r_max],
                "input_r_min": [display(x) for x in lrf.input_r_min],
                "jump": [display(x) for x in lrf.jump],
                "feature_map": list(layer.out_size) if layer.out_size else None,
                "global_context": any(a.has_global for a in lrf.axes),
                "uncertain": lrf.uncertain,
                "status": layer_status(lrf, size).value,
                "source": {"file": display_path(layer.source.file, here), "line": layer.source.line} if layer.source else None,
                "note": layer.note,
            }
        )
    return rows


def summary_dict(report: ModelReport) -> dict[str, Any]:
    a = report.analysis
    return {
        "model": report.spec.display_name,
        "target": report.spec.target,
        "tracer": a.graph.tracer,
        "input_size": list(a.graph.input_size),
        "i_min": [display(x) for x in a.i_min],
        "i_min_unproductive": [display(x) for x in a.i_min_unproductive],
        "i_max": [display(x) for x in a.i_max],
        "layers_total": len(a.layers),
    }


def render_inspect_table(report: ModelReport, rows: list[dict[str, Any]], console: Console) -> None:
    summary = summary_dict(report)
    table = Table(title=f"{summary['model']} @ {_axes_text(summary['input_size'])} (traced with {summary['tracer']})")
    for col in ("layer", "op", "k / s / d", "r_min", "r_max", "jump", "feature map", "status"):
        table.add_column(col, overflow="fold")
    for row in rows:
        ksd = "" if not row["kernel"] else f"{_axes_text(row['kernel'])} / {_axes_text(row['stride'])} / {_axes_text(row['dilation'])}"
        status = row["status"] + (" (global ctx)" if row["global_context"] and row["status"] == "ok" else "")
        if row["uncertain"]:
            status += " ?"
        table.add_row(
            row["layer"],
            row["op"],
            ksd,
            _axes_text(row["r_min"]),
            _axes_text(row["r_max"]),
            _axes_text(row["jump"]),
            _axes_text(row["feature_map"]) if row["feature_map"] else "",
            f"[{STATUS_STYLE.get(row['status'], '')}]{status}[/]",
        )
    console.print(table)
    console.print(
        f"I_min {_axes_text(summary['i_min'])} (no critical layer)   "
        f"I_min {_axes_text(summary['i_min_unproductive'])} (no unproductive layer)   "
        f"I_max {_axes_text(summary['i_max'])}   input {_axes_text(summary['input_size'])}"
    )
    if any(r["uncertain"] for r in rows):
        console.print("? = an op of unknown receptive-field effect lies before this layer: its numbers are lower bounds")


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
        if output_format not in ("table", "json"):
            raise UsageError(f"unknown --format {output_format!r}: use table or json")
        report = lint(make_spec(target, input_size, input_shape, model_kwargs, leaf_module, trust_pickle))
        rows = analysis_rows(report, show_all)
        if output_format == "json":
            payload = {"schema_version": 1, **summary_dict(report), "layers": rows}
            sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        else:
            render_inspect_table(report, rows, Console(width=None if sys.stdout.isatty() else 200))
        return EXIT_OK

    raise typer.Exit(run_guarded(verbose, body))


# ---------------------------------------------------------------------------------------------
# suggest (the refinement advisor, issue 6)


def render_suggest_table(advice: Any, console: Console) -> None:
    from rflint.advisor import fmt_number

    size = _axes_text(list(advice.input_size))
    base = advice.base
    console.print(
        f"{base.graph.name} @ {size}: I_min {fmt_number(base.i_min)}, I_max {fmt_number(base.i_max)}, "
        f"{advice.base_unproductive} unproductive layer(s), {advice.base_macs / 1e9:.3g} GMACs"
    )
    if advice.nothing_to_change:
        console.print(f"I_min {fmt_number(base.i_min)} < {size} and no unproductive layer: nothing to change.")
    elif advice.already_refined:
        console.print(f"I_min {fmt_number(base.i_min)} < {size}: already refined.")
    sections = [("performance: I_min below the input size, least extra compute first", advice.performance)]
    sections.append(("efficiency: fewer unproductive layers, less compute", advice.efficiency))
    row = 0
    for title, cands in sections:
        if not cands:
            if title.startswith("performance") and not advice.already_refined:
                console.print(f"No single edit brings I_min below {size}.")
            continue
        table = Table(title=title, title_justify="left")
        for col in ("#", "edit", "I_min", "unproductive", "MACs x", "params", "verified"):
            table.add_column(col, overflow="fold")
        for c in cands:
            row += 1
            verified = {True: "[green]yes[/]", False: "[red]no[/]", None: "-"}[c.verified]
            table.add_row(
                str(row),
                c.edit.text,
                f"{fmt_number(base.i_min)} -> {fmt_number(c.i_min)}",
                str(c.unproductive),
                f"{c.macs_ratio:.2f}",
                f"{c.params_delta / 1e6:+.2f}M",
                verified,
            )
        console.print(table)
    verify_note = f", {advice.dropped} dropped by verification" if advice.dropped else ""
    if advice.already_refined:
        return
    invalid_note = f" ({advice.invalid} more dropped: they break a residual add or concat)" if advice.invalid else ""
    console.print(
        f"{advice.evaluated} candidate edits analysed on the IR in {advice.seconds:.2f} s{invalid_note}{verify_note}."
    )
    for failed in advice.failures:
        console.print(f"dropped: {failed.edit.text}: {failed.note}", markup=False)


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
        from rflint.advisor import advice_to_dict, fmt_number
        from rflint.refine import emit_python as emit

        if output_format not in ("table", "json"):
            raise UsageError(f"unknown --format {output_format!r}: use table or json")
        if top < 1:
            raise UsageError("--top must be at least 1")
        from rflint.refine import suggest as run_suggest

        spec = make_spec(target, input_size, input_shape, model_kwargs, leaf_module, trust_pickle)
        advice = run_suggest(spec, top=top, verify=not no_verify)
        rows = list(advice.performance) + list(advice.efficiency)
        # with --emit-python the code is the data: it goes to stdout, the table to stderr
        console = stderr if emit_python else Console(width=None if sys.stdout.isatty() else 200)
        if output_format == "json" and not emit_python:
            sys.stdout.write(json.dumps(advice_to_dict(advice), indent=2) + "\n")
        else:
            render_suggest_table(advice, console)
        if emit_python:
            if not rows:
                raise UsageError("there is no edit to emit", hint="nothing to change at this input size")
            if not 1 <= pick <= len(rows):
                raise UsageError(f"--pick {pick} is not a row of the table (1..{len(rows)})")
            chosen = rows[pick - 1]
            summary = (
                f"{chosen.edit.text} ({spec.display_name} @ {_axes_text(list(advice.input_size))}: "
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
    stderr.print(f"rflint: wrote {path}", markup=False, highlight=False)


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
        from rflint.viz import html as viz_html
        from rflint.viz import svg as viz_svg

        suffix = Path(output).suffix.lower() if output != "-" else ".svg"
        if suffix not in (".svg", ".html", ".htm"):
            raise UsageError(f"cannot tell the format of {output!r}", hint="name the file .svg or .html")
        report = lint(make_spec(target, input_size, input_shape, model_kwargs, leaf_module, trust_pickle))
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
        from rflint.viz.plot import Series, growth_figure, require_matplotlib, save_figure

        require_matplotlib()  # fail before the (slow) tracing when it is missing
        sizes: list[str | None] = list(input_size or []) or [None]
        series = []
        for name in expand(targets):
            for size in sizes:
                report = lint(make_spec(name, size, input_shape, model_kwargs, leaf_module, trust_pickle))
                label = name if len(sizes) == 1 else f"{name} @ {size}"
                series.append(Series(label, report.analysis))
        if not series:
            raise UsageError("no model to plot")
        ndim = len(series[0].analysis.graph.input_size)
        if not 0 <= axis < ndim:
            raise UsageError(f"--axis {axis} is out of range: the model has {ndim} spatial axes")
        save_figure(growth_figure(series, axis=axis, title=title), output)
        stderr.print(f"rflint: wrote {output}", markup=False, highlight=False)
        return EXIT_OK

    raise typer.Exit(run_guarded(verbose, body))


def render_erf_text(result: Any) -> str:
    def axes(values: Sequence[Any], fmt: str = "{}") -> str:
        shown = ["inf" if v is None else fmt.format(v) for v in values]
        return shown[0] if len(set(shown)) == 1 else " x ".join(shown)

    size = "x".join(str(s) for s in result.input_shape[2:])
    lines = [
        f"{result.model} @ {size}: {result.layer} (output {'x'.join(map(str, result.output_size))}, centre unit {tuple(result.centre)})",
        f"  ERF size (centred square with 95 % of |grad|): {result.side} px",
        f"  ERF Gaussian sigma per axis:                    {axes(result.sigma, '{:.1f}')} px",
        f"  theoretical r_max (rflint):                     {axes(result.r_max)}   (r_min {axes(result.r_min)})",
        f"  ratio ERF size / r_max:                         {axes(result.ratio, '{:.2f}')}",
        f"  ratio sigma / r_max:                            {axes(result.sigma_ratio, '{:.3f}')}",
        f"  {result.samples} samples ({result.inputs}) on {result.device}; peak at {tuple(result.peak)}, "
        f"centroid ({', '.join(f'{c:.1f}' for c in result.centroid)})",
    ]
    lines += [f"  note: {n}" for n in result.notes]
    return "\n".join(lines) + "\n"


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
        from rflint.erf import measure_erf, resolve_device
        from rflint.load import is_onnx_target, load_model

        resolve_device(device)  # a missing GPU is reported before the model is built
        if is_onnx_target(target):
            raise UsageError("erf runs the model with torch: ONNX files are not supported", hint="pass the Python model instead")
        spec = make_spec(target, input_size, input_shape, model_kwargs, leaf_module, trust_pickle)
        loaded = load_model(spec.target, kwargs=dict(spec.kwargs), trust_pickle=trust_pickle)
        result = measure_erf(
            loaded.module,
            input_size=spec.input_size,
            input_shape=spec.input_shape,
            layer=layer,
            samples=samples,
            batch_size=batch_size,
            weights=weights,
            images=images,
            device=device,
            seed=seed,
            leaf_modules=spec.leaf_modules,
            name=spec.display_name,
        )
        if output is not None:
            from rflint.viz.plot import erf_figure, save_figure

            save_figure(erf_figure(result), output)
            stderr.print(f"rflint: wrote {output}", markup=False, highlight=False)
        if output_format == "json":
            sys.stdout.write(json.dumps(result.to_dict(), indent=1) + "\n")
        else:
            sys.stdout.write(render_erf_text(result))
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
