"""The exact posterior (metak.exact) against independent truth.

- ``exact_bayes.csv``: bayesmeta-style exact posteriors computed outside metak (see the README in
  ../shared/reference), every row.
- ``rma_reml.csv``: R metafor REML fits; with a flat prior on tau and (nearly) flat priors on
  the coefficients the posterior mode of tau is the REML estimate.
- closed forms: dense k x k multivariate-normal marginal likelihoods, conjugate normal
  posteriors at a fixed tau, brute-force quadrature for k = 1 and for every tau prior family.
- calibration: with parameters drawn from the prior, 95 % credible intervals cover 95 % of the
  time (slow).
"""

from __future__ import annotations

import csv
import functools
import math
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import integrate, stats

from metak.errors import ConfigError
from metak.exact import ExactPosterior, fit_exact, typical_within_variance
from metak.priors import parse_prior
from tests.conftest import REFERENCE  # noqa: E402  (verbatim copy of ../shared/reference)

# The reference says "a correct exact implementation agrees to about 1e-3"; the brief asks 2e-3.
# Means, SDs and coefficient quantiles agree to ~1e-5; the reference's tau quantiles sit up to
# 8e-4 below ours (a relative 7.7e-4, from its CDF interpolation), while ours agree with a
# brute-force dense-grid computation to 1e-5 (test_tau_quantiles_match_brute_force).
EXACT_BAYES_TOL = 2e-3
# metafor's REML iterations stop when tau^2 changes by less than 1e-5 (control threshold), so its
# tau^2 can be that far from the true maximum; ours is the maximum to ~1e-10 (checked below
# against a direct optimisation). The pooled estimate inherits the difference through
# d estimate / d tau^2, well below 1e-3 standard errors here.
REML_TAU2_ATOL = 2e-5
REML_TAU2_RTOL = 1e-6
REML_ESTIMATE_TOL_SE = 1e-3
# At metafor's own tau^2 the conjugate formulas must reproduce its estimate and SE to rounding.
CONDITIONAL_RTOL = 1e-7
# Quadrature against scipy.integrate.quad or dense-grid brute force: both sides are accurate to
# ~1e-8 relative; 1e-6 leaves room for quad's own error estimates.
QUADRATURE_RTOL = 1e-6


def _read(name: str) -> list[dict]:
    with open(REFERENCE / name, newline="") as handle:
        return list(csv.DictReader(handle))


@functools.cache
def _dataset(name: str) -> tuple[np.ndarray, np.ndarray, dict]:
    if name == "normand1999_MD":
        rows, y_col, v_col = _read("escalc_normand1999.csv"), "yi_MD", "vi_MD"
    else:
        rows, y_col, v_col = _read(f"{name}.csv"), "yi", "vi"
    y = np.array([float(r[y_col]) for r in rows])
    v = np.array([float(r[v_col]) for r in rows])
    mods = {
        col: np.array([float(r[col]) for r in rows]) for col in ("ablat", "weeks") if col in rows[0]
    }
    return y, v, mods


@functools.cache
def _reference_fit(
    dataset: str, moderator: str, centered: str, prior_coef: str, prior_tau: str
) -> ExactPosterior:
    y, v, mods = _dataset(dataset)
    if not moderator:
        return fit_exact(y, v, coef_priors=prior_coef, tau_prior=prior_tau)
    x = mods[moderator]
    if centered == "True":
        x = x - x.mean()
    X = np.column_stack([np.ones_like(x), x])
    return fit_exact(
        y, v, X, coef_names=("intercept", moderator), coef_priors=prior_coef, tau_prior=prior_tau
    )


EXACT_ROWS = _read("exact_bayes.csv")


def _row_id(row: dict) -> str:
    mod = (
        f"{row['moderator']}{'_c' if row['moderator_centered'] == 'True' else ''}"
        if row["moderator"]
        else "re"
    )
    return f"{row['dataset']}-{mod}-{row['prior_tau']}-{row['term']}"


