"""Where a layer is *defined*: the ``self.conv = nn.Conv2d(...)`` line, or the element of an
``nn.Sequential(...)`` call, found with an AST pass over the owning class's source.

torch.fx and torch.export only record where a layer is *called* (``x = self.features(x)`` for
every layer of a Sequential), but users put ``# noqa: RF101`` on the line that defines the
layer, and that is where a finding should point. Pure Python: the module object is only walked.
"""

from __future__ import annotations

import ast
import inspect

from functools import lru_cache
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any
from rflint.ir import Source
from rflint.sourcefiles import parse_source
from dataclasses import dataclass

if TYPE_CHECKING:
    from torch import nn


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


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


@dataclass
class _Expr:
    """An expression in a file, with the function it sits in (for resolving local names)."""

    node: ast.expr
    file: str
    func: ast.AST | None
    cls: ast.ClassDef | None


#: an assignment found in a class: (its statement, the value, the file, the value as an _Expr)
_Assignment = tuple[ast.stmt, ast.expr, str, _Expr]


class _ClassSources:
    """The parsed ``class`` statements of module classes and the ``self.<attr> = ...``
    statements in them, each looked up once: a model repeats a few classes many times."""

    def __init__(self) -> None:
        self._class_cache: dict[type, tuple[str, ast.ClassDef, dict[ast.AST, ast.AST]] | None] = {}
        self._assign_cache: dict[type, dict[str, _Assignment]] = {}
        self._super_cache: dict[type, ast.Call | None] = {}

    def source(self, cls: type) -> tuple[str, ast.ClassDef, dict[ast.AST, ast.AST]] | None:
        """(file, class statement, its parent map); None for torch's own classes (their
        definitions are not the user's lines) and for classes without Python source."""
        if cls in self._class_cache:
            return self._class_cache[cls]
        result = None
        if not cls.__module__.startswith("torch."):
            try:
                file = inspect.getsourcefile(cls)
            except TypeError:  # a builtin or C extension class
                file = None
            tree = parse_source(file) if file else None
            node = _find_class(tree, cls) if tree is not None else None
            if node is not None:
                result = (file, node, _parents(node))
        self._class_cache[cls] = result
        return result

    def assignments(self, klass: type) -> dict[str, _Assignment]:
        """Every ``self.<attr> = ...`` (or ``add_module``) in one class, first one per attr."""
        if klass in self._assign_cache:
            return self._assign_cache[klass]
        out: dict[str, _Assignment] = {}
        found = self.source(klass)
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

    def super_init(self, klass: type, node: ast.ClassDef) -> ast.Call | None:
        """The class's first ``super().__init__(...)`` call (a container subclass passes its
        children there)."""
        if klass not in self._super_cache:
            calls = [sub for sub in ast.walk(node) if isinstance(sub, ast.Call) and _is_super_init(sub)]
            self._super_cache[klass] = calls[0] if calls else None
        return self._super_cache[klass]

    def assignment(self, cls: type, attr: str) -> _Assignment | None:
        """The statement that sets ``self.<attr>`` in ``cls`` or a base class, and its value."""
        for klass in cls.__mro__:
            hit = self.assignments(klass).get(attr)
            if hit is not None:
                return hit
        return None


class _DefinitionFinder:
    """Finds the defining expression of submodules of one model: an attribute of an ordinary
    module is found in its class (:class:`_ClassSources`), a container's child in the
    expression that built the container (:func:`_element`)."""

    def __init__(self, root: Any) -> None:
        from torch import nn

        self.root = root
        self.containers = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
        self.classes = _ClassSources()

    def definition(self, qualname: str) -> Source | None:
        """Where the submodule ``qualname`` is defined; None where that cannot be found."""
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
        found = self.classes.assignment(type(parent), attr)
        if found is None:
            return None
        stmt, _, file, _ = found
        return Source(file, stmt.lineno, stmt.col_offset + 1)

    def _module(self, path: Sequence[str]) -> Any:
        try:
            return self.root.get_submodule(".".join(path))
        except AttributeError:
            return None

    def _creation(self, path: Sequence[str]) -> _Expr | None:
        """The expression that built the module at ``path``."""
        if not path:
            return None
        parent = self._module(path[:-1])
        if parent is None:
            return None
        if isinstance(parent, self.containers):
            return self._container_element(path[:-1], parent, path[-1])
        found = self.classes.assignment(type(parent), path[-1])
        return None if found is None else found[3]

    def _container_element(self, path: Sequence[str], container: Any, key: str) -> _Expr | None:
        """The expression of child ``key`` of the container at ``path``."""
        cls = type(container)
        if cls not in self.containers:
            decided, expr = self._subclass_element(cls, key)
            if decided:
                return expr
        created = self._creation(path)
        if created is None:
            return None
        return _element(created, key)

    def _subclass_element(self, cls: type, key: str) -> tuple[bool, _Expr | None]:
        """(decided, expr) for child ``key`` of a subclass of a torch container: its children
        come from ``add_module``, or from the ``super().__init__(...)`` call of the class that
        derives directly from the torch container. Not decided when no class below the torch
        container settles it (none with source, an ``add_module`` of ``key`` or the container as
        a direct base), so the expression that built the container is searched instead."""
        for klass in cls.__mro__:
            if klass in self.containers:
                break
            found = self.classes.source(klass)
            if found is None:
                continue
            hit = self.classes.assignments(klass).get(key)
            if hit is not None:
                return True, hit[3]
            base = next((b for b in klass.__bases__ if b in self.containers), None)
            if base is None:
                continue
            file, node, parents = found
            call = self.classes.super_init(klass, node)
            if call is None:
                return True, None
            expr = _Expr(call, file, _enclosing_function(call, parents), node)
            if base is not self.containers[0] and len(call.args) == 1:
                expr = replace_node(expr, call.args[0])  # ModuleList([...]) / ModuleDict({...})
            return True, _element(expr, key)
        return False, None


