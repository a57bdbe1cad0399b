"""Where a model is defined: the line of its factory, or of its entry in the config file.
Model-level findings (RF103) point there, and suppression comments on those lines apply.
Found from the source text, without importing the model's packages (a cache hit must not).
"""

from __future__ import annotations

import ast
import os
import re
import sys
from collections.abc import Iterator, Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path

from rflint.ir import Source
from rflint.sourcefiles import parse_source, read_lines
from rflint.spec import ModelSpec


_DISCOVERED = ("build_model", "create_model", "get_model", "model")


def model_source(spec: ModelSpec) -> Source | None:
    """The ``def``/``class`` line of a model's factory, for model-level findings (RF103).

    Works for ``path/file.py[:name]`` and ``package.module:name`` targets whose name is defined
    in that file; library registries (``torchvision:resnet50``) have no useful line.
    """
    target = spec.target
    path_part, _, attr = target.rpartition(":") if ":" in target else (target, "", "")
    file: str | None = None
    if path_part.endswith(".py"):
        file = os.path.abspath(path_part)
    elif path_part and re.fullmatch(r"[A-Za-z_][\w.]*", path_part):
        module = sys.modules.get(path_part)
        file = getattr(module, "__file__", None) or _module_origin(path_part)
    if not file or not file.endswith(".py"):
        return None
    tree = parse_source(file)
    if tree is None:
        return None
    names = (attr,) if attr else _DISCOVERED
    for name in names:
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
                return Source(file, node.lineno, node.col_offset + 1)
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
                return Source(file, node.lineno, node.col_offset + 1)
    return None


def _module_origin(dotted: str) -> str | None:
    """The file that would define module ``dotted``, found without importing it or its
    parent packages (``importlib.util.find_spec`` imports the parents, and a package's
    ``__init__`` may import torch: an answer from the result cache must not)."""
    path: Sequence[str] | None = None
    spec: ModuleSpec | None = None
    parts = dotted.split(".")
    for i in range(len(parts)):
        name = ".".join(parts[: i + 1])
        spec = next((s for s in _finder_specs(name, path) if s is not None), None)
        if spec is None:
            return None
        path = spec.submodule_search_locations
        if path is None and i < len(parts) - 1:
            return None
    return spec.origin if spec is not None else None


def _finder_specs(name: str, path: Sequence[str] | None) -> Iterator[ModuleSpec | None]:
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is None:
            continue
        try:
            yield find_spec(name, path)
        except (ImportError, ValueError, TypeError):
            continue


def config_entry_source(config_path: str | os.PathLike[str] | None, spec: ModelSpec) -> Source | None:
    """The ``target = "..."`` line of a ``[[tool.rflint.models]]`` entry for ``spec``, if any."""
    if config_path is None:
        return None
    names = {spec.target, spec.display_name}
    for i, line in enumerate(read_lines(str(Path(config_path).resolve())), 1):
        m = re.match(r"""\s*target\s*=\s*(["'])(.*?)\1""", line)
        if m and m.group(2) in names:
            return Source(str(Path(config_path).resolve()), i, line.index("target") + 1)
    return None
