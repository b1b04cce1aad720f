"""Random effects, robust random effects and meta-regression (with in-model imputation).

The study effects are integrated out of the likelihood, ``y_i ~ Normal(x_i'b, sqrt(v_i + s_i^2))``
with ``s_i = tau`` (normal) or ``s_i = tau / sqrt(lambda_i)``, ``lambda_i ~ Gamma(nu/2, nu/2)`` (the
robust model: Student-t study effects written as a scale mixture of normals). The sampler then
moves only in the hyperparameters, which removes the funnel between tau and the study effects
that makes centred *and* non-centred versions mix slowly for some data sets. The shrunken study
effects are drawn exactly from their conditional posterior after sampling:

    theta_i | b, tau, y = B_i y_i + (1 - B_i) x_i'b + sqrt(B_i v_i) e_i,
    B_i = s_i^2 / (s_i^2 + v_i)

with ``e_i`` independent standard normal draws (:mod:`metak.fitting.mcmc.generated`); the model
computes the conditional mean and SD with every draw.

**Compiled once, data swapped in.** Unless a moderator is imputed, the model holds its data —
effect sizes, variances, moderators, pre-post terms *and the priors' parameters* (defaults scale
with each analysis' data) — in ``pm.Data`` containers, and its rows are padded to
:func:`padded_rows` with rows that carry no likelihood. Its compiled form then depends only on
its *structure* (:attr:`SharedModel.key`: model kind, padded rows, moderator count, prior
families), and one compilation serves every analysis of that structure with the data replaced
(:mod:`metak.fitting.mcmc.compiled`). Padding, rather than recompiling for every k: nutpie fixes
the size of every stored variable when it compiles (the ``study``-sized deterministics, and the
robust model's ``k`` latent precisions are sampler dimensions), so a compiled model serves one
row count; buckets of row counts keep the number of compilations small (4 for k = 5 to 50) at a
cost of at most doubling rows that are cheap next to a gradient call's overhead (measured: see
``benchmarks/RESULTS.md``). A padded row has likelihood weight 0 (its contribution to the log
density and its gradient is exactly 0) and, in the robust model, a latent precision with a
fixed Gamma(1, 1) prior that does not involve ``nu``: the posterior of every real quantity is
unchanged, and the padded entries are cut off after sampling.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from metak.fitting.design import coefficient_names, prepost_r_terms, within_variance
from metak.models.common import DataPack, ModelParts, prior_data, prior_variable, within_sd
from metak.models.imputation import impute_moderator

if TYPE_CHECKING:
    from metak.fitting.data import AnalysisData

__all__ = [
    "build_univariate_model",
    "shared_univariate_model",
    "padded_rows",
    "SharedModel",
    "STUDY_DIM",
    "MODERATOR_DIM",
]

STUDY_DIM = "study"
MODERATOR_DIM = "moderator"
# Smallest padded row count: below it a gradient call costs the same whatever the rows.
_MIN_PADDED = 16
# Above this many rows, buckets grow by quarter octaves (at most 19% padding, 1.19 = 2^0.25)
# instead of doubling: sampling time grows with the rows once they dominate a gradient call.
_DOUBLING_UP_TO = 64
# A padded row: unit variance, effect 0, moderators 0, weight 0 (it adds exactly 0).
_PAD_VARIANCE = 1.0


def padded_rows(k: int) -> int:
    """Rows of the compiled model for ``k`` effect sizes: the bucket ``k`` falls in.

    16, 32, 64, then quarter octaves (76, 90, 108, 128, 152, ...), so analyses with different
    numbers of studies share a compiled model, and padding stays below 2x (19% above 64 rows).
    """
    if k <= _MIN_PADDED:
        return _MIN_PADDED
    if k <= _DOUBLING_UP_TO:
        return int(2 ** np.ceil(np.log2(k)))
    quarter = np.ceil(4 * np.log2(k)) / 4
    size = int(np.ceil(2**quarter))
    return max(size, k)


@dataclass(frozen=True)
class SharedModel:
    """An analysis' model as a structure and the values of its data containers.

    ``key`` is everything the compiled code depends on; two analyses with equal keys can share
    one compilation, ``values`` (by ``pm.Data`` name, padded to ``padded`` rows) being swapped
    in. ``build()`` builds the model with these values (the first analysis of a structure).
    ``rows`` is the analysis' own number of rows (``k``); ``labels`` and ``moderators`` its
    ``study`` and ``moderator`` coordinates, which the padded model's draws get after sampling.
    """

    key: tuple
    values: dict[str, np.ndarray]
    rows: int
    padded: int
    labels: tuple[str, ...]
    moderators: tuple[str, ...]
    build: Callable[[], tuple[pm.Model, ModelParts]]


def _slope_families(names, priors) -> tuple[str, ...]:
    return tuple(priors[name].family for name in names[1:])


def _coefficients(names, priors, shared: DataPack | None):
    """Intercept/mu and the slope vector ``beta`` (one vector RV when the priors share a family)."""
    mu = prior_variable("mu", priors[names[0]], shared=shared)
    slopes = names[1:]
    if not slopes:
        return mu, None
    families = set(_slope_families(names, priors))
    if len(families) == 1:
        # One vector variable with per-moderator parameters.
        first = priors[slopes[0]]
        params = {key: _slope_parameter(names, priors, key) for key in first.kwargs}
        if shared is not None:
            params = {key: shared[f"prior_beta_{key}"] for key in params}
        beta = getattr(pm, first.pymc_name)("beta", **params, dims=MODERATOR_DIM)
        return mu, beta
    parts = [
        prior_variable(f"beta_{j}", priors[name], shared=shared) for j, name in enumerate(slopes)
    ]
    return mu, pm.Deterministic("beta", pt.stack(parts), dims=MODERATOR_DIM)


def _slope_parameter(names, priors, key: str) -> np.ndarray:
    return np.array([priors[name].kwargs[key] for name in names[1:]], dtype=float)


def _prior_values(names, priors, robust: bool, uncertain_r: bool) -> dict[str, np.ndarray]:
    values = prior_data("mu", priors[names[0]]) | prior_data("tau", priors["tau"])
    slopes = names[1:]
    if slopes:
        if len(set(_slope_families(names, priors))) == 1:
            for key in priors[slopes[0]].kwargs:
                values[f"prior_beta_{key}"] = _slope_parameter(names, priors, key)
        else:
            for j, name in enumerate(slopes):
                values |= prior_data(f"beta_{j}", priors[name])
    if robust:
        values |= prior_data("nu", priors["nu"])
    if uncertain_r:
        values |= prior_data("r_prepost", priors["r"])
    return values


def _padded(values: np.ndarray, rows: int, fill: float) -> np.ndarray:
    out = np.full((rows, *values.shape[1:]), fill, dtype=float)
    out[: len(values)] = values
    return out


def _data_values(data, padded: int) -> dict[str, np.ndarray]:
    """The analysis' rows as the model's data containers, padded to ``padded`` rows."""
    values = {
        "y_obs": _padded(data.y, padded, 0.0),
        "v_within": _padded(within_variance(data), padded, _PAD_VARIANCE),
        "row_weight": _padded(np.ones(data.k), padded, 0.0),
    }
    if data.X is not None:
        values["X_moderators"] = _padded(data.X, padded, 0.0)
    if data.has_uncertain_r:
        slope, r0 = prepost_r_terms(data)
        values["dvi_dr"] = _padded(slope, padded, 0.0)
        values["r_assumed"] = _padded(r0, padded, 0.0)
    return values


def _report_vars(data, beta: bool, imputed: bool) -> tuple[str, ...]:
    report = ["mu", "tau", "theta", "theta_new"]
    if beta:
        report.insert(1, "beta")
    if data.spec.model == "robust":
        report.append("nu")
    if data.has_uncertain_r:
        report.append("r_prepost")
    if imputed:
        report.extend(["log_baseline_imputed", "imputation_group_mean", "imputation_sd"])
    return tuple(report)


def _model(data, priors: dict, padded: int, shared: bool):
    """The model on ``padded`` rows; its data in ``pm.Data`` when ``shared`` (else constants)."""
    spec = data.spec
    names = coefficient_names(data)
    # A shared model serves many analyses: positions now, each analysis' labels after sampling.
    coords = {STUDY_DIM: list(range(padded)) if shared else list(data.row_label)}
    if len(names) > 1:
        coords[MODERATOR_DIM] = list(names[1:])
    values = _data_values(data, padded)
    notes, imputed = [], {}
    robust = spec.model == "robust"
    with pm.Model(coords=coords) as model:
        # A shared model's data and prior parameters: slices of one pm.Data (DataPack).
        pack = None
        if shared:
            priors_data = _prior_values(names, priors, robust, data.has_uncertain_r)
            pack = DataPack(values | priors_data)
            held = {name: pack[name] for name in values}
        else:
            held = {name: pt.as_tensor_variable(value) for name, value in values.items()}
        y_obs, weight = held["y_obs"], held["row_weight"]
        mu, beta = _coefficients(names, priors, pack)
        tau = prior_variable("tau", priors["tau"], shared=pack)
        if robust:
            nu = prior_variable("nu", priors["nu"], shared=pack)
            # A padded row's precision has a fixed Gamma(1, 1) prior, independent of nu.
            shape = pt.switch(weight > 0, nu / 2, 1.0)
            precision = pm.Gamma("study_precision", alpha=shape, beta=shape, dims=STUDY_DIM)
            spread2 = tau**2 / precision
        else:
            spread2 = tau**2
        fitted = mu
        if beta is not None:
            X = held["X_moderators"]
            if data.needs_imputation:
                X, imputed, imputation_notes = impute_moderator(data, priors)
                notes.extend(imputation_notes)
            fitted = mu + pt.dot(X, beta)
        sd = within_sd(
            data,
            priors,
            base=held["v_within"],
            slope=held.get("dvi_dr"),
            r0=held.get("r_assumed"),
            shared=pack,
        )
        v = sd**2
        total_sd = pt.sqrt(v + spread2)
        loglik = pm.logp(pm.Normal.dist(mu=fitted, sigma=total_sd), y_obs)
        # The likelihood as a weighted sum, so padded rows add exactly 0; the pointwise values
        # are kept (PSIS-LOO needs them) and cut to the real rows after sampling.
        pm.Potential("likelihood", pt.sum(weight * loglik))
        pm.Deterministic("log_likelihood_y", loglik, dims=STUDY_DIM)
        # theta_i | rest ~ N(theta_mean_i, theta_sd_i^2): the sampler computes the two moments
        # with every draw and metak.fitting.mcmc.generated draws theta from them, so the k
        # standard normal variables of the old formulation no longer take up k of the sampler's
        # dimensions.
        shrink = spread2 / (spread2 + v)
        pm.Deterministic("theta_mean", shrink * y_obs + (1 - shrink) * fitted, dims=STUDY_DIM)
        pm.Deterministic("theta_sd", pt.sqrt(shrink * v), dims=STUDY_DIM)
        # theta_new = mu + tau * z is drawn after sampling (metak.fitting.mcmc.generated).
    return model, ModelParts(
        report_vars=_report_vars(data, beta is not None, bool(imputed)),
        notes=tuple(notes),
        imputed=imputed,
        theta_new=True,
        theta_conditional=True,
        data_pack=pack,
    )


def build_univariate_model(
    data: AnalysisData, priors: dict, padded: int | None = None
) -> tuple[pm.Model, ModelParts]:
    """``(pm.Model, ModelParts)`` of a random-effects, robust or meta-regression analysis.

    Parameters
    ----------
    data : metak.fitting.data.AnalysisData
        The analysis' rows.
    priors : dict
        The priors in force (:func:`metak.fitting.prior_choice.priors_in_force`).
    padded : int, optional
        Rows of the model (at least ``data.k``; the extra rows carry no likelihood). Default
        ``data.k``: no padding, data as constants.

    Returns
    -------
    tuple of (pymc.Model, ModelParts)
    """
    if padded is None:
        return _model(data, priors, data.k, shared=False)
    return _model(data, priors, padded, shared=True)


def shared_univariate_model(data: AnalysisData, priors: dict) -> SharedModel | None:
    """The analysis' model as a :class:`SharedModel`, or None when it cannot share a compilation.

    None for an imputed moderator: the sub-model's shape depends on which values are missing.
    """
    if data.needs_imputation:
        return None
    names = coefficient_names(data)
    padded = padded_rows(data.k)
    robust = data.spec.model == "robust"
    key = (
        "univariate",
        data.spec.model,
        padded,
        len(names) - 1,
        priors[names[0]].family,
        _slope_families(names, priors),
        priors["tau"].family,
        priors["nu"].family if robust else None,
        priors["r"].family if data.has_uncertain_r else None,
    )
    values = _data_values(data, padded) | _prior_values(names, priors, robust, data.has_uncertain_r)
    return SharedModel(
        key=key,
        values=values,
        rows=data.k,
        padded=padded,
        labels=tuple(data.row_label),
        moderators=tuple(names[1:]),
        build=lambda: build_univariate_model(data, priors, padded=padded),
    )
