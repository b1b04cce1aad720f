"""Densities, CDFs, quantiles and moments of the prior families, on ``scipy.special`` alone.

Why not ``scipy.stats``: importing it costs about a second of start-up on the 2-core reference
machine (its docstring machinery and array-API layer), more than a whole exact analysis. The
families metak uses have closed forms in terms of the special functions (error function,
incomplete gamma and beta functions, Student-t CDF), which ``scipy.special`` provides without
that cost. Conventions follow ``scipy.stats``: ``logpdf`` is ``-inf`` outside the support,
``cdf`` is 0 below and 1 above it, ``ppf`` is NaN outside [0, 1]; tests compare every family
with ``scipy.stats`` over its support.

Parameters are PyMC's (see :data:`metak.priors.FAMILIES`): ``halfcauchy(beta)`` is a scale,
``exponential(lam)`` and ``gamma(alpha, beta)`` take rates.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from scipy import special

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["Distribution", "distribution"]

_LOG_2PI = math.log(2.0 * math.pi)
_LOG_2 = math.log(2.0)


def _array(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=float)


def _ppf_domain(q: ArrayLike, values: np.ndarray) -> np.ndarray:
    """NaN where ``q`` is not a probability (as scipy.stats does)."""
    q = _array(q)
    return np.where((q >= 0) & (q <= 1), values, np.nan)


class Distribution(ABC):
    """One family with fixed parameters: ``logpdf``, ``cdf``, ``ppf``, ``mean``, ``std``.

    Subclasses implement the ``_logpdf``/``_cdf``/``_ppf`` formulas on the support and the
    moments; this class applies the support and domain conventions once.
    """

    lower: float = -math.inf
    upper: float = math.inf

    @abstractmethod
    def _logpdf(self, x: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _cdf(self, x: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _ppf(self, q: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def mean(self) -> float:
        """The mean (``inf`` or NaN where it is infinite or undefined, as ``scipy.stats``)."""

    @abstractmethod
    def std(self) -> float:
        """The standard deviation (``inf`` or NaN where it is infinite or undefined)."""

    def logpdf(self, x: ArrayLike) -> np.ndarray:
        """Log density at ``x``, element-wise; ``-inf`` outside the support."""
        x = _array(x)
        inside = (x >= self.lower) & (x <= self.upper)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            values = self._logpdf(np.where(inside, x, self._inside_point()))
        return np.where(inside, values, -np.inf)

    def cdf(self, x: ArrayLike) -> np.ndarray:
        """P(X <= x), element-wise; 0 below and 1 above the support."""
        x = _array(x)
        inside = (x >= self.lower) & (x <= self.upper)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            values = self._cdf(np.where(inside, x, self._inside_point()))
        return np.where(inside, values, np.where(x < self.lower, 0.0, 1.0))

    def ppf(self, q: ArrayLike) -> np.ndarray:
        """Quantiles at probabilities ``q``, element-wise; NaN where ``q`` is outside [0, 1]."""
        q = _array(q)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            values = self._ppf(np.clip(q, 0.0, 1.0))
        # The ends of the support exactly (tan(pi/2) is finite in floating point, for one).
        values = np.where(q == 0, self.lower, np.where(q == 1, self.upper, values))
        return _ppf_domain(q, values)

    def _inside_point(self) -> float:
        # Any point of the support: keeps the formulas free of warnings outside it.
        if math.isfinite(self.lower):
            return self.lower if not math.isfinite(self.upper) else 0.5 * (self.lower + self.upper)
        return 0.0 if not math.isfinite(self.upper) else self.upper


class _Normal(Distribution):
    def __init__(self, mu: float, sigma: float) -> None:
        self.mu, self.sigma = mu, sigma

    def _logpdf(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mu) / self.sigma
        return -0.5 * z**2 - math.log(self.sigma) - 0.5 * _LOG_2PI

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        return special.ndtr((x - self.mu) / self.sigma)

    def _ppf(self, q: np.ndarray) -> np.ndarray:
        return self.mu + self.sigma * special.ndtri(q)

    def mean(self) -> float:
        return self.mu

    def std(self) -> float:
        return self.sigma


class _HalfNormal(Distribution):
    lower = 0.0

    def __init__(self, sigma: float) -> None:
        self.sigma = sigma

    def _logpdf(self, x: np.ndarray) -> np.ndarray:
        return _LOG_2 - 0.5 * (x / self.sigma) ** 2 - math.log(self.sigma) - 0.5 * _LOG_2PI

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        return special.erf(x / (self.sigma * math.sqrt(2.0)))

    def _ppf(self, q: np.ndarray) -> np.ndarray:
        return self.sigma * special.ndtri((1.0 + q) / 2.0)

    def mean(self) -> float:
        return self.sigma * math.sqrt(2.0 / math.pi)

    def std(self) -> float:
        return self.sigma * math.sqrt(1.0 - 2.0 / math.pi)


class _HalfCauchy(Distribution):
    lower = 0.0

    def __init__(self, beta: float) -> None:
        self.beta = beta

    def _logpdf(self, x: np.ndarray) -> np.ndarray:
        return _LOG_2 - math.log(math.pi * self.beta) - np.log1p((x / self.beta) ** 2)

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        return 2.0 / math.pi * np.arctan(x / self.beta)

    def _ppf(self, q: np.ndarray) -> np.ndarray:
        return self.beta * np.tan(0.5 * math.pi * q)

    def mean(self) -> float:
        return math.inf

    def std(self) -> float:
        return math.inf


class _Exponential(Distribution):
    lower = 0.0

    def __init__(self, lam: float) -> None:
        self.lam = lam

    def _logpdf(self, x: np.ndarray) -> np.ndarray:
        return math.log(self.lam) - self.lam * x

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        return -np.expm1(-self.lam * x)

    def _ppf(self, q: np.ndarray) -> np.ndarray:
        return -np.log1p(-q) / self.lam

    def mean(self) -> float:
        return 1.0 / self.lam

    def std(self) -> float:
        return 1.0 / self.lam


class _Uniform(Distribution):
    def __init__(self, lower: float, upper: float) -> None:
        self.lower, self.upper = lower, upper

    def _logpdf(self, x: np.ndarray) -> np.ndarray:
        return np.full_like(x, -math.log(self.upper - self.lower))

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        return (x - self.lower) / (self.upper - self.lower)

    def _ppf(self, q: np.ndarray) -> np.ndarray:
        return self.lower + q * (self.upper - self.lower)

    def mean(self) -> float:
        return 0.5 * (self.lower + self.upper)

    def std(self) -> float:
        return (self.upper - self.lower) / math.sqrt(12.0)


class _StudentT(Distribution):
    def __init__(self, nu: float, mu: float, sigma: float) -> None:
        self.nu, self.mu, self.sigma = nu, mu, sigma

    def _logpdf(self, x: np.ndarray) -> np.ndarray:
        nu = self.nu
        z = (x - self.mu) / self.sigma
        return (
            special.gammaln((nu + 1) / 2)
            - special.gammaln(nu / 2)
            - 0.5 * math.log(nu * math.pi)
            - math.log(self.sigma)
            - (nu + 1) / 2 * np.log1p(z**2 / nu)
        )

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        return special.stdtr(self.nu, (x - self.mu) / self.sigma)

    def _ppf(self, q: np.ndarray) -> np.ndarray:
        return self.mu + self.sigma * special.stdtrit(self.nu, q)

    def mean(self) -> float:
        return self.mu if self.nu > 1 else math.nan

    def std(self) -> float:
        if self.nu > 2:
            return self.sigma * math.sqrt(self.nu / (self.nu - 2))
        return math.inf if self.nu > 1 else math.nan


class _HalfStudentT(Distribution):
    """|T| for T ~ Student-t(nu, 0, sigma)."""

    lower = 0.0

    def __init__(self, nu: float, sigma: float) -> None:
        self.nu, self.sigma = nu, sigma
        self._t = _StudentT(nu, 0.0, sigma)

    def _logpdf(self, x: np.ndarray) -> np.ndarray:
        return _LOG_2 + self._t._logpdf(x)

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        return 2.0 * self._t._cdf(x) - 1.0

    def _ppf(self, q: np.ndarray) -> np.ndarray:
        return self._t._ppf((1.0 + q) / 2.0)

    def mean(self) -> float:
        nu = self.nu
        if nu <= 1:
            return math.inf
        log_ratio = special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2)
        return 2.0 * self.sigma * math.sqrt(nu / math.pi) * math.exp(log_ratio) / (nu - 1)

    def std(self) -> float:
        if self.nu <= 2:
            return math.inf
        second_moment = self.sigma**2 * self.nu / (self.nu - 2)
        return math.sqrt(max(second_moment - self.mean() ** 2, 0.0))


class _LogNormal(Distribution):
    lower = 0.0

    def __init__(self, mu: float, sigma: float) -> None:
        self.mu, self.sigma = mu, sigma

    def _logpdf(self, x: np.ndarray) -> np.ndarray:
        log_x = np.log(x)
        z = (log_x - self.mu) / self.sigma
        values = -log_x - math.log(self.sigma) - 0.5 * _LOG_2PI - 0.5 * z**2
        return np.where(x > 0, values, -np.inf)  # the density vanishes at 0 (inf - inf above)

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        return special.ndtr((np.log(x) - self.mu) / self.sigma)

    def _ppf(self, q: np.ndarray) -> np.ndarray:
        return np.exp(self.mu + self.sigma * special.ndtri(q))

    def mean(self) -> float:
        return math.exp(self.mu + 0.5 * self.sigma**2)

    def std(self) -> float:
        s2 = self.sigma**2
        return math.sqrt(math.expm1(s2) * math.exp(2.0 * self.mu + s2))


class _Beta(Distribution):
    lower, upper = 0.0, 1.0

    def __init__(self, alpha: float, beta: float) -> None:
        self.alpha, self.beta = alpha, beta

    def _logpdf(self, x: np.ndarray) -> np.ndarray:
        # xlogy/xlog1py give 0 * log(0) = 0, so the ends follow the exponents (as scipy.stats).
        return (
            special.xlogy(self.alpha - 1.0, x)
            + special.xlog1py(self.beta - 1.0, -x)
            - special.betaln(self.alpha, self.beta)
        )

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        return special.betainc(self.alpha, self.beta, x)

    def _ppf(self, q: np.ndarray) -> np.ndarray:
        return special.betaincinv(self.alpha, self.beta, q)

    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    def std(self) -> float:
        a, b = self.alpha, self.beta
        return math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1.0)))


class _Gamma(Distribution):
    lower = 0.0

    def __init__(self, alpha: float, rate: float) -> None:
        self.alpha, self.rate = alpha, rate

    def _logpdf(self, x: np.ndarray) -> np.ndarray:
        return (
            self.alpha * math.log(self.rate)
            + special.xlogy(self.alpha - 1.0, x)
            - self.rate * x
            - special.gammaln(self.alpha)
        )

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        return special.gammainc(self.alpha, self.rate * x)

    def _ppf(self, q: np.ndarray) -> np.ndarray:
        return special.gammaincinv(self.alpha, q) / self.rate

    def mean(self) -> float:
        return self.alpha / self.rate

    def std(self) -> float:
        return math.sqrt(self.alpha) / self.rate


_CLASSES = {
    "normal": _Normal,
    "halfnormal": _HalfNormal,
    "halfcauchy": _HalfCauchy,
    "exponential": _Exponential,
    "uniform": _Uniform,
    "student_t": _StudentT,
    "halfstudent_t": _HalfStudentT,
    "lognormal": _LogNormal,
    "beta": _Beta,
    "gamma": _Gamma,
}


def distribution(family: str, params: Sequence[float]) -> Distribution:
    """The distribution of ``family`` with fixed parameters.

    Parameters
    ----------
    family : str
        A key of :data:`metak.priors.FAMILIES`, e.g. ``"halfnormal"``.
    params : sequence of float
        The family's parameters in the order of :data:`metak.priors.FAMILIES` (PyMC's: scales
        for ``halfcauchy``, rates for ``exponential`` and ``gamma``); not checked here
        (:class:`metak.priors.Prior` checks them).

    Returns
    -------
    Distribution
    """
    return _CLASSES[family](*params)
