"""A fit on another fit's tau grid (``fit_exact(..., grid_from=...)``) against a fit of its own.

The robustness checks refit an analysis under other priors, with a study left out, or summarise
an unsummarised fit; each starts from a nearby fit's grid when that grid holds the new posterior.
The second method here is the fit that chooses its own grid: both are quadratures of the same
integrals, so they must agree to rounding (log p(y)) or to the quadrature's own accuracy
(mixtures, tau); where the grid cannot hold the posterior the fit must fall back to its own.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from metak.exact import _Conjugate, fit_exact
from metak.priors import Prior
from tests.conftest import REFERENCE

# log p(y) is the same integral on two fine grids: Simpson's error is far below rounding here.
LML_TOLERANCE = 1e-12
# Means, SDs and quantiles of the coefficients (relative to the posterior SD) and tau's mean and
# SD: two 2001-node Simpson rules of smooth integrands.
MIXTURE_TOLERANCE = 1e-9
# tau's quantiles interpolate a trapezoid CDF on the grid linearly: on these reviews a fit of its
# own is itself up to 5e-5 (relative) from one on a 20 times finer grid, so two grids agree to
# about that.
TAU_QUANTILE_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def bcg():
    data = pd.read_csv(REFERENCE / "bcg_logRR.csv")
    return data["yi"].to_numpy(float), data["vi"].to_numpy(float), data["ablat"].to_numpy(float)


def _reviews():
    """The bcg data, and planted reviews from k = 1 to 60 with tau from 0 to 0.6."""
    rng = np.random.default_rng(20261207)
    data = pd.read_csv(REFERENCE / "bcg_logRR.csv")
    yield data["yi"].to_numpy(float), data["vi"].to_numpy(float)
    for k, tau in [(1, 0.0), (2, 0.3), (5, 0.0), (12, 0.05), (30, 0.2), (60, 0.6)]:
        v = rng.uniform(0.005, 0.2, k)
        yield rng.normal(0.2, np.sqrt(v + tau**2)), v


def _assert_same_posterior(held, own, names=("mu",)):
    assert held.log_marginal_likelihood == pytest.approx(
        own.log_marginal_likelihood, rel=LML_TOLERANCE, abs=LML_TOLERANCE
    )
    for name in names:
        a, b = held.coef_mixture(name, 10), own.coef_mixture(name, 10)
        scale = b.sd
        assert abs(a.mean - b.mean) <= MIXTURE_TOLERANCE * scale
        assert a.sd == pytest.approx(b.sd, rel=MIXTURE_TOLERANCE)
        qa, qb = a.quantile([0.025, 0.5, 0.975]), b.quantile([0.025, 0.5, 0.975])
        assert np.max(np.abs(qa - qb)) <= MIXTURE_TOLERANCE * scale
    tau_held, tau_own = held.summary("tau").as_dict(), own.summary("tau").as_dict()
    for field in ("mean", "sd"):
        assert tau_held[field] == pytest.approx(tau_own[field], rel=MIXTURE_TOLERANCE)
    for field in ("q025", "q50", "q975"):
        assert tau_held[field] == pytest.approx(tau_own[field], rel=TAU_QUANTILE_TOLERANCE)


@pytest.mark.parametrize(
    ("tau_prior", "effect_prior", "held_at_least"),
    [
        # Narrower tau priors and other effect priors: the base grid holds them (on 6 or 7 of the
        # 7 reviews: a shifted posterior can start below the grid on one).
        ("halfnormal(0.25)", "normal(0, 1)", 6),
        ("halfnormal(0.5)", "normal(0, 0.5)", 6),
        ("halfnormal(0.5)", "normal(0, 2)", 6),
        ("halfnormal(0.5)", "normal(0, 1)", 7),
        # Wider ones reach past the base grid's top when the data say little about tau: a fit of
        # their own then (either way the result must be the same).
        ("halfnormal(1)", "normal(0, 1)", 1),
        ("halfcauchy(0.5)", "normal(0, 1)", 1),
    ],
)
def test_other_priors_on_the_base_grid_equal_a_fit_of_their_own(
    tau_prior, effect_prior, held_at_least
):
    held_count = 0
    for y, v in _reviews():
        base = fit_exact(
            y, v, coef_priors="normal(0, 1)", tau_prior="halfnormal(0.5)", summarize=False
        )
        own = fit_exact(y, v, coef_priors=effect_prior, tau_prior=tau_prior, summarize=False)
        held = fit_exact(
            y, v, coef_priors=effect_prior, tau_prior=tau_prior, summarize=False, grid_from=base
        )
        held_count += held.tau_grid is base.tau_grid
        _assert_same_posterior(held, own)
        # Unsummarised fits locate the mode to 1e-4 of a bracket a few % of tau wide.
        width = own.summary("tau").sd
        assert held.tau_mode == pytest.approx(own.tau_mode, rel=1e-4, abs=1e-4 * width)
    assert held_count >= held_at_least


def test_the_same_model_summarised_from_an_unsummarised_fit(bcg):
    """Summarising reuses the grid and conditionals as they are and finds the mode to 1e-10."""
    y, v, x = bcg
    X = np.column_stack([np.ones_like(x), x - x.mean()])
    args = dict(coef_names=("intercept", "ablat"), coef_priors="normal(0, 10)")
    quick = fit_exact(y, v, X, tau_prior="halfnormal(1.0)", summarize=False, **args)
    own = fit_exact(y, v, X, tau_prior="halfnormal(1.0)", **args)
    held = fit_exact(y, v, X, tau_prior="halfnormal(1.0)", grid_from=quick, **args)
    assert held.tau_grid is quick.tau_grid and held.cond_cov is quick.cond_cov
    _assert_same_posterior(held, own, ("intercept", "ablat"))
    for name in ("intercept", "ablat"):
        for field in ("mean", "sd", "q025", "q50", "q975"):
            a, b = held.summary(name).as_dict()[field], own.summary(name).as_dict()[field]
            assert a == pytest.approx(b, rel=1e-10, abs=1e-12)
    # log p(tau | y) is flat at its maximum: its rounding (~1e-16) moves the best point by about
    # its square root, relative to tau's spread, whichever bracket the search starts from.
    assert held.tau_mode == pytest.approx(own.tau_mode, rel=1e-7)


def test_one_study_left_out_on_the_full_grid(bcg):
    """Other data on the grid: the conditionals are recomputed on its nodes."""
    y, v, _ = bcg
    args = dict(coef_priors="normal(0, 10)", tau_prior="halfnormal(1)", summarize=False)
    base = fit_exact(y, v, **args)
    held_count = 0
    for i in range(y.size):
        keep = np.arange(y.size) != i
        own = fit_exact(y[keep], v[keep], **args)
        held = fit_exact(y[keep], v[keep], grid_from=base, **args)
        held_count += held.tau_grid is base.tau_grid
        _assert_same_posterior(held, own)
    # Most of bcg's studies move tau's lower tail below the full grid's start: own grids then.
    assert held_count >= 1


@pytest.mark.parametrize(
    "tau_prior",
    [
        "uniform(0, 0.05)",  # support ends inside the grid: -inf density on nodes
        "uniform(0.2, 3)",  # support starts inside the grid (a jump Simpson cannot integrate)
        "halfnormal(200)",  # k = 1: the posterior reaches far beyond the grid's top
        "halfnormal(0.0005)",  # all mass far below the grid's transition scale
    ],
)
def test_a_grid_that_cannot_hold_the_posterior_is_not_used(tau_prior):
    y, v = np.array([0.3]), np.array([0.04])
    base = fit_exact(y, v, coef_priors="normal(0, 1)", tau_prior="halfnormal(0.5)")
    own = fit_exact(y, v, coef_priors="normal(0, 1)", tau_prior=tau_prior)
    held = fit_exact(y, v, coef_priors="normal(0, 1)", tau_prior=tau_prior, grid_from=base)
    assert held.tau_grid is not base.tau_grid
    assert np.array_equal(held.tau_grid, own.tau_grid)
    assert held.log_marginal_likelihood == own.log_marginal_likelihood
    assert held.summaries == own.summaries


def test_another_grid_size_is_not_taken_over(bcg):
    y, v, _ = bcg
    base = fit_exact(y, v, coef_priors="normal(0, 1)", tau_prior="halfnormal(0.5)")
    other = fit_exact(
        y, v, coef_priors="normal(0, 1)", tau_prior="halfnormal(0.5)", grid_size=501, grid_from=base
    )
    assert other.tau_grid.size == 501


@pytest.mark.parametrize("p", [0, 1, 2])
def test_log_likelihood_alone_is_the_full_calls_value(bcg, p):
    """The lean path of the grid search gives the very same numbers as the full call."""
    y, v, x = bcg
    X = np.column_stack([np.ones_like(x), x - x.mean()])[:, :p]
    for prec in (np.zeros(p), np.full(p, 0.01)):
        model = _Conjugate.build(y, v, X, np.full(p, 0.1), prec)
        tau = np.concatenate([[0.0], np.geomspace(1e-9, 1e4, 400)])
        assert np.array_equal(model.log_likelihood(tau), model(tau)[2])


def test_a_flat_prior_keeps_the_marginal_likelihood_undefined(bcg):
    y, v, _ = bcg
    base = fit_exact(y, v, coef_priors=None, tau_prior="halfnormal(0.5)", summarize=False)
    held = fit_exact(y, v, coef_priors=None, tau_prior=Prior("halfnormal", (0.25,)), grid_from=base)
    assert np.isnan(held.log_marginal_likelihood)
    own = fit_exact(y, v, coef_priors=None, tau_prior=Prior("halfnormal", (0.25,)))
    assert held.summary("mu").mean == pytest.approx(own.summary("mu").mean, rel=1e-10)
