"""`rflint check -j N`: worker processes give the output of a serial run, in the same order,
failures included, and write the result cache from the workers."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rflint.engine import workers
from rflint.errors import TargetError
from rflint.spec import ModelSpec

MODEL = textwrap.dedent(
    """
    from torch import nn

    class Plain(nn.Module):
        def __init__(self, depth):
            super().__init__()
            self.convs = nn.ModuleList(nn.Conv2d(3, 3, 3, padding=1) for _ in range(depth))

        def forward(self, x):
            for conv in self.convs:
                x = conv(x)
            return x

    def build_model(depth={depth}):
        return Plain(depth)
    """
)


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # headless conv stacks keep their spatial axes: Richter's criterion gives them findings
    cmd = [sys.executable, "-m", "rflint", "check", "--task", "classification", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)


@pytest.fixture()
def models(tmp_path):
    (tmp_path / "a.py").write_text(MODEL.format(depth=12))
    (tmp_path / "broken.py").write_text("def build_model():\n    raise ValueError('no such width')\n")
    (tmp_path / "b.py").write_text(MODEL.format(depth=3))
    (tmp_path / "c.py").write_text(MODEL.format(depth=20))
    return tmp_path


def test_workers_give_the_serial_output_in_the_serial_order(models):
    targets = ["a.py", "broken.py", "b.py", "c.py"]
    serial = run(models, *targets, "-s", "16", "--output-format", "concise", "--no-cache", "-j", "1")
    parallel = run(models, *targets, "-s", "16", "--output-format", "concise", "--no-cache", "-j", "2")
    assert serial.returncode == parallel.returncode == 2  # one model could not be checked
    assert parallel.stdout == serial.stdout
    assert parallel.stderr == serial.stderr
    assert "building broken.py:build_model raised ValueError: no such width" in serial.stderr
    order = [line.split(":")[0] for line in serial.stdout.splitlines() if ".py:" in line]
    assert order == sorted(order, key=lambda f: ["a.py", "c.py"].index(f)) and set(order) == {"a.py", "c.py"}


SEQUENTIAL = "from torch import nn\n\ndef build_model():\n    return nn.Sequential(*[nn.Conv2d(3, 3, 3, padding=1) for _ in range(12)])\n"


def test_layers_called_by_sequential_never_point_at_the_caller_of_rflint(tmp_path):
    # nn.Sequential calls its layers from inside torch: no line of the user's forward issued
    # them, and neither the CLI's frame (typer) nor a worker's (concurrent.futures) may stand in
    (tmp_path / "seq.py").write_text(SEQUENTIAL)
    (tmp_path / "a.py").write_text(MODEL.format(depth=12))
    outputs = [run(tmp_path, "seq.py", "a.py", "-s", "16", "--output-format", "concise", "--no-cache", "-j", j) for j in ("1", "2")]
    assert outputs[0].stdout == outputs[1].stdout
    locations = {line.split(": ")[0] for line in outputs[0].stdout.splitlines() if " RF10" in line}
    assert locations and all(loc.startswith(("seq.py", "a.py")) for loc in locations), locations


def test_workers_write_the_cache_and_a_second_run_answers_from_it(models):
    targets = ["a.py", "b.py", "c.py"]
    first = run(models, *targets, "-s", "16", "--output-format", "json", "-j", "2")
    second = run(models, *targets, "-s", "16", "--output-format", "json", "-j", "2")
    assert first.returncode == second.returncode == 1, first.stderr
    assert second.stdout == first.stdout
    assert len(list(Path(os.environ["RFLINT_CACHE_DIR"]).glob("v*/*.json"))) == 3


class NeedsTwoArguments(Exception):
    def __init__(self, width, depth):
        super().__init__(f"width {width} does not fit depth {depth}")


def test_an_exception_that_does_not_pickle_comes_back_with_its_name_and_message():
    try:
        raise NeedsTwoArguments(3, 4)
    except NeedsTwoArguments as exc:
        sent = workers._portable(exc)
    back = pickle.loads(pickle.dumps(sent)).rebuild()
    assert type(back).__name__ == "NeedsTwoArguments"
    assert str(back) == "width 3 does not fit depth 4"
    assert "NeedsTwoArguments" in str(back.__cause__)  # the worker's traceback, for --verbose


def test_rflint_errors_come_back_as_themselves_with_their_hint():
    try:
        raise TargetError("no such file", hint="check the path")
    except TargetError as exc:
        back = pickle.loads(pickle.dumps(workers._portable(exc))).rebuild()
    assert isinstance(back, TargetError) and str(back) == "no such file" and back.hint == "check the path"


def test_jobs_must_be_positive(tmp_path):
    result = run(tmp_path, "torchvision:resnet18", "-s", "32", "-j", "0")
    assert result.returncode == 2
    assert result.stderr.startswith("rflint: error: --jobs must be at least 1")


def test_the_default_starts_a_process_only_for_enough_models(monkeypatch):
    started: list[int] = []

    def in_workers(specs, linter, workers, done, on_model):
        started.append(workers)
        yield from ()

    monkeypatch.setattr(workers, "_in_workers", in_workers)
    monkeypatch.setattr(workers, "default_jobs", lambda: 2)
    few = [ModelSpec(f"m{i}.py", input_size=(32,)) for i in range(workers.MODELS_PER_PROCESS * 2 - 1)]
    assert [s.target for s, _ in workers.lint_all(few, lambda spec: None, None)] == [s.target for s in few]
    assert started == []
    many = few + [ModelSpec("last.py", input_size=(32,))]
    list(workers.lint_all(many, lambda spec: None, None))
    list(workers.lint_all(few[:2], lambda spec: None, 2))  # an explicit -j 2 starts one for two models
    assert started == [2, 2]


def _torch_is_loaded_in_a_worker() -> bool:
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=workers.warm_context(), initializer=workers.warm_start) as pool:
        return pool.submit(eval, "all(m in __import__('sys').modules for m in ('torch', 'rflint.frontend.fx'))").result()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork and forkserver: POSIX start methods")
@pytest.mark.parametrize("method", ["", "fork", "forkserver"])
def test_workers_start_with_torch_and_the_frontends_imported(monkeypatch, method):
    monkeypatch.setenv("RFLINT_START_METHOD", method)
    assert _torch_is_loaded_in_a_worker()


def test_a_spawned_worker_starts_cold_so_the_warm_check_can_fail(monkeypatch):
    monkeypatch.setenv("RFLINT_START_METHOD", "spawn")
    assert not _torch_is_loaded_in_a_worker()


def test_the_workers_start_method_is_forked_only_where_that_is_safe(monkeypatch):
    monkeypatch.delenv("RFLINT_START_METHOD", raising=False)
    import threading

    stop = threading.Event()
    busy = threading.Thread(target=stop.wait)
    busy.start()
    try:  # another thread (the progress display) would be copied mid-flight: no fork
        assert not workers.fork_is_safe()
        assert workers.warm_context().get_start_method() != "fork"
    finally:
        stop.set()
        busy.join()


def test_an_unknown_start_method_is_a_one_line_usage_error(monkeypatch):
    from rflint.errors import UsageError

    monkeypatch.setenv("RFLINT_START_METHOD", "vfork")
    with pytest.raises(UsageError, match="RFLINT_START_METHOD='vfork' is not a start method"):
        workers.warm_context()
