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

from rflint.algebra import display, layer_status
from rflint.ir import INF, Finding, LayerRF, Number, Severity
from rflint.results import ModelReport
from rflint.spec import ModelSpec


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
        from rflint.report import inspect as view
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

        from rflint.report import inspect as view

        table = view.table_parts(self.model_report, False)
        lines = [Text(f"{f.code} {f.message}") for f in self.findings]
        return Group(*table, *lines)

    def _repr_html_(self) -> str:
        from rflint.viz.html import CSS, model_section

        return f"<div><style>{CSS}</style>{model_section(self.analysis, list(self.findings), plot=False)}</div>"

    def __repr__(self) -> str:
        return f"<rflint.Report {self._summary_line()}>"

    def __str__(self) -> str:
        return self._summary_line()


def _config(config: Any) -> Any:
    from rflint.config import Config, load_config

    if config is None:
        return Config(root=__import__("pathlib").Path.cwd())
    if isinstance(config, Config):
        return config
    return load_config(os.fspath(config))


def _size(value: int | Sequence[int] | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    return (int(value),) if isinstance(value, int) else tuple(int(v) for v in value)


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
        model: a built ``torch.nn.Module`` (it is traced on its own device; build it under
            ``torch.device("meta")`` to skip allocating weights), or a target string as on the
            command line (``"torchvision:resnet18"``, ``"models.py:Net"``, ``"model.onnx"``).
        input_size: spatial size, one int for every axis or one per axis (``(224, 160)``).
        input_shape: the full input shape, batch and channels included; wins over input_size.
        config: a :class:`rflint.config.Config`, the path of a ``pyproject.toml`` /
            ``rflint.toml``, or None for the defaults (no file is read).
        rules: rule selectors (codes, prefixes, names) to run instead of the config's.
        name: the model's display name in findings.
        kwargs: keyword arguments for a target's factory.
        leaf_modules: dotted class paths not to trace through.
        task: "auto" (dense when an output keeps a spatial axis), "classification" or
            "dense" (every unit judged, corners included); None: the config's (default auto).
        causal: axes whose future must not be read (RF104): ``["T"]``, ``[0]``.
        sample_rate: samples per second of a 1-D model's input (fields also in ms).

    Returns:
        A :class:`Report`.

    Raises:
        rflint.errors.RflintError: the model cannot be loaded, traced or run at that size.
    """
    from rflint import engine

    cfg = _config(config)
    if rules is not None:
        cfg = cfg.with_selection(select=list(rules))
    size, shape = _size(input_size), (tuple(int(s) for s in input_shape) if input_shape is not None else None)
    judging = {
        "task": task or cfg.task,
        "causal": tuple(str(a) for a in causal) or cfg.causal,
        "sample_rate": sample_rate if sample_rate is not None else cfg.sample_rate,
    }
    if judging["task"] not in ("auto", "classification", "dense"):
        from rflint.errors import UsageError

        raise UsageError(f"unknown task {judging['task']!r}", hint="use auto, classification or dense")
    if isinstance(model, str):
        spec = ModelSpec(model, size, shape, name=name, kwargs=dict(kwargs or {}), leaf_modules=tuple(leaf_modules), ops=cfg.ops, **judging)
        model_report = engine.lint(spec)
    else:
        label = name or type(model).__name__
        spec = ModelSpec(label, size, shape, name=label, leaf_modules=tuple(leaf_modules), ops=cfg.ops, **judging)
        model_report = engine.lint_module(model, spec)
    return Report(model_report, engine.resolve_findings([model_report], cfg))
