"""Prior sensitivity: the alternative priors are what the README says, the exact refits equal
direct fits, and power-scaling (the MCMC route) recovers the exact posterior under the prior
raised to alpha — which for normal and half-normal priors is again a normal / half-normal prior,
so an exact refit is the independent truth.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import metak
from metak.derive import compute_effects
from metak.exact import fit_exact
from metak.fitting.orchestrator import run_analyses
from metak.priors import Prior, parse_prior
from metak.robustness.problem import BASE, Variant, fit_variant
from metak.robustness.sensitivity import (
    POWER_ALPHAS,
    PRIOR_SET,
    alternatives,
    exact_rows,
    power_scaling_rows,
    psense_rows,
    scaled,
    swapped_tau,
)
from metak.spec import AnalysisSpec, RobustnessSpec, Settings
from tests.bcg_records import write_contrast_records
from tests.conftest import REFERENCE
from tests.robustness_helpers import reference_problem


@pytest.mark.parametrize(
    "text",
    [
        "halfnormal(0.7)",
        "halfcauchy(0.3)",
        "exponential(2)",
        "uniform(0, 3)",
        "halfstudent_t(3, 0.5)",
        "lognormal(-1, 0.5)",
        "gamma(2, 4)",
    ],
)
@pytest.mark.parametrize("factor", [0.5, 2.0])
def test_scaled_prior_is_the_distribution_of_c_times_tau(text, factor):
    prior = parse_prior(text)
    q = np.array([0.1, 0.5, 0.9])
    assert scaled(prior, factor).ppf(q) == pytest.approx(factor * prior.ppf(q), rel=1e-9)


def test_swapped_tau_prior():
    assert swapped_tau(parse_prior("halfnormal(0.5)")) == Prior("halfcauchy", (0.5,))
    assert swapped_tau(parse_prior("halfcauchy(0.5)")) == Prior("halfnormal", (0.5,))
    other = swapped_tau(parse_prior("exponential(2)"))
    assert other.family == "halfcauchy"
    assert float(other.ppf(0.5)) == pytest.approx(math.log(2) / 2, rel=1e-12)  # equal medians


def test_prior_set_refits_equal_direct_fits():
    problem = reference_problem("bcg_logRR")
    base, null = fit_variant(problem, BASE), fit_variant(problem, Variant(effect=False))
    rows, _ = exact_rows(problem, base, null)
    assert [row["prior_set"] for row in rows] == ["analysis priors", *PRIOR_SET]
    for row, (_, alternative) in zip(rows[1:], alternatives(problem), strict=True):
        direct = fit_exact(
            problem.y,
            problem.v,
            coef_priors=alternative.coef_priors[0],
            tau_prior=alternative.tau_prior,
        )
        mixture = direct.coef_mixture("mu")
        assert row["tau_prior"] == str(alternative.tau_prior)
        assert row["mu_mean"] == pytest.approx(mixture.mean, rel=1e-7)
        assert row["p_benefit"] == pytest.approx(mixture.cdf(0.0), abs=1e-8)
        null_direct = fit_exact(
            problem.y,
            problem.v,
            np.zeros((problem.k, 0)),
            coef_names=(),
            coef_priors=[],
            tau_prior=alternative.tau_prior,
        )
        expected_bf = direct.log_marginal_likelihood - null_direct.log_marginal_likelihood
        assert row["log_bf10_effect"] == pytest.approx(expected_bf, abs=1e-8)
    tau0 = problem.tau_prior.params[0]
    assert [r["tau_prior"] for r in rows[1:4]] == [
        f"halfnormal({tau0 / 2:g})",
        f"halfnormal({tau0 * 2:g})",
        f"halfcauchy({tau0:g})",
    ]
    assert rows[4]["effect_prior"] == "normal(0, 5)" and rows[5]["effect_prior"] == "normal(0, 20)"


@pytest.fixture(scope="module")
def bcg_exact(tmp_path_factory):
    directory = tmp_path_factory.mktemp("bcg")
    records = metak.load_studies(
        write_contrast_records(REFERENCE, "bcg_logRR", directory, "logRR", "logRR", "ablat"),
        provenance="off",
    )
    spec = AnalysisSpec(
        name="re",
        outcome="logRR",
        priors={"mu": parse_prior("normal(0, 10)"), "tau": parse_prior("halfnormal(1.0)")},
        robustness=RobustnessSpec.off(),
    )
    return run_analyses(records, [spec], Settings(), effects=compute_effects(records)).analyses[
        "re"
    ]


def test_power_scaling_recovers_the_exact_posterior_under_the_powered_prior(bcg_exact):
    # prior^alpha of normal(0, 10) x halfnormal(1) is normal(0, 10/sqrt(alpha)) x
    # halfnormal(1/sqrt(alpha)): refit exactly and compare with the reweighted draws.
    rows, _ = power_scaling_rows(bcg_exact, "mu", "lower_is_better", "benefit")
    problem = reference_problem("bcg_logRR")
    for row, alpha in zip(rows, POWER_ALPHAS, strict=True):
        powered = problem.with_priors(
            effect=Prior("normal", (0.0, 10.0 / math.sqrt(alpha))),
            tau=Prior("halfnormal", (1.0 / math.sqrt(alpha),)),
        )
        exact = fit_variant(powered).coef("mu")
        assert row["pareto_k"] < 0.7
        # 16,000 independent draws, importance weights of effective size in the thousands:
        # the weighted mean is within 5 Monte Carlo SEs (sd / sqrt(1000)) of the exact one.
        assert abs(row["mu_mean"] - exact.mean) < 5 * exact.sd / math.sqrt(1000)
        assert row["mu_sd"] == pytest.approx(exact.sd, rel=0.05)
        assert row["verdict"] == "benefit" and row["flips"] is False


def test_psense_reports_the_effect_on_an_exact_tree(bcg_exact):
    rows = psense_rows(bcg_exact, "mu")
    assert [row["parameter"] for row in rows] == ["mu"]
    assert rows[0]["prior"] >= 0 and rows[0]["likelihood"] >= 0
    # normal(0, 10) is flat where 13 trials put mu: a weak prior, a strong likelihood.
    assert rows[0]["diagnosis"] == "ok"
