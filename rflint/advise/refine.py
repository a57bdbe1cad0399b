"""Apply an advisor edit to a real ``nn.Module`` and verify it by re-tracing.

:mod:`rflint.advise.advisor` predicts each candidate's ``I_min`` on the IR. This module proves it: the
edit is turned into a small Python function (:func:`emit_python`, the same text that
``rflint suggest --emit-python`` prints), that function is run on a copy of the instantiated
model (meta device: no weights are allocated), the copy is traced again with
:func:`rflint.frontend.fx.trace_graph`, and the recomputed ``I_min`` must equal the prediction.
Verifying the emitted code itself means that what the user copies is what was checked.

Changing a kernel or the number of input channels needs a new module: the emitted code builds
one of the same class on the old module's device, with ``same`` padding ``(k - 1) // 2 * d``
so that feature-map sizes stay as they were; the new weights are freshly initialised, as the
refined model is trained from scratch anyway. A stride change only sets ``module.stride``.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from torch import nn

from rflint.advise.advisor import Advice, Candidate, count_unproductive, fmt_number, is_refined
from rflint.advise.edits import Change, Edit
from rflint.rf.sizes import graph_cost
from rflint.rf.algebra import analyse
from rflint.errors import RflintError, first_line

#: how many candidates past the requested number are tried when some fail verification
EXTRA_ATTEMPTS = 4


def _statement(change: Change) -> list[str]:
    """Python lines applying one change to ``model``."""
    q = change.qualname
    if change.remove:
        return [f'_replace(model, "{q}", nn.Identity())']
    if change.in_channels is not None:
        if "linear" in change.op.lower():
            return [
                f'old = model.get_submodule("{q}")',
                f'_replace(model, "{q}", nn.Linear({change.in_channels}, old.out_features, '
                "bias=old.bias is not None, device=old.weight.device, dtype=old.weight.dtype))",
            ]
        return [
            f'old = model.get_submodule("{q}")',
            f'_replace(model, "{q}", type(old)({change.in_channels}, old.out_channels, kernel_size=old.kernel_size, '
            "stride=old.stride, padding=old.padding, dilation=old.dilation, groups=old.groups, "
            "bias=old.bias is not None, padding_mode=old.padding_mode, device=old.weight.device, dtype=old.weight.dtype))",
        ]
    if change.kernel is not None:
        stride = f"{tuple(change.stride)}" if change.stride is not None else "old.stride"
        padding = f"{tuple(change.padding)}" if change.padding is not None else "old.padding"
        return [
            f'old = model.get_submodule("{q}")',
            f'_replace(model, "{q}", type(old)(old.in_channels, old.out_channels, kernel_size={tuple(change.kernel)}, '
            f"stride={stride}, padding={padding}, dilation=old.dilation, groups=old.groups, "
            "bias=old.bias is not None, padding_mode=old.padding_mode, device=old.weight.device, dtype=old.weight.dtype))",
        ]
    if change.stride is not None:
        return [f'model.get_submodule("{q}").stride = {tuple(change.stride)}']
    return []


def emit_python(edit: Edit, summary: str = "") -> str:
    """A self-contained Python module defining ``refine(model)``, which applies ``edit`` to a
    model after construction and returns it."""
    body = [line for change in edit.changes for line in _statement(change)]
    doc = summary or edit.text
    lines = [
        f'"""Refinement suggested by rflint: {doc}"""',
        "",
        "from torch import nn",
        "",
        "",
        "def _replace(model: nn.Module, name: str, new: nn.Module) -> None:",
        '    parent, _, child = name.rpartition(".")',
        "    setattr(model.get_submodule(parent) if parent else model, child, new)",
        "",
        "",
        "def refine(model: nn.Module) -> nn.Module:",
        f'    """{edit.text}"""',
        *(f"    {line}" for line in body),
        "    return model",
        "",
    ]
    return "\n".join(lines)


def apply_edit_to_module(model: nn.Module, edit: Edit) -> nn.Module:
    """Run :func:`emit_python`'s ``refine`` on ``model`` (in place) and return it."""
    namespace: dict[str, object] = {"__name__": "rflint_refine"}
    exec(compile(emit_python(edit), "<rflint refine>", "exec"), namespace)  # our own generated code
    return namespace["refine"](model)  # type: ignore[operator]


