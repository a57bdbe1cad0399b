"""Crashes: a model whose code ends the process (``sys.exit``, ``os._exit``, a fatal signal)
or never returns fails the gate with exit 2 and one line naming the model, in a serial run as
under ``-j``; the other models are still checked and rflint's own output stays whole."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

GOOD = "from torch import nn\n\ndef build_model():\n    return nn.Sequential(*[nn.Conv2d(3, 3, 3, padding=1) for _ in range(12)])\n"
FORWARD = textwrap.dedent(
    """
    import os, signal, sys
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3)

        def forward(self, x):
            {statement}
            return self.conv(x)

    def build_model():
        return Net()
    """
)

#: (where, file contents, what the one line says)
ENDINGS = [
    ("os._exit in the factory", "import os\n\ndef build_model():\n    os._exit(0)\n", "exit status 0"),
    ("os._exit(3) at import", "import os\nos._exit(3)\n", "exit status 3"),
    ("sys.exit at import", "import sys\nsys.exit(0)\n", "exit status 0"),
    ("sys.exit in the factory", "import sys\n\ndef build_model():\n    sys.exit('bye')\n", "exit status 1, message 'bye'"),
    ("exit() in the factory", "def build_model():\n    exit(4)\n", "exit status 4"),
    ("sys.exit in forward", FORWARD.format(statement="sys.exit(0)"), "exit status 0"),
    ("os._exit in forward", FORWARD.format(statement="os._exit(0)"), "exit status 0"),
    ("SIGKILL in forward", FORWARD.format(statement="os.kill(os.getpid(), signal.SIGKILL)"), "killed by signal SIGKILL"),
    ("SIGSEGV at import", "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n", "killed by signal SIGSEGV"),
]


def check(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rflint", "check", *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("rflint: error:")]


@pytest.mark.parametrize(("where", "source", "status"), ENDINGS, ids=[e[0] for e in ENDINGS])
def test_model_code_that_ends_the_process_fails_that_model_with_one_line(tmp_path, where, source, status):
    (tmp_path / "ends.py").write_text(source)
    (tmp_path / "good.py").write_text(GOOD)
    result = check(tmp_path, "ends.py", "good.py", "-s", "8", "--no-cache", "--output-format", "json")
    assert result.returncode == 2, result.stderr
    assert error_lines(result) == [f"rflint: error: ends.py: the model's code exited the process ({status}) (hint: remove the sys.exit() / os._exit() / exit() call from the model's import, factory or forward)"]
    findings = json.loads(result.stdout)
    assert findings and {f["model"] for f in findings} == {"good.py"}  # the next model was checked
    assert "Traceback" not in result.stderr


def test_serial_and_worker_runs_agree_on_a_model_that_exits(tmp_path):
    (tmp_path / "a.py").write_text(GOOD)
    (tmp_path / "ends.py").write_text("import os\n\ndef build_model():\n    os._exit(0)\n")
    (tmp_path / "b.py").write_text(GOOD)
    runs = [check(tmp_path, "a.py", "ends.py", "b.py", "-s", "8", "--no-cache", "--output-format", "concise", "-j", j) for j in ("1", "2")]
    assert runs[0].returncode == runs[1].returncode == 2
    assert runs[0].stdout == runs[1].stdout
    assert error_lines(runs[0]) == error_lines(runs[1]) and len(error_lines(runs[0])) == 1


HANGS = [
    ("import", "import time\nwhile True:\n    time.sleep(0.1)\n"),
    ("factory", "def build_model():\n    while True:\n        pass\n"),
    ("forward", FORWARD.format(statement="while True: pass")),
]


@pytest.mark.parametrize(("where", "source"), HANGS, ids=[h[0] for h in HANGS])
def test_a_model_that_hangs_is_ended_by_the_time_limit_and_named(tmp_path, where, source):
    (tmp_path / "hangs.py").write_text(source)
    (tmp_path / "good.py").write_text(GOOD)
    t0 = time.monotonic()
    result = check(tmp_path, "hangs.py", "good.py", "-s", "8", "--no-cache", "--output-format", "json", "--timeout", "3", "-j", "1")
    assert time.monotonic() - t0 < 120  # far below the default limit: the 3 s one ended it
    assert result.returncode == 2, result.stderr
    assert error_lines(result) == [error_lines(result)[0]]
    assert "hangs.py: importing, building and tracing the model did not finish within 3 s (--timeout)" in error_lines(result)[0]
    assert {f["model"] for f in json.loads(result.stdout)} == {"good.py"}


def test_the_time_limit_comes_from_the_config_and_the_option_wins(tmp_path):
    (tmp_path / "hangs.py").write_text(HANGS[0][1])
    (tmp_path / "pyproject.toml").write_text("[tool.rflint]\ntimeout = 2\n")
    result = check(tmp_path, "hangs.py", "-s", "8", "--no-cache")
    assert result.returncode == 2
    assert "did not finish within 2 s" in result.stderr
    result = check(tmp_path, "hangs.py", "-s", "8", "--no-cache", "--timeout", "1.5")
    assert "did not finish within 1.5 s" in result.stderr


@pytest.mark.parametrize(("toml", "message"), [("timeout = -1", "timeout"), ('timeout = "long"', "timeout")])
def test_a_bad_timeout_in_the_config_is_a_config_error(tmp_path, toml, message):
    (tmp_path / "good.py").write_text(GOOD)
    (tmp_path / "pyproject.toml").write_text(f"[tool.rflint]\n{toml}\n")
    result = check(tmp_path, "good.py", "-s", "8", "--no-cache")
    assert result.returncode == 2
    assert len(error_lines(result)) == 1 and "tool.rflint.timeout" in error_lines(result)[0]


@pytest.mark.parametrize("value", ["-1", "nan", "inf"])
def test_a_bad_timeout_option_is_a_usage_error(tmp_path, value):
    (tmp_path / "good.py").write_text(GOOD)
    result = check(tmp_path, "good.py", "-s", "8", "--no-cache", "--timeout", value)
    assert result.returncode == 2
    assert error_lines(result) == [error_lines(result)[0]] and "--timeout must be a number of seconds >= 0" in result.stderr


def test_a_model_whose_forked_process_outlives_it_does_not_hold_up_the_run(tmp_path):
    # the forked process inherits the child's end of rflint's pipe; rflint must see the child
    # die anyway. Its output goes to files: the forked process also holds rflint's stdout and
    # stderr, and a pipe would stay open (for whoever reads it) until that process ends
    (tmp_path / "forks.py").write_text(
        "import os, time\n\ndef build_model():\n    if os.fork() == 0:\n        time.sleep(400)\n        os._exit(0)\n    os._exit(0)\n"
    )
    (tmp_path / "good.py").write_text(GOOD)
    t0 = time.monotonic()
    with open(tmp_path / "out", "w") as out, open(tmp_path / "err", "w") as err:
        args = [sys.executable, "-m", "rflint", "check", "forks.py", "good.py", "-s", "8", "--no-cache", "--output-format", "json"]
        code = subprocess.run(args, cwd=tmp_path, stdout=out, stderr=err, timeout=600).returncode
    assert time.monotonic() - t0 < 300  # not held until the forked process ends (400 s)
    assert code == 2
    errors = [line for line in (tmp_path / "err").read_text().splitlines() if line.startswith("rflint: error:")]
    assert len(errors) == 1 and "forks.py: the model's code exited the process (exit status 0)" in errors[0]
    assert {f["model"] for f in json.loads((tmp_path / "out").read_text())} == {"good.py"}
