"""Model averaging against a hand-assembled mixture of the component posteriors.

Each of the 12 models is fitted here directly with :mod:`metak.exact` (designs written out by
hand, not through :mod:`metak.robustness.problem`); the posterior model probabilities, inclusion
Bayes factors and the spike-and-slab averaged effect are then assembled by hand and compared.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, special

from metak.exact import fit_common_effect, fit_exact
from metak.robustness.averaging import ENSEMBLE, average, averaging_rows, inclusion_rows
from metak.robustness.problem import Fits
from tests.robustness_helpers import reference_problem

# Both sides are exact up to quadrature error (the averaged mixtures use a thinned tau grid,
# ~1e-8); 1e-6 leaves room for that and nothing else.
AVERAGING_TOLERANCE = 1e-6
PRIOR = {"none": 0.5, "pet": 0.25, "peese": 0.25}  # README: the bias half split PET / PEESE


def _by_hand(problem):
    """{(effect, random, bias): (prior, log p(y), effect posterior or None)} fitted directly."""
    y, v = problem.y, problem.v
    slopes = problem.X[:, 1:]
    out = {}
    for effect in (True, False):
        for random in (True, False):
            for bias in ("none", "pet", "peese"):
                columns, names, priors = [], [], []
                if effect:
                    columns.append(np.ones_like(y))
                    names.append("effect")
                    priors.append(problem.coef_priors[0])
                for j in range(slopes.shape[1]):
                    columns.append(slopes[:, j])
                    names.append(f"slope{j}")
                    priors.append(problem.coef_priors[1 + j])
                if bias != "none":
                    columns.append(np.sqrt(v) if bias == "pet" else v)
                    names.append("bias")
                    priors.append(problem.bias_priors[bias])
                X = np.column_stack(columns) if columns else np.zeros((y.size, 0))
                if random:
                    post = fit_exact(
                        y, v, X, coef_names=names, coef_priors=priors, tau_prior=problem.tau_prior
                    )
                else:
                    post = fit_common_effect(y, v, X, coef_names=names, coef_priors=priors)
                mixture = post.coef_mixture("effect") if effect else None
                out[(effect, random, bias)] = (
                    0.25 * PRIOR[bias],
                    post.log_marginal_likelihood,
                    mixture,
                )
    return out


@pytest.mark.parametrize("moderator", [None, "ablat"])
def test_posterior_probabilities_and_averaged_effect_equal_the_hand_assembled_mixture(moderator):
    problem = reference_problem("bcg_logRR", moderator=moderator)
    averaged = average(Fits(problem))
    hand = _by_hand(problem)
    keys = [(m.effect, m.random, m.bias) for m in ENSEMBLE]
    assert len(set(keys)) == 12
    prior = np.array([hand[key][0] for key in keys])
    assert prior.sum() == pytest.approx(1.0)
    assert averaged.prior == pytest.approx(prior, rel=1e-15)
    log_post = np.log(prior) + np.array([hand[key][1] for key in keys])
    posterior = np.exp(log_post - special.logsumexp(log_post))
    assert averaged.log_ml == pytest.approx([hand[key][1] for key in keys], abs=1e-9)
    assert averaged.posterior == pytest.approx(posterior, abs=AVERAGING_TOLERANCE)

    # Inclusion Bayes factors: posterior odds over prior odds of each component.
    for name, included in (
        ("effect", lambda key: key[0]),
        ("heterogeneity", lambda key: key[1]),
        ("bias", lambda key: key[2] != "none"),
    ):
        mask = np.array([included(key) for key in keys])
        expected = math.log(posterior[mask].sum() / posterior[~mask].sum()) - math.log(
            prior[mask].sum() / prior[~mask].sum()
        )
        row = next(r for r in inclusion_rows(averaged) if r["hypothesis"] == name)
        assert row["log_bf10"] == pytest.approx(expected, abs=AVERAGING_TOLERANCE)

    # The averaged effect: a spike at 0 (no-effect models) and the effect models' posteriors.
    spike = posterior[[not key[0] for key in keys]].sum()
    slab = [(posterior[i], hand[key][2]) for i, key in enumerate(keys) if key[0]]

    def cdf(x):
        return spike * (x >= 0) + sum(w * m.cdf(x) for w, m in slab)

    mean = sum(w * m.mean for w, m in slab)
    assert averaged.spike == pytest.approx(spike, abs=AVERAGING_TOLERANCE)
    assert averaged.mean == pytest.approx(mean, abs=AVERAGING_TOLERANCE * abs(mean) + 1e-12)
    assert averaged.p_benefit == pytest.approx(
        sum(w * m.cdf(0.0) for w, m in slab), abs=AVERAGING_TOLERANCE
    )
    for x in (-1.0, -0.5, -0.01, 0.0, 0.3):
        assert averaged.cdf(x) == pytest.approx(cdf(x), abs=AVERAGING_TOLERANCE)
    for q in (0.025, 0.975):
        below, at = cdf(-1e-12), cdf(0.0)
        if below < q <= at:
            expected_q = 0.0
        else:
            expected_q = optimize.brentq(lambda x, q=q: cdf(x) - q, -10.0, 10.0, xtol=1e-13)
        assert averaged.quantile(q) == pytest.approx(expected_q, abs=1e-6)


def test_model_averaging_rows_carry_every_model_and_the_two_averages():
    averaged = average(Fits(reference_problem()))
    rows = averaging_rows(averaged)
    assert [row["model"] for row in rows[-2:]] == ["averaged", "averaged_given_effect"]
    assert sum(row["posterior_prob"] for row in rows[:12]) == pytest.approx(1.0)
    assert all(row["method"] == "exact" for row in rows[:12])
    assert all(row["method"] == "averaged" for row in rows[-2:])
    no_effect = [row for row in rows[:12] if not row["effect"]]
    assert all(row["mu_mean"] == 0.0 and row["mu_sd"] == 0.0 for row in no_effect)
    given = rows[-1]
    effect_rows = [row for row in rows[:12] if row["effect"]]
    weights = np.array([row["posterior_prob"] for row in effect_rows])
    expected = (weights @ np.array([row["mu_mean"] for row in effect_rows])) / weights.sum()
    assert given["mu_mean"] == pytest.approx(expected, rel=AVERAGING_TOLERANCE)