@pytest.mark.parametrize("row", EXACT_ROWS, ids=[_row_id(r) for r in EXACT_ROWS])
def test_reproduces_exact_bayes_reference(row):
    post = _reference_fit(
        row["dataset"],
        row["moderator"],
        row["moderator_centered"],
        row["prior_coef"],
        row["prior_tau"],
    )
    summary = post.summary(row["term"])
    for column in ("mean", "sd", "q025", "q50", "q975", "p_gt0"):
        if row[column] == "":
            continue
        got, want = getattr(summary, column), float(row[column])
        assert abs(got - want) < EXACT_BAYES_TOL, f"{column}: got {got:.6f}, reference {want:.6f}"


def test_tau_quantiles_match_brute_force():
    # Dense-grid truth for the bcg tau posterior from the full k x k marginal likelihood.
    y, v, _ = _dataset("bcg_logRR")
    post = fit_exact(y, v, coef_priors="normal(0, 10)", tau_prior="halfnormal(1)")
    grid = np.linspace(0.0, 4.0, 8001)
    logdens = np.array(
        [_dense_loglik(y, v, np.ones((y.size, 1)), np.zeros(1), np.full(1, 100.0), t) for t in grid]
    )
    dens = np.exp(logdens - logdens.max()) * stats.halfnorm.pdf(grid)
    cdf = integrate.cumulative_trapezoid(dens, grid, initial=0.0)
    want = np.interp([0.025, 0.5, 0.975], cdf / cdf[-1], grid)
    s = post.summary("tau")
    np.testing.assert_allclose([s.q025, s.q50, s.q975], want, atol=2e-5)


# ---------------------------------------------------------------------------------------------
# REML: the posterior mode under flat priors
# ---------------------------------------------------------------------------------------------

REML_ROWS = [r for r in _read("rma_reml.csv") if not r["dataset"].endswith("_DL")]
# Flat on tau over a range far beyond every data set's tau (normand's tau is about 26), and
# coefficient priors so wide (sd 1e6) that they change nothing at double precision.
_FLAT_TAU = "uniform(0, 1000)"
_VAGUE_COEF = "normal(0, 1e6)"


def _reml_fit(row: dict) -> tuple[ExactPosterior, int]:
    y, v, mods = _dataset(row["dataset"])
    if row["moderator"] == "NA":
        return fit_exact(y, v, coef_priors=_VAGUE_COEF, tau_prior=_FLAT_TAU), 0
    x = mods[row["moderator"]]
    X = np.column_stack([np.ones_like(x), x])
    names = ("intrcpt", row["moderator"])
    return fit_exact(
        y, v, X, coef_names=names, coef_priors=_VAGUE_COEF, tau_prior=_FLAT_TAU
    ), names.index(row["term"])


@pytest.mark.parametrize(
    "row", REML_ROWS, ids=[f"{r['dataset']}-{r['moderator']}-{r['term']}" for r in REML_ROWS]
)
def test_posterior_mode_is_reml(row):
    # REML maximises the likelihood with b integrated out under a flat prior. With a flat prior
    # on tau the marginal posterior of tau is proportional to that likelihood, so its mode is
    # sqrt(REML tau^2) (a mode of a likelihood is invariant to tau vs tau^2; under a flat prior
    # on tau^2 instead, the mode of p(tau^2 | y) is the same point). Given tau, the posterior
    # mean and SD of b are the GLS estimate and its standard error.
    post, j = _reml_fit(row)
    tau2 = post.tau_mode**2
    assert math.isclose(tau2, float(row["tau2"]), rel_tol=REML_TAU2_RTOL, abs_tol=REML_TAU2_ATOL)
    mean, cov, _ = post.conditional(post.tau_mode)
    se = float(row["se"])
    assert abs(mean[0, j] - float(row["estimate"])) < REML_ESTIMATE_TOL_SE * se


