"""Shared test helpers: paths to the independent reference values and the CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The independent reference values (R metafor, exact quadrature) are kept verbatim in
# tests/data/reference so that a clean clone tests against them anywhere; where the shared
# originals sit beside the repo, test_reference_copy checks the copy is still identical.
SHARED_REFERENCE = REPO.parent / "shared" / "reference"
REFERENCE = REPO / "tests" / "data" / "reference"


# The test files that take longest, longest first. Test files run on one worker process per core
# (pytest-xdist, --dist=loadfile) in the order they are collected: starting the long ones first
# keeps one worker from running a long file alone at the end (longest-processing-time first).
LONGEST_FILES = (
    "test_benchmarks_smoke.py",
    "test_fit_runs.py",
    "test_fit_end_to_end.py",
    "test_mcmc.py",
    "test_parallel.py",
    "test_batch_dask.py",
    "test_report.py",
    "test_batch_reference.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put the tests of the longest files first, each file's tests in their own order."""
    rank = {name: position for position, name in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not REFERENCE.is_dir():
        pytest.fail(f"reference values not found at {REFERENCE}")
    return REFERENCE


def run_metak(*args, cwd=None, timeout=600, env=None):
    """Run ``python -m metak ARGS`` through the real entry point; return the CompletedProcess."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "metak", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd or REPO,
        timeout=timeout,
        env=full_env,
    )
