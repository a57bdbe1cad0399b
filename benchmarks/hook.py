"""Time what a developer waits for on every commit: `rflint check` in a small repository, with
the result cache cold, warm, after an unrelated edit and after an edit of an imported module.

Usage::

    python benchmarks/hook.py                  # 5 repetitions of each scenario
    python benchmarks/hook.py --repeat 9 --layers 40
    python benchmarks/hook.py --pre-commit     # also through `pre-commit run` (a local hook)

The repository is built in a temporary folder: ``model.py`` (a plain CNN of ``--layers``
3x3 convolutions, each with BatchNorm and ReLU, as ``nn.Sequential`` blocks from
``blocks.py``), an unrelated ``README.md`` and a ``pyproject.toml`` with the model in
``[[tool.rflint.models]]`` (so the command is a bare ``rflint check``, as in the pre-commit
hook). Every scenario runs the real command in a fresh interpreter (``python -m rflint``, this
checkout first on ``PYTHONPATH``) and is timed from outside, so interpreter start-up and every
import are counted. Each row gives the minimum and the median of ``--repeat`` runs; the
minimum is the better guide on a shared machine, and so is the CPU time (user + system, the
minimum over the runs), which other work on the machine disturbs less than the wall time.

Whether a run was a hit or a miss is read off the cache entry itself (its ``built`` time: a
miss analyses the model again and records a new one; a hit keeps it, also when an edit that
changed no code has the entry rewritten with the new file hashes), and a scenario whose runs
were not what it expects is flagged, so the table cannot silently time the wrong thing.

References timed in the same run: ``python -c pass`` (the interpreter alone, site hooks
included), ``python -c "import typer, rich.console"`` (the CLI stack's own start-up: the
targets are a hit at most 1.5x and ``--version`` at most 1.2x it) and ``python -c "import
torch"``. Byte-code caching is on (``PYTHONDONTWRITEBYTECODE``
is removed from the environment), as it is for an installed rflint.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BLOCKS = textwrap.dedent(
    """
    from torch import nn


    def block(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU())
    """
)
MODEL = textwrap.dedent(
    """
    from torch import nn

    from blocks import block


    class Net(nn.Module):
        def __init__(self, layers={layers}, width=32):
            super().__init__()
            self.blocks = nn.Sequential(block(3, width), *[block(width, width) for _ in range(layers - 1)])
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.head = nn.Linear(width, 10)

        def forward(self, x):
            return self.head(self.pool(self.blocks(x)).flatten(1))


    def build_model():
        return Net()
    """
)
CONFIG = '[tool.rflint]\n[[tool.rflint.models]]\ntarget = "model.py"\ninput-size = 32\n'
PRE_COMMIT = textwrap.dedent(
    """
    repos:
      - repo: local
        hooks:
          - id: rflint
            name: rflint
            entry: {python} -m rflint check --output-format concise
            language: system
            pass_filenames: false
            require_serial: true
    """
)


@dataclass
class Scenario:
    name: str
    expect: str  # "hit", "miss" or "" (a reference command)
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    observed: list[str] = field(default_factory=list)

    def row(self) -> str:
        best, median = min(self.seconds), statistics.median(self.seconds)
        seen = ",".join(sorted(set(self.observed)))
        flag = "" if not self.expect or seen == self.expect else f"  !! expected {self.expect}"
        return f"{self.name:48} {best:7.3f} {median:7.3f} {min(self.cpu):7.3f}  {seen:9}{flag}"


def make_repo(folder: Path, layers: int) -> None:
    (folder / "blocks.py").write_text(BLOCKS)
    (folder / "model.py").write_text(MODEL.format(layers=layers))
    (folder / "README.md").write_text("# a project\n")
    (folder / "pyproject.toml").write_text(CONFIG)


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("RFLINT_CACHE_DIR", None)
    env.pop("RFLINT_NO_CACHE", None)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds, and CPU seconds (user + system) of the command and its children: less
    disturbed by other work on a shared machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed with exit {proc.returncode}:\n{proc.stderr}")
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def entry_built(repo: Path) -> float | None:
    """When the one cache entry's analysis ran (None: no entry, or several)."""
    import json

    entries = sorted((repo / ".rflint_cache").glob("v*/*.json"))
    if len(entries) != 1:
        return None
    try:
        return json.loads(entries[0].read_text()).get("built")
    except (OSError, ValueError):
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="runs per scenario (default 5)")
    ap.add_argument("--layers", type=int, default=20, help="convolution layers of the model (default 20)")
    ap.add_argument("--pre-commit", action="store_true", help="also time the hit through `pre-commit run`")
    args = ap.parse_args(argv)

    env = environment()
    repo = Path(tempfile.mkdtemp(prefix="rflint-hook-"))
    make_repo(repo, args.layers)
    python = sys.executable
    check = [python, "-m", "rflint", "check", "--output-format", "concise"]
    clean = [python, "-m", "rflint", "clean"]
    subprocess.run(check, cwd=repo, env=env, capture_output=True)  # write the byte-code caches once

    def run(scenario: Scenario, before=None) -> None:
        for i in range(args.repeat):
            if before is not None:
                before(i)
            built = entry_built(repo)
            seconds, cpu = timed(scenario_cmd[scenario.name], repo, env)
            scenario.seconds.append(seconds)
            scenario.cpu.append(cpu)
            if scenario.expect:
                scenario.observed.append("hit" if built is not None and entry_built(repo) == built else "miss")

    def edit_import(i: int) -> None:  # a code change: a new statement
        with (repo / "blocks.py").open("a") as f:
            f.write(f"EDIT_{i} = {time.time()!r}\n")

    def comment_model(i: int) -> None:  # no code change: a comment line, shifting every line below
        model = repo / "model.py"
        model.write_text(f"# edited {time.time()}\n" + model.read_text())

    def touch_unrelated(i: int) -> None:
        (repo / "README.md").write_text(f"# a project, edited {time.time()}\n")

    def clear(i: int) -> None:
        subprocess.run(clean, cwd=repo, env=env, capture_output=True)

    scenarios = [
        (Scenario("python -c pass (interpreter alone)", ""), [python, "-c", "pass"], None),
        (Scenario("python -c 'import typer, rich.console'", ""), [python, "-c", "import typer, rich.console"], None),
        (Scenario("python -c 'import torch'", ""), [python, "-c", "import torch"], None),
        (Scenario("rflint check, cold (cache cleaned: miss)", "miss"), check, clear),
        (Scenario("rflint check, warm (hit)", "hit"), check, None),
        (Scenario("rflint check, unrelated file edited (hit)", "hit"), check, touch_unrelated),
        (Scenario("rflint check, comment added to the model (hit)", "hit"), check, comment_model),
        (Scenario("rflint check, imported module edited (miss)", "miss"), check, edit_import),
        (Scenario("rflint check --no-cache", ""), [*check, "--no-cache"], None),
        (Scenario("rflint --version", ""), [python, "-m", "rflint", "--version"], None),
    ]
    scenario_cmd = {s.name: cmd for s, cmd, _ in scenarios}
    for scenario, _, before in scenarios:
        if scenario.expect == "hit":
            subprocess.run(check, cwd=repo, env=env, capture_output=True)  # start from a valid entry
        run(scenario, before)

    rows = [s for s, _, _ in scenarios]
    if args.pre_commit and shutil.which("git"):
        subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
        (repo / ".pre-commit-config.yaml").write_text(PRE_COMMIT.format(python=python))
        subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
        hook = Scenario("pre-commit run rflint --all-files (hit)", "hit")
        scenario_cmd[hook.name] = [python, "-m", "pre_commit", "run", "rflint", "--all-files"]
        subprocess.run(scenario_cmd[hook.name], cwd=repo, env=env, capture_output=True)
        run(hook)
        rows.append(hook)

    by_name = {s.name: s for s in rows}
    stack_row = by_name["python -c 'import typer, rich.console'"]
    stack, stack_cpu = min(stack_row.seconds), min(stack_row.cpu)
    torch_s = min(by_name["python -c 'import torch'"].seconds)
    cold, hit = min(by_name["rflint check, cold (cache cleaned: miss)"].seconds), min(by_name["rflint check, warm (hit)"].seconds)
    comment = min(by_name["rflint check, comment added to the model (hit)"].seconds)
    version = min(by_name["rflint --version"].seconds)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{args.layers}-layer CNN at 32 px; {args.repeat} runs each; {os.cpu_count()} CPUs; load average {load:.2f}")
    print(f"{'scenario':48} {'min s':>7} {'median':>7} {'CPU s':>7}  observed")
    for scenario in rows:
        print(scenario.row())
    print()
    def cpu(name: str) -> float:
        return min(by_name[name].cpu) / stack_cpu

    print("against `import typer, rich.console` (wall, and CPU: less disturbed by other work on the machine):")
    print(f"  hit: {hit:.3f} s = {hit / stack:.2f}x, CPU {cpu('rflint check, warm (hit)'):.2f}x (target <= 1.5x)")
    print(f"  comment-only edit: {comment:.3f} s = {comment / stack:.2f}x, CPU {cpu('rflint check, comment added to the model (hit)'):.2f}x (a hit)")
    print(f"  --version: {version:.3f} s = {version / stack:.2f}x, CPU {cpu('rflint --version'):.2f}x (target <= 1.2x)")
    print(f"cold miss - import torch: {cold - torch_s:+.3f} s (target <= +1 s)")
    shutil.rmtree(repo, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
