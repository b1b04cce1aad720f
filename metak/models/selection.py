"""The step-function selection model (Hedges 1992; Vevea & Hedges 1995).

Random effects with publication probability a step function of each study's one-sided p-value,
as R metafor's ``selmodel(type = "stepfun")``: with one-sided p-values
``p_i = 1 - Phi(y_i / s_i)`` (side ``"greater"``; ``Phi(y_i / s_i)`` for ``"less"``), cut-points
``c_1 < ... < c_m`` and weights ``omega_1 = 1, omega_2, ..., omega_{m+1}`` for the intervals
``p <= c_1``, ``c_1 < p <= c_2``, ..., ``p > c_m``, the density of a *published* effect size is

    f(y_i) = omega(p_i) phi((y_i - mu) / sigma_i) / sigma_i / A_i,   sigma_i^2 = v_i + tau^2,
    A_i = sum_j omega_j P(p_i in interval j | mu, tau, v_i),

the study effects integrated out as in :mod:`metak.models.univariate`. ``A_i`` is the
probability that a study like study ``i`` is published, relative to the most significant
interval; ``mu`` and ``tau`` describe the studies *before* selection, so ``mu`` is the
selection-adjusted pooled effect.

The p-values use each study's own sampling SD ``s_i = sqrt(v_i)``: the p-value its authors saw,
fixed data; the density uses the model's full within-study SD (conversion variance and, where
it is a parameter, the pre-post correlation included). With the correlation as a parameter,
p-values from it would move studies between intervals from one draw to the next: a likelihood
with jumps, which NUTS cannot sample.

The shrunken study effects keep the normal conditional of the random-effects model: selection
depends on ``y_i`` only, so given ``y_i`` it is a constant factor of ``p(theta_i | y_i, mu, tau)``.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pytensor.tensor import TensorVariable
from scipy.special import ndtr, ndtri

from metak.fitting.data import AnalysisData
from metak.models.common import ModelParts, pointwise_loglik, prior_variable, within_sd
from metak.spec import CumulativeDirichlet, SelectionSpec

__all__ = [
    "build_selection_model",
    "resolve_side",
    "one_sided_p_values",
    "interval_labels",
    "interval_index",
    "INTERVAL_DIM",
]

INTERVAL_DIM = "p_interval"
_SQRT2 = np.sqrt(2.0)


def resolve_side(selection: SelectionSpec, direction: str) -> tuple[str, str]:
    """The side the p-values test, and a note saying how it was chosen ("" when given).

    Parameters
    ----------
    selection : SelectionSpec
        The selection model; ``side = "auto"`` follows the outcome's direction.
    direction : str
        The outcome's direction of benefit (``lower_is_better``, ``higher_is_better`` or
        ``unspecified``).

    Returns
    -------
    tuple of (str, str)
        ``"greater"`` or ``"less"``, and a one-line note for the result's warnings.
    """
    if selection.side != "auto":
        return selection.side, ""
    if direction == "lower_is_better":
        return "less", ""
    if direction == "higher_is_better":
        return "greater", ""
    return "greater", (
        "selection model: the outcome's direction of benefit is unspecified, so selection is "
        'assumed to favour significantly positive effects (metafor\'s alternative = "greater"); '
        "fix: set direction in outcomes.csv or the selection side"
    )


def one_sided_p_values(y: np.ndarray, sd: np.ndarray, side: str) -> np.ndarray:
    """One-sided p-values of ``y`` with standard errors ``sd`` (as metafor's ``.selmodel.pval``).

    Parameters
    ----------
    y, sd : numpy.ndarray
        Effect sizes and their sampling standard errors.
    side : str
        ``"greater"`` (small p for large positive ``y``) or ``"less"``.

    Returns
    -------
    numpy.ndarray
    """
    z = np.asarray(y, dtype=float) / np.asarray(sd, dtype=float)
    return ndtr(-z) if side == "greater" else ndtr(z)


def interval_index(p: np.ndarray, cutpoints: tuple[float, ...]) -> np.ndarray:
    """0-based index of the p-value interval ``(c_{j-1}, c_j]`` holding each p-value.

    A p-value equal to a cut-point belongs to the interval it closes, as in metafor.
    """
    return np.searchsorted(np.asarray(cutpoints, dtype=float), np.asarray(p), side="left")


def interval_labels(cutpoints: tuple[float, ...]) -> list[str]:
    """Labels ``"low-high"`` of the p-value intervals ``(low, high]``.

    For example ``["0-0.025", "0.025-0.05", "0.05-1"]``.

    Letters, digits, ``.`` and ``-`` only, so that summary parameters ``omega[0.05-1]`` can be
    named in a claim statement (:mod:`metak.claims`).
    """
    edges = ["0", *(f"{c:g}" for c in cutpoints), "1"]
    return [f"{low}-{high}" for low, high in zip(edges[:-1], edges[1:], strict=True)]


def _normal_cdf(x: TensorVariable) -> TensorVariable:
    return 0.5 * pt.erfc(-x / _SQRT2)


def _log_publication_probability(
    mu: TensorVariable,
    sigma: TensorVariable,
    omega: TensorVariable,
    thresholds: np.ndarray,
    sign: float,
) -> TensorVariable:
    """``log A_i``: the weights averaged over the p-value intervals' probabilities.

    ``thresholds[i, j]`` is the value of ``sign * y_i`` at which study ``i``'s p-value equals
    cut-point ``j`` (decreasing in ``j``); ``F_ij = P(sign * y_i < thresholds[i, j])``.
    """
    u = (thresholds - sign * mu) / sigma[:, None]
    below = _normal_cdf(u)
    # The most significant interval's probability as an upper tail, Phi(-u), not 1 - Phi(u),
    # which loses all digits when the interval is improbable.
    probabilities = pt.concatenate(
        [_normal_cdf(-u[:, :1]), below[:, :-1] - below[:, 1:], below[:, -1:]], axis=1
    )
    return pt.log(pt.dot(probabilities, omega))


def _selected_logp(
    value: TensorVariable,
    mu: TensorVariable,
    sigma: TensorVariable,
    log_weight: TensorVariable,
    log_normaliser: TensorVariable,
) -> TensorVariable:
    """Pointwise log density of a published effect size (the module docstring's ``f``)."""
    return pm.logp(pm.Normal.dist(mu=mu, sigma=sigma), value) + log_weight - log_normaliser


def _weights(selection: SelectionSpec) -> TensorVariable:
    """``omega`` over the intervals (the first fixed at 1) from the weight prior."""
    n = selection.n_intervals
    prior = selection.weight_prior
    if isinstance(prior, CumulativeDirichlet):
        increments = pm.Dirichlet("omega_increments", a=np.full(n, prior.alpha))
        # omega_j = eta_j + ... + eta_J; omega_1 is the whole simplex, 1 up to rounding: set it.
        tail_sums = pt.cumsum(increments[::-1])[::-1]
        omega = pt.concatenate([pt.ones(1), tail_sums[1:]])
    else:
        free = prior_variable("omega_free", prior, shape=n - 1)
        omega = pt.concatenate([pt.ones(1), free])
    return pm.Deterministic("omega", omega, dims=INTERVAL_DIM)


def build_selection_model(
    data: AnalysisData, priors: dict, selection: SelectionSpec
) -> tuple[pm.Model, ModelParts]:
    """``(pm.Model, ModelParts)`` of the step-function selection model on ``data``.

    Parameters
    ----------
    data : metak.fitting.data.AnalysisData
        A random-effects analysis' data (no moderators).
    priors : dict
        The priors in force: ``mu``, ``tau`` (and ``r`` when change-score correlations are
        uncertain), as :func:`metak.fitting.prior_choice.priors_in_force` returns them.
    selection : SelectionSpec
        Cut-points, side and the prior on the weights.

    Returns
    -------
    tuple of (pymc.Model, ModelParts)
        Posterior variables ``mu``, ``tau``, ``omega`` (dim ``p_interval``; the first interval's
        weight is 1), ``theta``, ``theta_new``; ``log_likelihood_y`` pointwise.
    """
    side, side_note = resolve_side(selection, data.direction)
    sign = 1.0 if side == "greater" else -1.0
    p_sd = np.sqrt(np.asarray(data.v, dtype=float))
    group = interval_index(one_sided_p_values(data.y, p_sd, side), selection.cutpoints)
    # sign * y_i >= p_sd_i * Phi^-1(1 - c)  <=>  p_i <= c
    thresholds = p_sd[:, None] * ndtri(1.0 - np.asarray(selection.cutpoints))[None, :]
    labels = interval_labels(selection.cutpoints)
    counts = np.bincount(group, minlength=len(labels))
    coords = {"study": list(data.row_label), INTERVAL_DIM: labels}
    with pm.Model(coords=coords) as model:
        mu = prior_variable("mu", priors["mu"])
        tau = prior_variable("tau", priors["tau"])
        omega = _weights(selection)
        sd = within_sd(data, priors)
        v = sd**2
        sigma = pt.sqrt(v + tau**2)
        log_normaliser = _log_publication_probability(mu, sigma, omega, thresholds, sign)
        y = pm.CustomDist(
            "y",
            mu,
            sigma,
            pt.log(omega)[group],
            log_normaliser,
            logp=_selected_logp,
            observed=data.y,
            dims="study",
        )
        pointwise_loglik(y, data.y)
        shrink = tau**2 / (tau**2 + v)
        pm.Deterministic("theta_mean", shrink * data.y + (1 - shrink) * mu, dims="study")
        pm.Deterministic("theta_sd", pt.sqrt(shrink * v), dims="study")
    report = ["mu", "tau", "omega", "theta", "theta_new"]
    if data.has_uncertain_r:
        report.append("r_prepost")
    empty = [label for label, count in zip(labels, counts, strict=True) if count == 0]
    notes = [side_note]
    if empty:
        notes.append(
            f"selection model: no study has a one-sided p-value in {', '.join(empty)}, so the "
            "weights rest on their prior there (metafor refuses such a fit); "
            "fix: choose cut-points with studies in every interval"
        )
    return model, ModelParts(
        report_vars=tuple(report),
        notes=tuple(note for note in notes if note),
        theta_new=True,
        theta_conditional=True,
        replicates=False,
        attrs={
            "metak_selection_cutpoints": ";".join(f"{c:g}" for c in selection.cutpoints),
            "metak_selection_side": side,
            "metak_selection_weight_prior": str(selection.weight_prior),
            "metak_selection_interval_counts": ";".join(str(int(c)) for c in counts),
        },
        extra_priors={"omega": str(selection.weight_prior)},
    )
