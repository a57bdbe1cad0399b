"""Time the torch.export fallback: a YOLOv5-like detector whose head torch.fx cannot trace
(``yolo_like.py:build_export_only``) against the same detector with its head made
fx-traceable (``yolo_like.py:build_fx_traceable``), in one run on one machine.

Usage::

    python benchmarks/fallback.py                 # 5 repetitions at 640 px
    python benchmarks/fallback.py --repeat 9 --size 320 --width 0.25

Three parts, each a table of the minimum and the median:

- **end to end**: ``python -m rflint check TARGET --no-cache`` in a fresh interpreter, as a
  user waits for it (imports and torch.export's first-use set-up included);
- **in one process, after a warm-up of both**: ``rflint.engine.pipeline.lint`` per model, split into
  the failed fx attempt, ``torch.export.export`` itself, and rflint's own lowering of the
  exported graph (the same steps for the fx model: trace, meta run, lower);
- **torch.export's first use** in a process: the first export-only lint minus a later one.

The reference row is the fx-traceable model; the ratio is export-only / fx.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
EXPORT_ONLY, FX = "build_export_only", "build_fx_traceable"


def row(name: str, values: list[float], ref: list[float] | None = None) -> str:
    ratio = f"{min(values) / min(ref):6.2f}x" if ref else ""
    return f"{name:46} {min(values):7.3f} {statistics.median(values):7.3f} {ratio}"


def end_to_end(size: int, kwargs: str, repeat: int) -> dict[str, list[float]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    out: dict[str, list[float]] = {FX: [], EXPORT_ONLY: []}
    for _ in range(repeat):
        for name in (FX, EXPORT_ONLY):
            cmd = [sys.executable, "-m", "rflint", "check", f"yolo_like.py:{name}", "-s", str(size), "--model-kwargs", kwargs, "--no-cache"]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, cwd=HERE, env=env, capture_output=True, text=True)
            out[name].append(time.perf_counter() - t0)
            if proc.returncode not in (0, 1):
                raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    return out


def split_lint(spec, fx_mod, export_mod, engine):
    """One ``engine.lint`` with its trace step split: the fx attempt (to its failure), export,
    rflint's lowering of the exported graph; for an fx model: trace, meta run, lower."""
    parts: dict[str, float] = {}
    real_trace, real_run, real_lower = fx_mod.trace, fx_mod.run, fx_mod.lower
    real_export, real_from_export = export_mod.export_program, export_mod.graph_from_export

    def timed(key, fn):
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                parts[key] = parts.get(key, 0.0) + time.perf_counter() - t0

        return wrapper

    fx_mod.trace, fx_mod.run, fx_mod.lower = timed("fx trace", real_trace), timed("fx meta run", real_run), timed("fx lower", real_lower)
    export_mod.export_program = timed("torch.export", real_export)
    export_mod.graph_from_export = timed("export total", real_from_export)
    try:
        t0 = time.perf_counter()
        engine.lint(spec)
        parts["total"] = time.perf_counter() - t0
    finally:
        fx_mod.trace, fx_mod.run, fx_mod.lower = real_trace, real_run, real_lower
        export_mod.export_program, export_mod.graph_from_export = real_export, real_from_export
    if "export total" in parts:
        parts["rflint lowering of the export"] = parts.pop("export total") - parts["torch.export"]
    return parts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--size", type=int, default=640)
    ap.add_argument("--width", type=float, default=0.5, help="YOLOv5 width multiple (s: 0.5)")
    ap.add_argument("--depth", type=float, default=0.33, help="YOLOv5 depth multiple (s: 0.33)")
    ap.add_argument("--no-end-to-end", action="store_true")
    args = ap.parse_args(argv)
    kwargs = f'{{"width": {args.width}, "depth": {args.depth}, "image": {args.size}}}'
    warnings.filterwarnings("ignore")
    print(f"YOLOv5-like detector (width {args.width}, depth {args.depth}) at {args.size} px; {args.repeat} runs; {os.cpu_count()} CPUs")
    print(f"{'':46} {'min s':>7} {'median':>7}  export-only / fx")

    if not args.no_end_to_end:
        e2e = end_to_end(args.size, kwargs, args.repeat)
        print(row("end to end, fx-traceable (reference)", e2e[FX]))
        print(row("end to end, export-only", e2e[EXPORT_ONLY], e2e[FX]))

    sys.path.insert(0, str(ROOT))
    os.chdir(HERE)
    import json

    import torch  # noqa: F401 - imported before any timing

    from rflint.engine import pipeline as engine
    from rflint.frontend import export as export_mod
    from rflint.frontend import fx as fx_mod
    from rflint.spec import ModelSpec

    def spec(name):
        return ModelSpec(target=f"yolo_like.py:{name}", input_size=(args.size,), kwargs=json.loads(kwargs))

    t0 = time.perf_counter()
    engine.lint(spec(EXPORT_ONLY))
    first = time.perf_counter() - t0
    engine.lint(spec(FX))
    runs: dict[str, list[dict[str, float]]] = {FX: [], EXPORT_ONLY: []}
    for _ in range(args.repeat):
        for name in (FX, EXPORT_ONLY):
            runs[name].append(split_lint(spec(name), fx_mod, export_mod, engine))
    later = min(r["total"] for r in runs[EXPORT_ONLY])
    print(row("in process, fx-traceable (reference)", [r["total"] for r in runs[FX]]))
    print(row("in process, export-only", [r["total"] for r in runs[EXPORT_ONLY]], [r["total"] for r in runs[FX]]))
    for name in (FX, EXPORT_ONLY):
        keys = sorted({k for r in runs[name] for k in r if k != "total"})
        for key in keys:
            print(row(f"  {'fx' if name == FX else 'export-only'}: {key}", [r.get(key, 0.0) for r in runs[name]]))
    print(row("torch.export's first use in a process (extra)", [first - later]))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average {load:.2f} at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
