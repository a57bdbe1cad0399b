"""The refinement advisor: which single architecture edit makes ``I_min < I_res``. Pure Python.

Richter & Pal (2022) improve CNNs by a minimal change to downsampling, stride or kernel size,
chosen so that the architecture's minimal resolution ``I_min`` falls below the training
resolution. This module finds such changes on the IR, without torch and without re-tracing:

1. :func:`rflint.advise.edits.enumerate_edits` lists candidate single edits of an :class:`~rflint.ir.Graph`:

   - ``stride``: a downsampling layer's stride 2 -> 1. Layers that downsample the same feature
     map in parallel (a ResNet block's conv and its projection shortcut) change together;
   - ``move``: the same, with the downsampling moved to a later spatial layer (stride 1 -> 2);
   - ``remove-pool``: a non-overlapping pooling layer (kernel = stride) replaced by identity;
   - ``patchify``: a patchify conv (kernel = stride, ConvNeXt's stem) 4x4/4 -> 2x2/2 (or 1x1/1);
   - ``kernel``: a conv's kernel made smaller (7 -> 5 -> 3), one layer or a whole stage (all convs
     of one kind with the same kernel whose outputs have the same jump, i.e. the same
     resolution), with ``same`` padding kept;
   - ``cut``: the efficiency direction: the trailing run of blocks that holds the unproductive
     layers is removed and the head reads the last productive block.

   Edits touch modules (``Layer.module_type`` set) only, so that each can be applied to the real
   ``nn.Module`` and verified by :mod:`rflint.advise.refine`. A module used at several places in the
   graph is edited everywhere it is used, as it would be in the model.

2. :func:`rflint.advise.edits.apply_edit` rewrites the graph (``dataclasses.replace`` on the frozen
   layers) and re-propagates the feature-map sizes (:func:`rflint.rf.sizes.propagate_sizes`); an edit after which the inputs
   of an ``add`` / ``cat`` no longer agree in size is dropped as invalid.

3. :func:`advise` analyses every valid candidate with :func:`rflint.rf.algebra.analyse`, estimates
   its compute (:func:`rflint.rf.sizes.graph_cost`) and ranks the two directions:

   - *performance*: candidates with ``I_min < I_res`` on every axis, least compute increase
     first (a saving counts as no increase; ties: fewer modules changed, then the larger
     ``I_min``, i.e. the smaller change of the receptive field);
   - *efficiency*: candidates that leave fewer unproductive layers and cost less compute,
     fewest unproductive layers left first, then fewest productive field-growing layers removed.

The cost model is :mod:`rflint.rf.sizes`'s (multiply-accumulates of convolutions and linear layers).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction

from rflint.rf.algebra import (
    AxisPaths,
    analyse,
    output_global_via,
    propagate_layer,
)
from rflint.rf.display import display
from rflint.rf.status import is_unproductive, resolution_bounds
from rflint.advise.edits import Edit, apply_edit, enumerate_edits
from rflint.ir import Analysis, Graph, Kind, Layer, LayerRF
from rflint.rf.sizes import graph_cost

#: How many candidates per direction :func:`advise` keeps.
DEFAULT_TOP = 5

# --------------------------------------------------------------------------------------------
# Evaluating and ranking


@dataclass(frozen=True)
class Candidate:
    """One evaluated edit."""

    edit: Edit
    analysis: Analysis
    macs: int
    params: int
    macs_ratio: float
    params_delta: int
    unproductive: int  # field-growing layers unproductive at I_res after the edit
    removed_productive: int = 0  # productive field-growing layers a cut removes
    verified: bool | None = None  # None: not verified; set by rflint.advise.refine
    note: str = ""

    @property
    def i_min(self) -> tuple:
        return self.analysis.i_min

    @property
    def i_max(self) -> tuple:
        return self.analysis.i_max

    def refined(self, size: tuple[int, ...]) -> bool:
        return is_refined(self.analysis, size)


@dataclass(frozen=True)
class Advice:
    """Everything :func:`advise` found for one model at one input size."""

    base: Analysis
    base_macs: int
    base_params: int
    base_unproductive: int
    performance: tuple[Candidate, ...]
    efficiency: tuple[Candidate, ...]
    evaluated: int  # candidates analysed
    invalid: int  # candidates dropped because merges no longer agree in size
    seconds: float  # time to enumerate, apply, analyse and rank
    dropped: int = 0  # candidates that failed verification (rflint.advise.refine)
    failures: tuple[Candidate, ...] = ()  # those candidates, with the reason in ``note``
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def input_size(self) -> tuple[int, ...]:
        return self.base.graph.input_size

    @property
    def already_refined(self) -> bool:
        return is_refined(self.base, self.input_size)

    @property
    def nothing_to_change(self) -> bool:
        return self.already_refined and self.base_unproductive == 0


def is_refined(analysis: Analysis, size: tuple[int, ...] | None = None) -> bool:
    """Richter & Pal's criterion: ``I_min < I_res`` on every axis."""
    size = size or analysis.graph.input_size
    return all(m < s for m, s in zip(analysis.i_min, size))


