"""The vectorised PSIS-LOO against arviz-stats' own :func:`arviz_stats.loo` on the same arrays.

arviz-stats fits each observation's tail in turn; :mod:`metak.robustness.pareto_smoothing` fits
them all at once with the same algorithm, so every number — smoothed log weights, Pareto k,
elpd_i, elpd, se, p_loo, warning, good_k — must agree up to the order of floating-point
operations, including on the branches taken rarely (heavy tails with k > 0.7, a tail whose first
quartile equals its minimum, the short-sample tail rule), and the exact checks' ELPDData must be
the one arviz would build, down to what :func:`arviz_stats.compare` makes of it.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from arviz_stats import compare, loo

from metak.robustness.pareto_smoothing import gpd_fit, psis_loo
from metak.robustness.problem import BASE, Variant, fit_variant
from metak.robustness.psis import _PSIS_STREAM, EXACT_PSIS_DRAWS, _psis, exact_psis, psis
from tests.robustness_helpers import reference_problem

# Same algorithm, same numpy operations in the same order: the results are bit-identical today
# (every difference seen was 0). 1e-10 relative allows a future numpy to round a vectorised
# loop differently from a one-row one, and still catches any changed step of the algorithm.
RTOL = 1e-10
# Absolute floor for values that are 0 or nearly so (a log weight of the largest draw).
ATOL = 1e-12


def _arviz_loo(log_lik: np.ndarray, labels: list[str] | None = None):
    """arviz-stats' PSIS-LOO of a ``(study, draw)`` array as one chain, r_eff = 1."""
    k = log_lik.shape[0]
    labels = labels if labels is not None else [f"s{i}" for i in range(k)]
    dataset = xr.Dataset(
        {"y": (("chain", "draw", "study"), log_lik.T[None])}, coords={"study": labels}
    )
    with warnings.catch_warnings():
        # Raised on purpose by the cases here: k above good_k, and one study's elpd equal to
        # the sum. Nothing else is silenced (numpy's RuntimeWarnings would fail the test).
        warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto")
        warnings.filterwarnings("ignore", message="The point-wise LOO is the same")
        return loo(
            xr.DataTree.from_dict({"log_likelihood": dataset}),
            pointwise=True,
            var_name="y",
            reff=1.0,
        )


def _degenerate_column(n: int, rng: np.random.Generator) -> np.ndarray:
    """A log-likelihood whose largest raw weights begin with 100 ties: the tail's first quartile
    is its minimum, so arviz gives k = nan and leaves the weights unsmoothed."""
    neg = rng.uniform(0.0, 4.0, n)
    neg[:100] = 5.0
    neg[100:189] = rng.uniform(5.5, 10.0, 89)
    return -rng.permutation(neg)


CASES = [
    "one study",
    "five studies",
    "fifty studies",
    "heavy tails",
    "underflowing tails",
    "degenerate column",
    "draws not a square",
    "few draws",
]


def _case(name: str) -> np.ndarray:
    """The ``(study, draw)`` log-likelihood of a named case (seeded by its place in CASES)."""
    rng = np.random.default_rng(CASES.index(name))
    if name == "one study":
        return rng.normal(-1.0, 0.3, (1, 4000))
    if name == "five studies":
        return -0.5 * rng.chisquare(3, (5, 4000)) * rng.uniform(0.2, 1.0, (5, 1))
    if name == "fifty studies":
        return -0.5 * rng.chisquare(2, (50, 4000)) * rng.uniform(0.2, 2.0, (50, 1))
    if name == "heavy tails":
        # Exponential(scale c) minus log-likelihoods: raw weights exp(-log_lik) are Pareto with
        # shape k = c, planted between 0.75 and 1.2.
        return -rng.exponential(rng.uniform(0.75, 1.2, (8, 1)), (8, 4000))
    if name == "underflowing tails":
        # -|t_1.2| scaled: most of each tail's exp(log weight) underflows to 0, so most rows
        # take the degenerate branch (k = nan) and the rest have k far above 1.
        return -np.abs(rng.standard_t(1.2, (8, 4000))) * rng.uniform(1.0, 3.0, (8, 1))
    if name == "degenerate column":
        others = -0.5 * rng.chisquare(3, (3, 4000))
        return np.vstack([others[:1], _degenerate_column(4000, rng)[None], others[1:]])
    if name == "draws not a square":
        return -0.5 * rng.chisquare(3, (6, 1234)) * rng.uniform(0.2, 2.0, (6, 1))
    if name == "few draws":
        # n r_eff <= 225: the tail is n / 5 draws, not 3 sqrt(n).
        return -0.5 * rng.chisquare(3, (4, 200))
    raise ValueError(name)


