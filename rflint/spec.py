"""What to analyse: a model target and its input geometry. Stdlib only.

Kept apart from the engine so that configuration (which builds specs from ``[[tool.rflint.models]]``)
and the report renderers can name a model without importing the pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelSpec:
    """What to check: a target string and the input geometry.

    ``input_size`` is spatial only (``(32,)`` expands to every spatial axis of the model);
    ``input_shape`` is the full shape the model's forward receives, batch included, and wins
    when both are given. When both are missing the engine takes the geometry from the model
    itself where it says (see :mod:`rflint.frontend.geometry`).

    ``pythonpath`` holds the absolute folders the model's code is imported with
    (``[tool.rflint] pythonpath``, then the project root, which comes last): they let
    ``src/pkg/models/net.py`` and ``pkg.models:build`` resolve from any working directory.
    """

    target: str
    input_size: tuple[int, ...] | None = None
    input_shape: tuple[int, ...] | None = None
    name: str | None = None
    kwargs: Mapping[str, object] = field(default_factory=dict)
    leaf_modules: tuple[str, ...] = ()
    trust_pickle: bool = False
    #: declared ops (``[tool.rflint.ops]``): dotted class or function path -> declaration
    ops: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    pythonpath: tuple[str, ...] = ()
    #: "auto" (decided from the model's outputs), "classification" or "dense"
    task: str = "auto"
    #: axes whose future must not be read: names (``"T"``, ``"L"``, ``"H"``) or indices
    causal: tuple[str, ...] = ()
    #: samples per second of a 1-D model's input (fields shown in ms too); None: not audio
    sample_rate: float | None = None

    @property
    def display_name(self) -> str:
        return self.name or self.target
