"""The Python API: ``rflint.analyze(model, input_size=...)`` in a notebook or a test suite.

torchinfo's ``summary(model, input_size=...)`` is the habit this meets: pass a built
``nn.Module`` (or a target string, as on the command line) and get a :class:`Report` back,
which prints as a table in a terminal (rich) and in Jupyter (``_repr_html_``), and converts to
plain data with :meth:`Report.to_dict`. The command line is built on the same engine calls.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from rflint.rf.display import display
from rflint.rf.status import layer_status
from rflint import arguments as A
from rflint.errors import ArgumentError, UsageError
from rflint.ir import INF, Finding, LayerRF, Number, Severity
from rflint.results import ModelReport
from rflint.spec import ModelSpec, Overrides


def _num(x: Number) -> int | float:
    """An int where exact, ``math.inf`` for global, else a float."""
    if x == INF:
        return INF
    shown = display(x)
    return shown if shown is not None else INF


@dataclass(frozen=True)
class LayerInfo:
    """One layer's receptive field, per spatial axis, in plain Python numbers."""

    qualname: str
    op: str
    kind: str
    r_min: tuple[int | float, ...]
    r_max: tuple[int | float, ...]
    input_r_min: tuple[int | float, ...]
    jump: tuple[int | float, ...]
    feature_map: tuple[int, ...] | None
    status: str
    uncertain: bool

    @classmethod
    def of(cls, lrf: LayerRF, input_size: Sequence[int]) -> LayerInfo:
        layer = lrf.layer
        return cls(
            qualname=layer.qualname,
            op=layer.op,
            kind=layer.kind.value,
            r_min=tuple(_num(x) for x in lrf.r_min),
            r_max=tuple(_num(x) for x in lrf.r_max),
            input_r_min=tuple(_num(x) for x in lrf.input_r_min),
            jump=tuple(_num(x) for x in lrf.jump),
            feature_map=layer.out_size,
            status=layer_status(lrf, tuple(input_size)).value,
            uncertain=lrf.uncertain,
        )


