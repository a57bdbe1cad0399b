"""The ``rflint`` command line. The only module that prints, reads the environment or picks
exit codes: 0 = no error-level findings, 1 = findings at error level, 2 = could not run.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from rflint import __version__
from rflint.algebra import display, layer_status
from rflint.engine import ModelReport, ModelSpec, lint
from rflint.errors import RflintError, UsageError
from rflint.ir import Kind, Severity, Source

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


def relpath(source: Source | None) -> str:
    """A finding's path as people and CI want it: relative to the working directory if inside."""
    if source is None:
        return ""
    try:
        return os.path.relpath(source.file) if Path(source.file).resolve().is_relative_to(Path.cwd()) else source.file
    except ValueError:
        return source.file


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


def exit_code(reports: Sequence[ModelReport], failed: bool) -> int:
    if failed:
        return EXIT_ERROR
    if any(f.severity is Severity.ERROR for r in reports for f in r.findings):
        return EXIT_FINDINGS
    return EXIT_OK


def render_concise(reports: Sequence[ModelReport]) -> str:
    """``path:line:col: CODE message`` per finding, then a one-line summary."""
    lines = []
    for report in reports:
        for f in report.findings:
            where = f"{relpath(f.source)}:{f.source.line}:{f.source.col}: " if f.source else f"{f.model}: "
            lines.append(f"{where}{f.code} {f.message}")
    count = sum(len(r.findings) for r in reports)
    lines.append(f"Found {count} finding{'s' if count != 1 else ''} in {len(reports)} model{'s' if len(reports) != 1 else ''}.")
    return "\n".join(lines) + "\n"


@app.command()
def check(
    targets: Annotated[Optional[list[str]], typer.Argument(help="Models: file.py[:attr], pkg.mod:attr, torchvision:NAME, timm:NAME, model.onnx; globs allowed.")] = None,
    input_size: InputSize = None,
    input_shape: InputShape = None,
    model_kwargs: ModelKwargs = None,
    leaf_module: LeafModules = None,
    trust_pickle: TrustPickle = False,
    verbose: Verbose = False,
) -> None:
    """Lint models: report unproductive and critical layers (exit 1 on error-level findings)."""

    def body() -> int:
        names = expand(targets or [])
        if not names:
            raise UsageError("no model to check", hint="pass a target such as torchvision:resnet18 or list models in [tool.rflint.models]")
        reports: list[ModelReport] = []
        failed = False
        for target in names:
            try:
                spec = make_spec(target, input_size, input_shape, model_kwargs, leaf_module, trust_pickle)
                reports.append(lint(spec))
            except Exception as exc:  # noqa: BLE001 - report and go on with the other models
                fail(exc, verbose)
                failed = True
        sys.stdout.write(render_concise(reports))
        return exit_code(reports, failed)

    raise typer.Exit(run_guarded(verbose, body))


# ---------------------------------------------------------------------------------------------
# inspect

SHOWN_KINDS = {Kind.INPUT, Kind.WINDOW, Kind.UPSAMPLE, Kind.MERGE, Kind.GLOBAL, Kind.UNKNOWN}
STATUS_STYLE = {"ok": "green", "critical": "yellow", "unproductive": "bold red", "unknown": "magenta", "global": "cyan"}


def _axes_text(values: Sequence[Any]) -> str:
    shown = ["inf" if v is None else str(v) for v in values]
    return shown[0] if len(set(shown)) == 1 else "x".join(shown)


def analysis_rows(report: ModelReport, show_all: bool) -> list[dict[str, Any]]:
    """One dict per layer with everything `inspect` shows, in JSON-friendly types."""
    analysis = report.analysis
    size = analysis.graph.input_size
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
                "source": {"file": relpath(layer.source), "line": layer.source.line} if layer.source else None,
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
