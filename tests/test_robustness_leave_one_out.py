"""Leave-one-out rows against separate fits of the data with that study removed.

The exact leave-one-out (:mod:`metak.robustness.leave_one_out`) downdates the full fit on its own
tau grid; each row must equal an independent exact fit of the remaining studies — its posterior
of the pooled effect and its marginal likelihood (hence the exact leave-one-out predictive
density). A planted outlier forces the refit route, which must agree too; and PSIS-LOO from the
stored draws must agree with the exact predictive densities within Monte Carlo error.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import metak
from metak.derive import compute_effects
from metak.fitting.orchestrator import run_analyses
from metak.priors import parse_prior
from metak.robustness.leave_one_out import leave_one_out
from metak.robustness.problem import BASE, fit_variant
from metak.robustness.psis import EXACT_PSIS_DRAWS, exact_psis, psis, psis_left_out
from metak.spec import AnalysisSpec, RobustnessSpec, Settings
from tests.bcg_records import write_contrast_records
from tests.conftest import REFERENCE
from tests.robustness_helpers import reference_problem
from tests.test_robustness_bayes_factors import _correlation_problem

# The downdate uses every 10th node of the full-data grid (Simpson's rule, ~1e-8 accurate); a
# separate fit has its own grid. Both are exact up to quadrature error, so 1e-6 (relative, or
# absolute in units of the posterior SD) is a wide margin that still catches any wrong formula.
LOO_TOLERANCE = 1e-6


def _compare(problem, names=None):
    full = fit_variant(problem, BASE)
    names = names or (problem.effect_name,)
    rows = leave_one_out(problem, full, names)
    assert len(rows) == problem.k
    for i, row in enumerate(rows):
        separate = fit_variant(problem.without(i), BASE)
        assert row.label == problem.labels[i]
        assert row.log_marginal_likelihood == pytest.approx(
            separate.log_marginal_likelihood, abs=LOO_TOLERANCE
        )
        assert row.elpd == pytest.approx(
            full.log_marginal_likelihood - separate.log_marginal_likelihood, abs=LOO_TOLERANCE
        )
        for name in names:
            ours, theirs = row.coefs[name], separate.coef(name)
            scale = theirs.sd
            assert abs(ours.mean - theirs.mean) < LOO_TOLERANCE * scale
            assert ours.sd == pytest.approx(theirs.sd, rel=LOO_TOLERANCE)
            for q in (0.025, 0.975):
                assert abs(ours.quantile(q) - theirs.quantile(q)) < LOO_TOLERANCE * scale
        p_sep = separate.coef(problem.effect_name).prob("<", 0.0)
        assert row.answer.p_benefit == pytest.approx(p_sep, abs=LOO_TOLERANCE)
    return rows


@pytest.mark.parametrize(
    ("moderator", "tau"),
    [(None, "halfnormal(1.0)"), (None, "halfcauchy(0.5)"), ("ablat", "halfnormal(1.0)")],
)
def test_downdate_equals_separate_fits_on_bcg(moderator, tau):
    problem = reference_problem("bcg_logRR", moderator=moderator, tau=tau)
    names = problem.coef_names
    rows = _compare(problem, names)
    # The downdate route is what is tested (a study whose removal moves tau's posterior near an
    # edge of the full-data grid, e.g. the very precise Hart & Sutherland trial, is refitted).
    assert sum(not row.refitted for row in rows) >= 10


def test_an_influential_outlier_is_refitted_and_still_equals_a_separate_fit():
    # Seven homogeneous studies and one far away: with the outlier, tau is large; without it,
    # tau's posterior piles up near 0, below the full-data grid, so that study is refitted.
    rng = np.random.default_rng(3)
    k = 8
    y = rng.normal(0.2, 0.05, k)
    y[0] = 3.0
    problem = replace(
        reference_problem(),
        y=y,
        v=np.full(k, 0.05**2),
        r_slope=np.zeros(k),
        r0=np.zeros(k),
        X=np.ones((k, 1)),
        labels=tuple(f"s{i}" for i in range(k)),
    )
    rows = _compare(problem)
    assert rows[0].refitted and not any(row.refitted for row in rows[1:])


def test_leave_one_out_with_the_correlation_integrated_out():
    rows = _compare(_correlation_problem())
    assert len(rows) == 3


def test_one_study_has_nothing_to_leave_out():
    problem = reference_problem()
    single = problem.without(0)
    for _ in range(11):
        single = single.without(0)
    assert single.k == 1
    assert leave_one_out(single, fit_variant(single)) == []


# PSIS-LOO from 16,000 independent draws: Monte Carlo error of each elpd_i is well below 0.05
# where Pareto k is good (< 0.7); the exact value has no such error.
PSIS_TOLERANCE = 0.05


def test_psis_loo_from_the_stored_draws_agrees_with_the_exact_predictive_densities(tmp_path):
    records = metak.load_studies(
        write_contrast_records(REFERENCE, "bcg_logRR", tmp_path / "bcg", "logRR", "logRR", "ablat"),
        provenance="off",
    )
    spec = AnalysisSpec(
        name="re",
        outcome="logRR",
        priors={"mu": parse_prior("normal(0, 10)"), "tau": parse_prior("halfnormal(1.0)")},
        robustness=RobustnessSpec.off(),
    )
    result = run_analyses(records, [spec], Settings(), effects=compute_effects(records))
    fitted = result.analyses["re"]
    problem = reference_problem("bcg_logRR")
    exact = leave_one_out(problem, fit_variant(problem))
    approx = psis(fitted.datatree)
    # The records name the studies by their row number in bcg_logRR.csv.
    exact_elpd = np.array([exact[int(study) - 1].elpd for study in approx.studies])
    good = approx.pareto_k < approx.good_k
    assert good.sum() >= 10  # most studies are well within PSIS's range
    assert np.all(np.abs(approx.elpd_i[good] - exact_elpd[good]) < PSIS_TOLERANCE)


def test_psis_left_out_posteriors_agree_with_the_exact_ones(tmp_path):
    # The MCMC route's leave-one-out (importance-weighted draws) against the exact route, on an
    # exact fit whose stored draws are what an MCMC fit would store.
    records = metak.load_studies(
        write_contrast_records(REFERENCE, "bcg_logRR", tmp_path / "bcg", "logRR", "logRR", "ablat"),
        provenance="off",
    )
    spec = AnalysisSpec(
        name="re",
        outcome="logRR",
        priors={"mu": parse_prior("normal(0, 10)"), "tau": parse_prior("halfnormal(1.0)")},
        robustness=RobustnessSpec.off(),
    )
    fitted = run_analyses(records, [spec], Settings(), effects=compute_effects(records)).analyses[
        "re"
    ]
    problem = reference_problem("bcg_logRR")
    exact = leave_one_out(problem, fit_variant(problem))
    approx = psis(fitted.datatree, all_draws=True)
    rows = psis_left_out(approx, fitted.draws("mu"), "lower_is_better")
    checked = 0
    for study, answer, k in rows:
        if k >= approx.good_k:
            continue
        truth = exact[int(study) - 1].answer
        # Importance-weighted means of 16,000 draws: within 0.1 posterior SD of the exact
        # leave-one-out mean (effective sample sizes are in the thousands where k < 0.7).
        assert abs(answer.mean - truth.mean) < 0.1 * truth.sd
        assert answer.sd == pytest.approx(truth.sd, rel=0.1)
        checked += 1
    assert checked >= 10


@pytest.mark.parametrize("case", ["bcg", "uncertain r"])
def test_psis_from_fresh_exact_draws_agrees_with_the_exact_predictive_densities(case):
    # The exact checks' PSIS draws its own independent draws from the exact posterior (a mixture
    # over the quadrature nodes of r when r is a parameter), not the posterior file's.
    problem = reference_problem("bcg_logRR") if case == "bcg" else _correlation_problem()
    fit = fit_variant(problem)
    exact = leave_one_out(problem, fit)
    approx = exact_psis(problem, fit, seed=5)
    assert approx.studies == problem.labels
    assert approx.log_weights.shape == (problem.k, EXACT_PSIS_DRAWS)
    good = approx.pareto_k < approx.good_k
    assert good.sum() >= min(10, problem.k)
    exact_elpd = np.array([item.elpd for item in exact])
    assert np.all(np.abs(approx.elpd_i[good] - exact_elpd[good]) < PSIS_TOLERANCE)
    # Seeded: the same seed gives the same draws, another seed other draws.
    assert np.array_equal(exact_psis(problem, fit, seed=5).elpd_i, approx.elpd_i)
    assert not np.array_equal(exact_psis(problem, fit, seed=6).elpd_i, approx.elpd_i)