@pytest.mark.parametrize(
    "row", REML_ROWS, ids=[f"{r['dataset']}-{r['moderator']}-{r['term']}" for r in REML_ROWS]
)
def test_conditional_at_metafor_tau2_is_gls(row):
    post, j = _reml_fit(row)
    tau2 = float(row["tau2"])
    mean, cov, _ = post.conditional(math.sqrt(tau2))
    assert math.isclose(mean[0, j], float(row["estimate"]), rel_tol=CONDITIONAL_RTOL)
    assert math.isclose(math.sqrt(cov[0, j, j]), float(row["se"]), rel_tol=CONDITIONAL_RTOL)
    # I^2 with metafor's typical within-study variance (Higgins-Thompson, generalised to
    # meta-regression) at metafor's tau^2.
    i2 = 100 * tau2 / (tau2 + post.within_variance)
    assert math.isclose(i2, float(row["I2"]), rel_tol=CONDITIONAL_RTOL)


def test_mode_is_the_likelihood_maximum():
    from scipy import optimize

    y, v, _ = _dataset("raudenbush1985_SMD")
    post = fit_exact(y, v, coef_priors=None, tau_prior=_FLAT_TAU)

    def neg_restricted_loglik(tau2):
        w = 1 / (v + tau2)
        mu = (w * y).sum() / w.sum()
        return 0.5 * (np.log(v + tau2).sum() + np.log(w.sum()) + (w * (y - mu) ** 2).sum())

    best = optimize.minimize_scalar(
        neg_restricted_loglik, bounds=(0, 1), method="bounded", options={"xatol": 1e-14}
    )
    assert math.isclose(post.tau_mode**2, best.x, rel_tol=1e-7)
    assert math.isnan(post.log_marginal_likelihood)  # a flat coefficient prior: p(y) undefined


# ---------------------------------------------------------------------------------------------
# Closed forms
# ---------------------------------------------------------------------------------------------


def _dense_loglik(y, v, X, m0, s0sq, tau) -> float:
    cov = np.diag(v + tau**2) + X @ np.diag(s0sq) @ X.T
    return float(stats.multivariate_normal(X @ m0, cov).logpdf(y))


def test_marginal_likelihood_matches_dense_formula():
    rng = np.random.default_rng(7)
    k = 9
    X = np.column_stack([np.ones(k), rng.normal(size=k), rng.integers(0, 2, size=k)])
    v = rng.uniform(0.02, 0.5, k)
    y = X @ np.array([0.4, -0.2, 0.3]) + rng.normal(0, np.sqrt(v + 0.1))
    priors = ["normal(0.5, 2)", "normal(-1, 0.5)", "normal(0, 3)"]
    post = fit_exact(
        y, v, X, coef_names=("a", "b", "c"), coef_priors=priors, tau_prior="halfnormal(0.5)"
    )
    taus = np.array([0.0, 0.05, 0.3, 2.0, 30.0])
    _, _, loglik = post.conditional(taus)
    m0, s0sq = np.array([0.5, -1.0, 0.0]), np.array([4.0, 0.25, 9.0])
    want = [_dense_loglik(y, v, X, m0, s0sq, t) for t in taus]
    np.testing.assert_allclose(loglik, want, rtol=1e-10)


def test_large_effects_do_not_lose_precision():
    # Shifting y and the prior mean by C changes nothing but the location of mu; with effects
    # 1e6 standard errors away from 0 the internal shift keeps the quadratic form exact.
    rng = np.random.default_rng(3)
    v = rng.uniform(1e-4, 1e-3, 12)
    y = rng.normal(0, np.sqrt(v + 0.01))
    shift = 1e4
    near = fit_exact(y, v, coef_priors="normal(0, 10)", tau_prior="halfnormal(1)")
    far = fit_exact(y + shift, v, coef_priors=f"normal({shift}, 10)", tau_prior="halfnormal(1)")
    taus = np.array([0.0, 0.1, 1.0])
    np.testing.assert_allclose(far.conditional(taus)[2], near.conditional(taus)[2], rtol=1e-9)
    assert math.isclose(far.summary("mu").mean - shift, near.summary("mu").mean, abs_tol=1e-9)
    assert math.isclose(far.summary("tau").mean, near.summary("tau").mean, rel_tol=1e-9)


