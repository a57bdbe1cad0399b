"""The command line parses its options without pydantic and builds only the invoked command:
the values are the ones typer's own coercion gives, bad values are one-line usage errors
(exit 2), and a run imports neither pydantic nor the modules of other commands."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import pytest
import typer
from typer.testing import CliRunner

from rflint.cli import coercion

PROBE = textwrap.dedent(
    """
    import sys
    sys.argv = ["rflint", *sys.argv[1:]]
    from rflint.cli import main
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    loaded = [m for m in ("pydantic", "rflint.cli.diff", "rflint.cli.views", "rflint.cli.lint") if m in sys.modules]
    print("loaded:" + ",".join(loaded), file=sys.stderr)
    sys.exit(code)
    """
)


def loaded(cwd: Path, *args: str) -> tuple[int, list[str]]:
    result = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=cwd, capture_output=True, text=True)
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("loaded:"), result.stderr
    return result.returncode, [m for m in line[len("loaded:") :].split(",") if m]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--version",), []),
        (("rule", "RF101", "--output-format", "json"), ["rflint.cli.lint"]),
        (("clean",), ["rflint.cli.lint"]),
        (("--help",), ["rflint.cli.diff", "rflint.cli.views", "rflint.cli.lint"]),
    ],
)
def test_a_run_imports_no_pydantic_and_only_the_invoked_commands_module(tmp_path, args, expected):
    code, modules = loaded(tmp_path, *args)
    assert code == 0
    assert sorted(modules) == sorted(expected)


def test_a_check_with_every_kind_of_option_imports_no_pydantic(tmp_path):
    (tmp_path / "model.py").write_text("from torch import nn\n\ndef build_model():\n    return nn.Conv2d(3, 3, 3)\n")
    code, modules = loaded(
        tmp_path, "check", "model.py", "-s", "16", "-j", "1", "--color", "NEVER", "--select", "RF1", "--config", "missing.toml"
    )
    assert code == 2  # the config file does not exist: the options were parsed
    assert modules == ["rflint.cli.lint"]


class Shade(str, Enum):
    LIGHT = "light"
    DARK = "dark"


def _app(cls: type | None = None) -> typer.Typer:
    from rflint.cli.options import Command

    app = typer.Typer()

    @app.command(cls=cls or Command)
    def show(
        n: int = 1,
        shade: Shade = Shade.LIGHT,
        where: Path = Path("."),
        tags: Annotated[Optional[list[str]], typer.Option("--tag")] = None,
        flag: bool = False,
        rate: Optional[float] = None,
    ) -> None:
        print(repr((n, shade, where, tags, flag, rate)))

    @app.command()
    def other() -> None:
        """A second command, so that ``show`` is a subcommand."""

    return app


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--n", "3", "--shade", "dark", "--where", "a/b", "--tag", "x", "--tag", "y", "--flag", "--rate", "16000"],
        ["--n", " 7 ", "--no-flag", "--rate", "0.5"],
    ],
)
def test_plain_options_get_the_values_typer_gives(args):
    from typer.core import TyperCommand

    ours = CliRunner().invoke(_app(), ["show", *args])
    typers = CliRunner().invoke(_app(TyperCommand), ["show", *args])  # typer's own coercion (pydantic)
    assert ours.exit_code == typers.exit_code == 0, ours.output
    assert ours.stdout == typers.stdout
    if args[:2] == ["--n", "3"]:
        assert ours.stdout.strip() == repr((3, Shade.DARK, Path("a/b"), ["x", "y"], True, 16000.0))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--n", "three"], "'three' is not a valid integer."),
        (["--shade", "grey"], "'grey' is not one of 'light', 'dark'."),
        (["--rate", "fast"], "'fast' is not a valid float."),
    ],
)
def test_a_bad_value_is_a_usage_error_naming_it(args, message):
    result = CliRunner().invoke(_app(), ["show", *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.replace("│", " ").split())


def test_options_typer_must_check_itself_keep_typer_s_coercion():
    info = typer.models.OptionInfo(min=0)
    assert coercion.coercer(int, info) is None  # a range
    assert coercion.coercer(Path, typer.models.OptionInfo(exists=True)) is None  # a path check
    assert coercion.coercer(float, typer.models.OptionInfo(min=1.0)) is None  # a range on a float
    assert coercion.coercer(list[int], typer.models.OptionInfo()) is not None
