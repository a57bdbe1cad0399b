"""Time what isolating the model's code costs a cache miss: one model checked in a child
process (:mod:`rflint.engine.sandbox`, what ``rflint check`` does) against the same check run in the
main process (``engine.check`` without a sandbox), in the same run, alternating.

Usage::

    python benchmarks/isolation.py                 # 5 runs of each, a 20-layer CNN
    python benchmarks/isolation.py --repeat 9 --layers 40 --target torchvision:resnet18

Every run is a fresh interpreter (this checkout first on ``PYTHONPATH``) timed from outside,
so interpreter start-up and every import are counted, with the result cache off (every run is
a miss). Both variants call :func:`rflint.engine.pipeline.check` on the same spec and print the number
of findings, which must agree. A child ends with ``os._exit`` (no interpreter teardown, which
with torch loaded takes a second or more), so a third variant, in process but ending the same
way, separates what the process boundary costs from what the skipped teardown saves.
References in the same run: ``python -c pass`` and
``python -c "import torch"``; ``rflint check`` is the command line end to end (isolated).
Rows give the minimum and the median wall time and the minimum CPU time (user + system of the
process and its children), which other work on a shared machine disturbs less.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MODEL = textwrap.dedent(
    """
    from torch import nn


    def build_model(layers={layers}):
        blocks = [nn.Sequential(nn.Conv2d(3 if i == 0 else 32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU()) for i in range(layers)]
        return nn.Sequential(*blocks)
    """
)

CHECK = textwrap.dedent(
    """
    import sys
    from rflint.engine import pipeline as engine
    from rflint.project.config import Config
    from rflint.engine.sandbox import Sandbox
    from rflint.spec import ModelSpec

    if __name__ == "__main__":  # a spawned child imports this script again
        spec = ModelSpec(sys.argv[1], input_size=(64,), pythonpath=(sys.argv[3],))
        sandbox = Sandbox() if sys.argv[2] == "isolated" else None
        result = engine.check([spec], Config(), sandbox=sandbox)
        assert not result.failures, result.failures
        print(len(result.findings))
        if sys.argv[2] == "inprocess-exit":  # as a child ends: no interpreter teardown
            import os

            sys.stdout.flush()
            os._exit(0)
    """
)


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (this child and its children) and stdout of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--layers", type=int, default=20)
    parser.add_argument("--target", default=None, help="a target instead of the generated CNN (e.g. torchvision:resnet18)")
    args = parser.parse_args()

    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    env["RFLINT_NO_CACHE"] = "1"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "model.py").write_text(MODEL.format(layers=args.layers))
        (folder / "check.py").write_text(CHECK)
        target = args.target or str(folder / "model.py")
        py = sys.executable
        rows = {
            "python -c pass": [py, "-c", "pass"],
            "python -c 'import torch'": [py, "-c", "import torch"],
            "engine.check, in process": [py, "check.py", target, "inprocess", tmp],
            "engine.check, in process, os._exit": [py, "check.py", target, "inprocess-exit", tmp],
            "engine.check, isolated": [py, "check.py", target, "isolated", tmp],
            "rflint check (isolated)": [py, "-m", "rflint", "check", target, "-s", "64", "--no-cache", "--output-format", "concise"],
        }
        for cmd in rows.values():  # warm the byte-code caches and the page cache
            timed(cmd, folder, env)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in rows}
        outputs: dict[str, set[str]] = {name: set() for name in rows}
        for _ in range(args.repeat):
            for name, cmd in rows.items():
                wall, cpu, out = timed(cmd, folder, env)
                times[name].append((wall, cpu))
                outputs[name].add(out)
    if not outputs["engine.check, in process"] == outputs["engine.check, in process, os._exit"] == outputs["engine.check, isolated"]:
        raise SystemExit(f"the two variants disagree: {outputs}")
    print(f"{args.repeat} runs each, {target if args.target else f'{args.layers}-layer CNN'} at 64 px, cache off (every run a miss)")
    print(f"{'':36} {'min':>7} {'median':>7} {'cpu min':>8}")
    for name, samples in times.items():
        walls = [w for w, _ in samples]
        print(f"{name:36} {min(walls):7.2f} {statistics.median(walls):7.2f} {min(c for _, c in samples):8.2f}")
    iso = min(w for w, _ in times["engine.check, isolated"])
    for ref in ("engine.check, in process", "engine.check, in process, os._exit"):
        base = min(w for w, _ in times[ref])
        print(f"isolated vs {ref}: {iso - base:+.2f} s ({iso / base:.2f}x), minimum against minimum")


if __name__ == "__main__":
    main()