def test_fixed_tau_gives_the_conjugate_normal_posterior():
    rng = np.random.default_rng(11)
    k = 8
    x = rng.normal(size=k)
    X = np.column_stack([np.ones(k), x])
    v = rng.uniform(0.05, 0.3, k)
    y = 0.2 + 0.5 * x + rng.normal(0, np.sqrt(v + 0.09))
    tau = 0.3
    # A uniform prior 1e-7 wide is a point mass at tau for every purpose here.
    post = fit_exact(
        y,
        v,
        X,
        coef_names=("b0", "b1"),
        coef_priors="normal(0, 2)",
        tau_prior=f"uniform({tau}, {tau + 1e-7})",
    )
    w = 1 / (v + tau**2)
    precision = X.T @ (X * w[:, None]) + np.eye(2) / 4
    cov = np.linalg.inv(precision)
    mean = cov @ (X.T @ (w * y))
    for j, name in enumerate(("b0", "b1")):
        s = post.summary(name)
        sd = math.sqrt(cov[j, j])
        assert math.isclose(s.mean, mean[j], rel_tol=1e-6, abs_tol=1e-9)
        assert math.isclose(s.sd, sd, rel_tol=1e-6)
        assert math.isclose(s.q025, mean[j] - 1.959963984540054 * sd, rel_tol=1e-6, abs_tol=1e-9)
        assert math.isclose(s.q975, mean[j] + 1.959963984540054 * sd, rel_tol=1e-6, abs_tol=1e-9)
        assert math.isclose(s.p_gt0, stats.norm.sf(0, mean[j], sd), rel_tol=1e-6, abs_tol=1e-12)
    assert math.isclose(post.summary("tau").mean, tau, rel_tol=1e-6)
    # p(y) = integral of p(y | tau) over a point-like prior = p(y | tau).
    want = _dense_loglik(y, v, X, np.zeros(2), np.full(2, 4.0), tau)
    assert math.isclose(post.log_marginal_likelihood, want, rel_tol=1e-6)
    # Study effects at fixed tau: normal with the textbook shrinkage formula.
    effects = post.study_effects()
    shrink = tau**2 / (v + tau**2)
    theta_mean = shrink * y + (1 - shrink) * (X @ mean)
    theta_var = shrink * v + (1 - shrink) ** 2 * np.einsum("ij,jk,ik->i", X, cov, X)
    np.testing.assert_allclose(effects.mean, theta_mean, rtol=1e-6)
    np.testing.assert_allclose(effects.sd, np.sqrt(theta_var), rtol=1e-6)
    np.testing.assert_allclose(
        effects.q975, theta_mean + 1.959963984540054 * np.sqrt(theta_var), rtol=1e-6
    )


def test_single_study():
    # k = 1: the posterior of (mu, tau) by brute force on a dense 2-D grid: the trapezoid rule in
    # mu (spectrally accurate for a Gaussian integrand), Simpson's rule in tau (error ~h^4).
    y, v, s0 = 0.5, 0.1, 10.0
    mu = np.linspace(-30, 30, 2001)[:, None]
    tau = np.linspace(0, 6, 3001)[None, :]
    joint = (
        stats.norm.pdf(y, mu, np.sqrt(v + tau**2))
        * stats.norm.pdf(mu, 0, s0)
        * stats.halfnorm.pdf(tau, 0, 0.5)
    )

    def integral(f):
        return float(integrate.simpson(np.trapezoid(f * joint, mu[:, 0], axis=0), x=tau[0]))

    z = integral(1.0)
    post = fit_exact([y], [v], coef_priors=f"normal(0, {s0})", tau_prior="halfnormal(0.5)")
    s_mu, s_tau = post.summary("mu"), post.summary("tau")
    assert math.isclose(s_mu.mean, integral(mu) / z, rel_tol=1e-7)
    assert math.isclose(s_mu.sd**2 + s_mu.mean**2, integral(mu**2) / z, rel_tol=1e-7)
    assert math.isclose(s_tau.mean, integral(tau) / z, rel_tol=1e-7)
    assert math.isclose(post.log_marginal_likelihood, math.log(z), rel_tol=1e-7)
    assert post.within_variance == v  # no residual degrees of freedom: the harmonic mean of v


