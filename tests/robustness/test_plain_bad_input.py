"""Crashes on plain bad input: each reached "unexpected ... this may be a bug in rflint" or
printed a traceback or a usage box; each is one line on stderr and exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

MODEL = "from torch import nn\n\n\ndef build():\n    return nn.Sequential(nn.Conv2d(3, 3, 3), nn.Conv2d(3, 3, 3))\n"


def rflint(cwd, *args: str) -> str:
    """The one stderr line of a failing run (exit 2)."""
    run = subprocess.run([sys.executable, "-m", "rflint", *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(lines) == 1, run.stderr
    assert "may be a bug" not in lines[0] and "Traceback" not in run.stderr
    return lines[0]


@pytest.mark.parametrize("size", ["9223372036854775808", "4294967296", "3037000500x3037000500"])
def test_an_input_size_past_int64_is_one_line(tmp_path, size):
    (tmp_path / "net.py").write_text(MODEL)
    assert "more than a tensor can hold" in rflint(tmp_path, "check", "--no-cache", "net.py:build", "--input-size", size)


@pytest.mark.parametrize("target", ["loop.py", "loop.py:build", "loop"])
def test_a_symlink_loop_as_target_is_one_line(tmp_path, target):
    os.symlink(tmp_path / "other.py", tmp_path / "loop.py")
    os.symlink(tmp_path / "loop.py", tmp_path / "other.py")
    os.symlink(tmp_path / "loop", tmp_path / "loop")
    assert "symbolic link loop" in rflint(tmp_path, "check", "--no-cache", target, "--input-size", "8")


def test_a_broken_symlink_as_target_is_one_line(tmp_path):
    os.symlink(tmp_path / "gone.py", tmp_path / "net.py")
    assert "broken symbolic link" in rflint(tmp_path, "check", "--no-cache", "net.py:build", "--input-size", "8")


@pytest.mark.parametrize(
    "content", [os.urandom(2048), b"PK\x03\x04 not really", None], ids=["random", "zip-magic", "zip-without-a-program"]
)
def test_a_corrupt_pt2_with_trust_pickle_is_one_line_without_torch_logs(tmp_path, content):
    path = tmp_path / "model.pt2"
    if content is None:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("archive/data.pkl", b"nonsense")
    else:
        path.write_bytes(content)
    line = rflint(tmp_path, "check", "--no-cache", "model.pt2", "--trust-pickle", "--input-size", "8")
    assert "model.pt2" in line


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["check", "--foo"], "unexpected argument '--foo'"),
        (["check", "--fo"], "did you mean"),
        (["chek"], "No such command 'chek'"),
        (["check", "--input-size"], "requires an argument"),
        (["check", "--output-format", "xml"], "'xml' is not one of"),
    ],
)
def test_a_usage_error_is_one_line_like_ruff(tmp_path, args, said):
    line = rflint(tmp_path, *args)
    assert line.startswith("rflint: error: ") and said in line and "--help" in line
