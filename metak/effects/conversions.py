"""Standard deviations and standard errors recovered from what papers report.

Formulas follow the Cochrane Handbook for Systematic Reviews of Interventions, version 6.4
(Higgins et al., eds., 2023), chapter 6.5.2 "Extracting estimates of effect directly / obtaining
standard deviations". Functions broadcast over numpy arrays and return NaN (not an exception)
where an input cannot give an answer (e.g. a p-value of 1, a zero estimate).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

__all__ = [
    "log_ratio_with_ci",
    "sd_from_ci_mean",
    "sd_from_se",
    "se_from_ci",
    "se_from_ci_ratio",
    "se_from_p",
]


def _critical(level, df=None, *, alpha=None):
    """Two-sided critical value: normal, or Student t with ``df`` where ``df`` is finite.

    Computed from the tail probability ``alpha = 1 - level`` (``isf``), which keeps full
    precision for the tiny tail probabilities of small p-values.
    """
    alpha = 1 - np.asarray(level, dtype=float) if alpha is None else np.asarray(alpha, dtype=float)
    # ndtri/stdtrit of the lower tail, negated: the upper-tail quantile at full precision.
    z = -special.ndtri(alpha / 2)
    if df is None:
        return z
    df = np.asarray(df, dtype=float)
    usable = np.isfinite(df) & (df > 0)
    t = -special.stdtrit(np.where(usable, df, 1.0), alpha / 2)
    return np.where(usable, t, z)


def sd_from_se(se: ArrayLike, n: ArrayLike) -> np.ndarray:
    """SD of one group from the standard error of its mean: ``sd = se * sqrt(n)``.

    Cochrane Handbook 6.5.2.2. ``se`` and ``sem`` are the same quantity.
    """
    se, n = np.asarray(se, dtype=float), np.asarray(n, dtype=float)
    return se * np.sqrt(n)


def sd_from_ci_mean(
    ci_low: ArrayLike, ci_high: ArrayLike, n: ArrayLike, level: float = 0.95
) -> np.ndarray:
    """SD of one group from a confidence interval of its mean.

    ``sd = sqrt(n) * (ci_high - ci_low) / (2 t)``, with ``t`` the two-sided ``level`` quantile of
    Student's t on ``n - 1`` degrees of freedom (Cochrane Handbook 6.5.2.2; the Handbook's 3.92
    is the large-sample normal limit of ``2 t``, and the t value is right at every n).
    """
    ci_low, ci_high, n = (np.asarray(x, dtype=float) for x in (ci_low, ci_high, n))
    return np.sqrt(n) * (ci_high - ci_low) / (2 * _critical(level, n - 1))


def se_from_ci(
    ci_low: ArrayLike, ci_high: ArrayLike, level: float = 0.95, df: ArrayLike | None = None
) -> np.ndarray:
    """Standard error of a difference (MD, SMD, log ratio, ...) from its confidence interval.

    ``se = (ci_high - ci_low) / (2 q)`` where ``q`` is the two-sided ``level`` quantile of the
    normal distribution, or of Student's t with ``df`` degrees of freedom when ``df`` is given
    and finite (Cochrane Handbook 6.5.2.3: for small trials the CI of an MD was usually
    computed from t with ``n1 + n2 - 2`` df).

    Parameters
    ----------
    ci_low, ci_high : array_like
        Interval limits on the scale of the estimate.
    level : array_like, default 0.95
        Confidence level of the interval.
    df : array_like or None
        Degrees of freedom; NaN or None entries use the normal quantile.
    """
    ci_low, ci_high = np.asarray(ci_low, dtype=float), np.asarray(ci_high, dtype=float)
    return (ci_high - ci_low) / (2 * _critical(level, df))


def se_from_ci_ratio(
    ci_low: ArrayLike, ci_high: ArrayLike, level: float = 0.95, df: ArrayLike | None = None
) -> np.ndarray:
    """Standard error of a log ratio (log RR/OR/HR/RM) from the CI of the ratio.

    ``se = (log(ci_high) - log(ci_low)) / (2 q)`` (Cochrane Handbook 6.3.2: ratio intervals
    are symmetric on the log scale). Non-positive limits give NaN.
    """
    ci_low, ci_high = np.asarray(ci_low, dtype=float), np.asarray(ci_high, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.log(np.where(ci_low > 0, ci_low, np.nan))
        high = np.log(np.where(ci_high > 0, ci_high, np.nan))
    return se_from_ci(low, high, level, df)


def se_from_p(estimate: ArrayLike, p_value: ArrayLike, df: ArrayLike | None = None) -> np.ndarray:
    """Standard error from an estimate and its exact two-sided p-value.

    ``se = |estimate| / q`` where ``q`` is the ``1 - p/2`` quantile of the normal distribution,
    or of Student's t with ``df`` degrees of freedom when given (Cochrane Handbook 6.3.2 and
    6.5.2.3; use ``df = n1 + n2 - 2`` when the group sizes are known). For a ratio measure pass
    the *log* estimate. NaN where ``p >= 1`` or the estimate is 0 (no information on the SE).
    """
    estimate, p_value = np.asarray(estimate, dtype=float), np.asarray(p_value, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = _critical(None, df, alpha=p_value)
        se = np.abs(estimate) / q
    informative = (p_value > 0) & (p_value < 1) & (estimate != 0)
    return np.where(informative, se, np.nan)


def log_ratio_with_ci(
    ratio: ArrayLike, ci_low: ArrayLike = np.nan, ci_high: ArrayLike = np.nan
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A ratio (RR, OR, HR, RM) on the natural scale and its CI moved to the log scale.

    Returns ``(log(ratio), log(ci_low), log(ci_high))``; non-positive values give NaN.
    The metafor/Cochrane convention is to pool ratios as logs (Cochrane Handbook 10.3.1).
    """
    out = []
    for value in (ratio, ci_low, ci_high):
        value = np.asarray(value, dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append(np.log(np.where(value > 0, value, np.nan)))
    return tuple(out)