@pytest.mark.parametrize(
    "tau_prior",
    [
        "halfnormal(0.5)",
        "halfcauchy(0.5)",
        "exponential(2)",
        "uniform(0, 100)",
        "halfstudent_t(3, 0.5)",
        "lognormal(-3, 2)",
        "gamma(2, 4)",
        "uniform(0.2, 0.4)",
    ],
)
@pytest.mark.parametrize("k", [1, 3])
def test_every_tau_prior_against_quadrature(tau_prior, k):
    # The grid must find the posterior wherever the prior puts it: at 0, far out in a heavy
    # tail (halfcauchy with one study), spread over orders of magnitude (lognormal), or inside
    # a bounded support.
    y = np.array([0.5, 1.0, -0.3])[:k]
    v = np.array([0.1, 0.2, 0.05])[:k]
    prior = parse_prior(tau_prior)
    X = np.ones((k, 1))

    def dens(t):
        return math.exp(
            _dense_loglik(y, v, X, np.zeros(1), np.full(1, 100.0), t) + float(prior.logpdf(t))
        )

    lo, hi = prior.bounds
    # Integrate in log(tau) so that quad sees mass spread over orders of magnitude.
    u_lo = math.log(lo) if lo > 0 else -40.0
    u_hi = math.log(hi) if math.isfinite(hi) else 25.0
    z = integrate.quad(
        lambda u: dens(math.exp(u)) * math.exp(u), u_lo, u_hi, limit=1000, epsabs=0, epsrel=1e-11
    )[0]
    m1 = integrate.quad(
        lambda u: dens(math.exp(u)) * math.exp(2 * u),
        u_lo,
        u_hi,
        limit=1000,
        epsabs=0,
        epsrel=1e-11,
    )[0]
    post = fit_exact(y, v, coef_priors="normal(0, 10)", tau_prior=tau_prior)
    assert math.isclose(post.log_marginal_likelihood, math.log(z), rel_tol=QUADRATURE_RTOL)
    assert math.isclose(post.summary("tau").mean, m1 / z, rel_tol=QUADRATURE_RTOL)
    assert post.tau_grid[0] >= lo and post.tau_grid[-1] <= hi


# ---------------------------------------------------------------------------------------------
# Derived quantities and their consistency
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bcg_regression() -> ExactPosterior:
    return _reference_fit("bcg_logRR", "ablat", "True", "normal(0, 10)", "halfnormal(1.0)")


@pytest.fixture(scope="module")
def bcg() -> ExactPosterior:
    return _reference_fit("bcg_logRR", "", "", "normal(0, 10)", "halfnormal(1.0)")


def test_summaries_are_consistent(bcg):
    mu, tau, tau2, i2 = (bcg.summary(n) for n in ("mu", "tau", "tau2", "I2"))
    assert math.isclose(tau2.mean, tau.mean**2 + tau.sd**2, rel_tol=1e-9)
    assert math.isclose(tau2.q50, tau.q50**2, rel_tol=1e-12)
    s2 = bcg.within_variance
    assert math.isclose(s2, typical_within_variance(bcg.v), rel_tol=1e-12)
    assert math.isclose(i2.q975, tau.q975**2 / (tau.q975**2 + s2), rel_tol=1e-12)
    assert 0 < i2.q025 < i2.q50 < i2.q975 < 1
    assert math.isclose(mu.p_gt0, bcg.prob("mu", ">", 0), rel_tol=1e-12)
    assert tau.mode is not None and 0 < tau.mode < tau.q975
    assert math.isclose(float(np.trapezoid(bcg.tau_density, bcg.tau_grid)), 1.0, rel_tol=1e-6)
    assert math.isclose(bcg.tau_weights.sum(), 1.0, rel_tol=1e-12)
    rows = bcg.summary_rows()
    assert [r["name"] for r in rows] == ["mu", "tau", "tau2", "I2"]


