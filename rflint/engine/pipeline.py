"""The pipeline, in one place: config -> load -> geometry -> trace -> analyse -> rules ->
suppressions -> baseline -> hints.

Every command (``check``, ``inspect``, ``suggest``, ``graph``, ``plot``, ``erf``, ``diff``) and
the Python API call into this module; the CLI only parses arguments, calls it, picks a renderer
and an exit code. The engine is also the only place that knows the order of the steps and times
them. torch is imported lazily, by the steps that need it: an ONNX target, a configuration
error or a cached report never pay for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rflint.rf.algebra import analyse
from rflint.checks import ALL_RULES, Rule
from rflint.errors import RflintError, ShapeError, TraceError, UsageError, first_line
from rflint.ir import Analysis, Finding, Graph, Source
from rflint.results import BaselineOutcome, CheckResult, Failure, ModelReport
from rflint.spec import ModelSpec, Overrides

if TYPE_CHECKING:
    from rflint.project.config import Config
    from rflint.engine.sandbox import Sandbox


# ---------------------------------------------------------------------------------------------
# one model


@dataclass(frozen=True)
class Traced:
    """A traced graph, and why the fallback tracer was used (empty when fx worked)."""

    graph: Graph
    tracer_reason: str = ""
    notes: tuple[str, ...] = ()
    input_shape: tuple[int, ...] | None = None  # batch and channels included
    #: where the model's factory or class is defined, when that is the user's code
    source: Source | None = None


def load_module(spec: ModelSpec) -> Any:
    """Build the ``nn.Module`` a (non-ONNX) spec names, on the meta device where possible."""
    from rflint.sources.load import load_model  # torch is imported only when needed

    return load_model(spec.target, kwargs=dict(spec.kwargs), trust_pickle=spec.trust_pickle, pythonpath=spec.pythonpath).module


def build_graph(spec: ModelSpec, timings: dict[str, float] | None = None) -> Traced:
    """Load the target and trace it into an IR graph at the requested input size."""
    from rflint.sources.targets import is_onnx_target

    timings = {} if timings is None else timings
    if is_onnx_target(spec.target):  # no torch, no code execution
        from rflint.frontend.onnx import graph_from_onnx

        t0 = time.perf_counter()
        graph = graph_from_onnx(
            spec.target, input_size=spec.input_size, input_shape=spec.input_shape, name=spec.display_name
        )
        timings["trace"] = time.perf_counter() - t0
        return Traced(graph)

    from rflint.frontend.attribution import chains_by_name, recording
    from rflint.sources.guards import guarded
    from rflint.sources.load import load_model  # torch is imported only when needed

    with guarded(spec.display_name):  # the model's code: stdout, cwd and SystemExit contained
        t0 = time.perf_counter()
        with recording() as built:  # import time too: a target may be a module-level instance
            loaded = load_model(spec.target, kwargs=dict(spec.kwargs), trust_pickle=spec.trust_pickle, pythonpath=spec.pythonpath)
        chains = chains_by_name(loaded.module, built)
        timings["load"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        traced = trace_module(loaded.module, spec)
        timings["trace"] = time.perf_counter() - t0
    return attributed(traced, loaded.source, chains, spec)


def attributed(traced: Traced, factory: Source | None, chains: Mapping[str, Any], spec: ModelSpec) -> Traced:
    """Each layer at the user's line that built it (``chains``: the construction call chain of
    each submodule, :mod:`rflint.frontend.attribution`), and the model at its factory's line
    when the factory is the user's code."""
    from rflint.frontend.attribution import Project, attribute
    from rflint.sources.load import SearchPath

    project = Project.of(SearchPath.of(spec.pythonpath).root, factory.file if factory else None)
    layers = tuple(attribute(traced.graph.layers, chains, project))
    source = factory if factory is not None and project.contains(factory.file) else None
    return replace(traced, graph=replace(traced.graph, layers=layers), source=source)


