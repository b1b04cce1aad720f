"""Arm-level effect sizes for continuous outcomes: MD, SMD (Hedges' g) and ROM.

Each function takes the two arms' summaries (group 1 = treatment, group 2 = control), broadcasts
numbers and numpy arrays together, and returns ``(yi, vi)``. The formulas are those of R metafor's
``escalc()`` (Viechtbauer 2010, J Stat Softw 36(3); ``?escalc`` "Outcome Measures for Two-Group
Comparisons"), so results match metafor to rounding (tests compare against metafor 3.8-1).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import gammaln

from metak.effects.arithmetic import squared

__all__ = ["hedges_correction", "hedges_g", "log_ratio_of_means", "mean_difference"]


def _floats(*values):
    return [np.asarray(value, dtype=float) for value in values]


def mean_difference(
    m1: ArrayLike, sd1: ArrayLike, n1: ArrayLike, m2: ArrayLike, sd2: ArrayLike, n2: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """Raw mean difference (metafor ``measure="MD"``).

    Parameters
    ----------
    m1, sd1, n1 : array_like
        Mean, standard deviation and size of group 1 (treatment).
    m2, sd2, n2 : array_like
        The same for group 2 (control).

    Returns
    -------
    yi : ndarray
        ``m1 - m2``.
    vi : ndarray
        ``sd1**2 / n1 + sd2**2 / n2``, the unbiased estimate without assuming equal variances
        (metafor's default ``vtype="LS"``; Borenstein et al. 2009, *Introduction to
        Meta-Analysis*, eq. 4.5).
    """
    m1, sd1, n1, m2, sd2, n2 = _floats(m1, sd1, n1, m2, sd2, n2)
    return m1 - m2, sd1**2 / n1 + sd2**2 / n2


def hedges_correction(m: ArrayLike) -> np.ndarray:
    """Exact small-sample bias correction of Cohen's d (Hedges 1981, J Educ Stat 6:107, eq. 6e).

    ``c(m) = exp(lgamma(m/2) - log(sqrt(m/2)) - lgamma((m-1)/2))`` with ``m = n1 + n2 - 2``
    degrees of freedom; metafor uses this exact form rather than ``1 - 3/(4m - 1)``.
    Returns NaN where ``m <= 1`` (the correction is undefined).
    """
    m = np.asarray(m, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        safe = np.where(m > 1, m, np.nan)
        return np.exp(gammaln(safe / 2) - 0.5 * np.log(safe / 2) - gammaln((safe - 1) / 2))


def hedges_g(
    m1: ArrayLike, sd1: ArrayLike, n1: ArrayLike, m2: ArrayLike, sd2: ArrayLike, n2: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """Bias-corrected standardised mean difference, Hedges' g (metafor ``measure="SMD"``).

    ``d = (m1 - m2) / s_pooled`` with ``s_pooled**2 = ((n1-1) sd1**2 + (n2-1) sd2**2) / (n1+n2-2)``,
    ``yi = c(n1+n2-2) * d`` (:func:`hedges_correction`) and the large-sample variance
    ``vi = 1/n1 + 1/n2 + yi**2 / (2 (n1 + n2))`` (Hedges & Olkin 1985, *Statistical Methods for
    Meta-Analysis*, eq. 5.8 with g in place of delta, as in metafor's ``vtype="LS"``).

    Parameters
    ----------
    m1, sd1, n1, m2, sd2, n2 : array_like
        As in :func:`mean_difference`.

    Returns
    -------
    yi, vi : ndarray
        Hedges' g and its sampling variance.
    """
    m1, sd1, n1, m2, sd2, n2 = _floats(m1, sd1, n1, m2, sd2, n2)
    df = n1 + n2 - 2
    s_pooled = np.sqrt(((n1 - 1) * sd1**2 + (n2 - 1) * sd2**2) / df)
    yi = hedges_correction(df) * (m1 - m2) / s_pooled
    vi = 1 / n1 + 1 / n2 + squared(yi) / (2 * (n1 + n2))
    return yi, vi


def log_ratio_of_means(
    m1: ArrayLike, sd1: ArrayLike, n1: ArrayLike, m2: ArrayLike, sd2: ArrayLike, n2: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """Log ratio of means, ``log(m1 / m2)`` (metafor ``measure="ROM"``).

    Variance by the delta method (Hedges, Gurevitch & Curtis 1999, Ecology 80:1150, eq. 1):
    ``vi = sd1**2 / (n1 m1**2) + sd2**2 / (n2 m2**2)``.

    The ratio is defined only for positive means: where ``m1 <= 0`` or ``m2 <= 0`` both ``yi``
    and ``vi`` are NaN (no exception); the caller reports why the row has no effect.

    Parameters
    ----------
    m1, sd1, n1, m2, sd2, n2 : array_like
        As in :func:`mean_difference`.

    Returns
    -------
    yi, vi : ndarray
        Log ratio of means and its sampling variance; NaN where a mean is not positive.
    """
    m1, sd1, n1, m2, sd2, n2 = _floats(m1, sd1, n1, m2, sd2, n2)
    positive = (m1 > 0) & (m2 > 0)
    safe1 = np.where(positive, m1, np.nan)
    safe2 = np.where(positive, m2, np.nan)
    yi = np.log(safe1 / safe2)
    vi = sd1**2 / (n1 * safe1**2) + sd2**2 / (n2 * safe2**2)
    return yi, vi
