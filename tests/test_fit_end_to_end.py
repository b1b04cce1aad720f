"""`python -m metak fit` end to end in a subprocess, on the bundled evidence.

- Every documented file is written, with the documented columns, and the numbers in summary.csv
  are the numbers in the posterior files (their `summary` group, and the draws themselves).
- The same seed gives a byte-identical summary.csv (exact and MCMC analyses).
- Killing a run midway (SIGTERM or SIGKILL) leaves the previous results untouched.
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from tests.conftest import REPO, run_metak

pytestmark = pytest.mark.slow

SUMMARY_COLUMNS = [
    "analysis",
    "parameter",
    "mean",
    "sd",
    "q2.5",
    "q50",
    "q97.5",
    "r_hat",
    "ess_bulk",
    "ess_tail",
    "method",
    "converged",
]
# Small sampler settings: this checks the plumbing, not the bundled answers (those are in results/).
SMALL = ("--draws", "300", "--tune", "400", "--chains", "2")


@pytest.fixture(scope="module")
def bundled_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("e2e") / "results"
    done = run_metak("fit", "--out", out, "--seed", "11", *SMALL, timeout=1200)
    return out, done


def test_bundled_fit_writes_every_documented_file(bundled_run):
    out, done = bundled_run
    # 0 = all converged; 3 = some analysis failed the gate at these small settings (still written).
    assert done.returncode in (0, 3), done.stderr
    analyses = json.loads((out / "analyses.json").read_text())["analyses"]
    names = [entry["name"] for entry in analyses] if isinstance(analyses, list) else list(analyses)
    for name in (
        "summary.csv",
        "summary.md",
        "study_effects.csv",
        "effects.csv",
        "unusable.csv",
        "claims.csv",
        "analyses.json",
        "manifest.json",
        "report.html",
        "README.md",
    ):
        assert (out / name).is_file(), name
    for name in names:
        assert (out / "posterior" / f"{name}.nc").is_file(), name
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert set(summary["method"]) == {"exact", "mcmc"}
    assert set(summary["analysis"]) == set(names)
    effects = pd.read_csv(out / "study_effects.csv")
    for column in (
        "analysis",
        "study_id",
        "yi",
        "vi",
        "ci_low",
        "ci_high",
        "derivation",
        "theta_mean",
        "weight_pct",
    ):
        assert column in effects.columns
    claims = pd.read_csv(out / "claims.csv")
    assert {"claim_id", "verdict", "probability", "explanation"} <= set(claims.columns)
    assert set(claims["verdict"]) <= {"supported", "uncertain", "contradicted", "not assessable"}
    assert (claims["verdict"] != "not assessable").any()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"]["seed"] == 11 and manifest["settings"]["draws"] == 300
    studies = REPO / "studies"
    for name in ("studies.csv", "arms.csv", "contrasts.csv", "outcomes.csv", "claims.csv"):
        digest = hashlib.sha256((studies / name).read_bytes()).hexdigest()
        assert digest in json.dumps(manifest["inputs_sha256"]), name
    if done.returncode == 3:
        failed = set(summary.loc[~summary["converged"], "analysis"])
        assert failed and all(name in done.stderr for name in failed)


def test_summary_numbers_equal_the_posterior_files(bundled_run):
    out, _ = bundled_run
    summary = pd.read_csv(out / "summary.csv")
    for name, rows in summary.groupby("analysis"):
        path = out / "posterior" / f"{name}.nc"
        tree = xr.open_datatree(path, engine="h5netcdf").load()
        # Written by libnetcdf; any netCDF-4 reader must see the same tree.
        assert tree.identical(xr.open_datatree(path, engine="netcdf4").load()), name
        assert {"posterior", "prior", "log_likelihood", "observed_data"} <= set(tree.children), name
        stored = tree["summary"].to_dataset().to_dataframe().reset_index()
        stored = stored.set_index("parameter")
        for _, row in rows.iterrows():
            for column in ("mean", "sd", "q2.5", "q50", "q97.5"):
                expected = stored.loc[row["parameter"], column]
                if np.isnan(row[column]):
                    assert np.isnan(expected)
                else:
                    assert row[column] == pytest.approx(expected, rel=1e-12, abs=1e-12), (
                        name,
                        row["parameter"],
                        column,
                    )
        # And the stored draws give the summary: pooled effect (or intercept) and tau.
        posterior = tree["posterior"].to_dataset()
        table = rows.set_index("parameter")
        method = rows["method"].iloc[0]
        for parameter in ("mu", "tau"):
            if (
                parameter in posterior
                and posterior[parameter].ndim == 2
                and parameter in table.index
            ):
                draws = posterior[parameter].values.reshape(-1)
                if method == "mcmc":  # the summary is computed from these very draws
                    assert table.loc[parameter, "mean"] == pytest.approx(
                        draws.mean(), rel=1e-9, abs=1e-12
                    )
                    assert table.loc[parameter, "q50"] == pytest.approx(
                        np.quantile(draws, 0.5), rel=1e-9, abs=1e-12
                    )
                else:  # exact summaries; the file's draws are independent posterior samples
                    mcse = table.loc[parameter, "sd"] / np.sqrt(draws.size)
                    assert abs(table.loc[parameter, "mean"] - draws.mean()) < 5 * mcse
        tree.close()


def test_same_seed_gives_byte_identical_summary(tmp_path):
    # An exact analysis and an MCMC one (robust model), each twice with the same seed.
    args = ("fit", "--analysis", "dpucmgp", "cac_robust", "--seed", "5", *SMALL, "--quiet")
    first = run_metak(*args, "--out", tmp_path / "a", timeout=600)
    second = run_metak(*args, "--out", tmp_path / "b", timeout=600)
    assert first.returncode in (0, 3) and second.returncode == first.returncode, first.stderr
    a = (tmp_path / "a" / "summary.csv").read_bytes()
    assert a == (tmp_path / "b" / "summary.csv").read_bytes()
    assert b"mcmc" in a and b"exact" in a
    other = run_metak(
        "fit", "--analysis", "cac_robust", "--seed", "6", *SMALL, "--quiet", "--out", tmp_path / "c"
    )
    assert other.returncode in (0, 3)
    assert (tmp_path / "c" / "summary.csv").read_bytes() != a  # the seed is used


def _snapshot(directory: Path) -> dict:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killing_a_run_midway_keeps_previous_results(tmp_path, how):
    out = tmp_path / "results"
    good = run_metak("fit", "--analysis", "cac", "dpucmgp", "--out", out, "--quiet")
    assert good.returncode == 0, good.stderr
    before = _snapshot(out)
    # A second run that samples with MCMC; kill it once sampling has started.
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "metak",
            "fit",
            "--analysis",
            "cac_robust",
            "--out",
            str(out),
            "--draws",
            "20000",
            "--tune",
            "2000",
        ],
        cwd=REPO,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.monotonic() + 300
    for line in process.stderr:
        if "sampling" in line or time.monotonic() > deadline:
            break
    time.sleep(2.0)  # inside the sampler
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(how)
    process.wait(timeout=120)
    process.stderr.close()
    assert process.returncode != 0
    assert _snapshot(out) == before
    # SIGTERM cleans up its staging directory; after SIGKILL the next run removes the leftovers.
    again = run_metak("fit", "--analysis", "cac", "--out", out, "--quiet")
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]
