"""The benchmark command runs end to end at tiny sizes, so it cannot rot (no timing asserted).

R is never run here (``--no-r``): with R and brms installed its rows alone took ~400 s.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def test_benchmark_quick_run_writes_a_results_table(tmp_path):
    out = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "run.py"),
            "--quick",
            "--no-r",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    text = out.read_text(encoding="utf-8")
    assert "| benchmark | median | spread | target | met | note |" in text
    for name in (
        "exact random effects, k = 10 ",
        "MCMC meta-regression",
        "bcg RE `metak fit` process, exact",
        "robustness checks, bcg k = 13",
        "1,000 arms rows validated and converted",
        "bundled `metak fit`, cold",
        "peak memory",
        "report for the bundled results",
        "`metak batch` process, 20 reviews (k 5–50), exact random effects, with the robustness",
        "`metak batch` process, 20 reviews (k 5–50), exact random effects, robustness checks off",
        "robust-model reviews by MCMC, 2 workers",
        "projection: 50,000-review MCMC re-analysis",
    ):
        assert name in text, name
    assert (
        "| R metafor / brms (same bcg models) | — | — | ratio | skipped | not run (--no-r) |"
        in text
    )
    assert "Rscript process" not in text
