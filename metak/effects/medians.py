"""Sample mean and SD from a median with quartiles and/or range, and the cost of converting.

Scenarios (Wan et al. 2014, BMC Med Res Methodol 14:135):

- **S1**: n, minimum ``a``, median ``m``, maximum ``b``;
- **S2**: n, first quartile ``q1``, ``m``, third quartile ``q3``;
- **S3**: all five numbers.

Means
    Luo, Wan, Liu & Tong 2018 (Stat Methods Med Res 27:1785), eqs. (7), (11) and (15): weighted
    averages of mid-range, mid-quartile range and median with weights that depend on n.
SDs
    S1: ``(b - a) / xi(n)`` and S2: ``(q3 - q1) / eta(n)`` (Wan 2014 eqs. 7 and 16), where
    ``xi(n)`` is the expected range and ``eta(n)`` the expected interquartile range of n standard
    normal draws. Wan 2014 prints exact values (Tables 1 and 2) for ``n <= 50`` and for
    ``n = 4Q + 1 <= 201`` and recommends them over the closed-form approximations
    ``2 Phi^-1((n - 0.375)/(n + 0.25))`` and ``2 Phi^-1((0.75 n - 0.125)/(n + 0.25))``; metak
    computes those exact values by quadrature and uses the approximations above the tables, as
    does R ``meta::mean.sd.*`` (Schwarzer). For n not of the form 4Q + 1, ``Q = ceil((n-1)/4)``
    (again as R meta).
    S3: Shi et al. 2020 (Res Synth Methods 11:641) eq. (11), the smoothly weighted combination
    of the range- and IQR-based estimators (the formula as implemented in R ``meta``).

Extra variance of the converted mean (``var_extra``)
    A mean estimated from quantiles is not the sample mean; metak adds the expected squared
    difference between them to the study's variance. It has two parts, both multiplied by the
    estimated SD squared:

    1. *Lost efficiency under normality.* For normal data the sample mean is efficient and
       independent of ``T - mean`` for any location-equivariant estimator ``T`` (Basu's theorem),
       so ``Var(T - mean) = Var(T) - sigma**2/n``. ``Var(T)`` uses the large-sample covariance of
       sample quantiles, ``Cov(X_(p), X_(q)) = p (1 - q) / (n phi(z_p) phi(z_q))`` for ``p <= q``
       (David & Nagaraja 2003, *Order Statistics*, 10.3), with the extremes placed at Blom's
       positions ``(1 - 0.375)/(n + 0.25)`` and ``(n - 0.375)/(n + 0.25)``. For the extremes this
       slightly overstates the variance (e.g. 0.31 vs 0.28 for the maximum of 20), which errs
       on the safe side. For S2 at large n it gives about ``0.16 sigma**2 / n``.
    2. *Bias under moderate skew.* Quantile-based means are biased when data are skewed (the
       usual reason papers report medians). metak adds the squared bias the estimator would have
       for a log-normal distribution with log-scale SD ``SKEW_SIGMA_LOG = 0.5`` (skewness about
       1.75, typical of biomarker concentrations), in units of that distribution's SD, evaluated
       at the population quantiles (the extremes again at Blom's positions). For S2 this is about
       ``0.024 sigma**2``; it does not shrink with n, which is the honest behaviour for a bias.

    The result is an approximation meant to widen the interval by a defensible amount, not an
    exact error model; it is reported separately (``vi_conversion``) so its influence is visible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from metak.effects.arithmetic import squared

__all__ = [
    "METHODS",
    "SKEW_SIGMA_LOG",
    "MedianConversion",
    "expected_normal_iqr",
    "expected_normal_range",
    "from_five_numbers",
    "from_median_iqr",
    "from_median_range",
    "mean_sd_from_median",
]

# Log-scale SD of the log-normal used for the skew part of the conversion variance: 0.5 gives
# skewness ~1.75, "moderately skewed" (Wan 2014 and Luo 2018 simulate log-normal(0, 0.5..1)).
SKEW_SIGMA_LOG = 0.5

# The methods of each scenario, in words (MedianConversion.method).
METHODS = {
    "S1": "mean: Luo 2018 (S1); SD: Wan 2014 (S1)",
    "S2": "mean: Luo 2018 (S2); SD: Wan 2014 (S2)",
    "S3": "mean: Luo 2018 (S3); SD: Shi 2020 (S3)",
}

# Wan 2014 Table 1 covers n <= 50, Table 2 covers Q <= 50 (n = 4Q + 1 <= 201); above them the
# paper's closed-form approximations are used, as the paper recommends.
_RANGE_TABLE_MAX_N = 50
_IQR_TABLE_MAX_Q = 50

# Quadrature grid for expected normal order statistics: densities of order statistics of
# n <= 201 normals are negligible beyond |x| = 12 and smooth, so 4801 trapezoid points give
# ~1e-10 absolute accuracy, far below the 3-decimal tables they reproduce.
_GRID = np.linspace(-12.0, 12.0, 4801)


@dataclass(frozen=True)
class MedianConversion:
    """Estimated mean and SD of one group from quantiles.

    Attributes
    ----------
    mean, sd : ndarray
        Estimated sample mean and SD.
    var_extra : ndarray
        Extra variance of the estimated mean (conversion error), see the module docstring;
        add it to ``sd**2 / n`` for the total variance of the mean.
    method : str
        Methods used, e.g. ``"mean: Luo 2018 (S2); SD: Wan 2014 (S2)"``.
    scenario : str
        ``"S1"``, ``"S2"`` or ``"S3"``.
    """

    mean: np.ndarray
    sd: np.ndarray
    var_extra: np.ndarray
    method: str
    scenario: str


def _expected_order_statistic(k, n):
    """E[Z_(k:n)] for standard normal samples, by quadrature of the order-statistic density."""
    k = np.asarray(k, dtype=float)[..., None]
    n = np.asarray(n, dtype=float)[..., None]
    log_coef = special.gammaln(n + 1) - special.gammaln(k) - special.gammaln(n - k + 1)
    log_density = (
        log_coef
        - 0.5 * (_GRID**2 + np.log(2 * np.pi))
        + (k - 1) * special.log_ndtr(_GRID)
        + (n - k) * special.log_ndtr(-_GRID)
    )
    return np.trapezoid(_GRID * np.exp(log_density), _GRID, axis=-1)


# Values of the functions below already computed, per function and n: metak converts the
# medians of many studies in several batches, and the quadrature is the costly part.
_KNOWN: dict = {}


def _per_unique(function, n):
    """Evaluate ``function`` once per distinct n (quadrature is the costly part)."""
    n = np.asarray(n, dtype=float)
    values, inverse = np.unique(n, return_inverse=True)
    known = _KNOWN.setdefault(function, {})
    new = [v for v in values.tolist() if v not in known]
    if new:
        # Elementwise: a value is the same whichever others are computed with it.
        known.update(zip(new, function(np.array(new)).tolist(), strict=True))
    return np.array([known[v] for v in values.tolist()], dtype=float)[inverse].reshape(n.shape)


def expected_normal_range(n: ArrayLike) -> np.ndarray:
    """Wan 2014's ``xi(n)``: expected range of n standard normal draws.

    Exact (quadrature, reproducing Wan 2014 Table 1) for ``n <= 50``; above that the paper's
    eq. (7) approximation ``2 Phi^-1((n - 0.375) / (n + 0.25))``.
    """
    return _per_unique(_expected_range, n)


def _expected_range(n):
    small = np.where(n <= _RANGE_TABLE_MAX_N, n, 2.0)
    exact = 2 * _expected_order_statistic(small, small)
    approx = 2 * special.ndtri((n - 0.375) / (n + 0.25))
    return np.where(n <= _RANGE_TABLE_MAX_N, exact, approx)


def expected_normal_iqr(n: ArrayLike) -> np.ndarray:
    """Wan 2014's ``eta(n)``: expected interquartile range of n standard normal draws.

    For ``n = 4Q + 1`` the sample quartiles are the order statistics ``Q + 1`` and ``3Q + 1``;
    exact (quadrature, reproducing Wan 2014 Table 2) for ``Q <= 50`` with
    ``Q = max(1, ceil((n - 1) / 4))``; above that eq. (16)'s approximation
    ``2 Phi^-1((0.75 n - 0.125) / (n + 0.25))``.
    """
    return _per_unique(_expected_iqr, n)


def _expected_iqr(n):
    q = np.maximum(1.0, np.ceil((n - 1) / 4))
    in_table = q <= _IQR_TABLE_MAX_Q
    q_small = np.where(in_table, q, 1.0)
    exact = 2 * _expected_order_statistic(3 * q_small + 1, 4 * q_small + 1)
    approx = 2 * special.ndtri((0.75 * n - 0.125) / (n + 0.25))
    return np.where(in_table, exact, approx)


def _positions(n):
    """Probabilities of (min, q1, median, q3, max); the extremes at Blom's positions."""
    n = np.asarray(n, dtype=float)
    low = (1 - 0.375) / (n + 0.25)
    high = (n - 0.375) / (n + 0.25)
    quarter = np.full_like(n, 0.25)
    return np.stack([low, quarter, np.full_like(n, 0.5), 1 - quarter, high], axis=-1)


