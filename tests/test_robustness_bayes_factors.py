"""Bayes factors checked two independent ways on the reference data (tests/data/reference):

- brute force: the marginal likelihood of each model as a plain 2-D (mu, tau) or 1-D Simpson
  quadrature of likelihood x prior, with nothing integrated analytically;
- Savage-Dickey: the Bayes factor of a point hypothesis as the ratio of prior to posterior
  density at the tested value (valid because both models share every other prior).

And the pre-post correlation integrated out: the Gauss-Legendre nodes against adaptive quadrature
over r of exact marginal likelihoods.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import integrate

from metak.exact import fit_exact
from metak.priors import parse_prior
from metak.robustness import problem as problem_module
from metak.robustness.bayes_factors import HYPOTHESES, bayes_factor_rows
from metak.robustness.problem import BASE, Fits, Variant, fit_variant
from tests.robustness_helpers import log_integral, log_normal_pdf, reference_problem, simpson

# The bar: relative error of log BF at most 1e-3. Where |log BF| < 1 a relative error
# says little (it blows up near 0), so the bar there is 1e-3 absolute.
LOG_BF_TOLERANCE = 1e-3
# Brute-force grids: Simpson on 2,001 x 2,001 points over mu in [-6, 5] and tau in [0, 8]
# (both priors and the likelihood negligible beyond); 1-D integrals on 20,001 points.
GRID_2D, GRID_1D = 2001, 20001
MU_RANGE, TAU_RANGE = (-6.0, 5.0), (0.0, 8.0)


def _close(metak_value: float, reference: float) -> bool:
    return abs(metak_value - reference) <= LOG_BF_TOLERANCE * max(abs(reference), 1.0)


def _grid(lo: float, hi: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.linspace(lo, hi, n)
    return x, np.log(simpson(n) * (x[1] - x[0]))


def _loglik(y, v, mu, tau2) -> np.ndarray:
    """sum_i log N(y_i; mu, v_i + tau2), broadcasting mu and tau2 (study axis last)."""
    return log_normal_pdf(y, mu[..., None], v + tau2[..., None]).sum(axis=-1)


def _brute_force(problem, hypothesis: str) -> float:
    """log p(y | H1) - log p(y | H0) by plain quadrature (random-effects problems)."""
    y, v = problem.y, problem.v
    mu_prior, tau_prior = problem.coef_priors[0], problem.tau_prior
    mu, log_wm = _grid(*MU_RANGE, GRID_2D)
    tau, log_wt = _grid(*TAU_RANGE, GRID_2D)
    log_h1 = -np.inf
    for start in range(0, GRID_2D, 200):  # chunks of tau rows keep memory small
        t = tau[start : start + 200]
        f = _loglik(y, v, mu[None, :], (t**2)[:, None])
        f = f + mu_prior.logpdf(mu)[None, :] + tau_prior.logpdf(t)[:, None]
        log_h1 = np.logaddexp(
            log_h1, log_integral(f, log_wm[None, :] + log_wt[start : start + 200, None])
        )
    if hypothesis == "effect":  # mu = 0, tau ~ prior
        t, log_w = _grid(*TAU_RANGE, GRID_1D)
        f = _loglik(y, v, np.zeros_like(t), t**2) + tau_prior.logpdf(t)
    else:  # tau = 0, mu ~ prior
        m, log_w = _grid(*MU_RANGE, GRID_1D)
        f = _loglik(y, v, m, np.zeros_like(m)) + mu_prior.logpdf(m)
    return float(log_h1 - log_integral(f, log_w))


CASES = [
    ("bcg_logRR", "halfnormal(1.0)"),
    ("bcg_logRR", "halfcauchy(0.5)"),
    ("raudenbush1985_SMD", "halfnormal(0.5)"),
]


@pytest.mark.parametrize(("dataset", "tau"), CASES)
@pytest.mark.parametrize("hypothesis", ["effect", "heterogeneity"])
def test_bayes_factors_equal_brute_force_quadrature(dataset, tau, hypothesis):
    problem = reference_problem(dataset, tau=tau)
    rows = {row["hypothesis"]: row for row in bayes_factor_rows(Fits(problem))}
    reference = _brute_force(problem, hypothesis)
    assert _close(rows[hypothesis]["log_bf10"], reference), (rows[hypothesis], reference)
    assert rows[hypothesis]["bf10"] == pytest.approx(math.exp(rows[hypothesis]["log_bf10"]))
    assert rows[hypothesis]["method"] == "exact"


@pytest.mark.parametrize(("dataset", "tau"), CASES)
def test_effect_bayes_factor_is_the_savage_dickey_ratio(dataset, tau):
    problem = reference_problem(dataset, tau=tau)
    fits = Fits(problem)
    log_bf = (
        fits(BASE).log_marginal_likelihood - fits(Variant(effect=False)).log_marginal_likelihood
    )
    posterior_at_0 = fits(BASE).coef("mu").pdf(0.0)
    prior_at_0 = float(np.exp(problem.coef_priors[0].logpdf(0.0)))
    assert _close(log_bf, math.log(prior_at_0) - math.log(posterior_at_0))


def test_heterogeneity_bayes_factor_is_the_savage_dickey_ratio():
    # Teacher-expectancy SMDs: tau = 0 is well inside the posterior, so the quadrature grid
    # starts at 0 and its density there is the posterior density at the tested value.
    problem = reference_problem("raudenbush1985_SMD", tau="halfnormal(0.5)")
    fits = Fits(problem)
    posterior = fits(BASE).posteriors[0]
    assert posterior.tau_grid[0] == 0.0
    log_bf = (
        fits(BASE).log_marginal_likelihood - fits(Variant(random=False)).log_marginal_likelihood
    )
    prior_at_0 = float(np.exp(problem.tau_prior.logpdf(0.0)))
    assert _close(log_bf, math.log(prior_at_0) - math.log(posterior.tau_density[0]))


@pytest.mark.parametrize("kind", ["pet", "peese"])
def test_bias_bayes_factor_is_the_savage_dickey_ratio_of_the_slope(kind):
    problem = reference_problem("bcg_logRR")
    fits = Fits(problem)
    rows = {row["hypothesis"]: row for row in bayes_factor_rows(fits)}
    model = fits(Variant(bias=kind))
    slope = "sei" if kind == "pet" else "sei2"
    prior_at_0 = float(np.exp(problem.bias_priors[kind].logpdf(0.0)))
    savage_dickey = math.log(prior_at_0) - math.log(model.coef(slope).pdf(0.0))
    assert _close(rows[f"bias_{kind}"]["log_bf10"], savage_dickey)


def test_moderator_bayes_factor_only_for_meta_regressions():
    plain = {row["hypothesis"] for row in bayes_factor_rows(Fits(reference_problem()))}
    regression = reference_problem(moderator="ablat")
    rows = {row["hypothesis"]: row for row in bayes_factor_rows(Fits(regression))}
    assert "moderators" not in plain and set(HYPOTHESES) == set(rows)
    savage_dickey = math.log(float(np.exp(regression.coef_priors[1].logpdf(0.0)))) - math.log(
        Fits(regression)(BASE).coef("ablat").pdf(0.0)
    )
    assert _close(rows["moderators"]["log_bf10"], savage_dickey)
    # The ablat slope is far from 0 (metafor: z = -4.0, about -0.03 per degree): a slope prior
    # on that scale finds positive evidence for the moderator (Kass & Raftery: BF > 3), while
    # normal(0, 10) per degree spreads its mass over absurd slopes and favours none (Bartlett's
    # paradox).
    scaled = replace(
        regression, coef_priors=(regression.coef_priors[0], parse_prior("normal(0, 0.1)"))
    )
    sensible = {row["hypothesis"]: row for row in bayes_factor_rows(Fits(scaled))}
    assert sensible["moderators"]["log_bf10"] > math.log(3.0)
    assert rows["moderators"]["log_bf10"] < 0.0


def _correlation_problem():
    """Three change-score rows whose variances move with the pre-post correlation r."""
    base = reference_problem("bcg_logRR")
    index = np.array([0, 3, 6])
    return replace(
        base,
        y=base.y[index],
        v=base.v[index],
        r_slope=-base.v[index] * np.array([1.2, 0.8, 1.5]),  # variances fall as r grows
        r0=np.full(3, 0.5),
        X=base.X[index],
        labels=tuple(base.labels[i] for i in index),
        r_prior=parse_prior("beta(6, 4)"),
    )


def _lml_at(problem, r: float, variant: Variant) -> float:
    v = problem.variance(r)
    X, names, priors = problem.design(variant, v)
    return fit_exact(
        problem.y, v, X, coef_names=names, coef_priors=list(priors), tau_prior=problem.tau_prior
    ).log_marginal_likelihood


# Adaptive quadrature (scipy quad) of p(y | r) p(r) against the Gauss-Legendre nodes: both
# integrate the same smooth function; 1e-6 is far below anything a Bayes factor is read at.
R_QUADRATURE_TOLERANCE = 1e-6


@pytest.mark.parametrize("variant", [BASE, Variant(effect=False), Variant(bias="pet")])
def test_correlation_integrated_out_matches_adaptive_quadrature(variant):
    problem = _correlation_problem()
    fit = fit_variant(problem, variant)
    shift = fit.log_marginal_likelihood
    prior = problem.r_prior
    value, _ = integrate.quad(
        lambda r: math.exp(_lml_at(problem, r, variant) - shift + float(prior.logpdf(r))),
        0.0,
        1.0,
        epsabs=1e-12,
        epsrel=1e-10,
        limit=200,
    )
    assert abs(math.log(value)) < R_QUADRATURE_TOLERANCE
    assert problem.method == "exact_r"


def test_more_correlation_nodes_change_nothing_that_matters(monkeypatch):
    problem = _correlation_problem()
    default = fit_variant(problem)
    monkeypatch.setattr(problem_module, "R_NODES", 96)
    fine = fit_variant(problem)
    assert abs(default.log_marginal_likelihood - fine.log_marginal_likelihood) < (
        R_QUADRATURE_TOLERANCE
    )
    assert default.coef("mu").mean == pytest.approx(fine.coef("mu").mean, rel=1e-6)