def count_unproductive(analysis: Analysis) -> int:
    size = analysis.graph.input_size
    return sum(1 for lrf in analysis.layers if is_unproductive(lrf, size))


class Reanalyser:
    """``analyse`` for many edited copies of one graph, reusing the unchanged prefix.

    An edit changes the receptive fields only from the first layer whose geometry it changes
    on, so the path sets of the layers before it are taken from the base graph. The loop is
    :func:`rflint.rf.algebra.propagate`'s, built from the same step (:func:`~rflint.rf.algebra.propagate_layer`); the tests check
    that it gives exactly ``analyse(graph)``.
    """

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.state: dict[str, tuple[AxisPaths, ...]] = {}
        self.uncertain: dict[str, bool] = {}
        #: per layer index: how many LayerRF results the layers before it produced
        self.before: list[int] = []
        self.results = self._run(graph, 0, {}, {}, [])

    def _run(
        self,
        graph: Graph,
        start: int,
        state: dict[str, tuple[AxisPaths, ...]],
        uncertain: dict[str, bool],
        results: list[LayerRF],
    ) -> list[LayerRF]:
        ndim = graph.ndim
        record = start == 0 and graph is self.graph
        for layer in graph.layers[start:]:
            if record:
                self.before.append(len(results))
            result = propagate_layer(layer, state, uncertain, ndim)
            if result is not None:
                results.append(result)
        if record:
            self.state, self.uncertain = state, uncertain
        return results

    def analyse(self, graph: Graph) -> Analysis:
        """The analysis of ``graph``, an edited copy of the base graph (same layer names)."""
        base = self.graph.layers
        start = next(
            (i for i, (a, b) in enumerate(zip(base, graph.layers)) if _rf_fields(a) != _rf_fields(b)),
            len(graph.layers),
        )
        if len(base) != len(graph.layers) or start == 0:
            return analyse(graph)
        names = [layer.name for layer in base[:start]]
        state = {n: self.state[n] for n in names if n in self.state}
        uncertain = {n: self.uncertain[n] for n in names if n in self.uncertain}
        prefix = list(self.results[: self.before[start]])
        layers = self._run(graph, start, state, uncertain, prefix)
        i_min_u, i_min, i_max = resolution_bounds(layers, graph.ndim)
        return Analysis(graph, tuple(layers), i_min_u, i_min, i_max, output_global_via(layers))


def _rf_fields(layer: Layer) -> tuple:
    return (
        layer.name,
        layer.kind,
        layer.kernel,
        layer.stride,
        layer.dilation,
        layer.padding,
        layer.taps,
        layer.global_axes,
        layer.side_global,
        layer.inputs,
    )


def evaluate(
    base: Analysis,
    edit: Edit,
    base_cost: tuple[int, int] | None = None,
    reanalyser: Reanalyser | None = None,
) -> Candidate | None:
    """Apply ``edit`` on the IR and analyse it; ``None`` if the edit breaks a merge."""
    sized = apply_edit(base.graph, edit, write_sizes=False, stop_at_conflict=True)
    if sized.conflicts:
        return None
    analysis = reanalyser.analyse(sized.graph) if reanalyser is not None else analyse(sized.graph)
    macs, params = graph_cost(sized.graph, sized.sizes)
    base_macs, base_params = base_cost or graph_cost(base.graph)
    removed_productive = 0
    if edit.kind == "cut":
        size = base.graph.input_size
        gone = {c.qualname for c in edit.changes if c.remove}
        removed_productive = sum(
            1
            for lrf in base.layers
            if lrf.layer.grows_field
            and not is_unproductive(lrf, size)
            and any(lrf.layer.qualname == p or lrf.layer.qualname.startswith(p + ".") for p in gone)
        )
    return Candidate(
        edit=edit,
        analysis=analysis,
        macs=macs,
        params=params,
        macs_ratio=macs / base_macs if base_macs else 1.0,
        params_delta=params - base_params,
        unproductive=count_unproductive(analysis),
        removed_productive=removed_productive,
    )


