"""The torch.fx tracer rflint uses: standard ``torch.nn`` modules, user-listed classes and
timm's no-trace registry stay leaves, and every node records the line of the model's code that
issued it (for source locations). Kept apart from the lowering (:mod:`.fx`) because the input
geometry (:mod:`.geometry`) traces too, to find the layer that reads the input.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from rflint.errors import TraceError, first_line
from rflint.frontend.torch_modules import is_declared_leaf, opaque_functions
from rflint.frontend.torch_modules import leaf_types as registered_leaves
from rflint.ir import Source

TORCH_DIR = os.path.dirname(torch.__file__) + os.sep  # frames inside torch itself are not the user's
RFLINT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


class _Tracer(fx.Tracer):
    """Standard torch.nn modules, timm's no-trace modules and user-listed classes are leaves.

    Each node records the innermost frame outside torch and rflint: the line in the model's
    ``forward`` that issued it. (fx's own ``record_stack_traces`` formats the whole stack for
    every node, which doubles the tracing time.)
    """

    def __init__(self, leaf_types: tuple[type, ...], autowrap: tuple[Callable, ...]) -> None:
        super().__init__(autowrap_functions=autowrap)
        self.leaf_types = leaf_types

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if self.leaf_types and isinstance(m, self.leaf_types):
            return True
        if is_declared_leaf(m):
            return True
        return super().is_leaf_module(m, module_qualified_name)

    def trace(self, root: Any, concrete_args: Any = None) -> fx.Graph:
        self._entry = sys._getframe(0)  # frames at or above this one are not the model's code
        try:
            return super().trace(root, concrete_args)
        finally:
            self._entry = None

    def create_proxy(self, *args: Any, **kwargs: Any) -> fx.Proxy:
        """Record the issuing line. The walk stops at :meth:`trace`'s own frame: a layer called
        by ``nn.Sequential`` (inside torch) has no line of the user's ``forward``, and the
        caller's frame (the CLI, a worker process, a notebook) must never stand in for one."""
        proxy = super().create_proxy(*args, **kwargs)
        entry = getattr(self, "_entry", None)
        frame = sys._getframe(1)
        while frame is not None and frame is not entry and frame.f_code.co_filename.startswith((TORCH_DIR, RFLINT_DIR)):
            frame = frame.f_back
        if frame is not None and frame is not entry:
            proxy.node.meta["rflint_source"] = Source(frame.f_code.co_filename, frame.f_lineno)
        return proxy


def _import_class(dotted: str) -> type:
    module_name, _, attr = dotted.rpartition(".")
    try:
        module = __import__(module_name, fromlist=[attr])
        return getattr(module, attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise TraceError(f"leaf module {dotted!r} cannot be imported: {exc}", hint="give a dotted path like pkg.mod.Class") from exc


def _library_registries() -> tuple[tuple[type, ...], tuple[Callable, ...]]:
    """timm's registries of modules and functions that must not be traced through."""
    if "timm" not in sys.modules:
        return (), ()
    try:
        from timm.layers import _fx as timm_fx

        modules = tuple(getattr(timm_fx, "_leaf_modules", ()) or ())
        functions = tuple(getattr(timm_fx, "_autowrap_functions", ()) or ())
        return modules, functions
    except ImportError:
        return (), ()


def trace(module: nn.Module, leaf_modules: Sequence[str] = ()) -> fx.GraphModule:
    """Symbolically trace ``module`` into a GraphModule (no data flows yet)."""
    lib_modules, lib_functions = _library_registries()
    leaf_types = tuple(_import_class(name) for name in leaf_modules) + lib_modules + registered_leaves()
    tracer = _Tracer(leaf_types, lib_functions + opaque_functions())
    try:
        graph = tracer.trace(module)
        # fx writes Python source for the graph: a submodule name Python cannot quote as fx does
        # (an nn.ModuleDict key with a newline or a double quote) fails here, not in trace()
        return fx.GraphModule(tracer.root, graph)
    except Exception as exc:  # fx raises TraceError, RuntimeError, TypeError, AttributeError, SyntaxError...
        raise TraceError(f"torch.fx could not trace the model: {type(exc).__name__}: {first_line(exc)}") from exc