def _variance_parts(weights, n):
    """The two parts of the conversion variance of ``T = sum w_j X_(p_j)``, per unit SD squared.

    ``weights`` has shape (..., 5) over (min, q1, median, q3, max). Returns
    ``(lost_efficiency, skew_bias_squared)``; see the module docstring.
    """
    n = np.asarray(n, dtype=float)
    p = _positions(n)
    z = special.ndtri(p)
    density = np.exp(-0.5 * z**2) / np.sqrt(2 * np.pi)
    lo = np.minimum(p[..., :, None], p[..., None, :])
    hi = np.maximum(p[..., :, None], p[..., None, :])
    cov = lo * (1 - hi) / (n[..., None, None] * density[..., :, None] * density[..., None, :])
    var_t = np.einsum("...i,...ij,...j->...", weights, cov, weights)
    lost_efficiency = np.maximum(var_t - 1 / n, 0.0)

    s = SKEW_SIGMA_LOG
    quantiles = np.exp(s * z)
    true_mean = np.exp(s**2 / 2)
    true_sd = np.sqrt((np.exp(s**2) - 1) * np.exp(s**2))
    bias = (np.sum(weights * quantiles, axis=-1) - true_mean) / true_sd
    return lost_efficiency, squared(bias)


def _extra_variance_per_sd2(weights, n):
    lost_efficiency, skew_bias_squared = _variance_parts(weights, n)
    return lost_efficiency + skew_bias_squared