def performance_key(c: Candidate) -> tuple:
    """Least compute increase first; an edit that saves compute counts as no increase (in the
    performance direction saving compute is no goal, losing capacity is a risk), then the fewest
    modules changed, then the largest ``I_min`` (the smallest change of the receptive field)."""
    return (round(max(c.macs_ratio, 1.0), 6), len(c.edit.changes), tuple(-x for x in c.i_min), c.macs_ratio)


def efficiency_key(c: Candidate) -> tuple:
    return (c.unproductive, c.removed_productive, round(c.macs_ratio, 6), len(c.edit.changes))


def advise(analysis: Analysis, top: int | None = DEFAULT_TOP) -> Advice:
    """Enumerate, evaluate and rank single edits of ``analysis.graph`` (IR only, no torch).

    ``top=None`` keeps every qualifying candidate (ranked)."""
    t0 = time.perf_counter()
    size = analysis.graph.input_size
    base_cost = graph_cost(analysis.graph)
    base_bad = count_unproductive(analysis)
    # a refined model has no unproductive layer either (an unproductive layer's own r_min exceeds
    # the input size, so I_min would too): nothing to search for
    edits = [] if is_refined(analysis, size) else enumerate_edits(analysis)
    t1 = time.perf_counter()
    evaluated: list[Candidate] = []
    invalid = 0
    reanalyser = Reanalyser(analysis.graph)
    for edit in edits:
        cand = evaluate(analysis, edit, base_cost, reanalyser)
        if cand is None:
            invalid += 1
        else:
            evaluated.append(cand)
    t2 = time.perf_counter()
    refined_now = is_refined(analysis, size)
    perf = [] if refined_now else [c for c in evaluated if c.refined(size) and c.edit.kind != "cut"]
    perf.sort(key=performance_key)
    eff = [c for c in evaluated if c.unproductive < base_bad and c.macs_ratio < 1.0]
    eff.sort(key=efficiency_key)
    if top is not None:
        perf, eff = perf[:top], eff[:top]
    t3 = time.perf_counter()
    return Advice(
        base=analysis,
        base_macs=base_cost[0],
        base_params=base_cost[1],
        base_unproductive=base_bad,
        performance=tuple(perf),
        efficiency=tuple(eff),
        evaluated=len(evaluated),
        invalid=invalid,
        seconds=t3 - t0,
        timings={"enumerate": t1 - t0, "evaluate": t2 - t1, "rank": t3 - t2},
    )


def hint_for_rf103(analysis: Analysis) -> str | None:
    """One line for an RF103 finding: the best IR-level edit (not verified), or ``None``."""
    if is_refined(analysis):
        return None
    advice = advise(analysis, top=1)
    if not advice.performance:
        return None
    best = advice.performance[0]
    return (
        f"try {best.edit.text} (I_min {fmt_number(analysis.i_min)} -> {fmt_number(best.i_min)}, "
        f"MACs x{best.macs_ratio:.2f}; `rflint suggest` verifies it)"
    )


def fmt_number(values: Iterable) -> str:
    shown = ["inf" if v is None else str(v) for v in (display(x) for x in values)]
    return shown[0] if len(set(shown)) == 1 else "x".join(shown)


def feature_map_term(analysis: Analysis) -> tuple:
    """rfa-toolbox's extra I_min term, ``max k * J`` over finite-kernel layers (its own stride
    included), per axis. rflint's ``i_min`` leaves it out; it is reported for comparison with
    numbers computed by rfa-toolbox (the brief's section A.5)."""
    out = []
    for a in range(analysis.graph.ndim):
        vals = [
            Fraction(lrf.layer.kernel[a]) * lrf.axes[a].j_max
            for lrf in analysis.layers
            if lrf.layer.kind is Kind.WINDOW and lrf.layer.kernel and lrf.axes[a].j_max != math.inf
        ]
        out.append(max(vals, default=Fraction(1)))
    return tuple(out)
