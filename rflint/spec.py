"""What to analyse: a model target and its input geometry. Stdlib only.

Kept apart from the engine so that configuration (which builds specs from ``[[tool.rflint.models]]``)
and the report renderers can name a model without importing the pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace


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


@dataclass(frozen=True)
class Overrides:
    """What a command line (or a Python API call) gives for every model it checks, parsed and
    validated: a geometry that replaces a configured entry's, kwargs and leaf modules that add to
    its own, and how to judge the model. Parsed once, by the caller: the engine only applies it
    (:func:`rflint.engine.pipeline.resolve_specs`), so every command and the API resolve a
    target the same way.
    """

    input_size: tuple[int, ...] | None = None
    input_shape: tuple[int, ...] | None = None
    kwargs: Mapping[str, object] = field(default_factory=dict)
    leaf_modules: tuple[str, ...] = ()
    trust_pickle: bool = False
    name: str | None = None
    task: str | None = None
    causal: tuple[str, ...] = ()
    sample_rate: float | None = None

    @property
    def gives_geometry(self) -> bool:
        return self.input_size is not None or self.input_shape is not None

    def new_spec(self, target: str, defaults: ModelSpec) -> ModelSpec:
        """The spec of a target that no configured entry names; ``defaults`` holds what the
        configuration gives every model (search path, declared ops, task, causal axes, rate)."""
        return replace(
            defaults,
            target=target,
            input_size=self.input_size,
            input_shape=self.input_shape,
            name=self.name,
            kwargs=dict(self.kwargs),
            leaf_modules=self.leaf_modules,
            trust_pickle=self.trust_pickle,
            task=self.task or defaults.task,
            causal=self.causal or defaults.causal,
            sample_rate=self.sample_rate if self.sample_rate is not None else defaults.sample_rate,
        )

    def over(self, entry: ModelSpec) -> ModelSpec:
        """A configured model with these overrides on top: the geometry replaces the entry's,
        kwargs and leaf modules add to them, the judging options replace the entry's."""
        geometry = {"input_size": self.input_size, "input_shape": self.input_shape} if self.gives_geometry else {}
        return replace(
            entry,
            **geometry,
            name=self.name or entry.name,
            kwargs={**entry.kwargs, **self.kwargs},
            leaf_modules=tuple(dict.fromkeys((*entry.leaf_modules, *self.leaf_modules))),
            trust_pickle=entry.trust_pickle or self.trust_pickle,
            task=self.task or entry.task,
            causal=self.causal or entry.causal,
            sample_rate=self.sample_rate if self.sample_rate is not None else entry.sample_rate,
        )
