"""Commands that show one model: ``inspect``, ``suggest``, ``graph``, ``plot`` and ``erf``."""

import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from rflint.cli.base import (
    EXIT_OK,
    command,
    emit,
    render_context,
    run_guarded,
    say_notes,
    stderr,
    use_color,
)
from rflint.errors import UsageError
from rflint.cli.options import (
    IMAGE_SUFFIXES,
    MODEL,
    OUTPUT,
    Color,
    ColorOption,
    Command,
    ConfigFile,
    GraphFormat,
    ImageFormat,
    Isolated,
    ModelOptions,
    model_options,
    OutputFiles,
    TableFormat,
    TextFormat,
    Verbose,
    format_alias,
    format_option,
    load_command_config,
    parse_size,
    pick_format,
    resolve_models,
)
from rflint.cli.outputs import Output, parse_outputs

# ---------------------------------------------------------------------------------------------
# inspect and suggest


def table_outputs(output_format: Any, format_: Any, output_file: Any) -> list[Output]:
    """The outputs of a command that writes a table or JSON (``inspect``, ``halo``)."""
    fmt = pick_format(output_format, format_, TableFormat.TABLE)
    return parse_outputs(output_file, fmt.value, [f.value for f in TableFormat])


def checked_models(targets: Any, given: ModelOptions, config_file: Any, isolated: bool, command_name: str, many: bool = True) -> tuple[Any, list[Any]]:
    """The configuration and the reports of the models a view command shows, each checked in a
    child process as ``rflint check`` checks it (the model's code cannot touch this process)."""
    from rflint.engine import pipeline as engine
    from rflint.engine.sandbox import Sandbox

    config = load_command_config(config_file, isolated)
    reports = engine.lint_isolated(resolve_models(targets or [], given, config, command_name, many), Sandbox(config.timeout))
    say_notes(reports)
    return config, reports


@command(cls=Command)
@model_options
def inspect(
    targets: Annotated[Optional[list[str]], typer.Argument(help="Models or configured model names (none: every configured model).")] = None,
    given: ModelOptions = ModelOptions(),
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
        from rflint.views import inspection as view

        outputs = table_outputs(output_format, format_, output_file)
        config, reports = checked_models(targets, given, config_file, isolated, "inspect")

        def text(output: Output) -> str:
            ctx = render_context(config.root, output, color, wide=True)
            if output.fmt == TableFormat.JSON.value:
                return view.render_json(reports, show_all, ctx)
            return view.render_table(reports, show_all, ctx)

        emit(outputs, text)
        return EXIT_OK

    raise typer.Exit(run_guarded(verbose, body))


@command(cls=Command)
@model_options
def halo(
    targets: Annotated[Optional[list[str]], typer.Argument(help="Models or configured model names (none: every configured model).")] = None,
    given: ModelOptions = ModelOptions(),
    output_format: Annotated[Optional[TableFormat], format_option("table (one line per axis) or json.")] = None,
    format_: Annotated[Optional[TableFormat], format_alias()] = None,
    output_file: OutputFiles = None,
    config_file: ConfigFile = None,
    isolated: Isolated = False,
    verbose: Verbose = False,
) -> None:
    """Show the halo tiled inference needs per axis and side, and the grid tiles are cut on."""

    def body() -> int:
        from rflint.views import halo as view

        outputs = table_outputs(output_format, format_, output_file)
        _, reports = checked_models(targets, given, config_file, isolated, "halo")
        emit(outputs, lambda output: view.render_json(reports) if output.fmt == TableFormat.JSON.value else view.render_text(reports))
        return EXIT_OK

    raise typer.Exit(run_guarded(verbose, body))


@command(cls=Command)
@model_options
def suggest(
    target: Annotated[Optional[str], typer.Argument(help="The model to refine, or a configured model's name (none: the only configured model).")] = None,
    given: ModelOptions = ModelOptions(),
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
        from rflint.advise.advisor import fmt_number
        from rflint.advise import suggest as suggest_edits
        from rflint.advise.refine import emit_python as python_code
        from rflint.views import suggestions as view

        fmt = pick_format(output_format, format_, TableFormat.TABLE)
        if top < 1:
            raise UsageError("--top must be at least 1")
        config = load_command_config(config_file, isolated)
        (spec,) = resolve_models([target] if target else [], given, config, "suggest", many=False)
        advice = suggest_edits(spec, top=top, verify=not no_verify)
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
# pictures and the effective receptive field (rflint.viz, rflint.engine.erf)


@command(cls=Command)
@model_options
def graph(
    target: Annotated[Optional[str], typer.Argument(help="The model to draw, or a configured model's name (none: the only configured model).")] = None,
    given: ModelOptions = ModelOptions(),
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
        from rflint.report import html as viz_html
        from rflint.viz import svg as viz_svg

        values = [*(output_file or ()), *(output_alias or ())]
        suffixes = {".svg": "svg", ".html": "html", ".htm": "html"}
        for value in values:
            if ":" not in value and value != "-" and output_format is None and Path(value).suffix.lower() not in suffixes:
                raise UsageError(f"cannot tell the format of {value!r}", hint="name the file .svg or .html, or pass --output-format")
        fmt = (output_format or GraphFormat.SVG).value
        outputs = parse_outputs(values, fmt, [f.value for f in GraphFormat], {} if output_format else suffixes)
        _, reports = checked_models([target] if target else [], given, config_file, isolated, "graph", many=False)
        analysis = reports[0].analysis
        draw = {"svg": lambda: viz_svg.render(analysis, collapse=not no_collapse), "html": lambda: viz_html.graph_document(analysis, collapse=not no_collapse)}
        emit(outputs, lambda o: draw[o.fmt](), announce=True)
        return EXIT_OK

    raise typer.Exit(run_guarded(verbose, body))


@command(cls=Command)
@model_options(without=("input_size",))
def plot(
    targets: Annotated[Optional[list[str]], typer.Argument(help="Models or configured model names, overlaid (none: every configured model).")] = None,
    input_size: Annotated[Optional[list[str]], typer.Option("--input-size", "-s", metavar="SIZE", help="Spatial input size (repeatable: each size is overlaid).", rich_help_panel=MODEL)] = None,
    given: ModelOptions = ModelOptions(),
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
        from rflint.engine import pipeline as engine
        from rflint.viz.plot import (
            Series,
            figure_bytes,
            growth_figure,
            require_matplotlib,
        )

        plt = require_matplotlib()  # fail before the (slow) tracing when it is missing
        values = [*(output_file or ()), *(output_alias or ())] or ["growth.png"]
        fmt = (output_format or ImageFormat.PNG).value
        outputs = parse_outputs(values, fmt, [f.value for f in ImageFormat], {} if output_format else IMAGE_SUFFIXES)
        config = load_command_config(config_file, isolated)
        sizes = list(input_size or [])
        opts = replace(given, input_size=sizes[0] if sizes else None)
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
@model_options
def erf(
    target: Annotated[Optional[str], typer.Argument(help="The model to measure, or a configured model's name (none: the only configured model).")] = None,
    given: ModelOptions = ModelOptions(),
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
        from rflint.engine import pipeline as engine
        from rflint.views import erf as view

        config = load_command_config(config_file, isolated)
        (spec,) = resolve_models([target] if target else [], given, config, "erf", many=False)
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