def test_prob_helpers(bcg, bcg_regression):
    assert math.isclose(bcg.prob("mu", "<", -0.5) + bcg.prob("mu", ">=", -0.5), 1.0, rel_tol=1e-12)
    inside = bcg.prob("mu", "in", -1.0, -0.5)
    assert math.isclose(inside + bcg.prob("mu", "outside", -1.0, -0.5), 1.0, rel_tol=1e-12)
    assert math.isclose(
        inside, bcg.prob("mu", "<", -0.5) - bcg.prob("mu", "<", -1.0), rel_tol=1e-12
    )
    assert math.isclose(bcg.prob("tau", "<", 0.5), bcg.tau_cdf(0.5), rel_tol=1e-12)
    assert math.isclose(bcg.prob("tau2", "<", 0.25), bcg.tau_cdf(0.5), rel_tol=1e-12)
    assert math.isclose(bcg.prob("tau", "<", bcg.summary("tau").q50), 0.5, abs_tol=1e-6)
    assert math.isclose(bcg.prob("I2", ">", bcg.summary("I2").q025), 0.975, abs_tol=1e-6)
    assert bcg.prob_statement(
        SimpleNamespace(parameter="mu", op="<", low=0.0, high=None)
    ) == bcg.prob("mu", "<", 0.0)
    slope = bcg_regression.summary("ablat")
    assert math.isclose(bcg_regression.prob("ablat", "<", slope.q025), 0.025, abs_tol=1e-9)
    with pytest.raises(ValueError, match="theta_new|covariates"):
        bcg_regression.prob("theta_new", ">", 0)
    with pytest.raises(ValueError, match="no parameter"):
        bcg.prob("nope", ">", 0)


def test_predictive_distribution(bcg, bcg_regression):
    pred = bcg.predictive()
    mu, tau2 = bcg.summary("mu"), bcg.summary("tau2")
    assert math.isclose(pred.mean, mu.mean, rel_tol=1e-12)
    # Var(theta_new) = Var(mu) + E[tau^2] (law of total variance).
    assert math.isclose(pred.sd**2, mu.sd**2 + tau2.mean, rel_tol=1e-9)
    q = pred.quantile(np.array([0.025, 0.975]))
    np.testing.assert_allclose(pred.cdf(q), [0.025, 0.975], atol=1e-12)
    assert bcg.prob("theta_new", "<", q[0]) == pytest.approx(0.025, abs=1e-12)
    # With moderators: the predictive at x; the mean effect at x has no tau^2 in it.
    x = [1.0, 10.0]
    mean_at_x = bcg_regression.linear_mixture(x)
    pred_at_x = bcg_regression.predictive(x)
    b0, b1 = bcg_regression.summary("intercept"), bcg_regression.summary("ablat")
    assert math.isclose(mean_at_x.mean, b0.mean + 10 * b1.mean, rel_tol=1e-12)
    assert math.isclose(
        pred_at_x.sd**2, mean_at_x.sd**2 + bcg_regression.summary("tau2").mean, rel_tol=1e-9
    )


