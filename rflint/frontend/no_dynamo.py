"""Keep ``torch._dynamo`` out of the meta-device shape run.

Why: on the meta device most ops run a Python meta kernel from ``torch._refs`` /
``torch._decomp`` (``add``, ``relu``, ``mean``, ``clamp``, ``layer_norm``, ...). torch wraps
many of those in ``torch._disable_dynamo`` (``torch/_compile.py``), whose wrapper imports
``torch._dynamo`` on its first call only to build a "do not compile this" decorator. That
import costs 1.5-3.8 s on a 2-core machine, more than building, tracing and analysing a
20-layer CNN, and buys nothing: rflint never runs under ``torch.compile``.

How: the wrapper first looks for a ready decorated function in the wrapped function's
``__dynamo_disable`` attribute and imports dynamo only when it is missing. While the shape
run lasts, :func:`without_dynamo` sets that attribute to the wrapped function itself (what
``torch._dynamo.disable(fn)`` amounts to outside ``torch.compile``) on every such wrapper it
finds in torch's reference and decomposition modules, and removes what it set afterwards, so a
later ``torch.compile`` in the same process (the Python API runs in the user's process) gets
torch's own behaviour back.

What is left: ``torch.fx.experimental.symbolic_shapes`` and sympy (about 0.45 s), which dozens of
meta kernels import inside their bodies (``sym_and``, ``guard_or_false``...). The ops whose
sizes :mod:`rflint.frontend.shapes` computes by arithmetic never reach those kernels, so a CNN
made of convs, pools, norms, activations, adds and linears does not import them; another op
may.

Safety: this is a speed-up, never a change of results. Outside ``torch.compile`` calling the
function directly is exactly what the disabled wrapper does. If a torch release renames the
attribute or the wrapper, nothing is found, nothing is set, and torch imports dynamo as it would without rflint.
"""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Iterator

#: where torch keeps the Python meta kernels and the references they call
_TORCH_KERNEL_MODULES = ("torch._refs", "torch._decomp", "torch._prims", "torch._meta_registrations")
_ATTRIBUTE = "__dynamo_disable"


_found: dict[tuple, list[types.FunctionType]] = {}


def _disabled_functions() -> list[types.FunctionType]:
    """The functions that ``torch._disable_dynamo`` wrapped (about 150), found by walking the
    closures of the decomposition tables and the kernel modules' functions; the walk (10 ms)
    is redone only when torch has loaded more kernel modules or decompositions."""
    try:
        from torch._decomp import global_decomposition_table
    except ImportError:
        return []
    state = (
        tuple(name for name in list(sys.modules) if name.startswith(_TORCH_KERNEL_MODULES)),
        tuple(len(table) for table in global_decomposition_table.values()),
    )
    if state not in _found:
        _found.clear()
        _found[state] = _walk(global_decomposition_table)
    return _found[state]


def _walk(global_decomposition_table: dict) -> list[types.FunctionType]:
    from torch import _compile

    wrapper_file = _compile.__file__
    found: dict[int, types.FunctionType] = {}
    seen: set[int] = set()

    def visit(obj: object, depth: int = 0) -> None:
        if not isinstance(obj, types.FunctionType) or id(obj) in seen or depth > 6:
            return
        seen.add(id(obj))
        code = obj.__code__
        if code.co_name == "inner" and code.co_filename == wrapper_file and "fn" in code.co_freevars:
            target = obj.__closure__[code.co_freevars.index("fn")].cell_contents  # type: ignore[index]
            if isinstance(target, types.FunctionType):
                found[id(target)] = target
        for cell in obj.__closure__ or ():
            try:
                visit(cell.cell_contents, depth + 1)
            except ValueError:  # an empty cell
                pass
        visit(getattr(obj, "__wrapped__", None), depth + 1)

    for table in global_decomposition_table.values():
        for kernel in list(table.values()):
            visit(kernel)
    for name, module in list(sys.modules.items()):
        if module is not None and name.startswith(_TORCH_KERNEL_MODULES):
            for value in list(vars(module).values()):
                visit(value)
    return list(found.values())


@contextlib.contextmanager
def without_dynamo() -> Iterator[None]:
    """Run meta kernels without importing ``torch._dynamo`` (see the module docstring);
    every attribute set is removed on exit."""
    seeded = []
    for fn in _disabled_functions():
        if getattr(fn, _ATTRIBUTE, None) is None:
            setattr(fn, _ATTRIBUTE, fn)
            seeded.append(fn)
    try:
        yield
    finally:
        for fn in seeded:
            if fn.__dict__.get(_ATTRIBUTE) is fn:
                delattr(fn, _ATTRIBUTE)
