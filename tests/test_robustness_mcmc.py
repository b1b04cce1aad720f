"""The draw-based route for an analysis without an exact marginal likelihood (robust model, MCMC).

What must hold: no Bayes factor is made up (a row says why), no PET/PEESE is fitted, leave-one-out
comes from PSIS with its Pareto k, the prior is power-scaled (with psense's diagnosis), and the
label says which checks could not run.
"""

from __future__ import annotations

import math

import pytest

import metak
from metak.derive import compute_effects
from metak.fitting.orchestrator import run_analyses
from metak.priors import parse_prior
from metak.spec import AnalysisSpec, RobustnessSpec, Settings
from tests.bcg_records import write_contrast_records
from tests.conftest import REFERENCE
from tests.robustness_helpers import write_change_records

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def robust_fit(tmp_path_factory):
    records = metak.load_studies(
        write_contrast_records(
            REFERENCE, "bcg_logRR", tmp_path_factory.mktemp("bcg"), "logRR", "logRR", "ablat"
        ),
        provenance="off",
    )
    spec = AnalysisSpec(
        name="rob",
        outcome="logRR",
        model="robust",
        priors={"mu": parse_prior("normal(0, 10)"), "tau": parse_prior("halfnormal(1.0)")},
    )
    settings = Settings(draws=1000, tune=1000, chains=2, seed=3, target_accept=0.95, jobs=1)
    return run_analyses(records, [spec], settings, effects=compute_effects(records))


def test_no_made_up_bayes_factor_and_no_bias_model(robust_fit):
    assert list(robust_fit.analyses) == ["rob"]  # no rob_pet / rob_peese
    bfs = robust_fit.robustness.bayes_factors
    assert len(bfs) == 1 and bfs["method"].iloc[0] == "unavailable"
    assert math.isnan(bfs["log_bf10"].iloc[0])
    assert "robust model: no exact marginal likelihood" in bfs["note"].iloc[0]
    assert robust_fit.robustness.model_averaging.empty


def test_psis_leave_one_out_power_scaling_and_label(robust_fit):
    tables = robust_fit.robustness
    loo = tables.leave_one_out
    assert len(loo) == 13 and set(loo["method"]) == {"psis"}
    assert loo["pareto_k"].notna().all()
    assert len(tables.loo) == 13
    sensitivity = tables.prior_sensitivity
    assert list(sensitivity["prior_set"]) == [
        "prior power-scaled alpha=0.5",
        "prior power-scaled alpha=2",
    ]
    assert set(sensitivity["method"]) == {"power-scaling"}
    assert list(tables.psense["parameter"]) == ["mu"]
    row = tables.robustness.iloc[0]
    assert row["method"] == "mcmc" and row["parameter"] == "mu"
    assert row["label"] in ("partly assessed", "not robust")
    assert "PET/PEESE need an exact marginal likelihood" in row["detail"]
    # BCG's benefit is large (P > 0.99) under any of these reweightings.
    assert row["verdict"] == "negative" and not loo["flips"].any()


def test_integrating_the_correlation_reproduces_the_mcmc_fit(tmp_path):
    # The analysis itself is sampled by PyMC with r_prepost as a parameter; the checks integrate
    # r by quadrature. Same model, two methods: the pooled effect must agree within Monte Carlo
    # error of the sample (4 MCSE, MCSE = sd / sqrt(bulk ESS)).
    records = metak.load_studies(write_change_records(tmp_path / "change", k=5), provenance="off")
    spec = AnalysisSpec(
        name="chg",
        outcome="score",
        method="mcmc",  # the default now integrates r exactly too; here PyMC samples it
        robustness=RobustnessSpec(averaging=False),
    )
    settings = Settings(draws=2000, tune=1000, chains=2, seed=4, target_accept=0.95, jobs=1)
    result = run_analyses(records, [spec], settings, effects=compute_effects(records))
    sampled = result.analyses["chg"].summary.set_index("parameter").loc["mu"]
    assert result.analyses["chg"].converged
    exact = result.robustness.robustness.set_index("analysis").loc["chg"]
    assert exact["method"] == "exact_r"
    mcse = sampled["sd"] / math.sqrt(sampled["ess_bulk"])
    assert abs(sampled["mean"] - exact["mean"]) < 4 * mcse


def test_the_selection_model_joins_the_bias_checks(tmp_path):
    # The real step-function selection model (metak.fitting.mcmc.selection), switched on.
    records = metak.load_studies(
        write_contrast_records(REFERENCE, "bcg_logRR", tmp_path / "bcg", "logRR", "logRR", "ablat"),
        provenance="off",
    )
    spec = AnalysisSpec(
        name="re",
        outcome="logRR",
        priors={"mu": parse_prior("normal(0, 10)"), "tau": parse_prior("halfnormal(1.0)")},
        robustness={"selection": True, "averaging": False},
    )
    settings = Settings(draws=1000, tune=1000, chains=2, seed=5, target_accept=0.95, jobs=1)
    result = run_analyses(records, [spec], settings, effects=compute_effects(records))
    assert list(result.analyses) == ["re", "re_pet", "re_peese", "re_selection"]
    selection = result.analyses["re_selection"]
    assert selection.method == "mcmc"
    assert any(p.startswith("omega[") for p in selection.summary["parameter"])
    row = result.robustness.robustness.iloc[0]
    mu = selection.summary.set_index("parameter").loc["mu"]
    assert row["selection_mean"] == pytest.approx(mu["mean"], rel=1e-9)
    if selection.converged:  # then it is one of the three bias checks
        assert row["label"] == "robust" and "3 bias-adjusted" in row["detail"]
    else:
        assert "selection model (failed the MCMC diagnostics gate)" in row["detail"]
