"""Time ``rflint diff`` against ``rflint check`` of the same models, in one run on one machine.

A diff analyses every model twice (base and HEAD, each in its own process and checkout), so
its natural reference is one ``check`` of the same models: on a machine with two free cores the
two analyses overlap and a diff costs little more than a check; on one core about twice.

    python benchmarks/diff.py                                  # 3 torchvision models at 224 px
    python benchmarks/diff.py --models torchvision:resnet50,torchvision:vgg16 --repeat 5

The script builds a throwaway git repository whose ``[[tool.rflint.models]]`` list the models,
with two commits (the second changes one model's input size so that the diff has something to
report), and times, with the rflint on ``sys.path``: ``rflint check`` at HEAD, ``rflint diff
HEAD~1 HEAD`` (two temporary worktrees) and ``rflint diff HEAD`` (one worktree, the working tree
in place). Wall-clock seconds, the median of ``--repeat`` runs; peak RSS of the largest process.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def config(models: list[str], size: int, bump: bool) -> str:
    entries = []
    for i, target in enumerate(models):
        s = size * 2 if bump and i == 0 else size
        entries.append(f'[[tool.rflint.models]]\ntarget = "{target}"\ninput-size = {s}\n')
    return "[tool.rflint]\n\n" + "\n".join(entries)


def make_repo(folder: Path, models: list[str], size: int) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@b"}
    run = lambda *a: subprocess.run(["git", *a], cwd=folder, env=env, check=True, capture_output=True)
    run("init", "-q", "-b", "main")
    for bump in (False, True):
        (folder / "pyproject.toml").write_text(config(models, size, bump), encoding="utf-8")
        run("add", "-A")
        run("commit", "-q", "-m", f"bump={bump}")


def timed(args: list[str], cwd: Path) -> tuple[float, int]:
    """Seconds of one rflint run (exit codes 0 and 1 are fine), and the peak RSS so far (KiB)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "rflint", *args], check=False, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode not in (0, 1):
        raise SystemExit(f"rflint {' '.join(args)} failed:\n{done.stderr}")
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="torchvision:resnet18,torchvision:mobilenet_v3_large,torchvision:vgg11")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    with tempfile.TemporaryDirectory(prefix="rflint-bench-") as scratch:
        repo = Path(scratch)
        make_repo(repo, models, args.size)
        runs = {
            "check (reference)": ["check", "--output-format", "concise"],
            "diff HEAD~1 HEAD": ["diff", "HEAD~1", "HEAD"],
            "diff HEAD (working tree)": ["diff", "HEAD"],
        }
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeat):  # interleaved, so that a busy moment hits every row alike
            for name, cli in runs.items():
                times[name].append(timed(cli, repo)[0])
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    reference = statistics.median(times["check (reference)"])
    print(f"{len(models)} models at {args.size} px, {args.repeat} runs each, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print(f"{'command':<28}{'median s':>10}{'min s':>8}{'x check':>9}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<28}{median:>10.2f}{min(values):>8.2f}{median / reference:>9.2f}")
    print(f"peak RSS of one process: {peak / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
