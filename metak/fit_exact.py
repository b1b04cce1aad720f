"""Fit one analysis on the exact path and package it like an MCMC fit.

Summary numbers come from the exact posterior (normal mixtures over the tau grid: no Monte Carlo
error). The posterior file holds independent exact draws so that every downstream tool (ArviZ,
claim verdicts, the report) reads exact and MCMC fits the same way.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from metak.exact import fit_exact
from metak.fitting import AnalysisResult
from metak.fit_common import (
    coefficient_names,
    design_matrix,
    resolve_priors,
    study_table,
    within_variance,
)
from metak.posterior import benefit_sign, effect_level_name
from metak.spec import DEFICIENCY_MODERATOR
from metak.summaries import SUMMARY_COLUMNS, summary_row

__all__ = ["fit_exact_analysis", "EXACT_DRAWS_MIN"]

# Exact draws stored per analysis: enough that draw-based claim probabilities have a Monte
# Carlo SE below 0.004 (sqrt(.25/16000)).
EXACT_DRAWS_MIN = 16000


def _row(spec, name, summary, scale=1.0):
    return summary_row(
        spec.name,
        name,
        mean=summary.mean * scale,
        sd=summary.sd * scale,
        q=(summary.q025 * scale, summary.q50 * scale, summary.q975 * scale),
        method="exact",
        converged=True,
    )


def _summary(spec, data, post, names, direction):
    import pandas as pd

    rows = [_row(spec, name, post.summary(name)) for name in names]
    rows.append(_row(spec, "tau", post.summary("tau")))
    rows.append(_row(spec, "tau2", post.summary("tau2")))
    rows.append(_row(spec, "I2", post.summary("I2"), scale=100.0))
    reference = np.zeros(len(names))
    reference[0] = 1.0
    rows.append(_row(spec, "theta_new", post.predictive(reference).summary("theta_new")))
    if spec.deficiency is not None and DEFICIENCY_MODERATOR in names:
        j = names.index(DEFICIENCY_MODERATOR)
        for level in spec.deficiency.levels:
            x = reference.copy()
            x[j] = np.log(level / spec.deficiency.reference)
            rows.append(_row(spec, effect_level_name(level), post.linear_mixture(x).summary("")))
        op = "<" if benefit_sign(direction) < 0 else ">"
        probability = post.prob(DEFICIENCY_MODERATOR, op, 0.0)
        rows.append(
            summary_row(
                spec.name,
                "p_more_deficient_more_benefit",
                mean=probability,
                sd=np.nan,
                q=(np.nan,) * 3,
                method="exact",
                converged=True,
            )
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _draw_prior(prior, size, rng):
    return np.asarray(prior.rvs(size, rng), dtype=float)


def _datatree(spec, data, post, priors, names, seed, n_draws):
    rng = np.random.default_rng(seed)
    X = design_matrix(data)
    v = within_variance(data)
    draws = post.sample(n_draws, rng, x_new=np.eye(1, len(names))[0])
    coef, tau = draws.coef, draws.tau
    # theta_i | b, tau, y ~ N(B y_i + (1 - B) x_i'b, B v_i), B = tau^2 / (tau^2 + v_i).
    fitted = coef @ X.T
    shrink = tau[:, None] ** 2 / (tau[:, None] ** 2 + v)
    theta = (
        shrink * data.y
        + (1 - shrink) * fitted
        + np.sqrt(shrink * v) * rng.standard_normal(fitted.shape)
    )
    studies = list(data.row_label)
    moderators = list(names[1:])

    def group(mu, beta, tau_values, theta_values, theta_new):
        variables = {
            "mu": (("chain", "draw"), mu[None]),
            "tau": (("chain", "draw"), tau_values[None]),
            "theta": (("chain", "draw", "study"), theta_values[None]),
            "theta_new": (("chain", "draw"), theta_new[None]),
        }
        if moderators:
            variables["beta"] = (("chain", "draw", "moderator"), beta[None])
        coords = {"chain": [0], "draw": np.arange(mu.size), "study": studies}
        if moderators:
            coords["moderator"] = moderators
        return xr.Dataset(variables, coords=coords)

    posterior = group(coef[:, 0], coef[:, 1:], tau, theta, draws.theta_new)
    prior_coef = np.column_stack([_draw_prior(priors[name], n_draws, rng) for name in names])
    prior_tau = _draw_prior(priors["tau"], n_draws, rng)
    prior_theta = prior_coef @ X.T + prior_tau[:, None] * rng.standard_normal((n_draws, data.k))
    prior_new = prior_coef[:, 0] + prior_tau * rng.standard_normal(n_draws)
    prior = group(prior_coef[:, 0], prior_coef[:, 1:], prior_tau, prior_theta, prior_new)
    # Marginal over the study effect (as the MCMC models): y_i | b, tau ~ N(x_i'b, v_i + tau^2),
    # the pointwise likelihood that leave-one-study-out comparisons need.
    total = v + tau[:, None] ** 2
    loglik = -0.5 * (np.log(2 * np.pi * total) + (data.y - fitted) ** 2 / total)
    log_likelihood = xr.Dataset(
        {"y": (("chain", "draw", "study"), loglik[None])},
        coords={"chain": [0], "draw": np.arange(n_draws), "study": studies},
    )
    observed = xr.Dataset({"y": (("study",), data.y)}, coords={"study": studies})
    constant = {"v": (("study",), v), "v_sampling": (("study",), data.v)}
    coords = {"study": studies}
    if moderators:
        constant["X"] = (("study", "moderator"), X[:, 1:])
        coords["moderator"] = moderators
    attrs = {
        "metak_analysis": spec.name,
        "metak_method": "exact",
        "metak_model": spec.model,
        "metak_seed": int(seed),
    }
    tree = xr.DataTree.from_dict(
        {
            "posterior": posterior,
            "prior": prior,
            "log_likelihood": log_likelihood,
            "observed_data": observed,
            "constant_data": xr.Dataset(constant, coords=coords),
        }
    )
    tree.attrs.update(attrs)
    return tree


def fit_exact_analysis(spec, data, settings, seed: int) -> AnalysisResult:
    """Exact posterior of a random-effects model or meta-regression (no imputation)."""
    priors, uisd_note = resolve_priors(spec, data)
    names = coefficient_names(data)
    post = fit_exact(
        data.y,
        within_variance(data),
        design_matrix(data),
        coef_names=names,
        coef_priors=[priors[name] for name in names],
        tau_prior=priors["tau"],
    )
    direction = data.direction
    summary = _summary(spec, data, post, names, direction)
    effects = post.study_effects()
    tau_mean = float(summary.loc[summary["parameter"] == "tau", "mean"].iloc[0])
    table = study_table(data, effects.mean, effects.q025, effects.q975, tau_mean, "exact")
    n_draws = max(EXACT_DRAWS_MIN, settings.draws * settings.chains)
    tree = _datatree(spec, data, post, priors, names, seed, n_draws)
    warnings = [uisd_note]
    if data.n_studies < 5:
        warnings.append(
            f"only {data.n_studies} studies: tau is poorly identified and the result leans on its prior"
        )
    counts = {
        "direction": direction,
        "tau_mode": post.tau_mode,
        "log_marginal_likelihood": post.log_marginal_likelihood,
    }
    counts.update(_moderator_counts(data))
    return AnalysisResult(
        spec=spec,
        data=data,
        method="exact",
        summary=summary,
        study_table=table,
        datatree=tree,
        priors={key: str(value) for key, value in priors.items()},
        converged=True,
        messages=(),
        warnings=tuple(warnings),
        counts=counts,
    )


def _moderator_counts(data) -> dict:
    if DEFICIENCY_MODERATOR not in data.moderator_names:
        return {}
    j = data.moderator_names.index(DEFICIENCY_MODERATOR)
    measured = np.isfinite(data.X_raw[:, j])
    return {
        "deficiency_measured": int(
            len({s for s, m in zip(data.study_id, measured, strict=True) if m})
        ),
        "deficiency_imputed": int(
            len({s for s, m in zip(data.study_id, measured, strict=True) if not m})
        ),
    }
