"""`python -m metak fit` end to end in a subprocess, on the bundled evidence.

- The bundled fit, as ./run.sh runs it, converges and writes every documented file with the
  documented columns; every number in summary.csv is recomputed from the draws in the posterior
  files by its documented definition (MCMC: to rounding; exact: within Monte Carlo error).

Determinism and killed runs are in test_fit_runs.py (a file of their own, so the two run on
different test workers).
"""

from __future__ import annotations

import hashlib
import json

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
QUANTILES = {"q2.5": 0.025, "q50": 0.5, "q97.5": 0.975}
# MCMC summaries are computed from the stored draws: recomputing them must agree to rounding.
RECOMPUTED_REL = 1e-9
# R-hat and ESS are rank-based: a derived parameter recomputed here (tau2, I2, effect levels)
# equals metak's to rounding, but draws that tie up to rounding (e.g. the folded |x - median| of
# two draws symmetric about the median) can swap ranks: measured differences up to 7e-6 in R-hat.
RANK_DIAGNOSTIC_ABS = 1e-4
RANK_DIAGNOSTIC_REL = 1e-3
# Exact summaries come from the quadrature, the stored draws are independent samples of the same
# posterior: means within 5 Monte Carlo SEs (sd / sqrt(n)), quantiles within 5 SEs of a quantile
# estimate (sqrt(p (1 - p) / n) / density, the density estimated from the draws).
EXACT_N_MCSE = 5.0


@pytest.fixture(scope="module")
def bundled_run(tmp_path_factory):
    """The bundled fit exactly as ./run.sh runs it: the analysis file's settings and seed."""
    out = tmp_path_factory.mktemp("e2e") / "results"
    done = run_metak("fit", "--out", out, "--quiet", timeout=1500)
    return out, done


def test_bundled_fit_writes_every_documented_file(bundled_run):
    out, done = bundled_run
    # The bundled sampler settings were chosen so that every analysis passes the gate.
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # --quiet: no progress, no warnings
    analyses = json.loads((out / "analyses.json").read_text())["analyses"]
    names = [entry["name"] for entry in analyses]
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
    assert summary["converged"].all()
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
    assert manifest["settings"]["seed"] == 20261122 and manifest["settings"]["draws"] == 2000
    studies = REPO / "studies"
    for name in ("studies.csv", "arms.csv", "contrasts.csv", "outcomes.csv", "claims.csv"):
        digest = hashlib.sha256((studies / name).read_bytes()).hexdigest()
        assert digest in json.dumps(manifest["inputs_sha256"]), name


def _typical_within_variance(v: np.ndarray, X: np.ndarray | None) -> float:
    """metafor's "typical" within-study variance for I2 (rma.uni): (k - p) / tr(P),
    P = W - W X (X'WX)^-1 X'W with W = diag(1/v); X = intercept only for random effects.
    README: with no residual degrees of freedom (k <= p), the harmonic mean of v."""
    X = np.ones((v.size, 1)) if X is None else np.column_stack([np.ones(v.size), X])
    if v.size <= X.shape[1]:
        return v.size / np.sum(1.0 / v)
    W = np.diag(1.0 / v)
    P = W - W @ X @ np.linalg.solve(X.T @ W @ X, X.T @ W)
    return (v.size - X.shape[1]) / np.trace(P)


def _named_draws(tree: xr.DataTree, table: pd.DataFrame, meta: dict) -> dict:
    """The summary parameters rebuilt from the file's draws by their documented definitions."""
    post = tree["posterior"].to_dataset()
    flat = {name: post[name].values for name in post.data_vars}
    out = {}
    if "outcome" in post["mu"].dims:  # joint
        outcomes = [str(o) for o in post["outcome"].values]
        for j, o in enumerate(outcomes):
            out[f"mu[{o}]"] = post["mu"].values[..., j]
            out[f"tau[{o}]"] = post["tau"].values[..., j]
        corr = post["corr"].values
        for i, a in enumerate(outcomes):
            for j in range(i + 1, len(outcomes)):
                out[f"corr[{a},{outcomes[j]}]"] = corr[..., i, j]
        if "gamma_link" in post:
            for j, o in enumerate(post["linked_outcome"].values):
                out[f"gamma_link[{o}]"] = post["gamma_link"].values[..., j]
        return out
    moderators = list(meta["spec"]["moderators"])
    out["intercept" if moderators else "mu"] = flat["mu"]
    for j, name in enumerate(moderators):
        out[name] = flat["beta"][..., j]
    out["tau"] = flat["tau"]
    out["tau2"] = flat["tau"] ** 2
    constant = tree["constant_data"].to_dataset()
    X = constant["X"].values if "X" in constant else None
    if X is not None and np.isnan(X).any():
        X = None  # imputed moderators: I2 uses the random-effects typical variance (README)
    s2 = _typical_within_variance(constant["v"].values, X)
    out["I2"] = 100 * flat["tau"] ** 2 / (flat["tau"] ** 2 + s2)
    for name in ("theta_new", "nu", "r_prepost"):
        if name in flat:
            out[name] = flat[name]
    deficiency = meta.get("deficiency")
    if deficiency:
        slope = out["log_baseline_dpucmgp"]
        for level in deficiency["levels_pmol_per_l"]:
            x = np.log(level / deficiency["reference_pmol_per_l"])
            out[f"effect_at_{level:g}"] = out["intercept"] + slope * x
        sign = -1 if meta["direction"] != "higher_is_better" else 1
        out["p_more_deficient_more_benefit"] = np.mean(sign * slope > 0)
    return out


