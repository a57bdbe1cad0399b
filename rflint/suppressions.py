"""Suppression comments, layer definition lines, and RF100 unused-suppression.

A finding is suppressed by a comment on the line that defines its layer (``self.conv5 =
nn.Conv2d(...)``, or the element of an ``nn.Sequential(...)``) or on the layer's call-site line
in ``forward``::

    self.conv5 = nn.Conv2d(64, 64, 3)  # noqa: RF101
    x = self.conv5(x)                  # rflint: ignore[RF101]
    x = self.head(x)                   # noqa  (bare: every rflint rule on this line)

torch.fx only knows call sites (and, for children of an ``nn.Sequential``, only the line of
the Sequential call), so :func:`definition_sources` finds definition lines with its own AST
pass over the classes that own each layer. The frontend stores them in ``Layer.definition``.

Comments are read with :mod:`tokenize`, so ``"# noqa"`` inside a string is not a comment.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import io
import os
import re
import sys
import tokenize
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rflint.checks import ALL_RULES
from rflint.checks.unused_suppression import RULE as RF100
from rflint.ir import Finding, Source

if TYPE_CHECKING:  # torch is imported only by the functions that need it
    from torch import nn

    from rflint.config import Config
    from rflint.engine import ModelReport, ModelSpec

# flake8's grammar: `# noqa`, `# noqa: A1`, `# noqa:A1,B2 C3` (case-insensitive "noqa")
_NOQA = re.compile(r"#\s*noqa(?::\s?(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?", re.IGNORECASE)
_RFLINT = re.compile(r"#\s*rflint:\s*ignore(?:\[(?P<codes>[^\]]*)\])?")
_NAMES = {rule.name: rule.code for rule in ALL_RULES}


@dataclass(frozen=True, slots=True)
class Suppression:
    """One suppression comment. ``codes`` None means every rflint rule (bare ``# noqa``)."""

    file: str
    line: int
    col: int
    kind: str  # "noqa" or "rflint"
    codes: frozenset[str] | None
    text: str

    def covers(self, code: str) -> bool:
        return self.codes is None or code in self.codes


# --- reading comments -------------------------------------------------------------------------


def parse_comment(comment: str) -> tuple[str, frozenset[str] | None] | None:
    """``(kind, codes)`` for a suppression comment, None for any other comment.

    Rule names in ``# rflint: ignore[...]`` are turned into codes.
    """
    m = _RFLINT.search(comment)
    if m:
        if m.group("codes") is None:
            return "rflint", None
        items = [c.strip() for c in m.group("codes").split(",") if c.strip()]
        return "rflint", frozenset(_NAMES.get(c, c) for c in items)
    m = _NOQA.search(comment)
    if m:
        codes = m.group("codes")
        if codes is None:
            return "noqa", None
        return "noqa", frozenset(c.upper() for c in re.split(r"[,\s]+", codes) if c)
    return None


@lru_cache(maxsize=256)
def file_suppressions(file: str) -> Mapping[int, Suppression]:
    """Every suppression comment in ``file`` by line (empty if it cannot be read)."""
    try:
        text = Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    out: dict[int, Suppression] = {}
    try:
        comments = [
            (tok.start[0], tok.start[1] + 1, tok.string)
            for tok in tokenize.generate_tokens(io.StringIO(text).readline)
            if tok.type == tokenize.COMMENT
        ]
    except (tokenize.TokenError, SyntaxError):  # not Python: fall back to a plain scan
        comments = [(i, line.find("#") + 1, line[line.find("#") :]) for i, line in enumerate(text.splitlines(), 1) if "#" in line]
    for line, col, comment in comments:
        parsed = parse_comment(comment)
        if parsed is not None:
            out[line] = Suppression(file, line, col, parsed[0], parsed[1], comment.strip())
    return out


def source_lines(findings: Iterable[Finding]) -> dict[tuple[str, int], str]:
    """The text of each finding's source line, for the ``full`` output format (which does no I/O)."""
    out: dict[tuple[str, int], str] = {}
    for f in findings:
        if f.source is None or (f.source.file, f.source.line) in out:
            continue
        lines = _lines(f.source.file)
        if 0 < f.source.line <= len(lines):
            out[(f.source.file, f.source.line)] = lines[f.source.line - 1]
    return out


@lru_cache(maxsize=256)
def _lines(file: str) -> tuple[str, ...]:
    try:
        return tuple(Path(file).read_text(encoding="utf-8").splitlines())
    except (OSError, UnicodeDecodeError):
        return ()


# --- applying them ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SuppressionResult:
    kept: list[Finding]
    suppressed: list[Finding]
    #: (file, line, code) of every suppression code that silenced at least one finding
    used: frozenset[tuple[str, int, str]]


def layer_lines(report: ModelReport) -> dict[str, tuple[Source, ...]]:
    """Per layer qualname, the lines where a suppression for it may sit: definition, call site."""
    out: dict[str, tuple[Source, ...]] = {}
    for lrf in report.analysis.layers:
        layer = lrf.layer
        places = tuple(s for s in (layer.definition, layer.source) if s is not None)
        if places:
            out[layer.qualname] = tuple(dict.fromkeys(out.get(layer.qualname, ()) + places))
    return out


def apply_suppressions(findings: Iterable[Finding], reports: Sequence[ModelReport]) -> SuppressionResult:
    """Drop the findings silenced by a comment on their layer's definition or call-site line
    (or, for model-level findings, on their own source line)."""
    lines_by_model = {r.spec.display_name: layer_lines(r) for r in reports}
    kept: list[Finding] = []
    suppressed: list[Finding] = []
    used: set[tuple[str, int, str]] = set()
    for f in findings:
        places = list(lines_by_model.get(f.model, {}).get(f.layer, ())) if f.layer else []
        if f.source is not None and f.source not in places:
            places.append(f.source)
        hit = False
        for place in places:
            sup = file_suppressions(place.file).get(place.line)
            if sup is not None and sup.covers(f.code):
                used.add((sup.file, sup.line, f.code if sup.codes is not None else "*"))
                hit = True
        (suppressed if hit else kept).append(f)
    return SuppressionResult(kept, suppressed, frozenset(used))


def unused_suppressions(
    reports: Sequence[ModelReport],
    used: Iterable[tuple[str, int, str]],
    enabled: Iterable[str],
    extra_places: Mapping[str, Sequence[Source]] | None = None,
) -> list[Finding]:
    """RF100 findings: suppression comments on the lines of the checked layers that silenced
    nothing in this run.

    Only rflint's own codes are judged (``# noqa: E501, RF101`` is checked for RF101 only), and a
    bare ``# noqa`` is left alone, since it also serves other linters. A bare
    ``# rflint: ignore`` is judged. A suppression that names RF100 itself is never reported.

    Args:
        reports: the models checked in this run.
        used: ``SuppressionResult.used`` from :func:`apply_suppressions`.
        enabled: the codes enabled by the configuration (an unused code that is not enabled
            is reported as such).
        extra_places: per model name, more lines that count (e.g. the factory's line).
    """
    used = set(used)
    enabled = set(enabled)
    known = {rule.code for rule in ALL_RULES}
    seen: set[tuple[str, int]] = set()
    out: list[Finding] = []
    for report in reports:
        model = report.spec.display_name
        places: list[tuple[str, Source]] = [
            (qualname, s) for qualname, sources in layer_lines(report).items() for s in sources
        ]
        places += [("", s) for s in (extra_places or {}).get(model, ())]
        for qualname, place in places:
            key = (place.file, place.line)
            sup = file_suppressions(place.file).get(place.line)
            if sup is None or key in seen:
                continue
            seen.add(key)
            if sup.codes is None:
                if sup.kind == "noqa" or (sup.file, sup.line, "*") in used:
                    continue
                problems = ["suppresses nothing"]
            else:
                if "RF100" in sup.codes:
                    continue
                problems = []
                for code in sorted(c for c in sup.codes if c.startswith("RF")):
                    if (sup.file, sup.line, code) in used:
                        continue
                    if code not in known:
                        problems.append(f"{code} is not an rflint rule")
                    elif code not in enabled:
                        problems.append(f"{code} is not enabled")
                    else:
                        problems.append(f"no {code} finding on this line")
            if not problems:
                continue
            out.append(
                Finding(
                    code=RF100.code,
                    name=RF100.name,
                    severity=RF100.severity,
                    message=f"unused suppression `{sup.text}`: {'; '.join(problems)}",
                    model=model,
                    layer=qualname,
                    source=Source(sup.file, sup.line, sup.col),
                    input_size=report.analysis.graph.input_size,
                    hint="remove the comment, or the codes it no longer needs",
                )
            )
    return out


def resolve_findings(reports: Sequence[ModelReport], config: Config) -> list[Finding]:
    """The findings to report for a run, in report order: configuration (selection, severities,
    layer overrides), model-level locations, suppression comments, then RF100.

    This is the one call the CLI makes between ``engine.lint`` and a renderer (and the baseline).
    """
    from rflint.config import apply_config

    configured: list[Finding] = []
    extra: dict[str, list[Source]] = {}
    for report in reports:
        factory = model_source(report.spec)
        if factory is not None:
            extra[report.spec.display_name] = [factory]
        for f in apply_config(report.findings, config, report.spec):
            configured.append(replace(f, source=factory) if not f.layer and f.source is None and factory else f)
    result = apply_suppressions(configured, reports)
    unused = unused_suppressions(reports, result.used, config.enabled, extra)
    specs = {r.spec.display_name: r.spec for r in reports}
    unused = [g for f in unused for g in apply_config([f], config, specs.get(f.model))]
    return result.kept + unused


# --- where a model's factory is ---------------------------------------------------------------

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
        file = getattr(module, "__file__", None)
        if file is None:
            try:
                spec_ = importlib.util.find_spec(path_part)
            except (ImportError, ValueError):
                spec_ = None
            file = spec_.origin if spec_ is not None else None
    if not file or not file.endswith(".py"):
        return None
    tree = _parse(file)
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


# --- definition lines -------------------------------------------------------------------------


def definition_sources(module: nn.Module, qualnames: Iterable[str]) -> dict[str, Source]:
    """Where each layer is defined, for the qualnames whose definition can be found.

    For a child of an ordinary module class, the ``self.<attr> = ...`` (or ``add_module``)
    statement in the class that owns it (its base classes searched too); for a child of an
    ``nn.Sequential``/``nn.ModuleList``/``nn.ModuleDict``, the positional argument (or list,
    tuple, dict or ``OrderedDict`` element) of the call that built the container. Qualnames that
    are not submodules (function nodes such as ``add``), containers built in loops, and classes
    without source are left out.

    Args:
        module: the model, as loaded (meta device is fine: only types and structure are read).
        qualnames: dotted module paths, ``"layer4.1.conv2"``, ``"features.14"``.

    Returns:
        ``{qualname: Source(file, line, col)}`` (1-based line and column).
    """
    finder = _DefinitionFinder(module)
    out: dict[str, Source] = {}
    for qualname in qualnames:
        try:
            src = finder.definition(qualname)
        except Exception:  # noqa: BLE001 - a best-effort location must never fail a run
            src = None
        if src is not None:
            out[qualname] = src
    return out


@lru_cache(maxsize=256)
def _parse(file: str) -> ast.Module | None:
    try:
        return ast.parse(Path(file).read_text(encoding="utf-8"), filename=file)
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


@dataclass
class _Expr:
    """An expression in a file, with the function it sits in (for resolving local names)."""

    node: ast.expr
    file: str
    func: ast.AST | None
    cls: ast.ClassDef | None


class _DefinitionFinder:
    def __init__(self, root: Any) -> None:
        from torch import nn

        self.root = root
        self.containers = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
        self._class_cache: dict[type, tuple[str, ast.ClassDef, dict[ast.AST, ast.AST]] | None] = {}
        self._assign_cache: dict[type, dict[str, tuple[ast.stmt, ast.expr, str, _Expr]]] = {}
        self._parents_cache: dict[ast.AST, dict[ast.AST, ast.AST]] = {}
        self._super_cache: dict[type, ast.Call | None] = {}

    # -- public
    def definition(self, qualname: str) -> Source | None:
        if not qualname:
            return None
        parts = qualname.split(".")
        parent = self._module(parts[:-1])
        if parent is None or parts[-1] not in parent._modules:
            return None
        attr = parts[-1]
        if isinstance(parent, self.containers):
            expr = self._container_element(parts[:-1], parent, attr)
            return None if expr is None else Source(expr.file, expr.node.lineno, expr.node.col_offset + 1)
        found = self._assignment(type(parent), attr)
        if found is None:
            return None
        stmt, _, file, _ = found
        return Source(file, stmt.lineno, stmt.col_offset + 1)

    # -- modules
    def _module(self, path: Sequence[str]) -> Any:
        try:
            return self.root.get_submodule(".".join(path))
        except AttributeError:
            return None

    # -- classes
    def _class(self, cls: type) -> tuple[str, ast.ClassDef, dict[ast.AST, ast.AST]] | None:
        if cls in self._class_cache:
            return self._class_cache[cls]
        result = None
        if not cls.__module__.startswith("torch."):
            try:
                file = inspect.getsourcefile(cls)
            except TypeError:  # a builtin or C extension class
                file = None
            tree = _parse(file) if file else None
            node = _find_class(tree, cls) if tree is not None else None
            if node is not None:
                result = (file, node, _parents(node))
        self._class_cache[cls] = result
        return result

    def _assignments(self, klass: type) -> dict[str, tuple[ast.stmt, ast.expr, str, _Expr]]:
        """Every ``self.<attr> = ...`` (or ``add_module``) in one class, first one per attr."""
        if klass in self._assign_cache:
            return self._assign_cache[klass]
        out: dict[str, tuple[ast.stmt, ast.expr, str, _Expr]] = {}
        found = self._class(klass)
        if found is not None:
            file, node, parents = found
            for sub in ast.walk(node):
                for attr, value in _assigned_values(sub):
                    if attr in out:
                        continue
                    stmt = sub
                    while not isinstance(stmt, ast.stmt):
                        stmt = parents[stmt]
                    out[attr] = (stmt, value, file, _Expr(value, file, _enclosing_function(sub, parents), node))
        self._assign_cache[klass] = out
        return out

    def _super_init(self, klass: type, node: ast.ClassDef) -> ast.Call | None:
        if klass not in self._super_cache:
            calls = [sub for sub in ast.walk(node) if isinstance(sub, ast.Call) and _is_super_init(sub)]
            self._super_cache[klass] = calls[0] if calls else None
        return self._super_cache[klass]

    def _assignment(self, cls: type, attr: str) -> tuple[ast.stmt, ast.expr, str, _Expr] | None:
        """The statement that sets ``self.<attr>`` in ``cls`` or a base class, and its value."""
        for klass in cls.__mro__:
            hit = self._assignments(klass).get(attr)
            if hit is not None:
                return hit
        return None

    # -- containers
    def _creation(self, path: Sequence[str]) -> _Expr | None:
        """The expression that built the module at ``path``."""
        if not path:
            return None
        parent = self._module(path[:-1])
        if parent is None:
            return None
        if isinstance(parent, self.containers):
            return self._container_element(path[:-1], parent, path[-1])
        found = self._assignment(type(parent), path[-1])
        return None if found is None else found[3]

    def _container_element(self, path: Sequence[str], container: Any, key: str) -> _Expr | None:
        """The expression of child ``key`` of the container at ``path``."""
        cls = type(container)
        if cls not in self.containers:
            # A subclass: its children come from add_module, or from the super().__init__(...)
            # call of the class that derives directly from the torch container.
            for klass in cls.__mro__:
                if klass in self.containers:
                    break
                found = self._class(klass)
                if found is None:
                    continue
                hit = self._assignments(klass).get(key)
                if hit is not None:
                    return hit[3]
                base = next((b for b in klass.__bases__ if b in self.containers), None)
                if base is None:
                    continue
                file, node, parents = found
                call = self._super_init(klass, node)
                if call is None:
                    return None
                expr = _Expr(call, file, _enclosing_function(call, parents), node)
                if base is not self.containers[0] and len(call.args) == 1:
                    expr = replace_node(expr, call.args[0])  # ModuleList([...]) / ModuleDict({...})
                return self._element(expr, key, parents)
        created = self._creation(path)
        if created is None:
            return None
        found = self._class_parents(created)
        return self._element(created, key, found)

    def _class_parents(self, expr: _Expr) -> dict[ast.AST, ast.AST]:
        if expr.cls is None:
            return {}
        if expr.cls not in self._parents_cache:
            self._parents_cache[expr.cls] = _parents(expr.cls)
        return self._parents_cache[expr.cls]

    def _element(self, expr: _Expr, key: str, parents: dict[ast.AST, ast.AST], depth: int = 0) -> _Expr | None:
        node = expr.node
        if depth > 5:
            return None
        if isinstance(node, ast.Name) and expr.func is not None:
            value = _local_value(expr.func, node.id, before=node)
            if value is None:
                return None
            return self._element(replace_node(expr, value), key, parents, depth + 1)
        if isinstance(node, (ast.List, ast.Tuple)):
            return self._pick(expr, list(node.elts), key, parents)
        if isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values):
                if isinstance(k, ast.Constant) and k.value == key:
                    return replace_node(expr, v)
            return None
        if not isinstance(node, ast.Call):
            return None
        name = _call_name(node.func)
        if name in ("Sequential", "ModuleList", "ModuleDict", "OrderedDict", "dict") or _is_super_init(node):
            args = list(node.args)
            if name in ("ModuleList", "ModuleDict", "OrderedDict", "dict") and len(args) == 1:
                return self._element(replace_node(expr, args[0]), key, parents, depth + 1)
            if len(args) == 1 and isinstance(args[0], ast.Call) and _call_name(args[0].func) == "OrderedDict":
                return self._element(replace_node(expr, args[0]), key, parents, depth + 1)
            flat: list[ast.expr] = []
            for arg in args:
                if isinstance(arg, ast.Starred):
                    inner = arg.value
                    if isinstance(inner, ast.Name) and expr.func is not None:
                        inner = _local_list(expr.func, inner.id, before=node)
                    if not isinstance(inner, (ast.List, ast.Tuple)):
                        return None
                    flat.extend(inner.elts)
                else:
                    flat.append(arg)
            return self._pick(expr, flat, key, parents)
        # self._make_layer(...): a helper method of the same class that returns the container
        if isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name) and node.func.value.id == "self" and expr.cls is not None:
            for item in expr.cls.body:
                if isinstance(item, ast.FunctionDef) and item.name == node.func.attr:
                    returns = [n for n in ast.walk(item) if isinstance(n, ast.Return) and n.value is not None]
                    if len(returns) == 1:
                        inner = _Expr(returns[0].value, expr.file, item, expr.cls)
                        return self._element(inner, key, parents, depth + 1)
        return None

    def _pick(self, expr: _Expr, elements: list[ast.expr], key: str, parents: dict[ast.AST, ast.AST]) -> _Expr | None:
        if any(isinstance(e, ast.Starred) for e in elements):
            return None
        if key.isdigit():
            i = int(key)
            return replace_node(expr, elements[i]) if i < len(elements) else None
        for e in elements:  # OrderedDict([("conv", nn.Conv2d(...)), ...])
            if isinstance(e, ast.Tuple) and len(e.elts) == 2 and isinstance(e.elts[0], ast.Constant) and e.elts[0].value == key:
                return replace_node(expr, e.elts[1])
        return None


