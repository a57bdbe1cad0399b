"""Turn a target string into a ``torch.nn.Module``, without downloading or allocating weights.

Accepted targets::

    path/to/file.py              auto-discovers build_model / create_model / get_model / model
    path/to/file.py:attr         attr may be dotted (``Outer.factory``)
    package.module:attr          imported with importlib
    torchvision:NAME             torchvision.models.get_model(NAME, weights=None)
    timm:NAME                    timm.create_model(NAME, pretrained=False)
    model.pt / .pth / .pt2 ...   pickled models: refused unless ``trust_pickle=True``

``attr`` may be a factory function, an ``nn.Module`` class (both called with ``kwargs``) or an
already-built ``nn.Module`` instance. ONNX files are not loaded here: they need no torch and no
code execution, so :func:`is_onnx_target` lets the engine route them to
:func:`rflint.frontend.onnx.graph_from_onnx` instead.

Why the meta device: rflint only needs shapes and layer hyper-parameters, never weight values.
Building under ``with torch.device("meta")`` makes a 100 GB model cost nothing and keeps memory
near the size of the graph. A few models cannot be built on meta (torchvision's ``regnet_*``
raise ``NotImplementedError``); for those the build is retried on the CPU.

Why a memory cap: see :mod:`rflint.sources.guards` (importing and building run user code).

Why pickles are refused: unpickling executes arbitrary code chosen by whoever wrote the file
(``__reduce__``), and ``torch.load(weights_only=True)`` cannot rebuild a whole module anyway.
A pickled target is never opened unless the caller passes ``trust_pickle=True``.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import importlib
import importlib.util
import inspect
import itertools
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

from rflint import ir

from rflint.sources import imports
from rflint import kwargs as object_kwargs
from rflint.errors import TargetError
from rflint.sources.guards import MemoryExceeded, default_memory_limit, memory_error, user_code
from rflint.sources.imports import describe
from rflint.sources.zoo import zoo_of
from rflint.sources.guards import exit_error
from rflint.sources.targets import (  # noqa: F401 - torch-free target parsing, re-exported
    ONNX_SUFFIXES,
    PICKLE_SUFFIXES,
    expand_targets,
    is_onnx_target,
    is_pickle_target,
    split_target,
)

#: Names tried, in order, when a ``.py`` target names no attribute.
FACTORY_NAMES = ("build_model", "create_model", "get_model", "model")
_module_counter = itertools.count()


@dataclass(frozen=True)
class LoadedModel:
    """A built model and where it came from.

    ``source`` is where the factory or class is defined, so findings about the model as a
    whole can point at a line. ``on_meta`` says whether every parameter and buffer lives on the
    meta device (no memory behind them).
    """

    module: nn.Module
    target: str
    source: ir.Source | None
    on_meta: bool


# --------------------------------------------------------------------------- target parsing


def _looks_like_path(spec: str, attr: str | None) -> bool:
    """A file target rather than ``package.module:attr``. A bare existing name counts as a
    path only without an attribute, so that ``models:build`` still imports the package
    ``models`` even though a folder of that name sits in the working directory."""
    if spec.endswith(".py") or os.sep in spec or "/" in spec or os.path.isfile(spec):
        return True
    return attr is None and os.path.exists(spec)


# --------------------------------------------------------------------------- public entry


def load_model(
    target: str,
    *,
    kwargs: dict | None = None,
    trust_pickle: bool = False,
    memory_limit: int | None = None,
    pythonpath: Sequence[str] = (),
) -> LoadedModel:
    """Build the model named by ``target``.

    Args:
        target: one of the forms in the module docstring.
        kwargs: keyword arguments for the factory or class (``--model-kwargs``); a table
            ``{"class": "torch.nn.Conv3d"}`` stands for that class (:mod:`rflint.kwargs`).
        trust_pickle: allow unpickling ``.pt``/``.pth``/``.pt2``/TorchScript files.
        memory_limit: bytes user code may allocate while it runs (default: half the RAM).
        pythonpath: folders on ``sys.path`` while the model is imported and built
            (``[tool.rflint] pythonpath``, then the project root, which comes last).

    Returns:
        The built module, preferably on the meta device.

    Raises:
        TargetError: with a one-line message for every way the target can be wrong.
    """
    kwargs = dict(kwargs or {})
    target = target.strip()
    if not target:
        raise TargetError("empty model target", hint="pass e.g. path/to/model.py:build_model or torchvision:resnet18")
    budget = default_memory_limit() if memory_limit is None else memory_limit
    try:
        return _load(target, kwargs, trust_pickle, budget, pythonpath)
    except SystemExit as exc:  # the model's import or factory tried to end the process
        raise exit_error(target, exc.code) from None


def _load(target: str, kwargs: dict, trust_pickle: bool, budget: int, pythonpath: Sequence[str]) -> LoadedModel:
    search = SearchPath.of(pythonpath)
    found = zoo_of(target)
    if found is not None:
        zoo, name = found
        make, entry = zoo.resolve(name, object_kwargs.resolve(kwargs))
        return _build(target, make, entry, budget)
    if is_onnx_target(target):
        raise TargetError(
            f"{target}: ONNX files are read by rflint.frontend.onnx.graph_from_onnx, not built as torch modules"
        )
    spec, attr = split_target(target)
    if is_onnx_target(spec):
        raise TargetError(f"{target}: an ONNX file holds one graph and takes no :{attr}", hint=f"pass just {spec}")
    if is_pickle_target(spec):
        return _load_pickle(target, spec, trust_pickle, budget)
    if _looks_like_path(spec, attr):
        return _load_file(target, Path(spec), attr, kwargs, budget, search)
    if attr is None:
        raise TargetError(
            f"cannot interpret model target {target!r}",
            hint="use path/to/file.py[:attr], package.module:attr, torchvision:NAME or timm:NAME",
        )
    return _load_import(target, spec, attr, kwargs, budget, search)


@dataclass(frozen=True)
class SearchPath:
    """The folders user code is imported with, and the project root that import errors search
    for a missing package (the last ``pythonpath`` entry, else the working directory)."""

    folders: tuple[Path, ...]
    root: Path

    @classmethod
    def of(cls, pythonpath: Sequence[str]) -> SearchPath:
        folders = tuple(Path(p).resolve() for p in pythonpath)
        return cls(folders, folders[-1] if folders else Path.cwd().resolve())


# --------------------------------------------------------------------------- user code


def _load_file(target: str, path: Path, attr: str | None, kwargs: dict, budget: int, search: SearchPath) -> LoadedModel:
    _check_file(path)
    if path.suffix != ".py":
        raise TargetError(
            f"{path}: don't know how to load a {path.suffix or 'extensionless'} file",
            hint="pass a .py file that builds the model, an .onnx file, or torchvision:NAME / timm:NAME",
        )
    if not path.read_bytes().strip():
        raise TargetError(f"{path} is empty", hint="the file must define the model, e.g. def build_model(): ...")
    location = imports.locate(path, search.folders)
    shown = imports.show_entry(str(path.resolve()), search.root)  # as the user reads paths: from the project root
    with imports.on_sys_path([location.base, *search.folders]):
        if location.is_package_module:
            imports.claim(location, shown)
            module = _import(location.name, f"{shown} (as {location.name})", budget, search)
        else:
            module = _exec_file(path.resolve(), shown, budget, search)
        name = attr or _discover(module, shown)
        obj = _get_attr(module, name, shown)
        return _instantiate(target, obj, f"{shown}:{name}", kwargs, budget)


def _check_file(path: Path) -> None:
    if path.is_dir():
        raise TargetError(f"{path} is a directory, not a model file", hint=f"point at a .py file, e.g. {path}/model.py:build_model")
    if not path.exists():
        raise TargetError(f"{path}: no such file", hint="check the path (relative paths are taken from the current directory)")


def _module_name(path: Path) -> str:
    """A fresh module name per load of a loose script: two ``model.py`` files in different
    folders (or the same file loaded twice) must not share a ``sys.modules`` entry."""
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    stem = re.sub(r"\W", "_", path.stem)
    return f"rflint_target_{stem}_{digest}_{next(_module_counter)}"


def _exec_file(path: Path, shown: str, budget: int, search: SearchPath) -> ModuleType:
    """Run a loose script (``path`` is absolute, so that every source location rflint reports
    is too) under a private module name; its folder is on ``sys.path`` (the caller put it there)."""
    name = _module_name(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TargetError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and typing look the module up while it runs
    try:
        with user_code(budget):
            spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise _import_error(sys.exc_info()[1], shown, budget, search) from sys.exc_info()[1]
    return module


def _import(modname: str, what: str, budget: int, search: SearchPath) -> ModuleType:
    """``importlib.import_module(modname)`` as user code, with import errors explained."""
    top = modname.split(".")[0]
    was_loaded = top in sys.modules
    try:
        with user_code(budget):
            module = importlib.import_module(modname)
    except BaseException as exc:
        raise _import_error(exc, what, budget, search) from exc
    imports.remember(top, was_loaded, [*search.folders, *[Path(p) for p in sys.path[:1]]])
    return module


def _import_error(exc: BaseException | None, what: str, budget: int, search: SearchPath) -> BaseException:
    """The error to raise for a failed import of ``what`` (KeyboardInterrupt passes through, and
    SystemExit, which :func:`load_model` reports as the model ending the process)."""
    if exc is None or isinstance(exc, (KeyboardInterrupt, GeneratorExit, SystemExit)):
        return exc or TargetError(f"importing {what} failed")
    if isinstance(exc, SyntaxError):
        shown = exc.filename or what
        with contextlib.suppress(ValueError):
            shown = imports.show_entry(str(Path(exc.filename).resolve()), search.root) if exc.filename else what
        where = f"{shown}:{exc.lineno}" if exc.lineno else str(shown)
        return TargetError(f"{where}: syntax error: {exc.msg}", hint="fix the model file so that python can import it")
    if isinstance(exc, MemoryExceeded):
        return memory_error(f"importing {what}", budget)
    return imports.import_failure(exc, what, search.root, list(sys.path))


def _load_import(target: str, modname: str, attr: str, kwargs: dict, budget: int, search: SearchPath) -> LoadedModel:
    imports.forget_project_package(modname.split(".")[0])
    with imports.on_sys_path(search.folders):
        module = _import(modname, modname, budget, search)
        obj = _get_attr(module, attr, modname)
        return _instantiate(target, obj, f"{modname}:{attr}", kwargs, budget)


def _discover(module: ModuleType, path: str) -> str:
    for name in FACTORY_NAMES:
        if hasattr(module, name):
            return name
    found = _candidates(module)
    listed = f"; candidates: {', '.join(found)}" if found else ""
    raise TargetError(
        f"{path} defines none of {', '.join(FACTORY_NAMES)}{listed}",
        hint=f"name the factory or class explicitly: {path}:NAME",
    )


def _candidates(module: ModuleType) -> list[str]:
    """Public names in ``module`` that could be a model: nn.Module classes and instances,
    and functions defined in the module itself."""
    out = []
    for name, obj in vars(module).items():
        if name.startswith("_"):
            continue
        is_class = inspect.isclass(obj) and issubclass(obj, nn.Module)
        is_local_fn = inspect.isfunction(obj) and obj.__module__ == module.__name__
        if is_class or is_local_fn or isinstance(obj, nn.Module):
            out.append(name)
    return sorted(out)


def _get_attr(module: ModuleType, dotted: str, where: str) -> Any:
    obj: Any = module
    for part in dotted.split("."):
        if not hasattr(obj, part):
            found = _candidates(module)
            close = difflib.get_close_matches(part, found, n=1)
            guess = f"; did you mean {close[0]!r}?" if close else ""
            listed = f" Available: {', '.join(found)}." if found else ""
            raise TargetError(f"{where} has no attribute {dotted!r}{guess}{listed}".rstrip())
        obj = getattr(obj, part)
    return obj


def _instantiate(target: str, obj: Any, name: str, kwargs: dict, budget: int) -> LoadedModel:
    """Build ``obj`` (a class or factory) with ``kwargs``, whose class references are imported
    here: after the model's own modules, so that a class of the project is the very object
    the model's code sees (the project's path is still on ``sys.path``)."""
    kwargs = object_kwargs.resolve(kwargs)
    if isinstance(obj, nn.Module):
        if kwargs:
            raise TargetError(f"{name} is an already-built module; --model-kwargs cannot be applied", hint="point at the factory or class instead")
        return LoadedModel(obj, target, definition_site(type(obj)), _all_meta(obj))
    if inspect.isclass(obj) and not issubclass(obj, nn.Module):
        raise TargetError(
            f"{name} is a class that does not derive from torch.nn.Module",
            hint="point at the model class or at a function that returns the model",
        )
    if not callable(obj):
        raise TargetError(
            f"{name} is of type {type(obj).__name__}, not an nn.Module, nn.Module class or factory function",
            hint="point at a function that returns the model or at the model class",
        )
    return _build(target, lambda: obj(**kwargs), obj, budget, label=name)


# --------------------------------------------------------------------------- pickles


def _load_pickle(target: str, spec: str, trust: bool, budget: int) -> LoadedModel:
    path = Path(spec)
    _check_file(path)
    if not trust:
        raise TargetError(
            f"{path}: refusing to unpickle (loading a pickle runs any code its author put in it)",
            hint="point rflint at the Python code that builds the model, export it to ONNX, or pass --trust-pickle if you trust the file",
        )
    try:
        with user_code(budget):
            obj = _unpickle(path)
    except MemoryExceeded as exc:
        raise memory_error(f"loading {path}", budget) from exc
    except TargetError:
        raise
    except Exception as exc:  # SystemExit passes: load_model reports it
        raise TargetError(f"loading {path} raised {describe(exc)}") from exc
    if isinstance(obj, dict):
        raise TargetError(f"{path} holds a state_dict (weights only), not a model", hint="point rflint at the code that builds the model")
    if not isinstance(obj, nn.Module):
        raise TargetError(f"{path} holds an object of type {type(obj).__name__}, not an nn.Module")
    return LoadedModel(obj, target, None, _all_meta(obj))


def _unpickle(path: Path) -> Any:
    """Only reached with ``trust_pickle=True``: TorchScript via ``torch.jit.load``, an
    exported program via ``torch.export.load``, anything else via ``torch.load``."""
    if path.suffix == ".pt2":
        return _load_exported(path)
    if _is_torchscript(path):
        return torch.jit.load(str(path), map_location="cpu")
    return torch.load(str(path), map_location="cpu", weights_only=False)


def _load_exported(path: Path) -> Any:
    """A ``torch.export.save`` archive. torch logs a traceback at WARNING before it raises on
    a corrupt archive; the failure is reported as one line instead, so that log is silenced
    while the archive is read, and a file that is not even a zip never reaches torch."""
    import logging
    import zipfile

    if not zipfile.is_zipfile(path):
        raise TargetError(f"{path} is not a torch.export archive (not a zip file)", hint="re-export it with torch.export.save, or check that the file is complete")
    log = logging.getLogger("torch.export")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        return torch.export.load(str(path)).module()
    finally:
        log.setLevel(level)


def _is_torchscript(path: Path) -> bool:
    """TorchScript archives are zips holding a ``code/`` folder (torch.save zips do not)."""
    import zipfile

    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any("/code/" in n or n.startswith("code/") for n in zf.namelist())


# --------------------------------------------------------------------------- building


def _build(target: str, make: Callable[[], Any], origin: Any, budget: int, label: str | None = None) -> LoadedModel:
    """Call ``make`` on the meta device, else on the CPU, under the memory cap."""
    label = label or target
    meta_error: BaseException | None = None
    try:
        with user_code(budget), torch.device("meta"), _skip_init():
            obj = make()
    except MemoryExceeded as exc:
        raise memory_error(f"building {label}", budget) from exc
    except Exception as exc:  # SystemExit passes: load_model reports it
        meta_error = exc
    if meta_error is not None:
        try:
            with user_code(budget), _skip_init():
                obj = make()
        except MemoryExceeded as exc:
            raise memory_error(f"building {label}", budget) from exc
        except Exception as exc:  # SystemExit passes: load_model reports it
            raise TargetError(f"building {label} raised {describe(exc)}", hint="check the factory and --model-kwargs") from exc
    if not isinstance(obj, nn.Module):
        raise TargetError(
            f"{label} returned an object of type {type(obj).__name__}, not a torch.nn.Module",
            hint="the factory must return the model itself (not a tuple, dict or state_dict)",
        )
    if not _all_meta(obj):  # also after the CPU retry: shape propagation then runs on meta, not real compute
        obj = _to_meta(obj)
    return LoadedModel(obj, target, definition_site(origin), _all_meta(obj))


@contextlib.contextmanager
def _skip_init() -> Iterator[None]:
    """Make ``torch.nn.init``'s in-place initialisers (``kaiming_normal_``, ``uniform_``, ...)
    no-ops while a model is built: rflint never reads weight values, and initialising them is
    most of the construction time (regnet_y_16gf on the CPU: 7 s -> 0.1 s; on meta too, where
    they still dispatch). Code that imported an initialiser by name is not affected."""
    from torch.nn import init

    names = [n for n in vars(init) if n.endswith("_") and not n.startswith("_") and callable(getattr(init, n))]
    saved = {n: getattr(init, n) for n in names}

    def skip(tensor: Any, *args: Any, **kwargs: Any) -> Any:
        return tensor

    for n in names:
        setattr(init, n, skip)
    try:
        yield
    finally:
        for n, fn in saved.items():
            setattr(init, n, fn)


def build_callable(obj: Any, kwargs: dict | None = None, label: str | None = None, memory_limit: int | None = None) -> LoadedModel:
    """Build a model from a class or factory the caller holds (the Python API), exactly as a
    target's factory is built: on the meta device, on the CPU when that fails (a drop-path
    schedule's ``torch.linspace(0, rate, n)[i].item()``), then moved to meta."""
    name = label or getattr(obj, "__qualname__", type(obj).__name__)
    budget = default_memory_limit() if memory_limit is None else memory_limit
    return _instantiate(name, obj, name, dict(kwargs or {}), budget)


def _to_meta(module: nn.Module) -> nn.Module:
    """A module built in the meta context may still hold CPU tensors (``torch.from_numpy``,
    explicit ``device="cpu"``); move them so that tracing sees one device."""
    try:
        return module.to("meta")
    except Exception:
        return module


def _all_meta(module: nn.Module) -> bool:
    tensors = itertools.chain(module.parameters(), module.buffers())
    return all(t.is_meta for t in tensors)


def definition_site(obj: Any) -> ir.Source | None:
    """File and line where a function or class is defined, if Python can tell."""
    target = inspect.unwrap(obj) if callable(obj) else obj
    target = getattr(target, "func", target)  # functools.partial
    try:
        file = inspect.getsourcefile(target)
        _, line = inspect.getsourcelines(target)
    except (TypeError, OSError):
        return None
    return ir.Source(file, max(line, 1)) if file else None