def test_draws_agree_with_summaries(bcg_regression):
    n = 40_000
    draws = bcg_regression.sample(n, np.random.default_rng(5), x_new=[1.0, 0.0])
    assert draws.coef.shape == (n, 2) and draws.tau.shape == (n,)
    by_name = draws.as_dict()
    assert set(by_name) == {"intercept", "ablat", "tau", "tau2", "I2", "theta_new"}
    for name in ("intercept", "ablat", "tau"):
        s = bcg_regression.summary(name)
        # Independent draws: the Monte Carlo SE of a mean is sd / sqrt(n); 4.5 SE is a
        # false-alarm rate of ~1e-5 per comparison.
        assert abs(by_name[name].mean() - s.mean) < 4.5 * s.sd / math.sqrt(n)
        # A quantile's MC SE is sqrt(p(1-p)/n) / density; in probability units it is simply
        # sqrt(p(1-p)/n).
        for p, q in ((0.025, s.q025), (0.5, s.q50), (0.975, s.q975)):
            assert abs(np.mean(by_name[name] < q) - p) < 4.5 * math.sqrt(p * (1 - p) / n)
    pred = bcg_regression.predictive([1.0, 0.0])
    assert abs(by_name["theta_new"].mean() - pred.mean) < 4.5 * pred.sd / math.sqrt(n)
    assert abs(by_name["theta_new"].std() - pred.sd) < 4.5 * pred.sd / math.sqrt(2 * n)
    i2 = by_name["I2"]
    assert np.all((i2 >= 0) & (i2 < 1))


def test_study_effects(bcg):
    effects = bcg.study_effects()
    full = bcg.study_effects(thin=1)
    for name in ("mean", "sd", "q025", "q50", "q975"):
        # The 10x thinned Simpson rule integrates these smooth mixtures to ~1e-10.
        np.testing.assert_allclose(getattr(effects, name), getattr(full, name), atol=1e-6)
    assert np.all(effects.q025 < effects.q50) and np.all(effects.q50 < effects.q975)
    # Shrinkage: each study's posterior mean lies between its estimate and the overall mean
    # (up to the posterior uncertainty in mu, which is shared).
    mu = bcg.summary("mu").mean
    lo, hi = np.minimum(bcg.y, mu), np.maximum(bcg.y, mu)
    assert np.all((effects.mean >= lo - 1e-9) & (effects.mean <= hi + 1e-9))
    assert np.all(effects.sd < np.sqrt(bcg.v))  # pooling only adds information


def test_coefficient_prior_forms_are_equivalent():
    y, v, mods = _dataset("raudenbush1985_SMD")
    X = np.column_stack([np.ones_like(y), mods["weeks"]])
    names = ("intercept", "weeks")
    a = fit_exact(
        y,
        v,
        X,
        coef_names=names,
        coef_priors=parse_prior("normal(0, 10)"),
        tau_prior="halfnormal(0.5)",
    )
    b = fit_exact(
        y,
        v,
        X,
        coef_names=names,
        coef_priors={"weeks": "normal(0, 10)", "intercept": "normal(0, 10)"},
        tau_prior="halfnormal(0.5)",
    )
    c = fit_exact(
        y,
        v,
        X,
        coef_names=names,
        coef_priors=["normal(0, 10)", "normal(0, 10)"],
        tau_prior=parse_prior("halfnormal(0.5)"),
    )
    assert a.summary_rows() == b.summary_rows() == c.summary_rows()
    assert fit_exact(y, v, X).coef_names == ("intercept", "x1")


def test_user_mistakes_are_config_errors():
    y, v = [0.1, 0.3, 0.2], [0.1, 0.1, 0.2]
    with pytest.raises(ConfigError, match="normal coefficient priors.*student_t"):
        fit_exact(y, v, coef_priors="student_t(3, 0, 1)", tau_prior="halfnormal(1)")
    with pytest.raises(ConfigError, match="negative values"):
        fit_exact(y, v, coef_priors="normal(0, 1)", tau_prior="normal(0, 1)")
    with pytest.raises(ConfigError, match="infinite density"):
        fit_exact(y, v, coef_priors="normal(0, 1)", tau_prior="gamma(0.5, 1)")
    with pytest.raises(ConfigError, match="not identified"):
        fit_exact(
            y,
            v,
            np.column_stack([np.ones(3), np.full(3, 2.0)]),
            coef_priors=None,
            tau_prior="halfnormal(1)",
        )
    with pytest.raises(ValueError, match="finite"):
        fit_exact([0.1, np.nan], [0.1, 0.1], tau_prior="halfnormal(1)")
    with pytest.raises(ValueError, match="v finite and > 0"):
        fit_exact([0.1, 0.2], [0.1, 0.0], tau_prior="halfnormal(1)")