class Report:
    """The analysis of one model at one input size, and the findings the configuration keeps."""

    def __init__(self, model_report: ModelReport, findings: Sequence[Finding]) -> None:
        self.model_report = model_report
        self.findings: tuple[Finding, ...] = tuple(findings)

    @property
    def analysis(self) -> Any:
        """The full :class:`rflint.ir.Analysis` (graph, per-layer fields)."""
        return self.model_report.analysis

    @property
    def name(self) -> str:
        return self.model_report.spec.display_name

    @property
    def input_size(self) -> tuple[int, ...]:
        return self.analysis.graph.input_size

    @property
    def i_min(self) -> tuple[int | float, ...]:
        """Smallest input size at which no layer is critical (Richter & Pal's I_min)."""
        return tuple(_num(x) for x in self.analysis.i_min)

    @property
    def i_min_unproductive(self) -> tuple[int | float, ...]:
        """Smallest input size at which no layer is unproductive."""
        return tuple(_num(x) for x in self.analysis.i_min_unproductive)

    @property
    def i_max(self) -> tuple[int | float, ...]:
        """The largest finite r_max of any layer."""
        return tuple(_num(x) for x in self.analysis.i_max)

    @property
    def refined(self) -> bool:
        """``I_min < I_res`` on every axis: the architecture is refined for its input size."""
        return all(m < s for m, s in zip(self.analysis.i_min, self.input_size))

    @cached_property
    def halo(self) -> tuple[Any, ...]:
        """Per axis, the :class:`rflint.rf.tiling.HaloAxis` of tiled inference: the context a
        tile needs before and after its core, and the grid tiles are cut on."""
        from rflint.rf import tiling

        return tiling.halo(self.analysis)

    @cached_property
    def outputs(self) -> tuple[Any, ...]:
        """One :class:`rflint.rf.tiling.OutputField` per model output (an FPN's levels, a
        detector's heads, a dict of maps)."""
        from rflint.rf import tiling

        return tiling.output_fields(self.analysis)

    @cached_property
    def layers(self) -> tuple[LayerInfo, ...]:
        return tuple(LayerInfo.of(lrf, self.input_size) for lrf in self.analysis.layers)

    @property
    def unproductive(self) -> tuple[str, ...]:
        """Qualnames of the unproductive layers (RF101 findings the configuration keeps)."""
        return tuple(f.layer for f in self.findings if f.code == "RF101")

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    def layer(self, qualname: str) -> LayerInfo:
        """The layer named ``qualname`` (as in ``rflint inspect``)."""
        for info in self.layers:
            if info.qualname == qualname:
                return info
        raise KeyError(qualname)

    def to_dict(self) -> dict[str, Any]:
        """Plain data: the summary (as ``rflint inspect --output-format json``), every layer,
        and the findings (as ``rflint check --output-format json``)."""
        from rflint.views import inspection as view
        from rflint.report.common import RenderContext, finding_dict

        ctx = RenderContext(root=os.getcwd())
        return {
            **view.summary(self.model_report),
            "refined": self.refined,
            "layers": view.layer_rows(self.model_report, True, ctx),
            "findings": [finding_dict(f, ctx) for f in self.findings],
        }

    def _summary_line(self) -> str:
        from rflint.report.common import axes_text

        word = "refined" if self.refined else "not refined"
        return (
            f"{self.name} @ {axes_text(self.input_size)}: I_min {axes_text(self.i_min)} ({word}), "
            f"I_max {axes_text(self.i_max)}, {len(self.unproductive)} unproductive layer(s), {len(self.findings)} finding(s)"
        )

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.text import Text

        from rflint.views import inspection as view

        table = view.table_parts(self.model_report, False)
        lines = [Text(f"{f.code} {f.message}") for f in self.findings]
        return Group(*table, *lines)

    def _repr_html_(self) -> str:
        from rflint.report.html import CSS, model_section

        return f"<div><style>{CSS}</style>{model_section(self.analysis, list(self.findings), plot=False)}</div>"

    def __repr__(self) -> str:
        return f"<rflint.Report {self._summary_line()}>"

    def __str__(self) -> str:
        return self._summary_line()


def _config(config: Any) -> Any:
    from rflint.project.config import Config, load_config
    from pathlib import Path

    if config is None:
        return Config(root=Path.cwd())
    if isinstance(config, Config):
        return config
    if not isinstance(config, (str, os.PathLike)):
        raise ArgumentError(
            f"config must be a rflint.project.config.Config, the path of a pyproject.toml / rflint.toml, or None, not {type(config).__name__}",
            hint="pass e.g. config='pyproject.toml'",
        )
    if not Path(config).is_file():
        raise ArgumentError(f"config: no such file {os.fspath(config)!r}", hint="pass the path of a pyproject.toml or rflint.toml")
    return load_config(os.fspath(config))


def _selected(cfg: Any, rules: Any) -> Any:
    if rules is None:
        return cfg
    selectors = A.names_argument(rules, "rules", "rules=['RF101', 'RF102']")
    try:
        return cfg.with_selection(select=list(selectors))
    except UsageError as exc:
        raise ArgumentError(str(exc).replace("--select", "rules", 1), hint=exc.hint) from None


