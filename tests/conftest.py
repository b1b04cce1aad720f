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
