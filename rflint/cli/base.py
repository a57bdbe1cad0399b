"""What every command shares: the typer app, errors as one line and exit 2, colour, progress,
writing outputs, ``--version``. Nothing here imports torch. No ``from __future__ import
annotations`` in the modules that declare commands: typer would compile and evaluate every
annotation string on every run."""

import contextlib
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from rflint._version import __version__
from rflint.errors import BrokenInstallError, RflintError, unexpected
from rflint.cli.options import (
    Color,
    Group,
)
from rflint.cli.outputs import Output, write
from rflint.report import escape
from rflint.spec import ModelSpec

app = typer.Typer(
    name="rflint",
    help="Static receptive-field linter for PyTorch CNNs: finds layers that cannot add context.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    cls=Group,
)
#: the one command to build (set by :func:`rflint.cli.main`), None for all: typer builds a click
#: command, its parameters and their type hints for every registered command on every run
only_command: str | None = None
#: commands declared but not built, as (options, function), in declaration order
_deferred: list[tuple[dict[str, Any], Callable[..., Any]]] = []


def command(**options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``app.command`` (every command passes ``cls=Command``), for :data:`only_command` only."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        name = options.get("name") or fn.__name__.lower().replace("_", "-")
        if only_command is None or name == only_command:
            app.command(**options)(fn)
        else:
            _deferred.append((options, fn))
        return fn

    return register


def build_deferred() -> None:
    """Register the commands :data:`only_command` left out (``app`` used from Python)."""
    while _deferred:
        options, fn = _deferred.pop(0)
        app.command(**options)(fn)

stderr = Console(stderr=True)

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


# ---------------------------------------------------------------------------------------------
# error handling


def fail(exc: BaseException, verbose: bool, model: str = "") -> None:
    """One line on stderr naming the problem (and a hint), or the traceback with --verbose. A
    dependency that fails to import is named as such (a broken install, not a bug, and not the
    model's: no model is named). ``model``: the model the error is about, named first (a run
    checks several)."""
    from rflint.engine.dependencies import broken_install, error_line  # importlib.metadata: only on failure

    if verbose:
        traceback.print_exception(exc, file=sys.stderr)
    broken = None if isinstance(exc, RflintError) else broken_install(exc)
    if isinstance(exc, RflintError):
        message, hint = str(exc), exc.hint
    elif isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        message, hint = f"{exc.filename}: {exc.strerror}", "check the path and its permissions"  # the file system said no
    else:
        message, hint = broken or (unexpected(exc), "this may be a bug in rflint; rerun with --verbose for the traceback")
    if model and broken is None and not isinstance(exc, BrokenInstallError) and not message.startswith(f"{model}: "):
        message = f"{model}: {message}"
    stderr.print(error_line(escape.text(message), escape.text(hint)), markup=False, highlight=False, soft_wrap=True)


def run_guarded(verbose: bool, fn: Callable[[], int]) -> int:
    try:
        return fn()
    except (RflintError, Exception) as exc:  # noqa: BLE001 - every failure becomes exit 2
        fail(exc, verbose)
        return EXIT_ERROR


def note(text: str) -> None:
    """One plain line on stderr, prefixed ``rflint:`` (control characters in names and
    messages shown as escapes: it is one line, and it cannot drive the terminal)."""
    stderr.print(f"rflint: {escape.text(text)}", markup=False, highlight=False, soft_wrap=True)


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


#: the width of a text that is never cut: a pipe or a file gets each table at its natural width
UNBOUNDED_WIDTH = 100_000


def render_context(root: Path | str, output: Output, color: Color, wide: bool = False, unbounded: bool = False, **extra: Any) -> Any:
    """The render context for one output: colour and width follow the terminal when the output
    is a terminal (``COLUMNS`` wins, as rich reads it); a file gets colour only with
    ``--color always``, and a width of 100 (200 for ``wide`` tables, which would otherwise fold
    every cell; no limit for ``unbounded`` ones, which a log or ``grep`` must get whole)."""
    from rflint.report.common import RenderContext

    stream = sys.stdout if output.to_stdout else None
    tty = bool(stream is not None and stream.isatty())
    width = stderr.width if tty else (UNBOUNDED_WIDTH if unbounded else 200 if wide else 100)
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


def say_notes(reports: Sequence[Any]) -> None:
    """Once per model on stderr: why the fallback tracer read it, and a guessed input shape."""
    for report in reports:
        name = report.spec.display_name
        if report.tracer_reason:
            note(f"{name}: traced with torch.export, because {report.tracer_reason}")
        for text in report.notes:
            note(f"{name}: {text}")


# ---------------------------------------------------------------------------------------------
# the app


def _version_callback(value: bool) -> None:
    if value:
        print(f"rflint {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", "-V", callback=_version_callback, is_eager=True, help="Show the version and exit.")] = False,
) -> None:
    """rflint: receptive-field linter for PyTorch models."""
