"""Fixtures of the engine's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from rflint.engine import sandbox


@pytest.fixture()
def lint_calls(monkeypatch):
    """How often a model was really built and analysed (not answered from the cache): the
    models `check` hands to a child process (:mod:`rflint.engine.sandbox`), which only misses
    reach."""
    calls: list[str] = []
    real = sandbox.run_isolated

    def counting(jobs, send, *args, **kwargs):
        calls.extend(Path(send(job)["target"]).name for job in jobs)  # configured targets are absolute
        return real(jobs, send, *args, **kwargs)

    monkeypatch.setattr(sandbox, "run_isolated", counting)
    return calls
