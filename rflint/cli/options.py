"""The command-line vocabulary every command shares: option declarations, value parsing, the
output-format choices, and how the model options pick the models a command works on.

Kept apart from :mod:`rflint.cli` (which prints, reads the environment and picks exit codes) so
that the commands stay short and every command declares an option the same way. Nothing here
imports torch.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from typer.core import TyperCommand, TyperGroup

from rflint.cli.coercion import install as install_coercion
from rflint.errors import UsageError
from rflint.spec import ModelSpec, Overrides

if TYPE_CHECKING:
    from rflint.project.config import Config


def _quiet_flags(params: list[Any]) -> list[Any]:
    """No ``<bool>`` type column for flags in ``--help`` (typer shows one for every option)."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class Command(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return install_coercion(_quiet_flags(super().get_params(ctx)))


class Group(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return install_coercion(_quiet_flags(super().get_params(ctx)))

    def main(self, args: Any = None, prog_name: Any = None, complete_var: Any = None, standalone_mode: bool = True, **extra: Any) -> Any:
        """click's standalone mode, with a usage error as one line on stderr and exit 2 (as
        ruff prints it) instead of typer's boxed usage panel: in pre-commit and CI logs the
        error is the line people read."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        import sys

        errors = _click().exceptions
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except errors.UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # bare `rflint`: the help, as typer shows it
                _show(exc)
                sys.exit(exc.exit_code)
            sys.stderr.write(usage_error_line(exc) + "\n")
            sys.exit(2)
        except errors.ClickException as exc:
            _show(exc)
            sys.exit(exc.exit_code)
        except (typer.Abort, getattr(errors, "Abort", typer.Abort)):
            sys.stderr.write("rflint: aborted\n")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def _show(exc: Any) -> None:
    """A click exception as typer would print it."""
    try:
        from typer import rich_utils

        rich_utils.rich_format_error(exc)
    except ImportError:
        exc.show()


def _click() -> Any:
    """The click typer runs on (recent typer versions carry their own copy as ``typer._click``)."""
    import typer.core

    return getattr(typer.core, "_click", None) or typer.core.click


def usage_error_line(exc: Any) -> str:
    """``rflint: error: unexpected argument '--foo' (hint: ...)`` for one click usage error."""
    from rflint.engine.dependencies import error_line

    errors = _click().exceptions
    command = exc.ctx.command_path if exc.ctx is not None else "rflint"
    helping = f"see `{command} --help`"
    if isinstance(exc, errors.NoSuchOption):
        close = list(exc.possibilities or ())[:3]  # click orders them by similarity
        hint = f"did you mean {', '.join(close)}? {helping}" if close else helping
        return error_line(f"unexpected argument {exc.option_name!r}", hint)
    message = " ".join(exc.format_message().split())
    return error_line(message, helping)


# ---------------------------------------------------------------------------------------------
# values


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
    from rflint.kwargs import form_error

    problem = form_error(value, "--model-kwargs")
    if problem:
        raise UsageError(problem, hint='a class is written {"conv_op": {"class": "torch.nn.Conv3d"}}')
    return value


def split_selectors(values: Sequence[str] | None) -> list[str] | None:
    """``--select RF101,RF102 --select RF001`` -> ``["RF101", "RF102", "RF001"]``."""
    if values is None:
        return None
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def pick_format(value: Enum | None, alias: Enum | None, default: Enum) -> Any:
    """``--output-format``, or its hidden alias ``--format``, or the default."""
    if value is not None and alias is not None and value != alias:
        raise UsageError(f"--output-format {value.value} and --format {alias.value} disagree", hint="give only --output-format")
    return value or alias or default


# ---------------------------------------------------------------------------------------------
# options

MODEL, OUTPUT, CONFIG = "Model", "Output", "Configuration"


class Color(str, Enum):
    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


InputSize = Annotated[
    Optional[str],
    typer.Option("--input-size", "-s", metavar="SIZE", help="Spatial input size: 224, or per axis 224x160 (channels are inferred).", rich_help_panel=MODEL),
]
InputShape = Annotated[
    Optional[str],
    typer.Option("--input-shape", metavar="SHAPE", help="Full input shape, batch included: 1,3,224,224. Wins over --input-size.", rich_help_panel=MODEL),
]
ModelKwargs = Annotated[
    Optional[str],
    typer.Option("--model-kwargs", metavar="JSON", help='Keyword arguments for the factory: \'{"num_classes": 10}\'.', rich_help_panel=MODEL),
]
LeafModules = Annotated[
    Optional[list[str]],
    typer.Option("--leaf-module", metavar="CLASS", help="Dotted class path not to trace through (repeatable).", rich_help_panel=MODEL),
]
TrustPickle = Annotated[
    bool,
    typer.Option("--trust-pickle", help="Allow loading pickled models (.pt/.pth/TorchScript): this EXECUTES code from the file.", rich_help_panel=MODEL),
]
class Task(str, Enum):
    AUTO = "auto"
    CLASSIFICATION = "classification"
    DENSE = "dense"


TaskOption = Annotated[
    Optional[Task],
    typer.Option("--task", case_sensitive=False, help="How layers are judged: auto (dense when an output keeps a spatial axis), classification or dense (every unit, corners included).", rich_help_panel=MODEL),
]
CausalOption = Annotated[
    Optional[list[str]],
    typer.Option("--causal", metavar="AXIS", help="An axis whose future must not be read (T, L, H, W or an index; repeatable): turns on RF104.", rich_help_panel=MODEL),
]
SampleRate = Annotated[
    Optional[float],
    typer.Option("--sample-rate", metavar="HZ", help="Samples per second of a 1-D model's input: fields, jumps and lookahead also in ms.", rich_help_panel=MODEL),
]
OutputFiles = Annotated[
    Optional[list[str]],
    typer.Option("--output-file", "-o", metavar="[FORMAT:]PATH", help="Write to a file instead of stdout; FORMAT:PATH writes another format (repeatable, - is stdout).", rich_help_panel=OUTPUT),
]
ColorOption = Annotated[
    Color,
    typer.Option("--color", case_sensitive=False, help="Colour: auto honours NO_COLOR, FORCE_COLOR and the terminal.", rich_help_panel=OUTPUT),
]
ConfigFile = Annotated[
    Optional[Path],
    typer.Option("--config", metavar="FILE", help="Config file (pyproject.toml or rflint.toml) instead of the nearest one.", rich_help_panel=CONFIG),
]
Isolated = Annotated[bool, typer.Option("--isolated", help="Ignore every configuration file.", rich_help_panel=CONFIG)]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks for errors.")]
CACHE = "Cache and parallelism"
NoCache = Annotated[
    bool,
    typer.Option("--no-cache", envvar="RFLINT_NO_CACHE", help="Neither read nor write the result cache.", rich_help_panel=CACHE),
]
Jobs = Annotated[
    Optional[int],
    typer.Option("--jobs", "-j", help="Processes for several models (default: the number of CPUs, one per 4 models to check at most; 1: serial).", rich_help_panel=CACHE),
]

Timeout = Annotated[
    Optional[float],
    typer.Option("--timeout", metavar="SECONDS", help="Fail a model whose import, factory or trace takes longer (default: the config's timeout, else 300; 0: no limit).", rich_help_panel=CACHE),
]


def timeout_seconds(option: float | None, configured: float) -> float | None:
    """``--timeout``, else the config's ``timeout``; None for no limit (0)."""
    import math

    value = configured if option is None else option
    if not (value >= 0 and math.isfinite(value)):
        raise UsageError(f"--timeout must be a number of seconds >= 0, not {value:g}", hint="--timeout 0 sets no limit")
    return value or None


def job_count(jobs: int | None) -> int | None:
    """``-j``; None (not given) lets the engine use the CPUs when there are enough models."""
    if jobs is None:
        return None
    if jobs < 1:
        raise UsageError(f"--jobs must be at least 1, not {jobs}", hint="-j 1 checks the models one after the other")
    return jobs


def format_option(help: str, **extra: Any) -> Any:
    """``--output-format`` with the command's choices."""
    return typer.Option("--output-format", case_sensitive=False, help=help, rich_help_panel=OUTPUT, **extra)


def format_alias() -> Any:
    """``--format``: accepted as an alias of ``--output-format`` (ruff spells it so), not shown."""
    return typer.Option("--format", case_sensitive=False, hidden=True)


@dataclass(frozen=True)
class ModelOptions:
    """The model options as given on the command line (None/empty when not given); every
    command declares them once, with :func:`model_options`."""

    input_size: str | None = None
    input_shape: str | None = None
    model_kwargs: str | None = None
    leaf_modules: tuple[str, ...] = ()
    trust_pickle: bool = False
    task: str | None = None
    causal: tuple[str, ...] = ()
    sample_rate: float | None = None

    @property
    def gives_geometry(self) -> bool:
        return self.input_size is not None or self.input_shape is not None

    def parsed(self) -> Overrides:
        """The options as the engine applies them (:class:`rflint.spec.Overrides`)."""
        if self.sample_rate is not None and not 0 < self.sample_rate < float("inf"):
            raise UsageError(f"--sample-rate must be a positive number of samples per second, not {self.sample_rate:g}", hint="e.g. --sample-rate 16000")
        return Overrides(
            input_size=parse_size(self.input_size) if self.input_size else None,
            input_shape=parse_shape(self.input_shape) if self.input_shape else None,
            kwargs=parse_kwargs(self.model_kwargs),
            leaf_modules=self.leaf_modules,
            trust_pickle=self.trust_pickle,
            task=self.task,
            causal=self.causal,
            sample_rate=self.sample_rate,
        )


#: the model options every command takes, as (parameter, annotation, default)
MODEL_PARAMETERS: tuple[tuple[str, Any, Any], ...] = (
    ("input_size", InputSize, None),
    ("input_shape", InputShape, None),
    ("model_kwargs", ModelKwargs, None),
    ("leaf_module", LeafModules, None),
    ("trust_pickle", TrustPickle, False),
    ("task", TaskOption, None),
    ("causal", CausalOption, None),
    ("sample_rate", SampleRate, None),
)


def model_options(fn: Callable[..., Any] | None = None, *, without: tuple[str, ...] = ()) -> Any:
    """Declare the model options of a command once. The command takes a ``given:
    ModelOptions`` parameter; typer sees the options of :data:`MODEL_PARAMETERS` (less
    ``without``, which the command declares its own way) in its place, and the command gets
    them as one :class:`ModelOptions`."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(fn)
        params = list(signature.parameters.values())
        at = [p.name for p in params].index("given")
        declared = [(n, a, d) for n, a, d in MODEL_PARAMETERS if n not in without]
        injected = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=d, annotation=a) for n, a, d in declared]

        @functools.wraps(fn)
        def command(**rest: Any) -> Any:
            values = {n: rest.pop(n) for n, _, _ in declared}
            task = values.get("task")
            options = ModelOptions(
                input_size=values.get("input_size"),
                input_shape=values.get("input_shape"),
                model_kwargs=values.get("model_kwargs"),
                leaf_modules=tuple(values.get("leaf_module") or ()),
                trust_pickle=bool(values.get("trust_pickle")),
                task=getattr(task, "value", task),
                causal=tuple(values.get("causal") or ()),
                sample_rate=values.get("sample_rate"),
            )
            return fn(given=options, **rest)

        new = params[:at] + injected + params[at + 1 :]
        command.__signature__ = signature.replace(parameters=new)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in new} | {"return": signature.return_annotation}
        return command

    return decorate(fn) if fn is not None else decorate


def load_command_config(config_file: Path | None, isolated: bool, memo: Any = None) -> Config:
    from rflint.project.config import load_config

    return load_config(config_file, isolated=isolated, memo=memo)


def cache_root(config: Config) -> Path:
    """Where the cache of this configuration lives; ``$RFLINT_CACHE_DIR`` wins."""
    from rflint.engine.cache_dir import resolve_root

    return resolve_root(config.root, config.cache_dir, os.environ.get("RFLINT_CACHE_DIR"))


def config_memo(no_cache: bool) -> Any:
    """Remembers validated configuration tables in the cache (none with ``--no-cache``)."""
    if no_cache:
        return None
    from rflint.engine.cache import ValidConfigs

    return ValidConfigs(os.environ.get("RFLINT_CACHE_DIR"))


def resolve_models(targets: Sequence[str], opts: ModelOptions, config: Config, command_name: str, many: bool = True) -> list[ModelSpec]:
    """The models a command works on, exactly as ``check`` picks them: targets (a configured
    model's name or target reuses its entry), or with none every configured model. A
    single-model command accepts a bare call when exactly one model is configured."""
    from rflint.engine import pipeline as engine

    specs = engine.resolve_specs(targets, config, opts.parsed())
    if not many and len(specs) != 1:
        names = ", ".join(s.display_name for s in specs)
        raise UsageError(f"rflint {command_name} works on one model, but {len(specs)} are selected ({names})", hint="name one of them")
    return specs


class TextFormat(str, Enum):
    TEXT = "text"
    JSON = "json"


class TableFormat(str, Enum):
    TABLE = "table"
    JSON = "json"


class GraphFormat(str, Enum):
    SVG = "svg"
    HTML = "html"


class ImageFormat(str, Enum):
    PNG = "png"
    SVG = "svg"
    PDF = "pdf"


IMAGE_SUFFIXES = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