def _density_at(draws: np.ndarray, x: float) -> float:
    """Kernel density of the draws at x (Silverman's bandwidth)."""
    h = 1.06 * draws.std() * draws.size ** (-0.2)
    return float(np.mean(np.exp(-0.5 * ((x - draws) / h) ** 2)) / (h * np.sqrt(2 * np.pi)))


def test_summary_numbers_are_the_numbers_of_the_posterior_files(bundled_run):
    """Every row of summary.csv recomputed from the draws in its posterior file, by the
    documented definitions (README, "summary.csv columns"), not read back from the file."""
    from arviz_stats import ess, rhat

    out, _ = bundled_run
    summary = pd.read_csv(out / "summary.csv")
    meta = {e["name"]: e for e in json.loads((out / "analyses.json").read_text())["analyses"]}
    checked = 0
    for name, rows in summary.groupby("analysis"):
        path = out / "posterior" / f"{name}.nc"
        tree = xr.open_datatree(path, engine="h5netcdf").load()
        # Written by libnetcdf; any netCDF-4 reader must see the same tree.
        assert tree.identical(xr.open_datatree(path, engine="netcdf4").load()), name
        assert tree.attrs["metak_analysis"] == name
        table = rows.set_index("parameter")
        named = _named_draws(tree, table, meta[name])
        expected = set(table.index)
        if meta[name]["method"] == "exact":
            # r is integrated out by quadrature, not drawn: its row is checked against a
            # brute-force integral in tests/test_mcmc.py.
            expected.discard("r_prepost")
        assert set(named) == expected, (name, set(named) ^ expected)
        for parameter, draws in named.items():
            row = table.loc[parameter]
            if parameter == "p_more_deficient_more_benefit":
                assert abs(row["mean"] - draws) <= (
                    RECOMPUTED_REL if row["method"] == "mcmc" else EXACT_N_MCSE * 0.5 / 4000**0.5
                ), (name, parameter)
                continue
            values = np.asarray(draws, dtype=float)
            flat = values.reshape(-1)
            if row["method"] == "mcmc":
                assert row["mean"] == pytest.approx(flat.mean(), rel=RECOMPUTED_REL, abs=1e-12)
                assert row["sd"] == pytest.approx(flat.std(ddof=1), rel=RECOMPUTED_REL, abs=1e-12)
                for column, q in QUANTILES.items():
                    expected = np.quantile(flat, q)
                    assert row[column] == pytest.approx(expected, rel=RECOMPUTED_REL, abs=1e-12)
                if np.ptp(flat) > 0:
                    array = xr.DataArray(values, dims=("chain", "draw"))
                    r_hat = float(rhat(array))
                    assert row["r_hat"] == pytest.approx(r_hat, abs=RANK_DIAGNOSTIC_ABS), (
                        name,
                        parameter,
                    )
                    bulk = float(ess(array, method="bulk"))
                    assert row["ess_bulk"] == pytest.approx(bulk, rel=RANK_DIAGNOSTIC_REL)
            else:
                n = flat.size
                assert abs(row["mean"] - flat.mean()) < EXACT_N_MCSE * row["sd"] / np.sqrt(n), (
                    name,
                    parameter,
                )
                for column, q in QUANTILES.items():
                    se = np.sqrt(q * (1 - q) / n) / _density_at(flat, row[column])
                    assert abs(row[column] - np.quantile(flat, q)) < EXACT_N_MCSE * se, (
                        name,
                        parameter,
                        column,
                    )
            checked += 1
    assert checked > 50