def _broadcast(*values):
    return np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in values))


def from_median_range(
    n: ArrayLike, median: ArrayLike, minimum: ArrayLike, maximum: ArrayLike
) -> MedianConversion:
    """Scenario S1: mean (Luo 2018 eq. 7) and SD (Wan 2014 eq. 7 / Table 1) from median and range.

    ``mean = w (a + b)/2 + (1 - w) m`` with ``w = 4 / (4 + n**0.75)``; ``sd = (b - a) / xi(n)``.
    """
    n, m, a, b = _broadcast(n, median, minimum, maximum)
    w = 4 / (4 + n**0.75)
    mean = w * (a + b) / 2 + (1 - w) * m
    sd = (b - a) / expected_normal_range(n)
    zero = np.zeros_like(w)
    weights = np.stack([w / 2, zero, 1 - w, zero, w / 2], axis=-1)
    extra = _extra_variance_per_sd2(weights, n) * squared(sd)
    return MedianConversion(mean, sd, extra, METHODS["S1"], "S1")


def from_median_iqr(
    n: ArrayLike, median: ArrayLike, q1: ArrayLike, q3: ArrayLike
) -> MedianConversion:
    """Scenario S2: mean (Luo 2018 eq. 11) and SD (Wan 2014 eq. 16 / Table 2) from median and IQR.

    ``mean = w (q1 + q3)/2 + (1 - w) m`` with ``w = 0.7 + 0.39 / n``; ``sd = (q3 - q1) / eta(n)``.
    """
    n, m, lo, hi = _broadcast(n, median, q1, q3)
    w = 0.7 + 0.39 / n
    mean = w * (lo + hi) / 2 + (1 - w) * m
    sd = (hi - lo) / expected_normal_iqr(n)
    zero = np.zeros_like(w)
    weights = np.stack([zero, w / 2, 1 - w, w / 2, zero], axis=-1)
    extra = _extra_variance_per_sd2(weights, n) * squared(sd)
    return MedianConversion(mean, sd, extra, METHODS["S2"], "S2")