def _find_class(tree: ast.Module, cls: type) -> ast.ClassDef | None:
    """The ``class`` statement of ``cls`` in its module's AST, matched by ``__qualname__``
    (``Outer.Inner``, ``make.<locals>.Net``); the last definition wins, as at runtime."""
    target = cls.__qualname__
    first_line = getattr(cls, "__firstlineno__", None)  # Python >= 3.13
    found: ast.ClassDef | None = None

    def visit(node: ast.AST, prefix: str) -> None:
        nonlocal found
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                qualname = prefix + child.name
                if qualname == target and (first_line is None or child.lineno == first_line or found is None):
                    found = child
                visit(child, qualname + ".")
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, prefix + child.name + ".<locals>.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def replace_node(expr: _Expr, node: ast.expr) -> _Expr:
    return _Expr(node, expr.file, expr.func, expr.cls)


def _call_name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _is_super_init(call: ast.Call) -> bool:
    f = call.func
    return (
        isinstance(f, ast.Attribute)
        and f.attr == "__init__"
        and isinstance(f.value, ast.Call)
        and _call_name(f.value.func) == "super"
    )


def _assigned_values(node: ast.AST) -> list[tuple[str, ast.expr]]:
    """``(attr, value)`` for every ``self.<attr>`` that ``node`` sets."""
    out: list[tuple[str, ast.expr]] = []
    if isinstance(node, ast.Assign):
        out += [(t.attr, node.value) for t in node.targets if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"]
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        t = node.target
        if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
            out.append((t.attr, node.value))
    elif isinstance(node, ast.Call) and len(node.args) >= 2:
        name_arg = node.args[1] if isinstance(node.func, ast.Name) else node.args[0]
        if isinstance(name_arg, ast.Constant) and isinstance(name_arg.value, str):
            value = _assigned_value(node, name_arg.value)
            if value is not None:
                out.append((name_arg.value, value))
    return out


def _assigned_value(node: ast.AST, attr: str) -> ast.expr | None:
    """The value if ``node`` sets ``self.<attr>``: assignment, ``add_module``, ``setattr``."""
    if isinstance(node, ast.Assign):
        for target in node.targets:
            if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self" and target.attr == attr:
                return node.value
    if isinstance(node, ast.AnnAssign) and node.value is not None:
        t = node.target
        if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self" and t.attr == attr:
            return node.value
    if isinstance(node, ast.Call) and len(node.args) >= 2:
        f = node.func
        is_add = isinstance(f, ast.Attribute) and f.attr in ("add_module", "register_module") and isinstance(f.value, ast.Name) and f.value.id == "self"
        is_set = isinstance(f, ast.Name) and f.id == "setattr" and len(node.args) == 3 and isinstance(node.args[0], ast.Name) and node.args[0].id == "self"
        name_arg, value_arg = (node.args[1], node.args[2]) if is_set else (node.args[0], node.args[1])
        if (is_add or is_set) and isinstance(name_arg, ast.Constant) and name_arg.value == attr:
            return value_arg
    return None


def _enclosing_function(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> ast.AST | None:
    while node in parents:
        node = parents[node]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return node
    return None


def _straight_line(func: ast.AST) -> list[ast.stmt]:
    """The top-level statements of a function body (not inside loops or branches)."""
    return list(getattr(func, "body", []))


def _local_value(func: ast.AST, name: str, before: ast.AST) -> ast.expr | None:
    """The last ``name = <expr>`` in the function body before ``before``."""
    value = None
    for stmt in _straight_line(func):
        if stmt.lineno >= before.lineno:
            break
        if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in stmt.targets):
            value = stmt.value
    return value


@lru_cache(maxsize=1024)
def _local_list(func: ast.AST, name: str, before: ast.AST) -> ast.List | None:
    """A list literal bound to ``name`` and grown only by straight-line ``append``/``extend``/``+=``
    before ``before``; None if it is touched inside a loop or branch (index not static)."""
    elts: list[ast.expr] | None = None
    for stmt in _straight_line(func):
        if stmt.lineno >= before.lineno:
            break
        if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in stmt.targets):
            elts = list(stmt.value.elts) if isinstance(stmt.value, (ast.List, ast.Tuple)) else None
            continue
        uses = [n for n in ast.walk(stmt) if isinstance(n, ast.Name) and n.id == name]
        if not uses:
            continue
        if elts is None:
            return None
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) and isinstance(stmt.value.func, ast.Attribute):
            call = stmt.value
            if isinstance(call.func.value, ast.Name) and call.func.value.id == name:
                if call.func.attr == "append" and len(call.args) == 1:
                    elts.append(call.args[0])
                    continue
                if call.func.attr == "extend" and len(call.args) == 1 and isinstance(call.args[0], (ast.List, ast.Tuple)):
                    elts.extend(call.args[0].elts)
                    continue
        if isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name) and stmt.target.id == name and isinstance(stmt.value, (ast.List, ast.Tuple)):
            elts.extend(stmt.value.elts)
            continue
        return None  # used in a way we cannot follow (a loop, a branch, a call)
    if elts is None:
        return None
    node = ast.List(elts=elts, ctx=ast.Load())
    return node
