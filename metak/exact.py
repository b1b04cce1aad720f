"""The exact posterior of the normal-normal random-effects / meta-regression model, without MCMC.

Model (the approach of R bayesmeta and bmr, Röver 2020, J Stat Softw 93(6))::

    y_i | b, tau ~ Normal(x_i' b, v_i + tau^2)         i = 1..k, v_i known
    b_j          ~ Normal(m_j, s_j^2) independently    (or flat: s_j = inf)
    tau          ~ any Prior with support in [0, inf)

Given tau the coefficients are conjugate: b | y, tau ~ Normal(bhat(tau), Sigma(tau)) with
``Sigma^-1 = X'W X + S0^-1`` and ``bhat = Sigma (X'W y + S0^-1 m)``, ``W = diag(1/(v_i + tau^2))``.
Integrating b out gives the marginal likelihood ``N(y; X m, V + tau^2 I + X S0 X')`` in closed
form, computed through the p x p matrices only (``log|V + tau^2 I| + log|Sigma^-1| + log|S0|`` and
the quadratic form ``y'Wy + m'S0^-1 m - bhat' Sigma^-1 bhat``), so the cost is O(grid x k x p^2)
and no k x k matrix is ever formed. The one-dimensional p(tau | y) is then integrated on an
adaptive grid (composite Simpson rule; see :func:`_tau_grid`), and every posterior quantity is a
mixture over that grid of normal distributions: exact up to quadrature error (brute-force checks
agree to ~1e-8 relative), with no Monte Carlo error.

This module needs numpy and scipy only; it must never import PyMC (a test checks).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

import numpy as np
from scipy import special

from metak.errors import ConfigError
from metak.priors import Prior, parse_prior

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = [
    "fit_exact",
    "fit_common_effect",
    "ExactPosterior",
    "CommonEffectPosterior",
    "ParameterSummary",
    "NormalMixture",
    "mixture_quantiles",
    "StudyEffects",
    "ExactDraws",
    "typical_within_variance",
    "study_log_likelihood",
]

_LOG_2PI = math.log(2.0 * math.pi)
# Grid extent: the grid covers every tau where the posterior density of log(tau) is within
# _DROP_EDGE of its maximum (density ratio e^-30 ~ 1e-13; even for the heaviest tail here,
# halfcauchy with k = 1, the mass left outside is below 1e-9), plus tau = 0 when the density there
# is within _DROP_EDGE of the maximum density of tau.
_DROP_EDGE = 30.0
_COARSE_POINTS = 400
# The grid is uniform in u = asinh(tau / c) with c = this quantile of the coarse posterior: about
# uniform in tau below c (where tau = 0 may carry mass) and log-spaced above (heavy tails, mass
# spread over orders of magnitude), in one smooth change of variable that Simpson's rule handles.
_TRANSITION_QUANTILE = 0.01
# Mixture components lighter than this fraction of the heaviest are dropped (total mass < 1e-9).
_PRUNE = 1e-13
# Rows of the grid x study matrix computed at a time (bounds memory for k = 10,000).
_CHUNK_ELEMENTS = 2_000_000

# A coefficient prior as fit_exact accepts it: a Prior, its text, or None for a flat prior.
_CoefPrior = Prior | str | None
# The coefficients' priors: one for all, one per coefficient in order, or by name.
_CoefPriors = _CoefPrior | Sequence[_CoefPrior] | Mapping[str, _CoefPrior]
# A CDF on scalars (or arrays, element-wise).
_Cdf = Callable[[float], float | np.ndarray]


class _Statement(Protocol):
    """What :meth:`ExactPosterior.prob_statement` reads (e.g. :class:`metak.claims.Statement`)."""

    parameter: str
    op: str
    low: float


# ---------------------------------------------------------------------------------------------
# Typed results
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParameterSummary:
    """Posterior summary of one scalar quantity (raw floats; formatting happens at the edge)."""

    name: str
    mean: float
    sd: float
    q025: float
    q50: float
    q975: float
    p_gt0: float | None = None  # P(quantity > 0), for quantities that can be negative
    mode: float | None = None

    def as_dict(self) -> dict[str, str | float | None]:
        """The fields as a plain dict (one row of a summary table)."""
        return dict(self.__dict__)


@dataclass(frozen=True, eq=False)
class NormalMixture:
    """A finite mixture of normal distributions: ``sum_g weights[g] * N(means[g], sds[g]^2)``."""

    weights: np.ndarray
    means: np.ndarray
    sds: np.ndarray

    @property
    def mean(self) -> float:
        """The mixture's mean."""
        return float(self.weights @ self.means)

    @property
    def sd(self) -> float:
        """The mixture's standard deviation."""
        second = self.weights @ (self.sds**2 + self.means**2)
        return float(math.sqrt(max(second - self.mean**2, 0.0)))

    def cdf(self, x: ArrayLike) -> np.ndarray | float:
        """P(X <= x), vectorised over ``x``."""
        x = np.asarray(x, dtype=float)
        out = special.ndtr((x[..., None] - self.means) / self.sds) @ self.weights
        return float(out) if out.ndim == 0 else out

    def pdf(self, x: ArrayLike) -> np.ndarray | float:
        """Density at ``x``, vectorised over ``x``."""
        x = np.asarray(x, dtype=float)
        z = (x[..., None] - self.means) / self.sds
        out = (np.exp(-0.5 * z**2) / (self.sds * math.sqrt(2 * math.pi))) @ self.weights
        return float(out) if out.ndim == 0 else out

    def quantile(self, q: ArrayLike) -> np.ndarray | float:
        """Inverse CDF (by safeguarded Newton iteration on the mixture CDF)."""
        q_arr = np.atleast_1d(np.asarray(q, dtype=float))
        out = _mixture_quantiles(self.weights, self.means[:, None], self.sds[:, None], q_arr)[:, 0]
        return float(out[0]) if np.ndim(q) == 0 else out

    def prob(self, op: str, low: float, high: float | None = None) -> float:
        """P(``X op low``) for ``<``, ``<=``, ``>``, ``>=``; P(X in / outside [low, high])."""
        return _prob_from_cdf(self.cdf, op, low, high)

    def summary(self, name: str) -> ParameterSummary:
        """Mean, SD, 2.5/50/97.5 % quantiles and P(X > 0), labelled ``name``."""
        q025, q50, q975 = self.quantile(np.array([0.025, 0.5, 0.975]))
        return ParameterSummary(
            name,
            self.mean,
            self.sd,
            float(q025),
            float(q50),
            float(q975),
            p_gt0=1.0 - float(self.cdf(0.0)),
        )


@dataclass(frozen=True, eq=False)
class StudyEffects:
    """Posterior of each study's true effect theta_i (shrunken towards the model prediction)."""

    mean: np.ndarray
    sd: np.ndarray
    q025: np.ndarray
    q50: np.ndarray
    q975: np.ndarray