def from_five_numbers(
    n: ArrayLike,
    median: ArrayLike,
    q1: ArrayLike,
    q3: ArrayLike,
    minimum: ArrayLike,
    maximum: ArrayLike,
) -> MedianConversion:
    """Scenario S3: mean (Luo 2018 eq. 15) and SD (Shi 2020 eq. 11) from all five numbers.

    ``mean = w1 (a + b)/2 + w2 (q1 + q3)/2 + (1 - w1 - w2) m`` with ``w1 = 2.2 / (2.2 + n**0.75)``
    and ``w2 = 0.7 - 0.72 / n**0.55``;
    ``sd = (b - a) / ((2 + 0.14 n**0.6) Phi^-1((n - 0.375)/(n + 0.25)))
    + (q3 - q1) / ((2 + 2 / (0.07 n**0.6)) Phi^-1((0.75 n - 0.125)/(n + 0.25)))``.
    """
    n, m, lo, hi, a, b = _broadcast(n, median, q1, q3, minimum, maximum)
    w1 = 2.2 / (2.2 + n**0.75)
    w2 = 0.7 - 0.72 / n**0.55
    mean = w1 * (a + b) / 2 + w2 * (lo + hi) / 2 + (1 - w1 - w2) * m
    theta1 = (2 + 0.14 * n**0.6) * special.ndtri((n - 0.375) / (n + 0.25))
    theta2 = (2 + 2 / (0.07 * n**0.6)) * special.ndtri((0.75 * n - 0.125) / (n + 0.25))
    sd = (b - a) / theta1 + (hi - lo) / theta2
    weights = np.stack([w1 / 2, w2 / 2, 1 - w1 - w2, w2 / 2, w1 / 2], axis=-1)
    extra = _extra_variance_per_sd2(weights, n) * squared(sd)
    return MedianConversion(mean, sd, extra, METHODS["S3"], "S3")


def mean_sd_from_median(
    n: float,
    median: float,
    q1: float = np.nan,
    q3: float = np.nan,
    minimum: float = np.nan,
    maximum: float = np.nan,
) -> MedianConversion | None:
    """Pick the scenario from what is given (scalars) and convert.

    Uses S3 when quartiles and range are both given, S2 with quartiles only, S1 with the range
    only. Returns None when neither pair is complete.
    """
    has_iqr = bool(np.isfinite(q1) and np.isfinite(q3))
    has_range = bool(np.isfinite(minimum) and np.isfinite(maximum))
    if has_iqr and has_range:
        return from_five_numbers(n, median, q1, q3, minimum, maximum)
    if has_iqr:
        return from_median_iqr(n, median, q1, q3)
    if has_range:
        return from_median_range(n, median, minimum, maximum)
    return None