def _assert_close(ours, theirs) -> float:
    """Assert agreement (nan where arviz has nan, inf where inf); the largest relative gap."""
    ours, theirs = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL, equal_nan=True)
    finite = np.isfinite(theirs)
    assert np.array_equal(finite, np.isfinite(ours))
    assert np.array_equal(ours[~finite], theirs[~finite], equal_nan=True)
    if not finite.any():
        return 0.0
    gap = np.abs(ours[finite] - theirs[finite]) / np.maximum(np.abs(theirs[finite]), ATOL)
    return float(gap.max())


@pytest.mark.parametrize("name", CASES)
def test_psis_loo_matches_arviz_stats(name):
    log_lik = _case(name)
    ours = psis_loo(log_lik)
    theirs = _arviz_loo(log_lik)
    weights = theirs.log_weights.transpose("study", "chain", "draw").values[:, 0, :]
    _assert_close(ours.log_weights, weights)
    _assert_close(ours.pareto_k, theirs.pareto_k.values)
    _assert_close(ours.elpd_i, theirs.elpd_i.values)
    for mine, arviz in [(ours.elpd, theirs.elpd), (ours.se, theirs.se), (ours.p_loo, theirs.p)]:
        assert mine == pytest.approx(arviz, rel=RTOL, abs=ATOL)
    assert ours.warning == theirs.warning
    assert ours.good_k == theirs.good_k
    # Each row of weights is normalised.
    assert np.allclose(np.log(np.sum(np.exp(ours.log_weights), axis=1)), 0.0, atol=1e-12)


def test_the_cases_take_the_branches_they_are_named_for():
    heavy = psis_loo(_case("heavy tails")).pareto_k
    assert np.all(np.isfinite(heavy)) and np.sum(heavy > 0.7) >= 4
    underflowing = psis_loo(_case("underflowing tails")).pareto_k
    assert np.isnan(underflowing).any() and np.nanmin(underflowing) > 1
    k = psis_loo(_case("degenerate column")).pareto_k
    assert np.isnan(k[1]) and np.all(np.isfinite(k[[0, 2, 3]]))
    assert not np.sqrt(_case("draws not a square").shape[1]).is_integer()


def test_gpd_fit_matches_arviz_row_by_row_including_its_nan_and_inf():
    # arviz-stats' per-observation fit (private, so named here only) on each row in turn.
    from arviz_stats.base.diagnostics import _DiagnosticsBase

    x = np.sort(np.random.default_rng(2).exponential(size=(4, 40)), axis=1)
    x[1, :15] = x[1, 0]  # first quartile (the 10th value) equals the minimum: nan
    x[2, -1] = np.nan  # a fit that is not a number: k = inf
    with np.errstate(invalid="ignore"):
        kappa, sigma = gpd_fit(x)
        expected = [_DiagnosticsBase._gpdfit(row) for row in x]
    assert np.isnan(kappa[1]) and np.isnan(sigma[1])
    assert kappa[2] == np.inf and np.isnan(sigma[2])
    _assert_close(kappa, [k for k, _ in expected])
    _assert_close(sigma, [s for _, s in expected])


def _same_draws(problem, fit, seed):
    """The ``(study, draw)`` log-likelihood ``exact_psis`` draws for this seed."""
    rng = np.random.default_rng([_PSIS_STREAM, seed])
    return fit.pointwise_log_likelihood(problem, EXACT_PSIS_DRAWS, rng).T