#: calls whose arguments list a container's children
_CONTAINER_CALLS = ("Sequential", "ModuleList", "ModuleDict", "OrderedDict", "dict")


def _element(expr: _Expr, key: str, depth: int = 0) -> _Expr | None:
    """The part of ``expr`` that builds child ``key`` of the container it makes, following
    local names and helper methods up to five steps (``depth``), so that a helper that returns
    its own call cannot recurse forever."""
    node = expr.node
    if depth > 5:
        return None
    if isinstance(node, ast.Name) and expr.func is not None:
        value = _local_value(expr.func, node.id, before=node)
        if value is None:
            return None
        return _element(replace_node(expr, value), key, depth + 1)
    if isinstance(node, (ast.List, ast.Tuple)):
        return _pick(expr, list(node.elts), key)
    if isinstance(node, ast.Dict):
        for k, v in zip(node.keys, node.values):
            if isinstance(k, ast.Constant) and k.value == key:
                return replace_node(expr, v)
        return None
    if not isinstance(node, ast.Call):
        return None
    if _call_name(node.func) in _CONTAINER_CALLS or _is_super_init(node):
        return _container_call_element(expr, node, key, depth)
    return _helper_element(expr, node, key, depth)


def _container_call_element(expr: _Expr, node: ast.Call, key: str, depth: int) -> _Expr | None:
    """Child ``key`` of ``Sequential(a, b, *rest)``, ``ModuleList([...])``, ``OrderedDict(...)``
    or a container subclass's ``super().__init__(...)``: positional arguments, a starred
    local list, or the one iterable argument."""
    name = _call_name(node.func)
    args = list(node.args)
    if name in ("ModuleList", "ModuleDict", "OrderedDict", "dict") and len(args) == 1:
        return _element(replace_node(expr, args[0]), key, depth + 1)
    if len(args) == 1 and isinstance(args[0], ast.Call) and _call_name(args[0].func) == "OrderedDict":
        return _element(replace_node(expr, args[0]), key, depth + 1)
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
    return _pick(expr, flat, key)


def _helper_element(expr: _Expr, node: ast.Call, key: str, depth: int) -> _Expr | None:
    """Child ``key`` of ``self._make_layer(...)``: a helper method of the same class whose one
    ``return`` gives the container."""
    if isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name) and node.func.value.id == "self" and expr.cls is not None:
        for item in expr.cls.body:
            if isinstance(item, ast.FunctionDef) and item.name == node.func.attr:
                returns = [n for n in ast.walk(item) if isinstance(n, ast.Return) and n.value is not None]
                if len(returns) == 1:
                    inner = _Expr(returns[0].value, expr.file, item, expr.cls)
                    return _element(inner, key, depth + 1)
    return None


def _pick(expr: _Expr, elements: list[ast.expr], key: str) -> _Expr | None:
    """Element ``key`` of a literal list of children: by position, or an OrderedDict pair by name."""
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
    candidates = _class_index(tree).get(cls.__qualname__, [])
    first_line = getattr(cls, "__firstlineno__", None)  # Python >= 3.13
    exact = [c for c in candidates if c.lineno == first_line]
    return exact[0] if exact else (candidates[-1] if candidates else None)


@lru_cache(maxsize=256)
def _class_index(tree: ast.Module) -> dict[str, list[ast.ClassDef]]:
    """Every class statement of a parsed file by qualname, built once per file (trees are
    cached by :func:`parse_source`, so a zoo sweep does not walk the same file per class)."""
    index: dict[str, list[ast.ClassDef]] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                qualname = prefix + child.name
                index.setdefault(qualname, []).append(child)
                visit(child, qualname + ".")
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, prefix + child.name + ".<locals>.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return index


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