def trace_module(module: Any, spec: ModelSpec) -> Traced:
    """Trace a built ``nn.Module`` with torch.fx, falling back to torch.export when fx cannot
    (``graph.tracer`` says which one was used, ``Traced.tracer_reason`` why).

    The input geometry is resolved once here (:mod:`rflint.frontend.geometry`): the given
    shape, else the channels the model states, else the first layer reading the input, else the
    common channel counts, tried in that order until one runs (a wrong guess fails as a shape
    or as a trace error: either moves on to the next); a shape that was guessed is
    noted in ``Traced.notes``.

    The fallback also runs when the fx graph fails on the meta input: fx can bake a wrong
    branch or a wrapped function into the graph (timm's Hiera) where export, which runs the
    real Python code, succeeds. If export fails too, a shape error is reported as fx saw it
    (the input really is too small), a forward that raised on the input as export saw it (the
    line that raised: fx's complaint about the control flow around it is beside the point),
    anything else with both tracers' messages.
    """
    from rflint.frontend.fx import trace_graph
    from rflint.frontend.geometry import candidates, describe
    from rflint.frontend.torch_modules import declared_ops
    from rflint.sources.imports import on_sys_path

    with on_sys_path(spec.pythonpath), declared_ops(spec.ops):  # ops import as the model did
        tried: list[tuple[Any, ShapeError | TraceError]] = []
        for geometry in candidates(module, spec.input_size, spec.input_shape):
            try:
                traced = _trace_with_fallback(module, replace(spec, input_shape=geometry.shape), trace_graph)
            except (ShapeError, TraceError) as exc:  # a wrong channel guess can fail either way
                if _same_limitation(tried, exc):
                    break  # the tracer fails alike whatever the channels: no use trying more
                tried.append((geometry, exc))
                continue
            notes = ()
            if tried or geometry.weak:
                notes = (f"analysed at input shape {geometry.shape} ({geometry.source}); pass --input-shape to choose",)
            return replace(traced, input_shape=geometry.shape, notes=traced.notes + notes)
    if len(tried) == 1 or all(isinstance(exc, TraceError) for _, exc in tried):
        raise tried[0][1]  # a tracer limitation: the best guess's error says it
    if len({str(exc) for _, exc in tried}) == 1:  # the same refusal whatever the channels
        shapes = ", ".join(str(g.shape) for g, _ in tried)
        raise ShapeError(f"{tried[0][1]} (on every input shape tried: {shapes})", hint=tried[0][1].hint)
    raise ShapeError(
        f"the model runs on none of the input shapes tried: {describe(tried)}",
        hint="pass --input-shape with the shape forward() expects (batch and channels included)",
    )


def _same_limitation(tried: Sequence[tuple[Any, BaseException]], exc: BaseException) -> bool:
    """A trace error worded as the previous one: a limitation of the tracer, not of the
    guessed shape (a wrong channel count names its numbers, so its message differs)."""
    return isinstance(exc, TraceError) and bool(tried) and isinstance(tried[-1][1], TraceError) and str(tried[-1][1]) == str(exc)


def _trace_with_fallback(module: Any, spec: ModelSpec, trace_graph: Callable[..., Graph]) -> Traced:
    try:
        graph = trace_graph(module, input_shape=spec.input_shape, name=spec.display_name, leaf_modules=spec.leaf_modules)
        return Traced(graph)
    except (TraceError, ShapeError) as fx_error:
        from rflint.frontend.export import graph_from_export

        try:
            graph = graph_from_export(module, input_shape=spec.input_shape, name=spec.display_name)
        except (TraceError, ShapeError) as export_error:
            if isinstance(fx_error, ShapeError):
                raise fx_error from export_error
            if isinstance(export_error, ShapeError):  # the real code ran and refused the input
                raise export_error from fx_error
            raise TraceError(f"{fx_error}; {export_error}") from export_error
        return Traced(graph, tracer_reason=_reason(fx_error))


