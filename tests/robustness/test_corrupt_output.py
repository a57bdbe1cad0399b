"""Corrupt output: whatever a model's code writes, and wherever it moves the process, stdout
stays one valid document in every machine format and ``-o`` files land where they were asked.

Each hostile model is written in ``tmp_path`` and checked by the real command line in a fresh
interpreter, because the escapes under test (file descriptor 1, ``sys.__stdout__``, ``atexit``)
are below what an in-process runner captures."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

#: prints in every place user code runs: at import, in the factory, in forward, at exit
NOISY = textwrap.dedent(
    """
    import atexit, os, sys
    from torch import nn

    print("import print")
    os.write(1, b"import fd-1 write\\n")
    sys.__stdout__.write("import __stdout__ write\\n")
    atexit.register(lambda: print("atexit print"))
    atexit.register(lambda: os.write(1, b"atexit fd-1 write\\n"))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.convs = nn.Sequential(*[nn.Conv2d(3, 3, 3, padding=1) for _ in range(12)])

        def forward(self, x):
            print("forward print")
            os.write(1, b"forward fd-1 write\\n")
            return self.convs(x)

    def build_model():
        print("factory print")
        sys.__stdout__.write("factory __stdout__ write\\n")
        sys.__stdout__.flush()
        os.chdir({elsewhere!r})
        return Net()
    """
)
WRITES = ("import print", "import fd-1 write", "import __stdout__ write", "factory print", "forward print", "forward fd-1 write")


def check(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rflint", "check", *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def parse(fmt: str, text: str) -> object:
    """The document, or an exception if stdout is not one."""
    if fmt == "junit":
        return ET.fromstring(text)
    if fmt == "json-lines":
        return [json.loads(line) for line in text.splitlines()]
    return json.loads(text)


@pytest.fixture()
def noisy(tmp_path: Path) -> Path:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "noisy.py").write_text(NOISY.format(elsewhere=str(elsewhere)))
    return tmp_path


@pytest.mark.parametrize("fmt", ["json", "sarif", "junit", "json-lines"])
def test_what_the_models_code_writes_never_reaches_a_machine_format_on_stdout(noisy, fmt):
    result = check(noisy, "noisy.py", "-s", "8", "--output-format", fmt, "--no-cache")
    assert result.returncode == 1, result.stderr  # RF findings at 8 px: the model was checked
    parse(fmt, result.stdout)
    for text in (*WRITES, "atexit"):
        assert text not in result.stdout
    for text in WRITES:  # shown to the user, on stderr
        assert text in result.stderr


def test_the_same_holds_for_several_models_in_worker_processes(noisy):
    (noisy / "quiet.py").write_text("from torch import nn\n\ndef build_model():\n    return nn.Conv2d(3, 3, 3)\n")
    result = check(noisy, "noisy.py", "quiet.py", "noisy.py:build_model", "-s", "8", "--output-format", "json", "--no-cache", "-j", "2")
    assert result.returncode == 1, result.stderr
    findings = json.loads(result.stdout)
    assert {f["model"] for f in findings} >= {"noisy.py"}
    assert not [text for text in (*WRITES, "atexit") if text in result.stdout]


def test_an_atexit_handler_of_the_model_does_not_change_the_exit_code(tmp_path):
    # the model has error-level findings (exit 1); its handler would end the process with 0
    (tmp_path / "quits.py").write_text(
        "import atexit, os\nfrom torch import nn\natexit.register(lambda: os._exit(0))\n\n"
        "def build_model():\n    return nn.Sequential(*[nn.Conv2d(3, 3, 3, padding=1) for _ in range(12)])\n"
    )
    result = check(tmp_path, "quits.py", "-s", "8", "--output-format", "json", "--no-cache")
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)


def test_a_factory_that_changes_directory_does_not_move_the_output_files(noisy):
    result = check(noisy, "noisy.py", "-s", "8", "--no-cache", "-o", "report.json", "--output-format", "json", "-o", "sarif:out/report.sarif")
    assert result.returncode == 1, result.stderr
    assert json.loads((noisy / "report.json").read_text())
    assert json.loads((noisy / "out" / "report.sarif").read_text())["runs"]
    assert not (noisy / "elsewhere" / "report.json").exists()
    assert result.stdout == ""  # the primary output went to report.json


def test_the_python_api_keeps_stdout_and_the_working_directory(noisy, capfd, monkeypatch):
    import rflint

    # in-process, the model's atexit handlers would run when pytest exits: left out here
    source = (noisy / "noisy.py").read_text()
    (noisy / "noisy.py").write_text("\n".join(line for line in source.splitlines() if "atexit.register" not in line))
    monkeypatch.chdir(noisy)
    report = rflint.analyze(str(noisy / "noisy.py"), input_size=8)
    out, err = capfd.readouterr()
    assert report.unproductive  # it was analysed
    assert Path.cwd() == noisy
    for text in WRITES[:-1]:  # fd 1 and sys.stdout both pointed at stderr while the model ran
        assert text not in out
        assert text in err