def verify_candidate(
    model: nn.Module,
    candidate: Candidate,
    input_size: Sequence[int],
    base_macs: int,
    *,
    name: str = "model",
    leaf_modules: Sequence[str] = (),
    input_shape: Sequence[int] | None = None,
) -> Candidate:
    """Apply the candidate's edit to a copy of ``model``, re-trace and compare ``I_min``.

    Returns the candidate with ``verified`` set (and a note on failure); the MACs ratio is
    replaced by the one measured on the re-traced graph."""
    from rflint.frontend.fx import trace_graph

    try:
        refined = apply_edit_to_module(copy.deepcopy(model), candidate.edit)
        graph = trace_graph(
            refined,
            input_size=tuple(input_size),
            input_shape=tuple(input_shape) if input_shape else None,
            name=name,
            leaf_modules=leaf_modules,
        )
    except (RflintError, RuntimeError, ValueError, TypeError, AttributeError) as exc:
        return replace(candidate, verified=False, note=f"{type(exc).__name__}: {first_line(exc, 200)}")
    traced = analyse(graph)
    if traced.i_min != candidate.i_min:
        return replace(
            candidate,
            verified=False,
            note=f"re-traced I_min {fmt_number(traced.i_min)} != predicted {fmt_number(candidate.i_min)}",
        )
    if count_unproductive(traced) != candidate.unproductive:
        return replace(
            candidate,
            verified=False,
            note=f"re-traced unproductive layers {count_unproductive(traced)} != predicted {candidate.unproductive}",
        )
    macs, params = graph_cost(graph)
    note = ""
    if candidate.macs and abs(macs - candidate.macs) > 0.01 * candidate.macs:
        note = f"predicted MACs x{candidate.macs_ratio:.2f}, traced x{macs / base_macs:.2f}"
    return replace(
        candidate,
        verified=True,
        macs=macs,
        macs_ratio=macs / base_macs if base_macs else 1.0,
        params_delta=params - (candidate.params - candidate.params_delta),
        params=params,
        analysis=traced,
        note=note,
    )


def verify_advice(
    advice: Advice,
    model: nn.Module,
    top: int,
    *,
    name: str = "model",
    leaf_modules: Sequence[str] = (),
    input_shape: Sequence[int] | None = None,
) -> Advice:
    """Verify the ranked candidates of both directions in order until ``top`` of each pass
    (at most ``top + EXTRA_ATTEMPTS`` tried per direction). Failures are dropped and counted.

    ``advice`` should hold more than ``top`` candidates per direction (``advise(top=None)``)."""
    t0 = time.perf_counter()
    size = advice.input_size
    dropped = 0
    failures: list[Candidate] = []

    def run(cands: Sequence[Candidate], keep: Callable[[Candidate], bool]) -> list[Candidate]:
        nonlocal dropped
        out: list[Candidate] = []
        for cand in list(cands)[: top + EXTRA_ATTEMPTS]:
            if len(out) >= top:
                break
            checked = verify_candidate(
                model, cand, size, advice.base_macs, name=name, leaf_modules=leaf_modules, input_shape=input_shape
            )
            if checked.verified and keep(checked):
                out.append(checked)
            else:
                dropped += 1
                failures.append(checked)
        return out

    perf = run(advice.performance, lambda c: is_refined(c.analysis, size))
    eff = run(advice.efficiency, lambda c: True)
    timings = dict(advice.timings, verify=time.perf_counter() - t0)
    return replace(
        advice, performance=tuple(perf), efficiency=tuple(eff), dropped=dropped, failures=tuple(failures), timings=timings
    )