def _reason(exc: BaseException) -> str:
    """Why torch.fx was not used, in one line without the exception's prefix."""
    return first_line(exc, 240)


def run_checks(analysis: Analysis, rules: Iterable[Rule] = ALL_RULES) -> tuple[Finding, ...]:
    """Every finding of every rule, sorted by (layer order, code)."""
    order = {lrf.layer.qualname: i for i, lrf in enumerate(analysis.layers)}
    findings = [f for rule in rules for f in rule.check(analysis)]
    return tuple(sorted(findings, key=lambda f: (order.get(f.layer, -1), f.code)))


def report_for(traced: Traced, spec: ModelSpec, rules: Iterable[Rule] = ALL_RULES, timings: dict[str, float] | None = None) -> ModelReport:
    """Analyse a traced graph and run the rules on it."""
    timings = {} if timings is None else timings
    from rflint.rf.lookahead import causal_axes

    t0 = time.perf_counter()
    causal = causal_axes(spec.causal, traced.graph.ndim)
    analysis = analyse(traced.graph, task=spec.task, causal_axes=causal)
    timings["propagate"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    findings = run_checks(analysis, rules)
    timings["rules"] = time.perf_counter() - t0
    return ModelReport(spec, analysis, findings, timings, traced.tracer_reason, traced.notes, traced.source)


def lint(
    spec: ModelSpec,
    rules: Iterable[Rule] = ALL_RULES,
    graph_builder: Callable[[ModelSpec, dict[str, float]], Traced] = build_graph,
) -> ModelReport:
    """Load, trace, analyse and check one model."""
    timings: dict[str, float] = {}
    traced = graph_builder(spec, timings)
    return report_for(traced, spec, rules, timings)


def lint_isolated(specs: Sequence[ModelSpec], sandbox: Sandbox) -> list[ModelReport]:
    """:func:`lint` for each spec, each model checked in a child process (:mod:`rflint.engine.sandbox`:
    what its code prints, exits or hangs cannot touch this process); the first failure is
    raised, as a single-model command reports it."""
    from rflint.engine.workers import lint_all

    reports = []
    for _, outcome in lint_all(specs, lint, 1, None, sandbox):
        if isinstance(outcome, BaseException):
            raise outcome
        reports.append(outcome)
    return reports


def lint_module(module: Any, spec: ModelSpec, rules: Iterable[Rule] = ALL_RULES) -> ModelReport:
    """Trace, analyse and check an already built ``nn.Module`` (the Python API's entry)."""
    from rflint.project.locations import model_source
    from rflint.sources.guards import guarded

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    with guarded(spec.display_name):
        traced = replace(trace_module(module, spec), source=model_source(spec))
    timings["trace"] = time.perf_counter() - t0
    return report_for(traced, spec, rules, timings)


# ---------------------------------------------------------------------------------------------
# what to check


def resolve_specs(
    targets: Sequence[str], config: Config, overrides: Overrides = Overrides(), *, needs_geometry: bool = True
) -> list[ModelSpec]:
    """What to check: the targets, or every ``[[tool.rflint.models]]`` entry, with
    ``overrides`` (what the command line or the API call gives) on top. A configured model's
    name or target reuses its entry; any other target needs a geometry from ``overrides``
    unless ``needs_geometry`` is False (the API, which takes the model's own where it says)."""
    from rflint.sources.targets import check_target_path, expand_targets

    if not targets:
        if not config.models:
            raise UsageError(
                "no model given",
                hint="pass a target such as torchvision:resnet18 or list models in [tool.rflint.models]",
            )
        return [overrides.over(spec) for spec in config.models]
    by_key = {k: spec for spec in config.models for k in (spec.target, spec.display_name)}
    specs = []
    for target in targets:
        check_target_path(target)
        target = _configured_key(target, by_key)
        if target in by_key:
            specs.append(overrides.over(by_key[target]))
            continue
        if needs_geometry and not overrides.gives_geometry:
            raise UsageError(
                f"{target}: no input size given",
                hint="pass --input-size N (e.g. 224) or --input-shape 1,3,224,224, or list the model in [tool.rflint.models]",
            )
        specs.extend(overrides.new_spec(name, config.model_defaults) for name in expand_targets([target]))
    return specs


def _configured_key(target: str, by_key: Mapping[str, ModelSpec]) -> str:
    """A file target written relative to the working directory matches its configured entry
    (whose target is stored absolute)."""
    path, sep, attr = target.partition(":")
    absolute = str(Path(path).resolve()) + sep + attr
    return absolute if target not in by_key and absolute in by_key else target


# ---------------------------------------------------------------------------------------------
# a whole run: findings the user asked for


def resolve_findings(reports: Sequence[ModelReport], config: Config) -> list[Finding]:
    """The findings to report for a run, in report order: configuration (selection, severities,
    layer overrides), model-level locations, suppression comments, then RF100.

    Model-level findings (RF103) get the line of the model's factory (found when the model was
    built, and cached with the report, so that a hit says what the miss said), or else the line
    of the model's ``target = ...`` in the config file (GitHub code scanning rejects a SARIF
    file with any result that has no file location).
    """
    from rflint.project.config import apply_config
    from rflint.project.locations import config_entry_source
    from rflint.project.suppressions import apply_suppressions, unused_suppressions

    configured: list[Finding] = []
    extra: dict[str, list[Source]] = {}
    for report in reports:
        factory = report.source or config_entry_source(config.path, report.spec)
        if factory is not None:
            extra[report.spec.display_name] = [factory]
        for f in apply_config(report.findings, config, report.spec):
            configured.append(replace(f, source=factory) if not f.layer and f.source is None and factory else f)
    result = apply_suppressions(configured, reports)
    unused = unused_suppressions(reports, result.used, config.enabled, extra)
    specs = {r.spec.display_name: r.spec for r in reports}
    unused = [g for f in unused for g in apply_config([f], config, specs.get(f.model))]
    return result.kept + unused


def with_refinement_hints(
    findings: Sequence[Finding], reports: Sequence[ModelReport], hint_for: Callable[[Analysis], str | None]
) -> list[Finding]:
    """RF103 findings with ``hint_for``'s hint for their model: the caller passes the
    refinement advisor's best single edit (:func:`rflint.advise.advisor.hint_for_rf103`), which
    sits above the engine."""
    analyses = {r.spec.display_name: r.analysis for r in reports}
    out = []
    for f in findings:
        if f.code == "RF103" and f.model in analyses:
            hint = hint_for(analyses[f.model])
            f = replace(f, hint=hint) if hint else f
        out.append(f)
    return out


def apply_baseline(
    findings: Sequence[Finding],
    reports: Sequence[ModelReport],
    baseline: Path | None = None,
    write_baseline: Path | None = None,
    force: bool = False,
) -> tuple[list[Finding], BaselineOutcome | None]:
    """Hide the findings a baseline records (``--baseline``), or record them
    (``--write-baseline``: a rewrite only removes fixed entries unless ``force``)."""
    if baseline is None and write_baseline is None:
        return list(findings), None
    from rflint.project import baseline as bl  # jsonschema: only when a baseline is used

    checked = [r.spec.display_name for r in reports]
    if write_baseline is not None:
        replaced = bl.existing_baseline(write_baseline)  # refuses a file that is not a baseline
        old = bl.read_baseline(baseline) if baseline is not None else replaced
        written = bl.update_baseline(old, findings, force=force, checked_models=checked)
        bl.write_baseline(write_baseline, written)
        entries = sum(n for layers in written.values() for codes in layers.values() for n in codes.values())
        kept = bl.apply_baseline(findings, written, checked).new
        outcome = BaselineOutcome(hidden=len(findings) - len(kept), written_path=str(write_baseline), written_entries=entries)
        return list(kept), outcome
    if baseline is not None:
        result = bl.apply_baseline(findings, bl.read_baseline(baseline), checked)
        stale = tuple((e.model, e.layer, e.code, e.count) for e in result.stale)
        return list(result.new), BaselineOutcome(hidden=len(findings) - len(result.new), stale=stale)
    return list(findings), None


def check(
    specs: Sequence[ModelSpec],
    config: Config,
    *,
    baseline: Path | None = None,
    write_baseline: Path | None = None,
    force: bool = False,
    hints: Callable[[Analysis], str | None] | None = None,
    on_model: Callable[[ModelSpec], None] | None = None,
    on_failure: Callable[[ModelSpec, BaseException], None] | None = None,
    linter: Callable[[ModelSpec], ModelReport] = lint,
    jobs: int | None = 1,
    sandbox: Sandbox | None = None,
) -> CheckResult:
    """Check every model of ``specs`` and apply configuration, suppressions and the baseline.

    A model that cannot be checked is recorded as a :class:`~rflint.results.Failure` (and
    reported through ``on_failure``); the other models are still checked. ``on_model`` is called
    before each model (for a progress display); ``hints`` gives RF103 findings a hint (the
    refinement advisor's best edit: worth its second per model only for the format that shows it). ``linter`` checks one model (:class:`rflint.engine.cache.CachedLinter`
    answers from the result cache); with ``jobs > 1`` (None: as many as the CPUs, for enough
    models) models run in that many processes (:mod:`rflint.engine.workers`), with the same outcome in
    the same order as a serial run. With a ``sandbox`` (the command line's ``check``) every
    model whose check runs its code is checked in a child process, under the sandbox's time
    limit (:mod:`rflint.engine.sandbox`); ``linter`` must then pickle.
    """
    from rflint.engine.workers import lint_all

    reports: list[ModelReport] = []
    failures: list[Failure] = []
    for spec, outcome in lint_all(specs, linter, jobs, on_model, sandbox):
        if isinstance(outcome, ModelReport):
            reports.append(outcome)
            continue
        if on_failure is not None:
            on_failure(spec, outcome)
        message = str(outcome) if isinstance(outcome, RflintError) else f"unexpected {type(outcome).__name__}: {outcome}"
        failures.append(Failure(spec, message, getattr(outcome, "hint", "")))
    findings = resolve_findings(reports, config)
    findings, outcome = apply_baseline(findings, reports, baseline, write_baseline, force)
    if hints is not None:
        findings = with_refinement_hints(findings, reports, hints)
    return CheckResult(tuple(reports), tuple(findings), tuple(failures), outcome)


# ---------------------------------------------------------------------------------------------
# the effective receptive field


def erf(spec: ModelSpec, **options: Any) -> Any:
    """Measure the effective receptive field of ``spec``'s model (:func:`rflint.engine.erf.measure_erf`;
    ``options`` are its keyword arguments: layer, samples, batch_size, weights, images, device,
    seed). The model is run for real, so ONNX files are refused."""
    from rflint.engine.erf import measure_erf, resolve_device
    from rflint.sources.targets import is_onnx_target

    resolve_device(options.get("device", "cpu"))  # a missing GPU is reported before the model is built
    if is_onnx_target(spec.target):
        raise UsageError("erf runs the model with torch: ONNX files are not supported", hint="pass the Python model instead")
    from rflint.sources.guards import guarded

    with guarded(spec.display_name):
        module = load_module(spec)
        traced = trace_module(module, spec)
    return measure_erf(
        module,
        input_shape=traced.input_shape,
        leaf_modules=spec.leaf_modules,
        name=spec.display_name,
        analysis=analyse(traced.graph) if traced.graph.tracer == "fx" else None,  # erf runs the fx graph
        **options,
    )
