"""Time rflint over a model zoo, step by step, against rfa-toolbox and against bare torch.fx.

Usage::

    python benchmarks/zoo.py                                  # all torchvision models at 224
    python benchmarks/zoo.py --models 'torchvision:resnet*' --size 32
    python benchmarks/zoo.py --limit 10 --rfa 5               # rfa-toolbox on the first 5 only
    python benchmarks/zoo.py --rfa 0                          # rflint only
    python benchmarks/zoo.py --rfa 0 -j 1,2                   # then `rflint check -j 1` vs `-j 2`
    python benchmarks/zoo.py --no-steps -j 1,2                # only that sweep

For every model, in one process on one machine:

- rflint, through :func:`rflint.engine.pipeline.lint` with a graph builder that splits the engine's
  ``trace`` step into its parts: ``build`` (construction on the meta device), ``fx trace``
  (symbolic tracing with rflint's tracer, stack traces on), ``meta run`` (shape propagation on
  meta tensors), ``lower`` (fx nodes -> IR layers), then the engine's own ``propagate``
  (receptive-field algebra) and ``rules``. A model fx cannot trace goes through the
  torch.export fallback, timed as ``export``.
- bare fx: ``torch.fx.symbolic_trace`` of the same meta-built module, nothing else.
- rfa-toolbox 1.7.0: ``create_graph_from_pytorch_model(model, input_res=(1, 3, S, S))`` +
  ``input_resolution_range(graph)``, on a model built on the CPU (it runs the model through
  ``torch.jit.trace``, so it needs real weights); its CPU construction is timed apart. It runs in
  a child process per model, with a timeout, so a model it cannot handle cannot stop the run.

With ``-j 1,2`` the same models then go through ``rflint check -j N --no-cache`` in a fresh
interpreter per N, timed from outside (imports and worker start-up included), and the outputs
are compared; the floor printed next to it is the meta-device build plus a bare
``torch.fx.symbolic_trace`` per model.

Peak memory is ``resource.getrusage(...).ru_maxrss``: for rflint the benchmark process itself
(torch and torchvision imports included), for rfa-toolbox the largest child process.

Install rfa-toolbox with ``pip install --ignore-requires-python --no-deps rfa-toolbox`` plus
``attrs graphviz tqdm numpy``; it needs ``collections.Sequence`` on Python >= 3.10, which the
child process patches in before importing it.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import re
import resource
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field

RFA_CHILD = r"""
import collections, collections.abc, json, resource, sys, time, warnings
collections.Sequence = collections.abc.Sequence
warnings.filterwarnings("ignore")
import torch, torchvision
from rfa_toolbox import create_graph_from_pytorch_model, input_resolution_range
name, size = sys.argv[1], int(sys.argv[2])
t0 = time.perf_counter()
model = torchvision.models.get_model(name, weights=None).eval()
t1 = time.perf_counter()
graph = create_graph_from_pytorch_model(model, input_res=(1, 3, size, size))
t2 = time.perf_counter()
lo, hi = input_resolution_range(graph)
t3 = time.perf_counter()
print(json.dumps({"build": t1 - t0, "graph": t2 - t1, "range": t3 - t2,
                  "i_min": [int(x) for x in lo], "i_max": [int(x) for x in hi],
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


@dataclass
class Row:
    target: str
    t: dict[str, float] = field(default_factory=dict)
    tracer: str = ""
    error: str = ""
    i_min: list | None = None
    rfa: dict | None = None
    rfa_error: str = ""

    @property
    def rflint_total(self) -> float:
        return sum(v for k, v in self.t.items() if k != "bare_fx")

    @property
    def rflint_no_build(self) -> float:
        return sum(v for k, v in self.t.items() if k not in ("bare_fx", "build"))


def timed_builder(spec, timings):
    """:func:`rflint.engine.pipeline.build_graph`, with its ``trace`` step split into parts."""
    from rflint.errors import TraceError
    from rflint.frontend import fx
    from rflint.frontend.export import graph_from_export
    from rflint.engine.pipeline import Traced
    from rflint.ir import Graph
    from rflint.sources.load import load_model

    t0 = time.perf_counter()
    loaded = load_model(spec.target, kwargs=dict(spec.kwargs))
    timings["build"] = time.perf_counter() - t0
    module = loaded.module.eval()
    shape = fx.infer_input_shape(module, spec.input_size)
    t0 = time.perf_counter()
    try:
        gm = fx.trace(module)
    except TraceError:
        timings["fx trace"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        graph = graph_from_export(module, input_size=spec.input_size, name=spec.display_name)
        timings["export"] = time.perf_counter() - t0
        return Traced(graph, tracer_reason="fx failed")
    timings["fx trace"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    records = fx.run(gm, shape)
    timings["meta run"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    layers = fx.lower(gm, records, shape, len(shape) - 2)
    timings["lower"] = time.perf_counter() - t0
    return Traced(Graph(tuple(layers), tuple(shape[2:]), name=spec.display_name, tracer="fx"))


def bare_fx_seconds(target: str) -> float | None:
    """``torch.fx.symbolic_trace`` alone on the meta-built module (None if it cannot trace)."""
    import torch

    from rflint.sources.load import load_model

    module = load_model(target).module.eval()
    t0 = time.perf_counter()
    try:
        torch.fx.symbolic_trace(module)
    except Exception:  # noqa: BLE001 - bare fx fails on some models; the table shows '-'
        return None
    return time.perf_counter() - t0


def run_rflint(target: str, size: int) -> Row:
    from rflint.rf.display import display
    from rflint.engine.pipeline import lint
    from rflint.spec import ModelSpec
    from rflint.errors import RflintError

    row = Row(target)
    try:
        report = lint(ModelSpec(target, input_size=(size,)), graph_builder=timed_builder)
    except RflintError as exc:
        row.error = f"{type(exc).__name__}: {str(exc)[:120]}"
        return row
    row.t.update(report.timings)
    row.tracer = report.analysis.graph.tracer
    row.i_min = [display(x) for x in report.analysis.i_min]
    return row


def run_rfa(name: str, size: int, timeout: float) -> tuple[dict | None, str]:
    try:
        proc = subprocess.run(
            [sys.executable, "-c", RFA_CHILD, name, str(size)],
            capture_output=True, text=True, timeout=timeout, check=False,
        )
    except subprocess.TimeoutExpired:
        return None, f"timeout > {timeout:.0f} s"
    if proc.returncode != 0:
        errors = [ln.strip() for ln in proc.stderr.splitlines() if re.match(r"^[\w.]+(Error|Exception)\b", ln.strip())]
        return None, (errors[-1][:100] if errors else f"exit {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), ""


def select(patterns: str, limit: int | None) -> list[str]:
    """Comma-separated targets or globs (``torchvision:resnet*,torchvision:vgg16``)."""
    from rflint.sources.load import expand_targets

    targets = expand_targets([p.strip() for p in patterns.split(",") if p.strip()])
    return targets[:limit] if limit else targets


STEPS = ("build", "fx trace", "meta run", "lower", "export", "propagate", "rules")


def fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:6.3f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="torchvision:*", help="comma-separated targets or globs (default: torchvision:*)")
    ap.add_argument("--size", type=int, default=224, help="input size (default 224)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N models")
    ap.add_argument("--rfa", type=int, default=None, help="run rfa-toolbox on the first N models (default: all; 0: none)")
    ap.add_argument("--rfa-timeout", type=float, default=300.0, help="seconds per rfa-toolbox model (default 300)")
    ap.add_argument("--json", default=None, help="also write the raw rows to this file")
    ap.add_argument(
        "-j", "--jobs", default=None,
        help="comma-separated worker counts, e.g. 1,2: time `rflint check -j N` end to end on the same models for each",
    )
    ap.add_argument("--cold", action="store_true", help="with --jobs: each N > 1 also with spawned workers (RFLINT_START_METHOD=spawn)")
    ap.add_argument("--no-steps", action="store_true", help="skip the per-step table (with --jobs: only the sweep)")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    if args.no_steps:
        if not args.jobs:
            ap.error("--no-steps needs --jobs")
        return jobs_sweep(select(args.models, args.limit), args.size, args.jobs, args.cold)

    t_import = time.perf_counter()
    import torch  # imports are timed apart, once
    import torchvision


    importlib.import_module("rflint.frontend.fx")

    t_import = time.perf_counter() - t_import
    targets = select(args.models, args.limit)
    # one warm-up trace so that the first model does not pay torch's lazy initialisation
    run_rflint("torchvision:resnet18", args.size)

    rows: list[Row] = []
    n_rfa = len(targets) if args.rfa is None else args.rfa
    header = f"{'model':28} " + " ".join(f"{s:>9}" for s in STEPS) + f" {'rflint':>8} {'bare fx':>8} {'rfa build':>9} {'rfa':>8}  note"
    print(header)
    print("-" * len(header))
    wall0 = time.perf_counter()
    for i, target in enumerate(targets):
        gc.collect()
        row = run_rflint(target, args.size)
        if not row.error:
            row.t["bare_fx"] = bare_fx_seconds(target) or float("nan")
        scheme, _, name = target.partition(":")
        if i < n_rfa and scheme == "torchvision":
            row.rfa, row.rfa_error = run_rfa(name, args.size, args.rfa_timeout)
        rows.append(row)
        rfa_t = row.rfa["graph"] + row.rfa["range"] if row.rfa else None
        note = row.error or (f"tracer={row.tracer}" if row.tracer != "fx" else "") or row.rfa_error
        cells = " ".join(f"{fmt(row.t.get(s)):>9}" for s in STEPS)
        print(
            f"{target.partition(':')[2][:28]:28} {cells} {fmt(row.rflint_total if not row.error else None):>8} "
            f"{fmt(row.t.get('bare_fx')):>8} {fmt(row.rfa['build'] if row.rfa else None):>9} {fmt(rfa_t):>8}  {note}",
            flush=True,
        )
    wall = time.perf_counter() - wall0

    ok = [r for r in rows if not r.error]
    total = sum(r.rflint_total for r in ok)
    sums = {s: sum(r.t.get(s, 0.0) for r in ok) for s in STEPS}
    bare = sum(r.t["bare_fx"] for r in ok if r.t.get("bare_fx") == r.t.get("bare_fx"))
    tracing = sums["fx trace"] + sums["meta run"] + sums["export"]
    print()
    print(f"machine: {os.cpu_count()} cores, torch {torch.__version__}, torchvision {torchvision.__version__}, input {args.size} px")
    print(f"imports (torch, torchvision, rflint; once): {t_import:.2f} s")
    print(f"models: {len(rows)}, checked: {len(ok)}, could not check: {len(rows) - len(ok)}; wall time {wall:.1f} s")
    print(f"rflint total over checked models: {total:.2f} s  (" + ", ".join(f"{s} {v:.2f}" for s, v in sums.items()) + ")")
    print(f"rflint total / bare torch.fx.symbolic_trace: {total:.2f} / {bare:.2f} s = {total / bare:.1f}x" if bare else "no bare fx time")
    print(f"RF propagation / tracing (fx trace + meta run + export): {sums['propagate']:.2f} / {tracing:.2f} s = {100 * sums['propagate'] / tracing:.1f} %" if tracing else "")
    both = [r for r in ok if r.rfa]
    if both:
        rfa_total = sum(r.rfa["graph"] + r.rfa["range"] for r in both)
        rfa_build = sum(r.rfa["build"] for r in both)
        ours = sum(r.rflint_total for r in both)
        ours_nb = sum(r.rflint_no_build for r in both)
        print(
            f"rfa-toolbox on the {len(both)} models both handle: graph+range {rfa_total:.2f} s vs rflint {ours:.2f} s "
            f"(construction included) = {rfa_total / ours:.1f}x; without construction on either side "
            f"{rfa_total:.2f} vs {ours_nb:.2f} s = {rfa_total / ours_nb:.1f}x; with rfa's CPU construction "
            f"({rfa_build:.2f} s) {(rfa_total + rfa_build) / ours:.1f}x"
        )
        rss_child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"peak RSS of an rfa-toolbox child process (ru_maxrss): {rss_child:.0f} MiB")
    failed_rfa = [r for r in rows if r.rfa_error]
    for r in failed_rfa:
        print(f"rfa-toolbox failed on {r.target}: {r.rfa_error}")
    for r in rows:
        if r.error:
            print(f"rflint could not check {r.target}: {r.error}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the rflint process (ru_maxrss, imports included): {rss:.0f} MiB")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump([r.__dict__ for r in rows], fh, indent=1, default=str)
    if args.jobs:
        floor = sum(r.t.get("build", 0.0) + r.t["bare_fx"] for r in ok if r.t.get("bare_fx") == r.t.get("bare_fx"))
        print(f"floor (meta-device build + bare torch.fx.symbolic_trace): {floor:.2f} s; rflint in-process: {total:.2f} s = {total / floor:.2f}x")
        jobs_sweep(targets, args.size, args.jobs, args.cold)
    return 0


def jobs_sweep(targets: list[str], size: int, jobs: str, cold: bool = False) -> int:
    """``rflint check TARGETS -s SIZE --no-cache -j N`` in a fresh interpreter for each N, timed
    from outside: imports, worker start-up and the report included, as a user waits for it.
    ``cold``: each N > 1 again with ``RFLINT_START_METHOD=spawn`` (workers that import torch
    themselves), the reference for the warm start."""
    counts = [int(n) for n in jobs.split(",") if n.strip()]
    runs: list[tuple[str, int, dict[str, str]]] = [(f"-j {n}", n, {}) for n in counts]
    if cold:
        runs += [(f"-j {n} spawn", n, {"RFLINT_START_METHOD": "spawn"}) for n in counts if n > 1]
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    walls: dict[str, float] = {}
    outputs: dict[str, str] = {}
    print(f"\n`rflint check` on {len(targets)} models at {size} px, end to end, --no-cache")
    for label, n, extra in runs:
        cmd = [sys.executable, "-m", "rflint", "check", *targets, "-s", str(size), "--no-cache", "-j", str(n), "--output-format", "json"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**env, **extra})
        walls[label] = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)  # workers included
        outputs[label] = proc.stdout
        rss = after.ru_maxrss / 1024
        print(f"  {label}: {walls[label]:6.1f} s wall, {cpu:6.1f} s CPU in all processes (exit {proc.returncode}; largest process so far {rss:.0f} MiB)", flush=True)
    base = runs[0][0]
    for label, _, _ in runs[1:]:
        same = "identical output" if outputs[label] == outputs[base] else "OUTPUT DIFFERS"
        print(f"  {label} vs {base}: {walls[base] / walls[label]:.2f}x faster, {same}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"  ({os.cpu_count()} CPUs, load average {load:.2f} at the end)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
