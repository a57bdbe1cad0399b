"""The refinement advisor: single edits that refine an architecture for its input size, ranked
on the IR (:mod:`.edits`, :mod:`.advisor`) and verified on the real module (:mod:`.refine`).
:func:`suggest` is ``rflint suggest``'s pipeline; it sits above the engine, which it uses to
load and trace the model.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from rflint.spec import ModelSpec


def suggest(spec: ModelSpec, top: int = 3, verify: bool = True) -> Any:
    """Load, trace and analyse ``spec``'s model, rank single edits on the IR
    (:mod:`rflint.advise.advisor`) and, unless ``verify`` is False, verify the best ``top`` of each
    direction on the real module (:mod:`rflint.advise.refine`). An ONNX file has no module to edit:
    its candidates are ranked but not verified."""
    from rflint.advise.advisor import advise
    from rflint.engine.pipeline import build_graph, load_module, trace_module
    from rflint.rf.algebra import analyse
    from rflint.sources.targets import is_onnx_target

    timings: dict[str, float] = {}
    if is_onnx_target(spec.target):
        traced, module = build_graph(spec, timings), None
    else:
        from rflint.sources.guards import guarded

        with guarded(spec.display_name):
            t0 = time.perf_counter()
            module = load_module(spec)
            t1 = time.perf_counter()
            traced = trace_module(module, spec)
            timings.update(load=t1 - t0, trace=time.perf_counter() - t1)
    advice = advise(analyse(traced.graph), top=None)
    timings["advise"] = advice.seconds
    if verify and module is not None:
        from rflint.advise.refine import verify_advice

        advice = verify_advice(
            advice, module, top, name=spec.display_name, leaf_modules=spec.leaf_modules, input_shape=spec.input_shape
        )
    else:
        advice = replace(advice, performance=advice.performance[:top], efficiency=advice.efficiency[:top])
    return replace(advice, timings={**advice.timings, **timings})
