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
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from metak.fitting.design import coefficient_names
from metak.models.common import ModelParts, pointwise_loglik, prior_variable, within_sd
from metak.models.imputation import impute_moderator

__all__ = ["build_univariate_model"]


def _coefficients(names, priors):
    """Intercept/mu and the slope vector ``beta`` (one vector RV when the priors share a family)."""
    mu = prior_variable("mu", priors[names[0]])
    slopes = names[1:]
    if not slopes:
        return mu, None
    families = {priors[name].family for name in slopes}
    if len(families) == 1:
        # One vector variable with per-moderator parameters.
        first = priors[slopes[0]]
        params = {
            key: np.array([priors[name].kwargs[key] for name in slopes]) for key in first.kwargs
        }
        beta = getattr(pm, first.pymc_name)("beta", **params, dims="moderator")
        return mu, beta
    parts = [prior_variable(f"beta_{j}", priors[name]) for j, name in enumerate(slopes)]
    return mu, pm.Deterministic("beta", pt.stack(parts), dims="moderator")


def build_univariate_model(data, priors: dict):
    spec = data.spec
    names = coefficient_names(data)
    coords = {"study": list(data.row_label)}
    if len(names) > 1:
        coords["moderator"] = list(names[1:])
    notes = []
    imputed = {}
    with pm.Model(coords=coords) as model:
        mu, beta = _coefficients(names, priors)
        tau = prior_variable("tau", priors["tau"])
        if spec.model == "robust":
            nu = prior_variable("nu", priors["nu"])
            precision = pm.Gamma("study_precision", alpha=nu / 2, beta=nu / 2, dims="study")
            spread2 = tau**2 / precision
        else:
            spread2 = tau**2
        fitted = mu
        if beta is not None:
            X = data.X
            if data.needs_imputation:
                X, imputed, imputation_notes = impute_moderator(data, priors)
                notes.extend(imputation_notes)
            fitted = mu + pt.dot(pt.as_tensor_variable(X), beta)
        sd = within_sd(data, priors)
        v = sd**2
        y = pm.Normal("y", mu=fitted, sigma=pt.sqrt(v + spread2), observed=data.y, dims="study")
        pointwise_loglik(y, data.y)
        # theta_i | rest ~ N(theta_mean_i, theta_sd_i^2): the sampler computes the two moments
        # with every draw and metak.fitting.mcmc.generated draws theta from them, so the k
        # standard normal
        # variables of the old formulation no longer take up k of the sampler's dimensions.
        shrink = spread2 / (spread2 + v)
        pm.Deterministic("theta_mean", shrink * data.y + (1 - shrink) * fitted, dims="study")
        pm.Deterministic("theta_sd", pt.sqrt(shrink * v), dims="study")
        # theta_new = mu + tau * z is drawn after sampling (metak.fitting.mcmc.generated).
    report = ["mu", "tau", "theta", "theta_new"]
    if beta is not None:
        report.insert(1, "beta")
    if spec.model == "robust":
        report.append("nu")
    if data.has_uncertain_r:
        report.append("r_prepost")
    if imputed:
        report.extend(["log_baseline_imputed", "imputation_group_mean", "imputation_sd"])
    return model, ModelParts(
        report_vars=tuple(report),
        notes=tuple(notes),
        imputed=imputed,
        theta_new=True,
        theta_conditional=True,
    )