def _assert_same_elpd_data(ours, theirs):
    assert type(ours) is type(theirs)
    for field in dataclasses.fields(theirs):
        mine, arviz = getattr(ours, field.name), getattr(theirs, field.name)
        if isinstance(arviz, xr.DataArray):
            assert mine.dims == arviz.dims and mine.name == arviz.name
            assert mine.coords.keys() == arviz.coords.keys()
            for coord in arviz.coords:
                assert np.array_equal(mine[coord].values, arviz[coord].values)
            _assert_close(mine.values, arviz.values)
        elif isinstance(arviz, float) and not isinstance(arviz, bool):
            assert type(mine) is type(arviz)
            assert mine == pytest.approx(arviz, rel=RTOL, abs=ATOL)
        else:
            assert type(mine) is type(arviz) and mine == arviz, field.name


@pytest.mark.parametrize("dataset", ["bcg_logRR", "raudenbush1985_SMD"])
def test_exact_psis_is_arviz_loo_of_its_draws(dataset):
    problem = reference_problem(dataset)
    fit = fit_variant(problem)
    ours = exact_psis(problem, fit, seed=11)
    log_lik = _same_draws(problem, fit, 11)
    _assert_same_elpd_data(ours.elpd_data, _arviz_loo(log_lik, list(problem.labels)))
    # The Psis pieces are those the arviz route (still used for posterior trees) gives.
    tree = xr.DataTree.from_dict(
        {
            "log_likelihood": xr.Dataset(
                {"y": (("chain", "draw", "study"), log_lik.T[None])},
                coords={"study": list(problem.labels)},
            )
        }
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The point-wise LOO is the same")
        old = _psis(tree, 1.0)
    assert ours.studies == old.studies == problem.labels
    assert ours.good_k == old.good_k
    _assert_close(ours.elpd_i, old.elpd_i)
    _assert_close(ours.pareto_k, old.pareto_k)
    _assert_close(ours.log_weights, old.log_weights)


def test_an_exact_posterior_tree_is_arviz_loo_of_its_stored_draws():
    """``psis`` of a stored exact tree (several chains) takes the vectorised route: the ELPDData
    and the pieces are arviz-stats' loo of the same tree, chain dimension included."""
    problem = reference_problem("bcg_logRR")
    fit = fit_variant(problem)
    log_lik = _same_draws(problem, fit, 5)  # (study, 4000 draws), stored as 4 chains
    chains = 4
    stored = log_lik.T.reshape(chains, -1, problem.k)
    tree = xr.DataTree.from_dict(
        {
            "log_likelihood": xr.Dataset(
                {"y": (("chain", "draw", "study"), stored)},
                coords={"study": list(problem.labels)},
            )
        }
    )
    tree.attrs["metak_method"] = "exact"
    ours = psis(tree, all_draws=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The point-wise LOO is the same")
        theirs = _psis(tree, 1.0)
    _assert_same_elpd_data(ours.elpd_data, theirs.elpd_data)
    assert ours.elpd_data.log_weights.sizes == {"study": problem.k, "chain": chains, "draw": 1000}
    assert ours.studies == theirs.studies == problem.labels
    _assert_close(ours.log_weights, theirs.log_weights)
    _assert_close(ours.pareto_k, theirs.pareto_k)


def test_compare_reads_our_elpd_data_as_it_reads_arviz_own():
    problem = reference_problem("bcg_logRR")
    fits = {"effect": fit_variant(problem, BASE), "no effect": fit_variant(problem, Variant(False))}
    ours = {name: exact_psis(problem, fit, seed=3).elpd_data for name, fit in fits.items()}
    theirs = {
        name: _arviz_loo(_same_draws(problem, fit, 3), list(problem.labels))
        for name, fit in fits.items()
    }
    ours_table = compare(ours, round_to="none")
    theirs_table = compare(theirs, round_to="none")
    assert list(ours_table.index) == list(theirs_table.index)
    assert list(ours_table.columns) == list(theirs_table.columns)
    numeric = ours_table.select_dtypes("number").columns
    pd.testing.assert_frame_equal(
        ours_table[numeric].astype(float), theirs_table[numeric].astype(float), rtol=RTOL
    )
    others = ours_table.columns.difference(numeric)
    pd.testing.assert_frame_equal(ours_table[others], theirs_table[others])
