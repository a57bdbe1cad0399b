"""What a project file means to a model, as opposed to its bytes: the result cache keys its
dependencies on this, so that an edit that changes no code (a comment, a blank line, a
reformat) is a hit. Stdlib only (PyYAML only when a YAML file changed and it is installed).

- **Python** (``.py``, ``.pyw``, ``.pyi``): the token stream (:mod:`tokenize`) without
  comments, blank-line ``NL`` tokens and the whitespace between tokens; ``INDENT``,
  ``DEDENT`` and ``NEWLINE`` count by kind (the block structure), not by their text. Two
  files with the same stream compile to the same code; only positions differ. Any change of
  a token, including one character inside a string literal or a docstring, is a change.
- **JSON, TOML, YAML**: the parsed value's ``repr``, which keeps the order of keys (a factory
  may build layers in the order of a mapping) and the type of every scalar (``1``, ``1.0``
  and ``true`` differ). YAML is read with ``yaml.safe_load``; a file it cannot read (custom
  tags) is compared byte for byte.
- anything else, and a file that does not tokenize or parse: no content fingerprint (None),
  so the cache compares its bytes.

Positions: a cached report holds :class:`~rflint.ir.Source` positions (where a layer is
called and defined). When a Python file's bytes changed but its tokens did not, those
positions move with the tokens: :func:`anchors` records, at store time, which token each
position is on, and :func:`relocate` maps them to the same tokens in the new file. A position
that is on no token, or a report whose text mentions the file (an error message quoting a
line), cannot be moved, and the lookup is a miss.

Not covered: a factory that reads its own source text (``inspect.getsource``) or a data file
as text would see a comment edit that this treats as no change.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import re
import tokenize
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from rflint.ir import Source

if TYPE_CHECKING:
    from rflint.results import ModelReport

PYTHON_SUFFIXES = (".py", ".pyw", ".pyi")
DATA_SUFFIXES = (".json", ".toml", ".yaml", ".yml")
#: tokens that carry no meaning of their own, and tokens whose text is layout
_SKIPPED = frozenset({tokenize.COMMENT, tokenize.NL})
_BY_KIND = frozenset({tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER})


@dataclasses.dataclass(frozen=True)
class Tokens:
    """A Python file's significant tokens: their digest and where each starts (line, col 0-based)."""

    digest: str
    starts: tuple[tuple[int, int], ...]


def python_tokens(data: bytes) -> Tokens | None:
    """The significant tokens of Python source ``data``; None if it does not tokenize."""
    return _python_tokens(hashlib.sha256(data).digest(), data)


@lru_cache(maxsize=512)
def _python_tokens(_key: bytes, data: bytes) -> Tokens | None:
    digest = hashlib.sha256()
    starts = []
    try:
        for tok in tokenize.tokenize(io.BytesIO(data).readline):
            if tok.type in _SKIPPED:
                continue
            if tok.type == tokenize.ERRORTOKEN:
                return None
            text = "" if tok.type in _BY_KIND else tok.string
            digest.update(f"{tok.type}:{len(text)}:".encode())
            digest.update(text.encode("utf-8", "surrogatepass"))
            starts.append(tok.start)
    except (tokenize.TokenError, SyntaxError, UnicodeDecodeError):
        return None
    return Tokens("py:" + digest.hexdigest(), tuple(starts))


def _parsed(suffix: str, data: bytes) -> Any:
    """The value a data file holds; raises on anything that does not parse."""
    if suffix == ".json":
        import json

        return json.loads(data)
    if suffix == ".toml":
        import tomllib

        return tomllib.loads(data.decode("utf-8"))
    import yaml  # type: ignore[import-untyped]  # ImportError: compared by bytes

    return yaml.safe_load(data)


def content_digest(path: str, data: bytes) -> str | None:
    """The meaning of file ``path`` with bytes ``data`` (see the module docstring), or None
    when only its bytes can tell."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix in PYTHON_SUFFIXES:
        tokens = python_tokens(data)
        return None if tokens is None else tokens.digest
    if suffix in DATA_SUFFIXES:
        try:
            value = _parsed(suffix, data)
        except Exception:  # noqa: BLE001 - unparsable or no parser: compare bytes
            return None
        return f"{suffix[1:]}:" + hashlib.sha256(repr(value).encode("utf-8", "surrogatepass")).hexdigest()
    return None


# ---------------------------------------------------------------------------------------------
# a dependency's state, as the result cache records it


def file_digest(path: str) -> str | None:
    """sha256 of a file's bytes; None if it cannot be read."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class FileState:
    """What the cache remembers of one dependency: the hash of its bytes, of its meaning (None:
    only the bytes can tell) and, for Python, its tokens (to place the report's positions)."""

    sha: str
    content: str | None = None
    tokens: Tokens | None = None


def file_state(path: str, sha: str | None = None) -> FileState | None:
    """The state of ``path`` now (``sha``: its bytes' hash, when known); None if unreadable."""
    sha = sha or file_digest(path)
    if sha is None:
        return None
    if not path.lower().endswith((*PYTHON_SUFFIXES, ".json", ".toml", ".yaml", ".yml")):
        return FileState(sha)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if hashlib.sha256(data).hexdigest() != sha:  # changed while we looked: the bytes decide
        return FileState(sha)
    tokens = python_tokens(data) if path.lower().endswith(PYTHON_SUFFIXES) else None
    return FileState(sha, content_digest(path, data), tokens)


