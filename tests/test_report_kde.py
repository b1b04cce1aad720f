"""The report's kernel density estimate against scipy.stats.gaussian_kde and closed forms."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import gaussian_kde

from metak.report.kde import density, scott_bandwidth


@pytest.mark.parametrize(
    "draws",
    [
        np.random.default_rng(1).normal(2.0, 3.0, 16_000),
        np.random.default_rng(2).standard_t(3, 5_000),
        np.random.default_rng(3).normal(0.0, 1.0, 200),
    ],
)
def test_matches_scipy_gaussian_kde(draws):
    grid = np.linspace(*np.quantile(draws, [0.005, 0.995]), 300)
    ours = density(draws, grid, reflect_at_zero=False)
    theirs = gaussian_kde(draws)(grid)
    assert np.max(np.abs(ours - theirs)) < 1e-3 * theirs.max()
    assert scott_bandwidth(draws) == pytest.approx(
        np.sqrt(gaussian_kde(draws).covariance[0, 0]), rel=1e-12
    )


def test_kernel_wider_than_the_plotted_range():
    # A wide prior seen through the posterior's narrow window: the density is nearly flat there.
    draws = np.random.default_rng(4).normal(0.0, 10.0, 4_000)
    grid = np.linspace(-0.1, 0.1, 50)
    ours = density(draws, grid, reflect_at_zero=False)
    np.testing.assert_allclose(ours, gaussian_kde(draws)(grid), rtol=1e-3)


def test_reflection_at_zero_recovers_a_half_normal():
    draws = np.abs(np.random.default_rng(5).normal(0.0, 1.0, 200_000))
    grid = np.linspace(0.0, 2.5, 11)
    truth = 2 * np.exp(-0.5 * grid**2) / np.sqrt(2 * np.pi)
    ours = density(draws, grid)  # all draws >= 0: reflected automatically
    # Without reflection the estimate at 0 would be about half the true density.
    np.testing.assert_allclose(ours, truth, atol=0.03)
    assert density(draws, np.array([-0.5]))[0] == 0.0


def test_degenerate_draws_give_zero_density():
    assert not density(np.ones(10), np.linspace(0, 2, 5)).any()
    assert not density(np.array([np.nan, 1.0]), np.linspace(0, 2, 5)).any()
