"""Edits that change no code keep the cache hit: Python files are keyed on their tokens
(comments, blank lines and layout left out), JSON/TOML/YAML on their parsed value. Any token
change, even inside a string literal, is a miss. On such a hit the report's line numbers are
those of the edited file: the hit's output is compared with a fresh ``--no-cache`` run."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner


from rflint.engine import fingerprints
from rflint.cli import app

runner = CliRunner()

MODEL = '''\
import json
from pathlib import Path

from torch import nn

from {blocks} import block

NAME = "net"


class Net(nn.Module):
    def __init__(self, depth):
        super().__init__()
        self.stem = block(3, 8)
        self.body = nn.Sequential(*[block(8, 8) for _ in range(depth - 1)])
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        x = self.stem(x)
        x = self.body(x)
        return self.head(x.mean((2, 3)))


def build_model():
    depth = json.loads((Path(__file__).parent / "arch.json").read_text())["depth"]
    return Net(depth)
'''
BLOCKS = '''\
from torch import nn


def block(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU())
'''


@pytest.fixture()
def project(tmp_path, monkeypatch):
    blocks = f"tblocks_{tmp_path.name.replace('-', '_')}"
    (tmp_path / "model.py").write_text(MODEL.format(blocks=blocks))
    (tmp_path / f"{blocks}.py").write_text(BLOCKS)
    (tmp_path / "arch.json").write_text('{"depth": 12, "width": 8}')
    (tmp_path / "pyproject.toml").write_text('[tool.rflint]\n[[tool.rflint.models]]\ntarget = "model.py"\ninput-size = 16\n')
    monkeypatch.chdir(tmp_path)
    return SimpleNamespace(root=tmp_path, model=tmp_path / "model.py", blocks=tmp_path / f"{blocks}.py", arch=tmp_path / "arch.json")


def check(*args: str):
    result = runner.invoke(app, ["check", "--output-format", "json", "-j", "1", *args])
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


NO_CODE_CHANGES = {
    "a comment line above the class": lambda p: edit(p.model, "class Net", "# the network\n\n\nclass Net"),
    "a trailing comment on a call": lambda p: edit(p.model, "x = self.body(x)", "x = self.body(x)  # the body"),
    "blank lines in forward": lambda p: edit(p.model, "        x = self.body(x)\n", "\n\n        x = self.body(x)\n"),
    "a call split over lines": lambda p: edit(p.model, "self.head(x.mean((2, 3)))", "self.head(\n            x.mean((2, 3))\n        )"),
    "re-indented blocks": lambda p: p.model.write_text(p.model.read_text().replace("    ", "  ")),
    "a comment in an imported module": lambda p: edit(p.blocks, "def block", "# a helper\ndef block"),
    "the JSON file reformatted": lambda p: p.arch.write_text('{\n  "depth": 12,\n  "width": 8\n}\n'),
}


@pytest.mark.parametrize("change", list(NO_CODE_CHANGES))
def test_an_edit_that_changes_no_code_is_a_hit_with_the_new_positions(project, lint_calls, change):
    check()
    NO_CODE_CHANGES[change](project)
    hit = check()
    assert lint_calls == ["model.py"], change
    fresh = check("--no-cache")  # the oracle: the edited files analysed from scratch
    assert hit == fresh
    assert check() == fresh  # the rewritten entry answers the same
    assert lint_calls == ["model.py", "model.py"]


def test_positions_really_move_with_the_edit(project, lint_calls):
    before = check()
    edit(project.model, "class Net", "# one\n# two\n# three\nclass Net")
    after = check()
    assert lint_calls == ["model.py"]
    def rows(findings: list[dict]) -> list[tuple[str, int] | None]:
        return [(Path(f["filename"]).name, f["location"]["row"]) if f.get("location") else None for f in findings]

    # three lines above the class: every position in model.py moves by 3, the builder's
    # positions (layers are attributed to the builder's line, docs/attribution.md) stay
    expected = [None if r is None else (r[0], r[1] + 3 if r[0] == "model.py" else r[1]) for r in rows(before)]
    assert any(r is not None and r[0] == "model.py" for r in rows(before))
    assert rows(after) == expected


CODE_CHANGES = {
    "a number": lambda p: edit(p.model, "range(depth - 1)", "range(depth - 2)"),
    "a character inside a string literal": lambda p: edit(p.model, 'NAME = "net"', 'NAME = "net "'),
    "an operator": lambda p: edit(p.blocks, "padding=1", "padding=1, dilation=1"),
    "a statement joined onto one line": lambda p: edit(p.model, "        x = self.stem(x)\n        x = self.body(x)\n", "        x = self.stem(x); x = self.body(x)\n"),
    "a value in the JSON file": lambda p: p.arch.write_text('{"depth": 4, "width": 8}'),
    "the order of the JSON keys": lambda p: p.arch.write_text('{"width": 8, "depth": 12}'),
    "a JSON int made a float": lambda p: p.arch.write_text('{"depth": 12, "width": 8.0}'),
}


@pytest.mark.parametrize("change", list(CODE_CHANGES))
def test_any_token_or_value_change_is_a_miss(project, lint_calls, change):
    check()
    CODE_CHANGES[change](project)
    check()
    assert lint_calls == ["model.py", "model.py"], change


def test_token_streams_ignore_layout_and_comments_but_not_tokens():
    base = fingerprints.python_tokens(b"def f(x):\n    return g(x, 1)\n")
    same = [
        b"# c\n\ndef f(x):\n    return g(x, 1)  # c\n",
        b"def f(x):\n  return g(x,1)\n",
        b"def f(x):\n    return g(\n        x,\n        1\n    )\n",
        b"def f(x):\n    return g(x, \\\n 1)\n",
    ]
    other = [b"def f(x):\n    return g(x, 2)\n", b"def f(x):\n    return g(x, '1')\n", b"def f(y):\n    return g(y, 1)\n", b"def f(x):\n    return (g(x, 1))\n"]
    assert all(fingerprints.python_tokens(s).digest == base.digest for s in same)
    assert all(fingerprints.python_tokens(s).digest != base.digest for s in other)
    assert fingerprints.python_tokens(b"def f(:\n  'unterminated\n") is None  # bytes decide


def test_data_files_are_keyed_on_their_parsed_value():
    digest = fingerprints.content_digest
    assert digest("a.json", b'{"a": [1, 2]}') == digest("a.json", b'{\n "a": [1,\n 2]\n}\n')
    assert digest("a.json", b'{"a": [1, 2]}') != digest("a.json", b'{"a": [2, 1]}')
    assert digest("a.toml", b"a = 1 # c\n") == digest("a.toml", b"a=1\n")
    assert digest("a.toml", b"a = 1\n") != digest("a.toml", b"a = '1'\n")
    assert digest("a.json", b"{not json") is None
    assert digest("a.txt", b"x") is None  # other files: their bytes
