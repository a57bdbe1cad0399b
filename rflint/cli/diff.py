"""``rflint diff``: two git revisions side by side, with an exit code for pull requests."""

from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from rflint.cli.base import (
    EXIT_ERROR,
    EXIT_FINDINGS,
    EXIT_OK,
    command,
    emit,
    note,
    render_context,
    run_guarded,
    show_progress,
    stderr,
)
from rflint.errors import RflintError, UsageError
from rflint.cli.options import (
    MODEL,
    OUTPUT,
    Color,
    ColorOption,
    Command,
    ConfigFile,
    Isolated,
    ModelOptions,
    model_options,
    NoCache,
    OutputFiles,
    Verbose,
    cache_root,
    format_alias,
    format_option,
    load_command_config,
    pick_format,
)
from rflint.cli.outputs import Output, parse_outputs

# ---------------------------------------------------------------------------------------------
# exit codes


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


def diff_cache(config_file: Path | None, isolated: bool) -> Path | None:
    """The working tree's result cache, which both revisions use; none when the working tree's
    configuration does not load (the diff reports that revision's error itself)."""
    try:
        return cache_root(load_command_config(config_file, isolated))
    except RflintError:
        return None


@command(cls=Command)
@model_options
def diff(
    base: Annotated[str, typer.Argument(help="The base git revision: origin/main, HEAD~1, a tag or a commit.")],
    head: Annotated[Optional[str], typer.Argument(help="The revision to compare with it (default: the working tree, uncommitted changes included).")] = None,
    model: Annotated[Optional[list[str]], typer.Option("--model", "-m", help="Model target or configured name (repeatable; default: every \\[\\[tool.rflint.models]] entry of each revision).", rich_help_panel=MODEL)] = None,
    given: ModelOptions = ModelOptions(),
    output_format: Annotated[Optional[DiffFormat], format_option("full (terminal), markdown (PR comment, job summary) or json.")] = None,
    format_: Annotated[Optional[DiffFormat], format_alias()] = None,
    output_file: OutputFiles = None,
    fail_on: Annotated[FailOn, typer.Option("--fail-on", case_sensitive=False, help="Exit 1 on: new-findings (a new error-level finding), any-change, or never. Exit 2 (could not run) is never masked.", rich_help_panel=OUTPUT)] = FailOn.NEW_FINDINGS,
    max_layers: Annotated[int, typer.Option("--max-layers", help="Rows of changed layers per model in full and markdown (0: all).", rich_help_panel=OUTPUT)] = 10,
    color: ColorOption = Color.AUTO,
    config_file: ConfigFile = None,
    isolated: Isolated = False,
    no_cache: NoCache = False,
    verbose: Verbose = False,
) -> None:
    """Compare two git revisions: I_min, I_max, findings and per-layer fields before and after.

    Each revision is analysed in its own process with its own config (the base in a temporary git worktree).

    Exit 1 when the change adds an error-level finding (see --fail-on), 2 when a model cannot be analysed.
    """

    def body() -> int:
        from rflint.diff import diff as run_diff
        from rflint.diff.worker import Request
        from rflint.views import diff as view
        from rflint.diff.compare import Status as ModelStatus

        if max_layers < 0:
            raise UsageError("--max-layers must be 0 (all) or more")
        fmt = pick_format(output_format, format_, DiffFormat.FULL)
        outputs = parse_outputs(output_file, fmt.value, [f.value for f in DiffFormat])
        request = Request(tuple(model or ()), given.parsed(), None if config_file is None else str(config_file), isolated)
        cache_dir = None if no_cache else diff_cache(config_file, isolated)
        if show_progress():
            with stderr.status(f"analysing {base} and {head or 'the working tree'}"):
                result = run_diff(base, head, request, verbose=verbose, cache_dir=cache_dir)
        else:
            result = run_diff(base, head, request, verbose=verbose, cache_dir=cache_dir)
        for warning in result.warnings:
            note(f"warning: {warning}")
        whole = {side for f in result.failures for side in f.side.split(" and ")}  # a revision that failed as a whole
        problems = [(f, "", "error") for f in result.failures] + [
            (f, f"{m.model}: ", "warning" if m.status is ModelStatus.STILL_FAILING else "error")
            for m in result.models
            for f in m.failures
            if f.side not in whole
        ]
        for failure, model_name, level in problems:  # the log says why the exit code is 2, whatever the format
            hint = f" (hint: {failure.hint})" if failure.hint else ""
            note(f"{level}: {model_name}{failure.side}: {failure.message}{hint}")

        def text(output: Output) -> str:
            if output.fmt == DiffFormat.JSON.value:
                return view.render_json(result)
            ctx = render_context(Path.cwd(), output, color if output.fmt == "full" else Color.NEVER, unbounded=True)
            render = view.render_full if output.fmt == DiffFormat.FULL.value else view.render_markdown
            return render(result, ctx, max_layers)

        emit(outputs, text)
        return diff_exit_code(result, fail_on)

    raise typer.Exit(run_guarded(verbose, body))