def file_records(report: ModelReport | None, files: Mapping[str, FileState]) -> dict[str, dict[str, Any]]:
    """The entry's ``files``: per dependency its hashes and, for a Python file, the token under
    each source position the report holds in it (without one, only its bytes count; without a
    report, a failure's entry, there are no positions)."""
    positions: dict[str, set[tuple[int, int]]] = {}
    for source in sources_in(report) if report is not None else ():  # the factory's line too
        positions.setdefault(os.path.abspath(source.file), set()).add((source.line, source.col))
    records: dict[str, dict[str, Any]] = {}
    for path, state in files.items():
        record: dict[str, Any] = {"sha": state.sha, "content": state.content}
        if state.tokens is not None and state.content is not None:
            marks = anchors(state.tokens, sorted(positions.get(path, ())))
            if marks is None:
                record["content"] = None
            else:
                record["anchors"] = marks
        records[path] = record
    return records


def changed_files(records: Mapping[str, Mapping[str, Any]]) -> dict[str, FileState] | None:
    """The dependencies whose bytes changed but not their meaning, with their state now; None
    if one changed its meaning or cannot be read (a miss)."""
    changed: dict[str, FileState] = {}
    for path, record in records.items():
        if record.get("sha") is None:  # recorded as absent (a module an import looked for)
            if os.path.lexists(path):
                return None
            continue
        if not os.path.isfile(path):  # deleted, or now a FIFO or a device: never read those
            return None
        sha = file_digest(path)
        if sha is None:
            return None
        if sha == record["sha"]:
            continue
        if record.get("content") is None:
            return None
        state = file_state(path, sha)
        if state is None or state.content != record["content"]:
            return None
        changed[path] = state
    return changed


# ---------------------------------------------------------------------------------------------
# positions


def sources_in(value: Any) -> Iterable[Source]:
    """Every :class:`Source` in a record (dataclasses, tuples, lists, dicts), depth first."""
    if isinstance(value, Source):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from sources_in(getattr(value, f.name))
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from sources_in(item)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from sources_in(item)


def anchors(tokens: Tokens, positions: Iterable[tuple[int, int]]) -> dict[str, list[int]] | None:
    """For each ``(line, col)`` (1-based) a report holds in a file: ``[token index, exact]``,
    the token that starts there (exact = 1) or the first token of the line (exact = 0: the
    column is kept, as for a frame's line with no column). None if a position is on no token."""
    first_on_line: dict[int, int] = {}
    at: dict[tuple[int, int], int] = {}
    for i, start in enumerate(tokens.starts):
        first_on_line.setdefault(start[0], i)
        at.setdefault(start, i)
    out: dict[str, list[int]] = {}
    for line, col in positions:
        if (line, col - 1) in at:
            out[f"{line}:{col}"] = [at[(line, col - 1)], 1]
        elif line in first_on_line:
            out[f"{line}:{col}"] = [first_on_line[line], 0]
        else:
            return None
    return out


class Unmovable(Exception):
    """A cached report whose positions cannot follow an edit (the lookup is then a miss)."""


def relocate(report: Any, moved: Mapping[str, tuple[Tokens, Mapping[str, list[int]]]]) -> Any:
    """``report`` with every :class:`Source` in a ``moved`` file (path -> its new tokens and the
    anchors recorded with the entry) on the same token in the new text.

    Raises:
        Unmovable: a position without an anchor, or a text in the report that quotes a
            position in a moved file (``model.py:12``, ``File "model.py", line 12``).
    """
    names = "|".join(re.escape(os.path.basename(path)) for path in moved)
    quoting = re.compile(rf"(?:{names})[\"']?(?::|,\s*line\s+)\d")

    def move(source: Source) -> Source:
        entry = moved.get(os.path.abspath(source.file))
        if entry is None:
            return source
        tokens, marks = entry
        mark = marks.get(f"{source.line}:{source.col}")
        if mark is None or mark[0] >= len(tokens.starts):
            raise Unmovable(f"{source.file}:{source.line} is on no recorded token")
        line, col = tokens.starts[mark[0]]
        return dataclasses.replace(source, line=line, col=col + 1 if mark[1] else source.col)

    def rebuilt(value: Any) -> Any:
        if isinstance(value, Source):
            return move(value)
        if isinstance(value, str):
            if quoting.search(value):
                raise Unmovable("the report quotes a position in a moved file")
            return value
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            changes = {}
            for f in dataclasses.fields(value):
                old = getattr(value, f.name)
                new = rebuilt(old)
                if new is not old:
                    changes[f.name] = new
            return dataclasses.replace(value, **changes) if changes else value
        if isinstance(value, (tuple, list)):
            items = [rebuilt(v) for v in value]
            return value if all(a is b for a, b in zip(items, value)) else type(value)(items)
        if isinstance(value, Mapping):
            items = {k: rebuilt(v) for k, v in value.items()}
            return value if all(items[k] is v for k, v in value.items()) else items
        return value

    return rebuilt(report)
