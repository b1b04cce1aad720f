"""The exact posterior's limiting cases, checked by brute-force quadrature on the reference data:

- tau = 0 (common effect, :func:`metak.exact.fit_common_effect`): the marginal likelihood as a
  1-D quadrature over the coefficient, the posterior against the closed-form normal update;
- no coefficients (``X`` with 0 columns): ``y_i ~ N(0, v_i + tau^2)``, a 1-D quadrature over tau;
- the thinned mixtures (``coef_mixture(name, thin)``) against the full grid.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import special

from metak.errors import ConfigError
from metak.exact import fit_common_effect, fit_exact
from metak.priors import parse_prior
from tests.conftest import REFERENCE

# Brute force: Simpson on 20,001 points (relative error of log p(y) ~ 1e-12 at these widths);
# the limits are closed forms or the exact path's own quadrature, so agreement to 1e-8 is
# expected and anything looser would hide a wrong formula.
BRUTE_POINTS = 20001
LIMIT_TOLERANCE = 1e-8
# The thinned rule (every 10th node) integrates these smooth mixtures to about 1e-8 (exact.py).
THIN_TOLERANCE = 1e-7


def simpson(n: int) -> np.ndarray:
    w = np.ones(n)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    return w / 3.0


def log_normal_pdf(x, mean, var):
    return -0.5 * (np.log(2 * np.pi * var) + (x - mean) ** 2 / var)


def log_integral(log_f, log_w) -> float:
    return float(special.logsumexp(log_f + log_w))


@pytest.fixture(scope="module")
def bcg():
    data = pd.read_csv(REFERENCE / "bcg_logRR.csv")
    return data["yi"].to_numpy(float), data["vi"].to_numpy(float), data["ablat"].to_numpy(float)


def _grid(lo, hi):
    x = np.linspace(lo, hi, BRUTE_POINTS)
    return x, np.log(simpson(BRUTE_POINTS) * (x[1] - x[0]))


def test_common_effect_marginal_likelihood_is_a_1d_quadrature(bcg):
    y, v, _ = bcg
    post = fit_common_effect(y, v, coef_priors="normal(0, 10)")
    mu, log_w = _grid(-5.0, 5.0)
    f = log_normal_pdf(y, mu[:, None], v).sum(axis=1) + parse_prior("normal(0, 10)").logpdf(mu)
    assert post.log_marginal_likelihood == pytest.approx(
        log_integral(f, log_w), rel=LIMIT_TOLERANCE
    )


def test_common_effect_posterior_is_the_normal_update(bcg):
    y, v, x = bcg
    X = np.column_stack([np.ones_like(x), x - x.mean()])
    post = fit_common_effect(
        y, v, X, coef_names=("intercept", "ablat"), coef_priors="normal(0, 10)"
    )
    precision = (X.T / v) @ X + np.eye(2) / 100.0
    mean = np.linalg.solve(precision, (X.T / v) @ y)
    assert post.mean == pytest.approx(mean, rel=1e-10)
    assert post.cov == pytest.approx(np.linalg.inv(precision), rel=1e-10)
    mixture = post.coef_mixture("ablat")
    assert mixture.mean == pytest.approx(mean[1], rel=1e-10)
    assert post.prob("ablat", "<", 0.0) == pytest.approx(mixture.cdf(0.0), rel=1e-12)


def test_common_effect_with_a_flat_prior_has_no_marginal_likelihood(bcg):
    y, v, _ = bcg
    assert math.isnan(fit_common_effect(y, v, coef_priors=None).log_marginal_likelihood)


def test_common_effect_refuses_a_non_normal_coefficient_prior(bcg):
    y, v, _ = bcg
    with pytest.raises(ConfigError, match="normal coefficient priors"):
        fit_common_effect(y, v, coef_priors="student_t(3, 0, 1)")


@pytest.mark.parametrize("tau", ["halfnormal(1.0)", "halfcauchy(0.5)"])
def test_model_without_coefficients_is_a_1d_quadrature_over_tau(bcg, tau):
    y, v, _ = bcg
    post = fit_exact(y, v, np.zeros((y.size, 0)), coef_names=(), coef_priors=[], tau_prior=tau)
    grid, log_w = _grid(0.0, 20.0)
    f = log_normal_pdf(y, 0.0, v + grid[:, None] ** 2).sum(axis=1) + parse_prior(tau).logpdf(grid)
    assert post.log_marginal_likelihood == pytest.approx(log_integral(f, log_w), rel=1e-6)
    assert set(post.summaries) == {"tau", "tau2", "I2"}
    none = fit_common_effect(y, v, np.zeros((y.size, 0)), coef_names=())
    assert none.log_marginal_likelihood == pytest.approx(log_normal_pdf(y, 0.0, v).sum(), rel=1e-12)


def test_thinned_mixture_matches_the_full_grid(bcg):
    y, v, x = bcg
    X = np.column_stack([np.ones_like(x), x - x.mean()])
    post = fit_exact(
        y,
        v,
        X,
        coef_names=("intercept", "ablat"),
        coef_priors="normal(0, 10)",
        tau_prior="halfnormal(1.0)",
    )
    for name in ("intercept", "ablat"):
        full, thin = post.coef_mixture(name), post.coef_mixture(name, thin=10)
        assert thin.weights.size < full.weights.size / 5
        assert thin.mean == pytest.approx(full.mean, rel=THIN_TOLERANCE)
        assert thin.sd == pytest.approx(full.sd, rel=THIN_TOLERANCE)
        for q in (0.025, 0.5, 0.975):
            assert thin.quantile(q) == pytest.approx(full.quantile(q), rel=THIN_TOLERANCE)
    assert post.quadrature_weights(10).sum() == pytest.approx(1.0)


def test_summarize_false_skips_only_the_coefficient_summaries(bcg):
    """Without summaries the tau mode only scales the density: located to 1e-4 of its bracket
    instead of 1e-10, which moves nothing else beyond rounding."""
    y, v, _ = bcg
    fast = fit_exact(
        y, v, coef_priors="normal(0, 10)", tau_prior="halfnormal(1.0)", summarize=False
    )
    full = fit_exact(y, v, coef_priors="normal(0, 10)", tau_prior="halfnormal(1.0)")
    assert "mu" not in fast.summaries and "mu" in full.summaries
    assert fast.log_marginal_likelihood == pytest.approx(full.log_marginal_likelihood, rel=1e-14)
    assert np.array_equal(fast.tau_grid, full.tau_grid)
    assert np.allclose(fast.tau_weights, full.tau_weights, rtol=1e-12, atol=0)
    quick, exact = fast.summary("tau"), full.summary("tau")
    for field in ("mean", "sd", "q025", "q50", "q975"):
        assert quick.as_dict()[field] == pytest.approx(exact.as_dict()[field], rel=1e-12)
    assert quick.mode == pytest.approx(exact.mode, rel=1e-4)
    assert quick.mode != exact.mode  # the cheaper search did run


def test_mixture_quantiles_of_many_equal_each_alone():
    """The batched Newton iteration (mixtures of different sizes, padded) gives each mixture's
    own quantiles, and they invert its CDF."""
    from metak.exact import NormalMixture, mixture_quantiles

    rng = np.random.default_rng(11)
    mixtures = []
    for size in (1, 2, 7, 198, 2400):
        weights = rng.dirichlet(np.full(size, 0.5))
        mixtures.append(NormalMixture(weights, rng.normal(size=size), rng.uniform(0.02, 2, size)))
    probs = np.array([0.025, 0.5, 0.975])
    together = mixture_quantiles(mixtures, probs)
    assert together.shape == (3, len(mixtures))
    for j, mixture in enumerate(mixtures):
        assert np.allclose(together[:, j], mixture.quantile(probs), rtol=1e-9, atol=1e-12)
        assert np.allclose(mixture.cdf(together[:, j]), probs, rtol=0, atol=1e-9)