@dataclass(frozen=True, eq=False)
class ExactDraws:
    """Independent draws from the exact posterior (no autocorrelation, no warm-up)."""

    coef_names: tuple[str, ...]
    tau: np.ndarray  # (n,)
    coef: np.ndarray  # (n, p)
    i2: np.ndarray  # (n,) proportion, tau^2 / (tau^2 + s^2)
    theta_new: np.ndarray | None = None  # (n,) a new study's true effect, if x_new was given

    def as_dict(self) -> dict[str, np.ndarray]:
        """Draws by parameter name: coefficients, ``tau``, ``tau2``, ``I2`` (and ``theta_new``)."""
        out = {name: self.coef[:, j] for j, name in enumerate(self.coef_names)}
        out |= {"tau": self.tau, "tau2": self.tau**2, "I2": self.i2}
        if self.theta_new is not None:
            out["theta_new"] = self.theta_new
        return out


# ---------------------------------------------------------------------------------------------
# The conjugate part: b | y, tau, vectorised over tau
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Conjugate:
    """Data, coefficient prior and precomputed products for b | y, tau.

    Internally y is shifted by a reference fit (y - X b_ref), which leaves the model unchanged
    but keeps the quadratic form free of cancellation when effects are large relative to their
    standard errors.
    """

    y: np.ndarray
    v: np.ndarray
    X: np.ndarray
    prior_mean: np.ndarray  # (p,)
    prior_prec: np.ndarray  # (p,) 1/s_j^2, 0 for a flat prior
    b_ref: np.ndarray
    yt: np.ndarray
    xx: np.ndarray  # (k, p*p) outer products x_i x_i'
    xy: np.ndarray  # (k, p) x_i * yt_i
    y2: np.ndarray  # (k,) yt_i^2
    proper: bool

    @classmethod
    def build(
        cls,
        y: np.ndarray,
        v: np.ndarray,
        X: np.ndarray,
        prior_mean: np.ndarray,
        prior_prec: np.ndarray,
    ) -> _Conjugate:
        k, p = X.shape
        tau2_0 = max(float(np.var(y)) - float(np.median(v)), 0.0) if k > 1 else 0.0
        sw = 1.0 / np.sqrt(v + tau2_0)
        b_ref = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)[0]
        yt = y - X @ b_ref
        xx = (X[:, :, None] * X[:, None, :]).reshape(k, p * p)
        return cls(
            y,
            v,
            X,
            prior_mean,
            prior_prec,
            b_ref,
            yt,
            xx,
            X * yt[:, None],
            yt**2,
            bool(np.all(prior_prec > 0)),
        )

    def __call__(self, tau: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(mean (n, p), cov (n, p, p), log marginal likelihood (n,))`` at each tau."""
        tau = np.atleast_1d(np.asarray(tau, dtype=float))
        k, p = self.X.shape
        n = tau.size
        mean = np.empty((n, p))
        cov = np.empty((n, p, p))
        loglik = np.empty(n)
        m_t = self.prior_mean - self.b_ref
        prior_quad = float(np.sum(self.prior_prec * m_t**2))
        prior_logdet = float(np.sum(np.log(self.prior_prec[self.prior_prec > 0])))
        chunk = max(1, _CHUNK_ELEMENTS // k)
        diag = np.arange(p)
        for start in range(0, n, chunk):
            t = tau[start : start + chunk]
            w = 1.0 / (self.v + (t**2)[:, None])  # (g, k)
            prec = (w @ self.xx).reshape(t.size, p, p)
            prec[:, diag, diag] += self.prior_prec
            rhs = w @ self.xy + self.prior_prec * m_t
            if p == 1:
                # One coefficient (random effects): the 1 x 1 Cholesky factor, inverse and
                # product by hand, the same floating-point operations LAPACK does (sqrt, 1 / a)
                # without its per-call overhead, which dominates the zoom's small calls.
                if not np.all(prec > 0):
                    raise ConfigError(_NOT_IDENTIFIED)
                chol = np.sqrt(prec)
                c = 1.0 / prec
                bt = c[:, :, 0] * rhs
            else:
                try:
                    chol = np.linalg.cholesky(prec)
                except np.linalg.LinAlgError:
                    raise ConfigError(_NOT_IDENTIFIED) from None
                c = np.linalg.inv(prec)
                bt = np.einsum("gij,gj->gi", c, rhs)
            quad = w @ self.y2 + prior_quad - np.einsum("gi,gi->g", bt, rhs)
            logdet_prec = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
            logdet_sigma = -np.log(w).sum(axis=1)
            loglik[start : start + chunk] = -0.5 * (
                k * _LOG_2PI + logdet_sigma + logdet_prec - prior_logdet + np.maximum(quad, 0.0)
            )
            mean[start : start + chunk] = bt + self.b_ref
            cov[start : start + chunk] = c
        return mean, cov, loglik

    def log_likelihood(self, tau: ArrayLike) -> np.ndarray:
        """``log p(y | tau)`` alone (the third output of calling the model), at each tau.

        The grid search and the mode's zoom need only this. With at most one coefficient it is
        computed without the (n, p, p) arrays, by the same floating-point operations as the full
        call (so the values are identical), at a fraction of the per-call overhead that
        dominates those small calls.
        """
        k, p = self.X.shape
        if p > 1:
            return self(tau)[2]
        tau = np.atleast_1d(np.asarray(tau, dtype=float))
        out = np.empty(tau.size)
        m_t = self.prior_mean - self.b_ref
        prior_logdet = float(np.sum(np.log(self.prior_prec[self.prior_prec > 0])))
        chunk = max(1, _CHUNK_ELEMENTS // k)
        for start in range(0, tau.size, chunk):
            t = tau[start : start + chunk]
            w = 1.0 / (self.v + (t**2)[:, None])
            quad = w @ self.y2
            logdet_prec = 0.0
            if p == 1:
                prec = w @ self.xx[:, 0] + self.prior_prec[0]
                if not np.all(prec > 0):
                    raise ConfigError(_NOT_IDENTIFIED)
                rhs = w @ self.xy[:, 0] + self.prior_prec[0] * m_t[0]
                bt = (1.0 / prec) * rhs
                quad = quad + self.prior_prec[0] * m_t[0] ** 2 - bt * rhs
                logdet_prec = 2.0 * np.log(np.sqrt(prec))
            logdet_sigma = -np.log(w).sum(axis=1)
            out[start : start + chunk] = -0.5 * (
                k * _LOG_2PI + logdet_sigma + logdet_prec - prior_logdet + np.maximum(quad, 0.0)
            )
        return out


_NOT_IDENTIFIED = (
    "the coefficients are not identified (a moderator is constant or collinear with others, or "
    "there are fewer studies than coefficients); fix: drop the moderator or give every "
    "coefficient a normal prior"
)


def study_log_likelihood(
    y: np.ndarray, fitted: np.ndarray, v: np.ndarray, tau: np.ndarray
) -> np.ndarray:
    """``log N(y_i | x_i'b, v_i + tau^2)`` at each draw: the study effect integrated out.

    The pointwise log-likelihood every analysis stores (and PSIS-LOO reweights), as the MCMC
    models have it. ``fitted`` is ``(n, k)`` (``x_i'b`` per draw), ``tau`` ``(n,)``, ``v`` the
    within-study variances, ``(k,)`` or ``(n, k)`` when they move with a drawn r.
    """
    total = v + tau[:, None] ** 2
    return -0.5 * (np.log(2 * np.pi * total) + (y - fitted) ** 2 / total)


# ---------------------------------------------------------------------------------------------
# The tau grid
# ---------------------------------------------------------------------------------------------


def _simpson_weights(n: int) -> np.ndarray:
    w = np.ones(n)
    w[1:-1:2] = 4.0
    w[2:-1:2] = 2.0
    return w / 3.0


def _grid_nodes(lo: float, hi: float, n: int, c: float) -> np.ndarray:
    """The ``n`` nodes on [lo, hi], uniform in u = asinh(tau / c)."""
    nodes = c * np.sinh(np.linspace(math.asinh(lo / c), math.asinh(hi / c), n))
    nodes[0], nodes[-1] = lo, hi
    return nodes


def _quadrature(nodes: np.ndarray, c: float, thin: int = 1) -> np.ndarray:
    """Simpson weights in u = asinh(tau / c) for the grid (zero on nodes left out by thinning).

    With ``thin`` > 1 every thin-th node is used (when the grid's length allows it): a cheaper
    rule for costly integrands. ``d tau = sqrt(c^2 + tau^2) du``.
    """
    n = nodes.size
    step = thin if (n - 1) % (2 * thin) == 0 else 1
    idx = np.arange(0, n, step)
    u = np.arcsinh(nodes[idx] / c)
    weights = np.zeros(n)
    weights[idx] = (
        _simpson_weights(idx.size) * (u[-1] - u[0]) / (idx.size - 1) * np.hypot(c, nodes[idx])
    )
    return weights


_ZOOM_POINTS = 33
# The tau mode is reported to 1e-10 of its coarse bracket (9 zoom steps). Fits that report no
# summaries (the robustness checks' variants) use the mode only to scale the density before
# integrating it, where any point near the peak serves: 1e-4 takes 4 steps.
_MODE_RTOL = 1e-10
_MODE_RTOL_UNREPORTED = 1e-4


def _zoom_max(
    logpost: Callable[[np.ndarray], np.ndarray], a: float, b: float, xtol: float
) -> tuple[float, float]:
    """Maximiser of ``logpost`` (vectorised over tau) on [a, b] and its value, by zooming.

    Each step evaluates 33 points at once and keeps the two intervals around the best one (the
    bracket shrinks 16-fold), so a 1e-10 relative tolerance takes 8-9 vectorised calls instead of
    ~50 scalar ones; the bracket comes from the coarse grid, which holds the mode between the
    neighbours of its best point.
    """
    best_x, best_f = a, -math.inf
    while True:
        nodes = np.linspace(a, b, _ZOOM_POINTS)
        values = logpost(nodes)
        i = int(np.nanargmax(values)) if np.any(np.isfinite(values)) else 0
        if values[i] > best_f:
            best_x, best_f = float(nodes[i]), float(values[i])
        a, b = nodes[max(i - 1, 0)], nodes[min(i + 1, _ZOOM_POINTS - 1)]
        if b - a <= xtol:
            return best_x, best_f


def _tau_grid(
    logpost: Callable[[np.ndarray], np.ndarray],
    lower: float,
    upper: float,
    scale: float,
    points: int,
    mode_rtol: float = _MODE_RTOL,
) -> tuple[np.ndarray, float, float, float]:
    """Choose the quadrature grid for p(tau | y) adaptively.

    A coarse log-spaced pass over many orders of magnitude (plus the lower end of the prior's
    support, e.g. tau = 0) locates the mode of tau, refined by a bounded 1-d optimisation to
    ``mode_rtol`` of its bracket, and the extent of the posterior (see ``_DROP_EDGE``); the grid
    is then uniform in u = asinh(tau / c) (see ``_TRANSITION_QUANTILE``).

    Returns ``nodes, c, mode, lp_mode``.
    """
    lo_c = lower if lower > 0 else scale * 1e-9
    hi_c = min(upper, scale * 1e4)
    if hi_c <= lo_c:
        hi_c = upper
    coarse = np.geomspace(lo_c, hi_c, _COARSE_POINTS)
    if lower == 0:
        coarse = np.concatenate([[0.0], coarse])
    lp = logpost(coarse)
    if np.any(np.isposinf(lp)):
        raise ConfigError(
            "the tau prior has infinite density at tau = 0, which the exact path cannot integrate; "
            "fix: use e.g. halfnormal(...) or a gamma prior with alpha >= 1"
        )
    with np.errstate(divide="ignore"):
        log_tau = np.log(coarse)
    for _ in range(3):  # extend upwards while the density has not yet fallen off
        lpl = lp + log_tau
        if coarse[-1] >= upper or lpl[-1] < np.max(lpl) - _DROP_EDGE:
            break
        more = np.geomspace(coarse[-1], min(upper, coarse[-1] * 1e4), _COARSE_POINTS)[1:]
        coarse, lp = np.concatenate([coarse, more]), np.concatenate([lp, logpost(more)])
        log_tau = np.concatenate([log_tau, np.log(more)])
    if not np.any(np.isfinite(lp)):
        raise ConfigError(
            "the posterior of tau is zero everywhere on its support (check the tau prior)"
        )
    i_max = int(np.argmax(lp))
    a, b = coarse[max(i_max - 1, 0)], coarse[min(i_max + 1, coarse.size - 1)]
    mode, lp_mode = coarse[i_max], lp[i_max]
    if b > a:
        x_best, f_best = _zoom_max(logpost, a, b, xtol=(b - a) * mode_rtol)
        if np.isfinite(f_best) and f_best > lp_mode:
            mode, lp_mode = x_best, f_best

    # Extent in log(tau): where the density of log(tau) is within _DROP_EDGE of its maximum.
    lpl = lp + log_tau
    keep = np.flatnonzero(lpl >= np.max(lpl) - _DROP_EDGE)
    lo = coarse[max(keep[0] - 1, 0)]
    hi = coarse[min(keep[-1] + 1, coarse.size - 1)]
    if lower == 0 and lp[0] >= lp_mode - _DROP_EDGE:
        lo = 0.0
    lo, hi = min(lo, mode), max(hi, mode)
    if hi <= lo:  # a point-like prior: the whole support is one tiny interval
        lo, hi = coarse[0], coarse[-1]
    c = min(max(_transition_scale(coarse, lp - lp_mode), hi * 1e-12, lo), hi)
    return _grid_nodes(lo, hi, points, c), c, float(mode), float(lp_mode)


def _transition_scale(nodes: np.ndarray, log_density: np.ndarray) -> float:
    """The grid's transition scale c: the _TRANSITION_QUANTILE of the density on ``nodes``.

    Its mass comes from the trapezoid rule; ``log_density`` is relative to its maximum.
    """
    dens = np.exp(log_density)
    mass = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(nodes))])
    return float(np.interp(_TRANSITION_QUANTILE * mass[-1], mass, nodes))


# A grid taken over from another fit must resolve the new posterior about as finely as a grid of
# its own would: at least this share of its nodes where the new density of log(tau) is within
# _DROP_EDGE of its maximum, and the new transition quantile (see _TRANSITION_QUANTILE) at least
# this fraction of the grid's c (below c the nodes are spaced about c / 400 apart).
_HELD_NODE_SHARE = 0.25
_HELD_C_FRACTION = 0.25


def _grid_holds(nodes: np.ndarray, lp: np.ndarray, c: float, lower: float, upper: float) -> bool:
    """True when the grid ``nodes`` holds the posterior ``lp`` (log density of tau, unnormalised).

    The rules by which :func:`_tau_grid` builds a grid of its own: the density is finite on every
    node (the prior's support covers the grid), each end of the grid is an end of the support or
    where the density of log(tau) has fallen ``_DROP_EDGE`` below its maximum, and the
    posterior's bulk is resolved (``_HELD_NODE_SHARE``, ``_HELD_C_FRACTION``).
    """
    if not np.all(np.isfinite(lp)):
        return False
    with np.errstate(divide="ignore"):
        lpl = lp + np.log(nodes)
    top = float(np.max(lpl))
    if not (nodes[0] <= lower or lpl[0] < top - _DROP_EDGE):
        return False
    if not (nodes[-1] >= upper or lpl[-1] < top - _DROP_EDGE):
        return False
    if np.count_nonzero(lpl >= top - _DROP_EDGE) < _HELD_NODE_SHARE * nodes.size:
        return False
    return _transition_scale(nodes, lp - np.max(lp)) >= _HELD_C_FRACTION * c


def _mode_on_grid(
    logpost: Callable[[np.ndarray], np.ndarray], nodes: np.ndarray, lp: np.ndarray, rtol: float
) -> tuple[float, float]:
    """The tau mode and its log density, zoomed from the best node's neighbours to ``rtol``."""
    i = int(np.argmax(lp))
    mode, lp_mode = float(nodes[i]), float(lp[i])
    a, b = nodes[max(i - 1, 0)], nodes[min(i + 1, nodes.size - 1)]
    if b > a:
        x_best, f_best = _zoom_max(logpost, a, b, xtol=(b - a) * rtol)
        if np.isfinite(f_best) and f_best > lp_mode:
            mode, lp_mode = x_best, f_best
    return mode, lp_mode


# ---------------------------------------------------------------------------------------------
# Mixture helpers
# ---------------------------------------------------------------------------------------------


def _mixture_quantiles(
    weights: np.ndarray, means: np.ndarray, sds: np.ndarray, probs: ArrayLike
) -> np.ndarray:
    """Quantiles of m normal mixtures: ``means``, ``sds`` (G, m), ``weights`` (G, m) or shared (G,).

    Safeguarded Newton iteration on the mixture CDF, all mixtures and probabilities at once.
    Returns (len(probs), m).
    """
    probs = np.asarray(probs, dtype=float)
    shared = weights.ndim == 1

    def mix(values: np.ndarray, columns: np.ndarray | slice = slice(None)) -> np.ndarray:
        if shared:
            return weights @ values
        return np.einsum("gm,gm->m", weights[:, columns], values)

    mix_mean = mix(means)
    mix_sd = np.sqrt(np.maximum(mix(sds**2 + means**2) - mix_mean**2, 0.0))
    lo = np.broadcast_to(np.min(means - 40.0 * sds, axis=0), (probs.size, means.shape[1])).copy()
    hi = np.broadcast_to(np.max(means + 40.0 * sds, axis=0), lo.shape).copy()
    x = mix_mean + special.ndtri(probs)[:, None] * mix_sd
    x = np.clip(x, lo, hi)
    # Newton converges quadratically, so this tolerance costs at most one extra step; it sits
    # well above the rounding noise of a CDF summed over thousands of components.
    tol = 1e-10 * np.maximum(mix_sd, 1e-300)
    tol = np.broadcast_to(tol, x.shape)
    active = np.ones(x.shape, dtype=bool)
    for _ in range(100):
        qi, mi = np.nonzero(active)
        if qi.size == 0:
            break
        xa, lo_a, hi_a = x[qi, mi], lo[qi, mi], hi[qi, mi]
        z = (xa - means[:, mi]) / sds[:, mi]  # (G, n_active)
        f_val = mix(special.ndtr(z), mi) - probs[qi]
        dens = mix(np.exp(-0.5 * z**2) / sds[:, mi], mi) / math.sqrt(2 * math.pi)
        below = f_val < 0
        lo_a = np.where(below, xa, lo_a)
        hi_a = np.where(below, hi_a, xa)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = xa - f_val / dens
        bad = ~np.isfinite(step) | (step < lo_a) | (step > hi_a)
        new = np.where(f_val == 0, xa, np.where(bad, 0.5 * (lo_a + hi_a), step))
        converged = np.abs(new - xa) <= tol[qi, mi]
        x[qi, mi], lo[qi, mi], hi[qi, mi] = new, lo_a, hi_a
        active[qi[converged], mi[converged]] = False
    return x


def mixture_quantiles(mixtures: Sequence[NormalMixture], probs: ArrayLike) -> np.ndarray:
    """Quantiles of several normal mixtures in one Newton iteration (``(len(probs), m)``).

    The same values as each mixture's :meth:`NormalMixture.quantile` (up to the order of
    floating-point sums), at the cost of about one call: the iteration's cost is numpy's
    per-call overhead, not arithmetic, for mixtures of a few hundred components. Shorter
    mixtures are padded with weight-0 copies of their first component.
    """
    probs = np.asarray(probs, dtype=float)
    size = max(m.weights.size for m in mixtures)

    def padded(values: np.ndarray, fill: float | None) -> np.ndarray:
        pad = size - values.size
        return np.concatenate([values, np.full(pad, values[0] if fill is None else fill)])

    parts = []
    step = max(1, _CHUNK_ELEMENTS // (size * probs.size))  # bounded memory for large k
    for start in range(0, len(mixtures), step):
        chunk = mixtures[start : start + step]
        weights = np.column_stack([padded(m.weights, 0.0) for m in chunk])
        means = np.column_stack([padded(m.means, None) for m in chunk])
        sds = np.column_stack([padded(m.sds, None) for m in chunk])
        parts.append(_mixture_quantiles(weights, means, sds, probs))
    return np.concatenate(parts, axis=1)


def _prune(weights: np.ndarray) -> np.ndarray:
    return weights > _PRUNE * weights.max()


def _prob_from_cdf(cdf: _Cdf, op: str, low: float, high: float | None) -> float:
    """P(statement) for a continuous distribution with the given CDF."""
    if op in ("<", "<="):
        return float(cdf(low))
    if op in (">", ">="):
        return 1.0 - float(cdf(low))
    if op in ("in", "outside"):
        if high is None or high < low:
            raise ValueError(f"'{op}' needs low <= high, got [{low}, {high}]")
        inside = float(cdf(high)) - float(cdf(low))
        return inside if op == "in" else 1.0 - inside
    raise ValueError(f"unknown comparison {op!r}; use <, <=, >, >=, in or outside")


def typical_within_variance(v: ArrayLike, X: ArrayLike | None = None) -> float:
    """The "typical" within-study variance s^2 used for I^2 = tau^2 / (tau^2 + s^2).

    Higgins & Thompson (2002): ``s^2 = (k - 1) sum(w) / ((sum w)^2 - sum(w^2))``, w = 1/v. With
    moderators, the generalisation used by metafor: ``s^2 = (k - p) / tr(P)``, ``P = W - W X
    (X'WX)^-1 X'W``, which equals Higgins-Thompson for an intercept-only X. With k <= p (no
    residual degrees of freedom) the harmonic mean of v is used instead.

    Parameters
    ----------
    v : array_like
        Within-study variances (k,), > 0, in the squared unit of the effect sizes.
    X : array_like, optional
        (k, p) design matrix; default a column of ones (no moderators).

    Returns
    -------
    float
        s^2, in the unit of ``v``.
    """
    v = np.asarray(v, dtype=float)
    k = v.size
    X = np.ones((k, 1)) if X is None else np.asarray(X, dtype=float)
    p = X.shape[1]
    w = 1.0 / v
    if k <= p:
        return float(k / w.sum())
    xtwx = X.T @ (X * w[:, None])
    xtw2x = X.T @ (X * (w**2)[:, None])
    trace_p = w.sum() - np.trace(np.linalg.pinv(xtwx) @ xtw2x)
    return float((k - p) / trace_p)


# ---------------------------------------------------------------------------------------------
# The posterior
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ExactPosterior:
    """The exact joint posterior of (b, tau), represented on a quadrature grid over tau.

    ``tau_grid``/``tau_density`` give the normalised marginal density of tau (for plots);
    ``tau_weights`` are the quadrature masses (sum 1) and ``cond_mean``/``cond_cov`` the normal
    b | y, tau at each grid point, so any posterior quantity is a weighted sum over the grid.
    ``summaries`` holds one :class:`ParameterSummary` per coefficient and for ``tau``, ``tau2``
    and ``I2`` (a proportion, tau^2 / (tau^2 + s^2) with s^2 = ``within_variance``).
    ``log_marginal_likelihood`` is log p(y) (for Bayes factors); it is NaN when a coefficient has
    a flat (improper) prior, under which p(y) is not defined.
    """

    coef_names: tuple[str, ...]
    tau_prior: Prior
    coef_priors: tuple[Prior | None, ...]
    tau_grid: np.ndarray
    tau_density: np.ndarray
    tau_weights: np.ndarray
    cond_mean: np.ndarray
    cond_cov: np.ndarray
    tau_mode: float
    log_marginal_likelihood: float
    within_variance: float
    summaries: dict[str, ParameterSummary]
    _model: _Conjugate = field(repr=False)
    _tau_cdf: np.ndarray = field(repr=False)
    _grid_c: float = field(repr=False)
    _log_likelihood: np.ndarray = field(repr=False)  # log p(y | tau) at the grid's nodes

    # -- data -----------------------------------------------------------------------------

    @property
    def k(self) -> int:
        """The number of effect sizes."""
        return int(self._model.y.size)

    @property
    def y(self) -> np.ndarray:
        """The effect sizes (k,)."""
        return self._model.y

    @property
    def v(self) -> np.ndarray:
        """Their within-study variances (k,)."""
        return self._model.v

    @property
    def X(self) -> np.ndarray:
        """The (k, p) design matrix."""
        return self._model.X

    # -- summaries ------------------------------------------------------------------------

    def summary(self, name: str) -> ParameterSummary:
        """The summary of a coefficient, ``tau``, ``tau2`` or ``I2``."""
        try:
            return self.summaries[name]
        except KeyError:
            raise ValueError(f"no parameter {name!r}; have {', '.join(self.summaries)}") from None

    def summary_rows(self) -> list[dict[str, str | float | None]]:
        """All summaries as plain dicts (one table row each)."""
        return [s.as_dict() for s in self.summaries.values()]

    def conditional(self, tau: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The conditional b | y, tau at each of n values of tau.

        Returns
        -------
        tuple of numpy.ndarray
            ``(mean (n, p), covariance (n, p, p), log p(y | tau) (n,))``.
        """
        return self._model(tau)

    # -- distributions --------------------------------------------------------------------

    def _index(self, name: str) -> int:
        try:
            return self.coef_names.index(name)
        except ValueError:
            raise ValueError(
                f"no coefficient {name!r}; have {', '.join(self.coef_names)}"
            ) from None

    def _x(self, x: ArrayLike | None) -> np.ndarray:
        p = len(self.coef_names)
        if x is None:
            if p != 1:
                raise ValueError(f"give covariates x (length {p}) for a model with moderators")
            return np.ones(1)
        x = np.asarray(x, dtype=float).ravel()
        if x.size != p:
            raise ValueError(f"x has {x.size} values, the model has {p} coefficients")
        return x

    def quadrature_weights(self, thin: int = 1) -> np.ndarray:
        """Posterior masses of the tau grid's nodes (sum 1), every ``thin``-th node only.

        ``thin = 1`` gives :attr:`tau_weights`. A thinned rule (Simpson's on a ``thin`` times
        coarser grid, zero elsewhere) integrates the smooth mixtures over tau to about 1e-8 (see
        :meth:`study_effects`) with ``thin`` times fewer components.
        """
        if thin == 1:
            return self.tau_weights
        weights = _quadrature(self.tau_grid, self._grid_c, thin) * self.tau_density
        return weights / weights.sum()

    def _mixture(self, means: np.ndarray, variances: np.ndarray, thin: int = 1) -> NormalMixture:
        weights = self.quadrature_weights(thin)
        keep = _prune(weights)
        w = weights[keep]
        return NormalMixture(w / w.sum(), means[keep], np.sqrt(variances[keep]))

    def coef_mixture(self, name: str, thin: int = 1) -> NormalMixture:
        """The marginal posterior of one coefficient (a normal mixture over tau).

        ``thin`` > 1 uses every ``thin``-th grid node (:meth:`quadrature_weights`): a smaller
        mixture for callers that combine many of them.
        """
        j = self._index(name)
        return self._mixture(self.cond_mean[:, j], self.cond_cov[:, j, j], thin)

    def linear_mixture(self, x: ArrayLike) -> NormalMixture:
        """The posterior of the mean effect ``x'b`` at covariates ``x`` (no heterogeneity added).

        ``x`` has one value per coefficient, in the order of ``coef_names`` (1 for the intercept,
        moderators centred as in the design matrix).
        """
        x = self._x(x)
        return self._mixture(self.cond_mean @ x, np.einsum("i,gij,j->g", x, self.cond_cov, x))

    def predictive(self, x: ArrayLike | None = None) -> NormalMixture:
        """The predictive distribution of a new study's true effect at covariates ``x``.

        ``theta_new | y ~ mixture of N(x'bhat(tau), x'Sigma(tau)x + tau^2)``; ``x`` may be
        omitted for a model without moderators.
        """
        x = self._x(x)
        var = np.einsum("i,gij,j->g", x, self.cond_cov, x) + self.tau_grid**2
        return self._mixture(self.cond_mean @ x, var)

    def tau_cdf(self, t: ArrayLike) -> np.ndarray | float:
        """Posterior CDF of tau (interpolated on the grid)."""
        out = np.interp(t, self.tau_grid, self._tau_cdf, left=0.0, right=1.0)
        return float(out) if np.ndim(out) == 0 else out

    def tau_quantile(self, q: ArrayLike) -> np.ndarray | float:
        """Posterior quantiles of tau."""
        out = np.interp(q, self._tau_cdf, self.tau_grid)
        return float(out) if np.ndim(out) == 0 else out

    def _cdf_of(self, parameter: str) -> _Cdf:
        if parameter in self.coef_names:
            return self.coef_mixture(parameter).cdf
        s2 = self.within_variance
        if parameter == "tau":
            return self.tau_cdf
        if parameter == "tau2":
            return lambda c: self.tau_cdf(math.sqrt(c)) if c > 0 else 0.0
        if parameter == "I2":
            return lambda c: (
                0.0 if c <= 0 else 1.0 if c >= 1 else self.tau_cdf(math.sqrt(c * s2 / (1 - c)))
            )
        if parameter == "theta_new":
            return self.predictive().cdf
        raise ValueError(
            f"no parameter {parameter!r}; have {', '.join(self.coef_names)}, "
            "tau, tau2, I2, theta_new"
        )

    def prob(self, parameter: str, op: str, low: float, high: float | None = None) -> float:
        """Exact posterior probability of a statement, e.g. ``prob("mu", "<", 0)``.

        Parameters
        ----------
        parameter : str
            A coefficient name, ``tau``, ``tau2``, ``I2`` (a proportion) or ``theta_new`` (model
            without moderators).
        op : {"<", "<=", ">", ">=", "in", "outside"}
            The comparison; ``in`` and ``outside`` need ``high``.
        low, high : float
            The value compared with, or the interval ``[low, high]``.

        Returns
        -------
        float

        Raises
        ------
        ValueError
            For an unknown parameter or comparison, or an interval with ``high < low``.
        """
        return _prob_from_cdf(self._cdf_of(parameter), op, low, high)

    def prob_statement(self, statement: _Statement) -> float:
        """:meth:`prob` for an object with ``parameter``, ``op``, ``low``, ``high`` (a claim)."""
        return self.prob(
            statement.parameter, statement.op, statement.low, getattr(statement, "high", None)
        )

    # -- studies and draws ----------------------------------------------------------------

    def study_effects(self, thin: int = 10) -> StudyEffects:
        """Posterior of each study's true effect theta_i given all the data.

        Given tau and b, ``theta_i ~ N(B_i y_i + (1 - B_i) x_i'b, B_i v_i)`` with
        ``B_i = tau^2 / (v_i + tau^2)``; integrating b | y, tau adds ``(1 - B_i)^2 x_i'Sigma x_i``,
        and the result is mixed over the tau grid. That costs O(grid x k) per Newton step of the
        quantiles, so by default every ``thin``-th grid node is used (Simpson's rule on a 10 times
        coarser grid still integrates these smooth mixtures to about 1e-8; ``thin=1`` for the
        full grid).

        Parameters
        ----------
        thin : int
            Use every ``thin``-th node of the tau grid (1: all of them).

        Returns
        -------
        StudyEffects
            Mean, SD and 2.5/50/97.5 % quantiles of each study's effect, in data order.
        """
        rule = _quadrature(self.tau_grid, self._grid_c, thin) * self.tau_density
        keep = rule > _PRUNE * rule.max()
        w = rule[keep] / rule[keep].sum()
        t2 = self.tau_grid[keep] ** 2
        mean_b, cov_b = self.cond_mean[keep], self.cond_cov[keep]
        m = self._model
        p = m.X.shape[1]
        k = m.y.size
        out = {name: np.empty(k) for name in ("mean", "sd", "q025", "q50", "q975")}
        chunk = max(1, _CHUNK_ELEMENTS // (4 * max(w.size, 1)))
        for start in range(0, k, chunk):
            sl = slice(start, start + chunk)
            v, y, X = m.v[sl], m.y[sl], m.X[sl]
            shrink = t2[:, None] / (v + t2[:, None])  # B_i(tau), (G, n)
            fitted = mean_b @ X.T
            quad = cov_b.reshape(-1, p * p) @ m.xx[sl].T
            means = shrink * y + (1.0 - shrink) * fitted
            sds = np.sqrt(shrink * v + (1.0 - shrink) ** 2 * quad)
            mix_mean = w @ means
            out["mean"][sl] = mix_mean
            out["sd"][sl] = np.sqrt(np.maximum(w @ (sds**2 + means**2) - mix_mean**2, 0.0))
            qs = _mixture_quantiles(w, means, sds, np.array([0.025, 0.5, 0.975]))
            out["q025"][sl], out["q50"][sl], out["q975"][sl] = qs
        return StudyEffects(**out)

    def sample(
        self, n: int, rng: np.random.Generator, x_new: ArrayLike | None = None
    ) -> ExactDraws:
        """Draw ``n`` independent samples of (tau, b) and, with ``x_new``, a new study's effect.

        tau is drawn from its grid CDF, then b from the exact conditional b | y, tau at that tau.

        Parameters
        ----------
        n : int
            Number of draws.
        rng : numpy.random.Generator
            Source of randomness.
        x_new : array_like, optional
            Covariates of a new study (one value per coefficient, as :meth:`linear_mixture`);
            when given, ``theta_new`` is drawn too.

        Returns
        -------
        ExactDraws
        """
        tau = np.interp(rng.uniform(size=n), self._tau_cdf, self.tau_grid)
        mean, cov, _ = self._model(tau)
        chol = np.linalg.cholesky(cov)
        coef = mean + np.einsum("nij,nj->ni", chol, rng.standard_normal(mean.shape))
        s2 = self.within_variance
        theta_new = None
        if x_new is not None:
            theta_new = coef @ self._x(x_new) + tau * rng.standard_normal(n)
        return ExactDraws(self.coef_names, tau, coef, tau**2 / (tau**2 + s2), theta_new)


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


def _as_prior(value: object, what: str) -> Prior | None:
    if value is None or isinstance(value, Prior):
        return value
    if isinstance(value, str):
        return parse_prior(value)
    raise TypeError(f"{what} must be a Prior, prior text or None, got {value!r}")


def _coef_priors(coef_priors: _CoefPriors, names: tuple[str, ...]) -> tuple[Prior | None, ...]:
    if coef_priors is None or isinstance(coef_priors, (Prior, str)):
        priors = (_as_prior(coef_priors, "coef_priors"),) * len(names)
    elif isinstance(coef_priors, Mapping):
        missing = [n for n in names if n not in coef_priors]
        extra = [n for n in coef_priors if n not in names]
        if missing or extra:
            raise ValueError(
                f"coef_priors must name exactly the coefficients {names}; "
                f"missing {missing}, unknown {extra}"
            )
        priors = tuple(_as_prior(coef_priors[n], f"prior of {n}") for n in names)
    elif isinstance(coef_priors, Sequence):
        if len(coef_priors) != len(names):
            raise ValueError(
                f"coef_priors has {len(coef_priors)} entries for {len(names)} coefficients"
            )
        priors = tuple(
            _as_prior(p, f"prior of {n}") for p, n in zip(coef_priors, names, strict=True)
        )
    else:
        raise TypeError(
            f"coef_priors must be None, a Prior, a sequence or a mapping, got {coef_priors!r}"
        )
    for name, prior in zip(names, priors, strict=True):
        if prior is not None and prior.family != "normal":
            raise ConfigError(
                f"the exact posterior needs normal coefficient priors, but {name} has {prior}; "
                f'fix: use e.g. normal(0, 10) or method = "mcmc"'
            )
    return priors


def _checked_inputs(
    y: ArrayLike, v: ArrayLike, X: ArrayLike | None, coef_names: Sequence[str] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """``(y, v, X, names)`` checked and shaped (X default: a column of ones named ``mu``)."""
    y = np.asarray(y, dtype=float).ravel()
    v = np.asarray(v, dtype=float).ravel()
    k = y.size
    if k == 0 or v.size != k:
        raise ValueError(f"y and v must be non-empty and of equal length, got {k} and {v.size}")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(v)) and np.all(v > 0)):
        raise ValueError("y must be finite and v finite and > 0")
    if X is None:
        X = np.ones((k, 1))
        default_names = ("mu",)
    else:
        X = np.asarray(X, dtype=float)
        if X.ndim == 1:
            X = X[:, None]
        if X.shape[0] != k or not np.all(np.isfinite(X)):
            raise ValueError(f"X must be a finite ({k}, p) matrix, got shape {X.shape}")
        default_names = tuple(
            "intercept" if np.all(X[:, j] == 1.0) else f"x{j}" for j in range(X.shape[1])
        )
    names = tuple(coef_names) if coef_names is not None else default_names
    if len(names) != X.shape[1] or len(set(names)) != len(names):
        raise ValueError(f"coef_names must be {X.shape[1]} distinct names, got {names}")
    reserved = {"tau", "tau2", "I2", "theta_new"} & set(names)
    if reserved:
        raise ValueError(f"coefficient name(s) {sorted(reserved)} are reserved")
    return y, v, X, names


def fit_exact(
    y: ArrayLike,
    v: ArrayLike,
    X: ArrayLike | None = None,
    coef_names: Sequence[str] | None = None,
    coef_priors: _CoefPriors = None,
    tau_prior: Prior | str = "halfnormal(0.5)",
    grid_size: int = 2001,
    summarize: bool = True,
    grid_from: ExactPosterior | None = None,
) -> ExactPosterior:
    """Fit the normal-normal random-effects / meta-regression model exactly.

    Parameters
    ----------
    y, v : array_like
        Effect estimates and their within-study variances (v > 0), length k >= 1.
    X : array_like, optional
        (k, p) design matrix; default a column of ones (random-effects model, coefficient ``mu``).
        ``p = 0`` (shape ``(k, 0)``, ``coef_names=()``) is the model without coefficients,
        ``y_i ~ Normal(0, v_i + tau^2)`` (e.g. the "no effect" model of a Bayes factor).
    coef_names : sequence of str, optional
        Coefficient names; default ``("mu",)`` without X, else ``intercept`` for a column of
        ones and ``x1, x2, ...`` for the others.
    coef_priors : Prior, str, sequence or mapping, optional
        Normal priors for the coefficients: one for all, one per coefficient (in order, or by
        name). ``None`` (for all or one) is a flat improper prior; the log marginal likelihood
        is then NaN. Only ``normal`` priors keep the posterior exact.
    tau_prior : Prior or str
        Prior of the heterogeneity SD tau; its support must lie in [0, inf). The default is
        only a placeholder for quick use: analyses pass the scale-aware default of
        :func:`metak.priors.default_priors`.
    grid_size : int
        Points of the uniform (bulk) part of the tau grid; odd (Simpson's rule).
    summarize : bool
        Compute the coefficients' summaries (their quantiles cost a Newton iteration over the
        mixture each); ``False`` leaves only tau's in :attr:`ExactPosterior.summaries`, for
        callers that need the marginal likelihood and the mixtures alone, and locates the mode
        of tau (which then only scales the density) to 1e-4 of its bracket instead of 1e-10.
    grid_from : ExactPosterior, optional
        A fit of a nearby model (the same data under other priors, the same model unsummarised,
        one study left out): its tau grid is used when it holds this posterior as a grid of its
        own would (:func:`_grid_holds`), which skips the grid search; else (and with another
        ``grid_size``) the grid is chosen as usual. Its conditional posteriors are reused when the
        data and coefficient priors are the same; the mode is zoomed from the grid's best node.

    Returns
    -------
    ExactPosterior

    Raises
    ------
    ConfigError
        For a coefficient prior that is not normal, a tau prior that allows negative values or
        has infinite density at 0, or coefficients that the data and priors do not identify.
    ValueError
        For data of the wrong shape or not finite (``v`` must be > 0), coefficient names that
        are not distinct or are reserved (``tau``, ``tau2``, ``I2``, ``theta_new``), or
        coefficient priors that do not match the coefficients.
    TypeError
        For a prior that is neither a Prior, prior text nor None.
    """
    y, v, X, names = _checked_inputs(y, v, X, coef_names)
    priors = _coef_priors(coef_priors, names)
    tau_prior = _as_prior(tau_prior, "tau_prior")
    if tau_prior is None:
        raise ValueError("tau_prior is required (a Prior or prior text)")
    lower, upper = tau_prior.bounds
    if lower < 0:
        raise ConfigError(
            f"tau prior {tau_prior} allows negative values; fix: use a prior on [0, inf), "
            "e.g. halfnormal(0.5) or halfcauchy(0.5)"
        )
    grid_size = max(int(grid_size) | 1, 101)

    prior_mean = np.array([p.params[0] if p else 0.0 for p in priors])
    prior_prec = np.array([1.0 / p.params[1] ** 2 if p else 0.0 for p in priors])
    mode_rtol = _MODE_RTOL if summarize else _MODE_RTOL_UNREPORTED
    if grid_from is not None and _same_model(grid_from._model, y, v, X, prior_mean, prior_prec):
        model = grid_from._model
    else:
        model = _Conjugate.build(y, v, X, prior_mean, prior_prec)

    def logpost(t: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return tau_prior.logpdf(t) + model.log_likelihood(t)

    held = None
    if grid_from is not None and grid_from.tau_grid.size == grid_size:
        held = _held_grid(grid_from, model, tau_prior, logpost, mode_rtol)
    if held is None:
        scale = max(math.sqrt(float(np.median(v))), float(np.std(y)), 1e-300)
        nodes, grid_c, mode, lp_mode = _tau_grid(logpost, lower, upper, scale, grid_size, mode_rtol)
        mean, cov, loglik = model(nodes)
        with np.errstate(divide="ignore"):
            lp = tau_prior.logpdf(nodes) + loglik
    else:
        nodes, grid_c, mode, lp_mode, mean, cov, loglik, lp = held
    qweights = _quadrature(nodes, grid_c)
    dens = np.exp(lp - lp_mode)
    z = float(qweights @ dens)
    density = dens / z
    weights = qweights * density
    weights /= weights.sum()
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(nodes))])
    cdf /= cdf[-1]
    lml = lp_mode + math.log(z) if model.proper else math.nan

    s2 = typical_within_variance(v, X)
    post = ExactPosterior(
        coef_names=names,
        tau_prior=tau_prior,
        coef_priors=priors,
        tau_grid=nodes,
        tau_density=density,
        tau_weights=weights,
        cond_mean=mean,
        cond_cov=cov,
        tau_mode=mode,
        log_marginal_likelihood=lml,
        within_variance=s2,
        summaries={},  # filled below: the coefficient summaries need the posterior itself
        _model=model,
        _tau_cdf=cdf,
        _grid_c=grid_c,
        _log_likelihood=loglik,
    )
    summaries = {name: post.coef_mixture(name).summary(name) for name in names if summarize}
    q_tau = np.interp([0.025, 0.5, 0.975], cdf, nodes)
    for name, transform, mode_value in (
        ("tau", lambda t: t, mode),
        ("tau2", lambda t: t**2, None),
        ("I2", lambda t: t**2 / (t**2 + s2), None),
    ):
        values = transform(nodes)
        m1 = float(weights @ values)
        sd = math.sqrt(max(float(weights @ values**2) - m1**2, 0.0))
        q025, q50, q975 = (float(x) for x in transform(q_tau))
        summaries[name] = ParameterSummary(name, m1, sd, q025, q50, q975, mode=mode_value)
    return replace(post, summaries=summaries)


def _same_model(
    model: _Conjugate,
    y: np.ndarray,
    v: np.ndarray,
    X: np.ndarray,
    prior_mean: np.ndarray,
    prior_prec: np.ndarray,
) -> bool:
    """True when ``model`` has these data and coefficient priors (its products then hold too)."""
    pairs = [
        (model.y, y),
        (model.v, v),
        (model.X, X),
        (model.prior_mean, prior_mean),
        (model.prior_prec, prior_prec),
    ]
    return all(np.array_equal(mine, given) for mine, given in pairs)


def _held_grid(
    source: ExactPosterior,
    model: _Conjugate,
    tau_prior: Prior,
    logpost: Callable[[np.ndarray], np.ndarray],
    mode_rtol: float,
) -> tuple | None:
    """``source``'s grid with the posterior of ``model`` under ``tau_prior`` on it, if it holds it.

    Returns ``(nodes, c, mode, lp_mode, mean, cov, loglik, lp)`` or None.
    """
    nodes = source.tau_grid
    if model is source._model:
        mean, cov, loglik = source.cond_mean, source.cond_cov, source._log_likelihood
    else:
        mean, cov, loglik = model(nodes)
    with np.errstate(divide="ignore"):
        lp = tau_prior.logpdf(nodes) + loglik
    lower, upper = tau_prior.bounds
    if not _grid_holds(nodes, lp, source._grid_c, lower, upper):
        return None
    mode, lp_mode = _mode_on_grid(logpost, nodes, lp, mode_rtol)
    return nodes, source._grid_c, mode, lp_mode, mean, cov, loglik, lp


# ---------------------------------------------------------------------------------------------
# The limiting case tau = 0 (common effect)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class CommonEffectPosterior:
    """The exact posterior of the common-effect model (tau = 0): ``b | y ~ Normal(mean, cov)``.

    A point mass at tau = 0 is not a prior the tau quadrature can take, so this is the limit
    computed directly: the conjugate update of :class:`ExactPosterior` evaluated at tau = 0, its
    marginal likelihood ``N(y; X m, V + X S0 X')`` in closed form (no quadrature at all).
    """

    coef_names: tuple[str, ...]
    coef_priors: tuple[Prior | None, ...]
    mean: np.ndarray  # (p,)
    cov: np.ndarray  # (p, p)
    log_marginal_likelihood: float  # NaN when a coefficient has a flat prior

    def coef_mixture(self, name: str) -> NormalMixture:
        """The posterior of one coefficient (a normal: a mixture of one component)."""
        try:
            j = self.coef_names.index(name)
        except ValueError:
            raise ValueError(
                f"no coefficient {name!r}; have {', '.join(self.coef_names)}"
            ) from None
        return NormalMixture(
            np.ones(1), self.mean[j : j + 1].copy(), np.sqrt(self.cov[j, j : j + 1])
        )

    def linear_mixture(self, x: ArrayLike) -> NormalMixture:
        """The posterior of ``x'b`` (one normal component)."""
        x = np.asarray(x, dtype=float).ravel()
        return NormalMixture(
            np.ones(1), np.array([float(x @ self.mean)]), np.array([math.sqrt(x @ self.cov @ x)])
        )

    def prob(self, parameter: str, op: str, low: float, high: float | None = None) -> float:
        """Exact posterior probability of a statement about a coefficient."""
        return self.coef_mixture(parameter).prob(op, low, high)


def fit_common_effect(
    y: ArrayLike,
    v: ArrayLike,
    X: ArrayLike | None = None,
    coef_names: Sequence[str] | None = None,
    coef_priors: _CoefPriors = None,
) -> CommonEffectPosterior:
    """Fit the common-effect model ``y_i ~ Normal(x_i' b, v_i)`` exactly (tau = 0).

    Parameters
    ----------
    y, v, X, coef_names, coef_priors
        As for :func:`fit_exact` (``X`` may have no columns).

    Returns
    -------
    CommonEffectPosterior

    Raises
    ------
    ConfigError
        For a coefficient prior that is not normal, or coefficients the data and priors do not
        identify.
    """
    y, v, X, names = _checked_inputs(y, v, X, coef_names)
    priors = _coef_priors(coef_priors, names)
    prior_mean = np.array([p.params[0] if p else 0.0 for p in priors])
    prior_prec = np.array([1.0 / p.params[1] ** 2 if p else 0.0 for p in priors])
    model = _Conjugate.build(y, v, X, prior_mean, prior_prec)
    mean, cov, loglik = model(0.0)
    lml = float(loglik[0]) if model.proper else math.nan
    return CommonEffectPosterior(names, priors, mean[0], cov[0], lml)
