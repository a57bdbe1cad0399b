"""What must answer without importing torch (seconds on a small machine): a cache hit of
`rflint check`, `--version`, `--help`, `rule`, and a configuration error. Each runs the real
command line in a fresh interpreter and reports whether torch ended up in ``sys.modules``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HARNESS = textwrap.dedent(
    """
    import sys
    sys.argv = ["rflint", *sys.argv[1:]]
    from rflint.cli import main
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    print("torch imported" if "torch" in sys.modules else "torch not imported", file=sys.stderr)
    sys.exit(code)
    """
)

MODEL = textwrap.dedent(
    """
    from torch import nn

    def build_model():
        return nn.Sequential(*[nn.Conv2d(3, 3, 3, padding=1) for _ in range(10)])
    """
)


def rflint(cwd, *args):
    result = subprocess.run([sys.executable, "-c", HARNESS, *args], cwd=cwd, capture_output=True, text=True)
    return result.returncode, result.stdout, result.stderr


@pytest.fixture()
def project(tmp_path):
    (tmp_path / "model.py").write_text(MODEL)
    # a package whose __init__ imports torch: finding its factory's line must not import it
    (tmp_path / "netpkg").mkdir()
    (tmp_path / "netpkg" / "__init__.py").write_text("import torch\n")
    (tmp_path / "netpkg" / "nets.py").write_text(MODEL)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.rflint]\ntask = "classification"\n[[tool.rflint.models]]\ntarget = "model.py"\ninput-size = 16\n'
        '[[tool.rflint.models]]\ntarget = "netpkg.nets:build_model"\ninput-size = 16\n'
    )
    return tmp_path


def test_a_cache_hit_answers_without_importing_torch(project):
    entries = Path(os.environ["RFLINT_CACHE_DIR"]).glob("v*/*.json")
    assert not list(entries)
    code, miss, err = rflint(project, "check", "--output-format", "json", "-j", "1")
    assert code == 1, err
    # a miss builds the models in a child process (rflint.engine.sandbox): torch stays out of this one
    assert err.splitlines()[-1] == "torch not imported"
    assert len(list(Path(os.environ["RFLINT_CACHE_DIR"]).glob("v*/*.json"))) == 2  # both were misses
    code, hit, err = rflint(project, "check", "--output-format", "json", "-j", "1")
    assert code == 1, err
    assert err.splitlines()[-1] == "torch not imported"
    assert hit == miss


@pytest.mark.parametrize(
    "args",
    [("--version",), ("--help",), ("check", "--help"), ("rule", "RF101"), ("rule", "--all"), ("clean",)],
)
def test_commands_that_build_no_model_do_not_import_torch(tmp_path, args):
    code, _, err = rflint(tmp_path, *args)
    assert code == 0, err
    assert err.splitlines()[-1] == "torch not imported"


def test_a_configuration_error_does_not_import_torch(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.rflint]\nselect = ["RF999"]\n')
    (tmp_path / "model.py").write_text(MODEL)
    code, _, err = rflint(tmp_path, "check", "model.py", "-s", "16")
    assert code == 2
    assert "RF999" in err and err.splitlines()[-1] == "torch not imported"