def analyze(
    model: Any,
    input_size: int | Sequence[int] | None = None,
    input_shape: Sequence[int] | None = None,
    *,
    config: Any = None,
    rules: Sequence[str] | None = None,
    name: str | None = None,
    kwargs: Mapping[str, object] | None = None,
    leaf_modules: Sequence[str] = (),
    task: str | None = None,
    causal: Sequence[str | int] = (),
    sample_rate: float | None = None,
) -> Report:
    """Analyse a model's receptive fields at one input size.

    Args:
        model: what ``rflint check`` accepts (a target string: ``"torchvision:resnet18"``,
            ``"models.py:Net"``, ``"pkg.models:build"``, ``"model.onnx"``, or the name or
            target of a ``[[tool.rflint.models]]`` entry of ``config``); a model class or
            factory (built as the command line builds one: on the meta device, else on the
            CPU, with ``kwargs``); or a built ``nn.Module``, whose copy on the meta device is
            traced (the module itself is left as it is).
        input_size: spatial size, one int for every axis or one per axis (``(224, 160)``);
            for a configured model it replaces the entry's, as ``--input-size`` does.
        input_shape: the full input shape, batch and channels included; wins over input_size.
        config: a :class:`rflint.project.config.Config`, the path of a ``pyproject.toml`` /
            ``rflint.toml``, or None for the defaults (no file is read).
        rules: rule selectors (codes, prefixes, names) to run instead of the config's.
        name: the model's display name in findings.
        kwargs: keyword arguments for a target's factory or a class (added to a configured
            entry's, as ``--model-kwargs``); ``{"class": "torch.nn.Conv3d"}`` names a class.
        leaf_modules: dotted class paths not to trace through.
        task: "auto" (dense when an output keeps a spatial axis), "classification" or
            "dense" (every unit judged, corners included); None: the config's (default auto).
        causal: axes whose future must not be read (RF104): ``["T"]``, ``[0]``.
        sample_rate: samples per second of a 1-D model's input (fields also in ms).

    Returns:
        Report: the model's receptive fields, and the findings the configuration keeps.

    Raises:
        rflint.ArgumentError: an argument has the wrong type or value (an object that is no
            model, ``input_size="32"`` or ``32.5``, a size that is not positive, an unknown
            rule); the message names the argument, ``hint`` the fix. It is a ``ValueError``
            and a ``TypeError`` too, and a :class:`rflint.errors.RflintError`.
        rflint.errors.RflintError: the model cannot be loaded, traced or run at that size.
    """
    from rflint.engine import pipeline as engine

    model = A.model_argument(model)
    size, shape = A.input_size_argument(input_size), A.input_shape_argument(input_shape)
    name = A.optional_text_argument(name, "name")
    leaves = A.names_argument(leaf_modules, "leaf_modules", "leaf_modules=['pkg.module.Block']")
    factory_kwargs = A.kwargs_argument(kwargs, model_is_built=A.is_built(model))
    cfg = _selected(_config(config), rules)
    judging = A.judging_arguments(task, causal, sample_rate, cfg)
    given = Overrides(size, shape, factory_kwargs, leaves, name=name, **judging)
    if isinstance(model, str):
        model_report = engine.lint(_target_spec(model, given, cfg))
    else:
        model_report = _lint_object(model, given, cfg)
    return Report(model_report, engine.resolve_findings([model_report], cfg))


def _target_spec(target: str, given: Overrides, cfg: Any) -> ModelSpec:
    """The spec ``rflint check TARGET`` would run: a configured entry with what was given on
    top, as the command line's options, or a plain target."""
    from rflint.engine import pipeline as engine

    specs = engine.resolve_specs([target], cfg, given, needs_geometry=False)
    if len(specs) != 1:
        raise ArgumentError(f"model {target!r} selects {len(specs)} models; analyze works on one", hint="name one of them")
    return specs[0]


def _lint_object(model: Any, given: Overrides, cfg: Any) -> ModelReport:
    """A built module (traced as a meta-device copy) or a class / factory (built first)."""
    from torch import nn

    from rflint.engine import pipeline as engine
    from rflint.errors import RflintError
    from rflint.sources import load
    from rflint.sources.meta_copy import meta_copy

    if isinstance(model, nn.Module):
        module = model
    else:
        A.factory_call_argument(model, given.kwargs)
        module = load.build_callable(model, dict(given.kwargs)).module
    label = given.name or getattr(model, "__name__", None) or type(model).__name__
    spec = given.new_spec(label, cfg.model_defaults)
    meta = meta_copy(module)
    try:
        return engine.lint_module(meta, spec)
    except RflintError:
        if meta is module:
            raise
        return engine.lint_module(module, spec)  # what only real values can run (a data-dependent forward)
