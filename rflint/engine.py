"""Runs one model through the pipeline: load -> trace -> analyse -> checks.

The engine is the only place that knows the order of the steps and times them; the CLI turns
its results into output and exit codes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from rflint.algebra import analyse
from rflint.checks import ALL_RULES, Rule
from rflint.errors import ShapeError, TraceError
from rflint.ir import Analysis, Finding, Graph


@dataclass(frozen=True)
class ModelSpec:
    """What to check: a target string and the input geometry.

    ``input_size`` is spatial only (``(32,)`` expands to every spatial axis of the model);
    ``input_shape`` is the full shape the model's forward receives, batch included, and wins
    when both are given.
    """

    target: str
    input_size: tuple[int, ...] | None = None
    input_shape: tuple[int, ...] | None = None
    name: str | None = None
    kwargs: Mapping[str, object] = field(default_factory=dict)
    leaf_modules: tuple[str, ...] = ()
    trust_pickle: bool = False

    @property
    def display_name(self) -> str:
        return self.name or self.target


@dataclass(frozen=True)
class ModelReport:
    """The outcome for one model: its analysis and its findings (before config filtering)."""

    spec: ModelSpec
    analysis: Analysis
    findings: tuple[Finding, ...]
    timings: Mapping[str, float]


def build_graph(spec: ModelSpec, timings: dict[str, float] | None = None) -> Graph:
    """Load the target and trace it into an IR graph at the requested input size."""
    from rflint.load import is_onnx_target

    timings = {} if timings is None else timings
    if is_onnx_target(spec.target):  # no torch, no code execution
        from rflint.frontend.onnx import graph_from_onnx

        t0 = time.perf_counter()
        graph = graph_from_onnx(
            spec.target, input_size=spec.input_size, input_shape=spec.input_shape, name=spec.display_name
        )
        timings["trace"] = time.perf_counter() - t0
        return graph

    from rflint.load import load_model  # torch is imported only when needed

    t0 = time.perf_counter()
    loaded = load_model(spec.target, kwargs=dict(spec.kwargs), trust_pickle=spec.trust_pickle)
    timings["load"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    graph = trace_module(loaded.module, spec)
    timings["trace"] = time.perf_counter() - t0
    return graph


def trace_module(module: object, spec: ModelSpec) -> Graph:
    """Trace a built ``nn.Module`` with torch.fx, falling back to torch.export when fx cannot
    (``graph.tracer`` says which one was used).

    The fallback also runs when the fx graph fails on the meta input: fx can bake a wrong
    branch or a wrapped function into the graph (timm's Hiera) where export, which runs the
    real Python code, succeeds. If export fails too, a shape error is reported as fx saw it
    (the input really is too small), anything else with both tracers' messages.
    """
    from rflint.frontend.fx import trace_graph

    try:
        return trace_graph(
            module,
            input_size=spec.input_size,
            input_shape=spec.input_shape,
            name=spec.display_name,
            leaf_modules=spec.leaf_modules,
        )
    except (TraceError, ShapeError) as fx_error:
        from rflint.frontend.export import graph_from_export

        try:
            return graph_from_export(
                module, input_size=spec.input_size, input_shape=spec.input_shape, name=spec.display_name
            )
        except (TraceError, ShapeError) as export_error:
            if isinstance(fx_error, ShapeError):
                raise fx_error from export_error
            raise TraceError(f"{fx_error}; {export_error}") from export_error


def run_checks(analysis: Analysis, rules: Iterable[Rule] = ALL_RULES) -> tuple[Finding, ...]:
    """Every finding of every rule, sorted by (layer order, code)."""
    order = {lrf.layer.qualname: i for i, lrf in enumerate(analysis.layers)}
    findings = [f for rule in rules for f in rule.check(analysis)]
    return tuple(sorted(findings, key=lambda f: (order.get(f.layer, -1), f.code)))


def lint(
    spec: ModelSpec,
    rules: Iterable[Rule] = ALL_RULES,
    graph_builder: Callable[[ModelSpec, dict[str, float]], Graph] = build_graph,
) -> ModelReport:
    """Load, trace, analyse and check one model."""
    timings: dict[str, float] = {}
    graph = graph_builder(spec, timings)
    t0 = time.perf_counter()
    analysis = analyse(graph)
    timings["propagate"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    findings = run_checks(analysis, rules)
    timings["rules"] = time.perf_counter() - t0
    return ModelReport(spec, analysis, findings, timings)