def test_exact_does_not_import_pymc():
    code = (
        "import sys, numpy as np\n"
        "from metak.exact import fit_exact\n"
        "y, v = np.array([0.1, 0.4, 0.3]), np.array([0.1, 0.2, 0.1])\n"
        "post = fit_exact(y, v, tau_prior='halfnormal(0.5)')\n"
        "post.sample(10, np.random.default_rng(0)); post.study_effects()\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('pymc', 'pytensor', 'arviz'))\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[1]
    )
    assert result.returncode == 0, result.stderr


def test_speed_on_large_meta_analysis():
    # Target well under 1 s for k = 10,000 (about 0.1 s measured); 5 s only guards against a
    # regression to O(k^2) or a per-study Python loop, without failing on a busy CI machine.
    rng = np.random.default_rng(2)
    k = 10_000
    x = rng.normal(size=k)
    v = rng.uniform(0.01, 0.2, k)
    y = 0.3 + 0.1 * x + rng.normal(0, np.sqrt(v + 0.04))
    start = time.perf_counter()
    post = fit_exact(
        y,
        v,
        np.column_stack([np.ones(k), x]),
        coef_priors="normal(0, 10)",
        tau_prior="halfnormal(0.5)",
    )
    assert time.perf_counter() - start < 5.0
    assert abs(post.summary("tau").mean - 0.2) < 5 * post.summary("tau").sd


# ---------------------------------------------------------------------------------------------
# Calibration
# ---------------------------------------------------------------------------------------------

COVERAGE_REPS = 1000
# With parameters drawn from the prior that the model uses, a 95 % credible interval covers the
# true value with probability exactly 0.95 (averaged over the prior), whatever k and v are. So
# the number of hits is Binomial(reps, 0.95) and 3.5 binomial SDs (false alarm ~5e-4 per
# check) is the tolerance.
COVERAGE_TOL = 3.5 * math.sqrt(0.95 * 0.05 / COVERAGE_REPS)


@pytest.mark.slow
def test_credible_intervals_are_calibrated():
    rng = np.random.default_rng(20261122)
    coef_prior, tau_prior = parse_prior("normal(0, 1)"), parse_prior("halfnormal(0.5)")
    hits = {"intercept": 0, "slope": 0, "tau": 0, "theta_new": 0}
    for _ in range(COVERAGE_REPS):
        k = int(rng.integers(2, 16))
        b = coef_prior.rvs(2, rng)
        tau = float(tau_prior.rvs(1, rng)[0])
        x = rng.normal(size=k)
        X = np.column_stack([np.ones(k), x])
        v = rng.uniform(0.01, 0.5, k)
        theta = X @ b + tau * rng.standard_normal(k)
        y = theta + np.sqrt(v) * rng.standard_normal(k)
        x_new = rng.normal()
        theta_new = b[0] + b[1] * x_new + tau * rng.standard_normal()
        post = fit_exact(
            y, v, X, coef_names=("intercept", "slope"), coef_priors=coef_prior, tau_prior=tau_prior
        )
        for name, truth in (("intercept", b[0]), ("slope", b[1]), ("tau", tau)):
            s = post.summary(name)
            hits[name] += s.q025 <= truth <= s.q975
        q = post.predictive([1.0, x_new]).quantile(np.array([0.025, 0.975]))
        hits["theta_new"] += q[0] <= theta_new <= q[1]
    for name, count in hits.items():
        coverage = count / COVERAGE_REPS
        assert abs(coverage - 0.95) < COVERAGE_TOL, f"{name}: coverage {coverage:.3f}"
