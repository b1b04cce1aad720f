"""PSIS-LOO vectorised over observations: smoothed log weights, Pareto k, elpd, se, p_loo.

Hand-written because arviz-stats has no API vectorised over observations: its
:func:`~arviz_stats.loo` fits the generalized Pareto tail one observation at a time (a Python
loop, with two or three scipy ``logsumexp`` calls per observation), and that loop dominated the
batch's robustness checks. Here every step is one numpy operation on ``(observation, draw)``
arrays. The algorithm is arviz-stats' (1.3) step for step — tail length, the Zhang–Stephens
empirical-Bayes fit with its prior on k, negligible-weight removal, smoothing by the GPD
quantiles truncated at the largest raw weight, normalisation, and the pointwise and summary
formulas — and ``tests/test_pareto_smoothing.py`` checks it against :func:`arviz_stats.loo`.

References: Vehtari, Simpson, Gelman, Yao and Gabry (2024), *Pareto smoothed importance
sampling*, JMLR 25(72); Zhang and Stephens (2009), *A new and efficient estimation method for
the generalized Pareto distribution*, Technometrics 51(3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metak.numeric import logsumexp

__all__ = ["PsisLoo", "psis_loo", "psis_log_weights", "gpd_fit", "gpd_quantile", "good_k"]

# arviz-stats' weakly informative prior on the GPD shape: k ~ 0.5 with the weight of 10 draws,
# and the prior scale of the Zhang–Stephens grid for b.
_PRIOR_K = 10
_PRIOR_BS = 3
# Grid points of b whose posterior weight is below this are dropped (arviz-stats' rule).
_NEGLIGIBLE_WEIGHT = 10 * np.finfo(float).eps
# Fewer tail draws than this cannot be fitted (arviz-stats raises too).
_MIN_TAIL_DRAWS = 5


@dataclass(frozen=True, eq=False)
class PsisLoo:
    """PSIS-LOO of ``k`` observations from ``n`` draws each.

    Attributes
    ----------
    log_weights : numpy.ndarray
        ``(k, n)`` Pareto-smoothed log importance weights, each row normalised (log-sum-exp 0).
    pareto_k : numpy.ndarray
        ``(k,)`` estimated GPD shape of each row's tail (nan when the tail is far from a GPD,
        inf when the fit failed).
    elpd_i : numpy.ndarray
        ``(k,)`` leave-one-out expected log predictive density of each observation.
    p_loo_i : numpy.ndarray
        ``(k,)`` effective number of parameters of each observation (lppd_i - elpd_i).
    elpd : float
        Sum of ``elpd_i``.
    se : float
        Standard error of ``elpd``: ``sqrt(k var(elpd_i))`` (0 for one observation).
    p_loo : float
        Sum of ``p_loo_i``.
    good_k : float
        Pareto k threshold for ``n`` draws, ``min(1 - 1/log10(n), 0.7)``.
    warning : bool
        Whether any ``pareto_k`` exceeds ``good_k``.
    """

    log_weights: np.ndarray
    pareto_k: np.ndarray
    elpd_i: np.ndarray
    p_loo_i: np.ndarray
    elpd: float
    se: float
    p_loo: float
    good_k: float
    warning: bool


def good_k(n_draws: int) -> float:
    """Pareto k above which PSIS is unreliable for ``n_draws`` draws (arviz-stats' rule).

    Parameters
    ----------
    n_draws : int
        Number of draws.

    Returns
    -------
    float
        ``min(1 - 1/log10(n_draws), 0.7)``, or 0.7 for a single draw.
    """
    return min(1 - 1 / np.log10(n_draws), 0.7) if n_draws > 1 else 0.7


def psis_loo(log_lik: np.ndarray, r_eff: float = 1.0) -> PsisLoo:
    """PSIS-LOO of every observation at once.

    Parameters
    ----------
    log_lik : numpy.ndarray
        ``(k, n)`` pointwise log-likelihood: ``log p(y_i | draw s)`` for observation ``i`` and
        draw ``s`` (chains flattened).
    r_eff : float, default 1.0
        Relative efficiency of the draws (1 for independent draws); sets the tail length.

    Returns
    -------
    PsisLoo
        Smoothed log weights, Pareto k, pointwise and summed elpd, se, p_loo, good_k, warning.

    Raises
    ------
    ValueError
        If there are too few draws for a tail of 5, or a row's tail draws are all equal.
    """
    log_lik = np.ascontiguousarray(log_lik, dtype=float)
    if log_lik.ndim != 2:
        raise ValueError(f"log_lik must be (observation, draw), got shape {log_lik.shape}")
    n_obs, n_draws = log_lik.shape
    log_weights, pareto_k = psis_log_weights(log_lik, r_eff)
    elpd_i = logsumexp(log_weights + log_lik, axis=1)
    lppd_i = logsumexp(log_lik, axis=1, b=1 / n_draws)
    p_loo_i = lppd_i - elpd_i
    threshold = good_k(n_draws)
    return PsisLoo(
        log_weights=log_weights,
        pareto_k=pareto_k,
        elpd_i=elpd_i,
        p_loo_i=p_loo_i,
        elpd=np.sum(elpd_i),
        se=np.sqrt(n_obs * np.var(elpd_i, ddof=1)) if n_obs > 1 else 0.0,
        p_loo=np.sum(p_loo_i),
        good_k=threshold,
        warning=bool(np.any(pareto_k > threshold)),
    )


def psis_log_weights(log_lik: np.ndarray, r_eff: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Pareto-smoothed leave-one-out log weights of every observation.

    The raw log weight of draw ``s`` for observation ``i`` is ``-log_lik[i, s]``; the largest
    ``M`` of each row (``M = floor(3 sqrt(n / r_eff))`` when ``n r_eff > 225``, else
    ``floor(n / 5)``) are replaced by the quantiles of a generalized Pareto distribution fitted
    to them, truncated at the row's largest raw weight, and each row is normalised.

    Parameters
    ----------
    log_lik : numpy.ndarray
        ``(k, n)`` pointwise log-likelihood.
    r_eff : float, default 1.0
        Relative efficiency of the draws.

    Returns
    -------
    log_weights : numpy.ndarray
        ``(k, n)`` smoothed log weights, each row with log-sum-exp 0. A row whose fitted shape
        is not finite keeps its raw weights (normalised).
    pareto_k : numpy.ndarray
        ``(k,)`` fitted GPD shape of each row's tail.

    Raises
    ------
    ValueError
        If the tail would hold fewer than 5 draws, or a row's tail draws are all equal.
    """
    log_lik = np.asarray(log_lik, dtype=float)
    n_draws = log_lik.shape[1]
    if n_draws * r_eff > 225:
        n_tail = int(np.floor(3 * (n_draws / r_eff) ** 0.5))
    else:
        n_tail = int(np.floor(n_draws / 5))
    if n_tail < _MIN_TAIL_DRAWS:
        raise ValueError("n_draws_tail must be at least 5")

    log_weights = -log_lik
    log_weights = log_weights - np.max(log_weights, axis=1, keepdims=True)
    order = np.argsort(log_weights, axis=1)
    tail_at = order[:, n_draws - n_tail :]
    tail = np.take_along_axis(log_weights, tail_at, axis=1)
    cutoff = np.take_along_axis(log_weights, order[:, n_draws - n_tail - 1 : n_draws - n_tail], 1)
    max_tail = np.max(tail, axis=1, keepdims=True)
    if np.any(np.abs(max_tail - np.min(tail, axis=1, keepdims=True)) < np.finfo(float).tiny):
        raise ValueError("All tail values are the same")

    exp_cutoff = np.exp(cutoff)
    kappa, sigma = gpd_fit(np.exp(tail) - exp_cutoff)
    smooth = np.isfinite(kappa)
    if np.any(smooth):
        probs = np.arange(0.5, n_tail) / n_tail
        with np.errstate(divide="ignore", invalid="ignore"):
            smoothed = np.log(
                gpd_quantile(probs, kappa[smooth, None], sigma[smooth, None], exp_cutoff[smooth])
            )
        smoothed = np.where(smoothed > max_tail[smooth], max_tail[smooth], smoothed)
        rows = np.flatnonzero(smooth)[:, None]
        log_weights[rows, tail_at[smooth]] = smoothed
    log_weights -= logsumexp(log_weights, axis=1)[:, None]
    return log_weights, kappa


def gpd_fit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Empirical-Bayes fit of a generalized Pareto distribution to each row (Zhang–Stephens).

    The posterior mean of ``b = -k / sigma`` over a grid of ``30 + floor(sqrt(m))`` values,
    then ``k`` shrunk towards 0.5 by a prior worth 10 observations (Vehtari et al. 2024).

    Parameters
    ----------
    x : numpy.ndarray
        ``(k, m)`` exceedances over the threshold, each row sorted ascending and positive.

    Returns
    -------
    kappa : numpy.ndarray
        ``(k,)`` shape of each row: nan where the first quartile does not exceed the minimum
        (far from a GPD), inf where the fit is not a number.
    sigma : numpy.ndarray
        ``(k,)`` scale of each row (nan where ``kappa`` is nan or inf).
    """
    x = np.asarray(x, dtype=float)
    n = x.shape[1]
    m_est = 30 + int(n**0.5)
    xstar = x[:, int((n / 4 + 0.5) - 1)]  # first quartile
    usable = xstar > x[:, 0]
    # Unusable rows get a harmless stand-in quartile; their result is replaced by nan below.
    xstar = np.where(usable, xstar, 1.0)

    b_grid = 1 - np.sqrt(m_est / (np.arange(1, m_est + 1, dtype=float) - 0.5))
    b_grid = b_grid / (_PRIOR_BS * xstar[:, None]) + 1 / x[:, -1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        k_grid = np.mean(np.log1p(-b_grid[:, :, None] * x[:, None, :]), axis=2)
        profile = n * (np.log(-b_grid / k_grid) - k_grid - 1)
        weights = np.exp(profile - logsumexp(profile, axis=1)[:, None])
        b_post = _posterior_mean(b_grid, weights)
        kappa = np.mean(np.log1p(-b_post[:, None] * x), axis=1)
        sigma = -kappa / b_post
    kappa = (n * kappa + _PRIOR_K * 0.5) / (n + _PRIOR_K)
    failed = np.isnan(kappa)
    kappa = np.where(usable, np.where(failed, np.inf, kappa), np.nan)
    sigma = np.where(usable & ~failed, sigma, np.nan)
    return kappa, sigma


def gpd_quantile(
    probs: np.ndarray, kappa: np.ndarray, sigma: np.ndarray, mu: np.ndarray
) -> np.ndarray:
    """Quantiles of generalized Pareto distributions (broadcast over the arguments).

    Parameters
    ----------
    probs : numpy.ndarray
        Probabilities in [0, 1).
    kappa, sigma, mu : numpy.ndarray
        Shape, scale and location; nan where ``sigma <= 0``.

    Returns
    -------
    numpy.ndarray
        ``mu + sigma * expm1(-kappa * log1p(-probs)) / kappa`` (``mu - sigma log1p(-probs)``
        where ``kappa`` is 0), broadcast.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        general = mu + sigma * np.expm1(-kappa * np.log1p(-probs)) / kappa
        exponential = mu - sigma * np.log1p(-probs)
    q = np.where(kappa == 0, exponential, general)
    return np.where(sigma <= 0, np.nan, q)


def _posterior_mean(b_grid: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Each row's weighted mean of ``b_grid``, the negligible weights dropped, then normalised.

    Dropped, not zeroed: zeros would regroup numpy's pairwise sums and move the last bit away
    from arviz-stats' result. So each row's kept points are moved to its front (in order) and
    the rows are summed in groups of equal length (a loop over the few distinct lengths).
    """
    keep = weights >= _NEGLIGIBLE_WEIGHT
    front = np.argsort(~keep, axis=1, kind="stable")
    weights = np.take_along_axis(weights, front, axis=1)
    b_grid = np.take_along_axis(b_grid, front, axis=1)
    counts = np.count_nonzero(keep, axis=1)
    b_post = np.empty(len(counts))
    for count in np.unique(counts):
        rows = counts == count
        kept = weights[rows, :count]
        kept = kept / np.sum(kept, axis=1, keepdims=True)
        b_post[rows] = np.sum(b_grid[rows, :count] * kept, axis=1)
    return b_post
