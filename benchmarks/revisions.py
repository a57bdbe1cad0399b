"""Time ``rflint check`` at another git revision against this checkout, in the same run.

Usage::

    python benchmarks/revisions.py 76ce518                       # the torchvision zoo at 224
    python benchmarks/revisions.py v0.1.0 --models 'torchvision:resnet*' --size 32 --repeat 3

The other revision is checked out into a temporary git worktree and imported from there
(``PYTHONPATH``), so both run with the same Python, torch and models. Each repetition runs the
two revisions back to back, alternating which goes first, each in a fresh interpreter (imports
included): ``python -m rflint check MODELS -s SIZE --output-format json``, with ``--no-cache -j 1``
where the revision knows those options. It prints every wall time, the minimum per revision and
their ratio, and whether the two found the same findings (codes and layers per model), since a
speed-up that changes the answer is not one.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def expand(models: str) -> list[str]:
    sys.path.insert(0, str(ROOT))
    from rflint.sources.targets import expand_targets

    return expand_targets([m for m in models.split(",") if m])


def knows_cache_options(source: Path) -> bool:
    cli = source / "rflint" / "cli"
    text = "".join(p.read_text() for p in cli.glob("*.py")) if cli.is_dir() else (source / "rflint" / "cli.py").read_text()
    return "--no-cache" in text


def run(source: Path, models: list[str], size: int) -> tuple[float, dict[str, list[tuple[str, str]]]]:
    args = [sys.executable, "-m", "rflint", "check", *models, "-s", str(size), "--output-format", "json"]
    if knows_cache_options(source):
        args += ["--no-cache", "-j", "1"]
    env = {**os.environ, "PYTHONPATH": str(source)}
    started = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"{source}: exit {done.returncode}: {done.stderr.strip()[-500:]}")
    data = json.loads(done.stdout)
    findings = data["findings"] if isinstance(data, dict) else data
    found: dict[str, list[tuple[str, str]]] = {}
    for f in findings:
        found.setdefault(f.get("model", ""), []).append((f["code"], f.get("layer") or ""))
    return wall, {k: sorted(v) for k, v in found.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("revision", help="the git revision to compare with this checkout")
    ap.add_argument("--models", default="torchvision:*", help="comma-separated targets or globs (default: torchvision:*)")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--repeat", type=int, default=2)
    opts = ap.parse_args()
    models = expand(opts.models)
    with tempfile.TemporaryDirectory() as tmp:
        other = Path(tmp) / "other"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(other), opts.revision], cwd=ROOT, check=True)
        try:
            sides = {opts.revision: other, "this checkout": ROOT}
            times: dict[str, list[float]] = {name: [] for name in sides}
            answers: dict[str, dict] = {}
            print(f"{len(models)} models at {opts.size} px, {opts.repeat} repetitions, {os.cpu_count()} CPUs")
            for i in range(opts.repeat):
                order = list(sides) if i % 2 == 0 else list(reversed(sides))
                for name in order:
                    wall, answers[name] = run(sides[name], models, opts.size)
                    times[name].append(wall)
                    print(f"  {name}: {wall:.1f} s", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(other)], cwd=ROOT, check=False)
    base, now = (min(times[name]) for name in sides)
    print(f"minimum: {opts.revision} {base:.1f} s, this checkout {now:.1f} s, ratio {now / base:.2f}")
    a, b = answers.values()
    changed = sorted(m for m in set(a) | set(b) if a.get(m) != b.get(m))
    print(f"same findings on {len(models) - len(changed)} of {len(models)} models" + (f"; differ on: {', '.join(changed)}" if changed else ""))


if __name__ == "__main__":
    main()
