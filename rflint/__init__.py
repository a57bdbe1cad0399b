"""rflint: a static architecture linter for unproductive layers in CNNs.

Finds layers whose input already sees the whole image (Richter et al., 2021, "Should You Go
Deeper?") and architectures that are not refined for their training resolution (Richter & Pal,
2022), without training and without real weights.

The public API (imported lazily, so that ``rflint --version`` never imports torch)::

    rflint.analyze(model, input_size=224) -> rflint.Report
    rflint.register_op(cls, handler)              # receptive-field semantics of a custom module
    rflint.testing.assert_refined(model, input_size=32)

A bad argument (``analyze(None)``, a model class instead of an instance, ``input_size="32"``
or ``32.5``, a size that is not positive) raises :class:`rflint.ArgumentError`, one type for
every such case: it names the argument and carries the fix in ``hint``, and it is a
``ValueError``, a ``TypeError`` and a :class:`rflint.errors.RflintError` (what every other
input problem raises), so ``except ValueError`` and ``except TypeError`` both catch it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rflint._version import __version__

__all__ = ["ArgumentError", "Report", "__version__", "analyze", "register_op"]

if TYPE_CHECKING:
    from rflint.api import Report, analyze
    from rflint.ops.table import register_op
    from rflint.errors import ArgumentError


def __getattr__(name: str) -> Any:
    if name == "ArgumentError":
        from rflint.errors import ArgumentError

        return ArgumentError
    if name in ("analyze", "Report"):
        from rflint import api

        return getattr(api, name)
    if name == "register_op":
        from rflint.ops.table import register_op

        return register_op
    if name == "testing":
        import importlib

        return importlib.import_module("rflint.testing")
    raise AttributeError(f"module 'rflint' has no attribute {name!r}")
