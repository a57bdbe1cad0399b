"""Shared pytest options and fixtures."""

from __future__ import annotations

import pytest


def pytest_addoption(parser):
    parser.addoption(
        "--update-snapshots",
        action="store_true",
        default=False,
        help="rewrite the expected output files of snapshot tests instead of comparing with them",
    )


@pytest.fixture(autouse=True)
def _private_result_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own result cache (``RFLINT_CACHE_DIR``, inherited by subprocesses):
    no test answers from another test's entries, and none writes ``.rflint_cache`` into the
    checkout. Tests of the cache's location unset it."""
    monkeypatch.setenv("RFLINT_CACHE_DIR", str(tmp_path_factory.mktemp("rflint-cache") / ".rflint_cache"))
    monkeypatch.delenv("RFLINT_NO_CACHE", raising=False)
