"""Fit one analysis on the exact path and package it like an MCMC fit.

Summary numbers come from the exact posterior (normal mixtures over the tau grid: no Monte Carlo
error). The posterior file holds independent exact draws, split into several chains so that
ArviZ diagnostics read them as they read any sample (R-hat near 1, ESS near the number of
draws), and every downstream tool (claim verdicts, the report) reads exact and MCMC fits alike.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import xarray as xr

from metak.exact import ExactPosterior, ParameterSummary, fit_exact, study_log_likelihood
from metak.fitting.data import AnalysisData
from metak.fitting.deficiency import (
    DEFICIENCY_MODERATOR,
    PROBABILITY_PARAMETER,
    benefit_sign,
    level_values,
)
from metak.fitting.design import coefficient_names, design_matrix, within_variance
from metak.fitting.package import build_datatree, study_table
from metak.fitting.prior_choice import priors_in_force
from metak.fitting.result import AnalysisResult, ExactInfo
from metak.fitting.summaries import SUMMARY_COLUMNS, probability_row, summary_row
from metak.priors import Prior
from metak.spec import AnalysisSpec, Settings

__all__ = [
    "fit_exact_analysis",
    "exact_summary",
    "EXACT_DRAWS_MIN",
    "EXACT_CHAINS",
    "few_studies_warning",
    "stored_draws",
]

# Exact draws stored per analysis: enough that draw-based claim probabilities have a Monte
# Carlo SE below 0.004 (sqrt(.25/16000)).
EXACT_DRAWS_MIN = 16000
# The independent draws are stored as this many chains (R-hat needs at least two).
EXACT_CHAINS = 4
# Below this many studies tau is poorly identified and the result leans on its prior.
FEW_STUDIES = 5


def stored_draws(settings: Settings, draws: int | None = None) -> int:
    """Exact draws an analysis stores, a multiple of :data:`EXACT_CHAINS`.

    ``draws`` when given, else the settings' ``draws * chains`` and at least
    :data:`EXACT_DRAWS_MIN`; rounded up.
    """
    wanted = max(EXACT_DRAWS_MIN, settings.draws * settings.chains) if draws is None else draws
    return EXACT_CHAINS * math.ceil(wanted / EXACT_CHAINS)


def few_studies_warning(n_studies: int) -> str | None:
    """The warning for an analysis of fewer than :data:`FEW_STUDIES` studies, else None."""
    if n_studies >= FEW_STUDIES:
        return None
    noun = "study" if n_studies == 1 else "studies"
    return f"only {n_studies} {noun}: tau is poorly identified and the result leans on its prior"


def _row(
    spec: AnalysisSpec, name: str, summary: ParameterSummary, scale: float = 1.0
) -> dict[str, object]:
    return summary_row(
        spec.name,
        name,
        mean=summary.mean * scale,
        sd=summary.sd * scale,
        q=(summary.q025 * scale, summary.q50 * scale, summary.q975 * scale),
        method="exact",
        converged=True,
    )


def _summary(
    spec: AnalysisSpec, post: ExactPosterior, names: tuple[str, ...], direction: str
) -> pd.DataFrame:
    rows = [_row(spec, name, post.summary(name)) for name in names]
    rows.append(_row(spec, "tau", post.summary("tau")))
    rows.append(_row(spec, "tau2", post.summary("tau2")))
    rows.append(_row(spec, "I2", post.summary("I2"), scale=100.0))
    reference = np.zeros(len(names))
    reference[0] = 1.0
    rows.append(_row(spec, "theta_new", post.predictive(reference).summary("theta_new")))
    if spec.deficiency is not None and DEFICIENCY_MODERATOR in names:
        j = names.index(DEFICIENCY_MODERATOR)
        for name, value in level_values(spec).items():
            x = reference.copy()
            x[j] = value
            rows.append(_row(spec, name, post.linear_mixture(x).summary("")))
        op = "<" if benefit_sign(direction) < 0 else ">"
        probability = post.prob(DEFICIENCY_MODERATOR, op, 0.0)
        rows.append(probability_row(spec.name, PROBABILITY_PARAMETER, probability, "exact", True))
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _chained(
    values: np.ndarray, chains: int, extra: tuple[str, ...] = ()
) -> tuple[tuple[str, ...], np.ndarray]:
    """Independent draws (first axis) as ``(chain, draw, ...)``, in order."""
    return ("chain", "draw", *extra), values.reshape(chains, -1, *values.shape[1:])


def _groups(
    data: AnalysisData,
    names: tuple[str, ...],
    coef: np.ndarray,
    tau: np.ndarray,
    theta: np.ndarray,
    theta_new: np.ndarray,
    chains: int,
) -> xr.Dataset:
    moderators = list(names[1:])
    variables = {
        "mu": _chained(coef[:, 0], chains),
        "tau": _chained(tau, chains),
        "theta": _chained(theta, chains, ("study",)),
        "theta_new": _chained(theta_new, chains),
    }
    coords = {"study": list(data.row_label)}
    if moderators:
        variables["beta"] = _chained(coef[:, 1:], chains, ("moderator",))
        coords["moderator"] = moderators
    dataset = xr.Dataset(variables, coords=coords)
    return dataset.assign_coords(chain=np.arange(chains), draw=np.arange(dataset.sizes["draw"]))


def _datatree(
    spec: AnalysisSpec,
    data: AnalysisData,
    post: ExactPosterior,
    priors: dict[str, Prior],
    names: tuple[str, ...],
    summary: pd.DataFrame,
    seed: int,
    n_draws: int,
) -> xr.DataTree:
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
    posterior = _groups(data, names, coef, tau, theta, draws.theta_new, EXACT_CHAINS)
    prior_coef = np.column_stack([priors[name].rvs(n_draws, rng) for name in names])
    prior_tau = priors["tau"].rvs(n_draws, rng)
    prior_theta = prior_coef @ X.T + prior_tau[:, None] * rng.standard_normal((n_draws, data.k))
    prior_new = prior_coef[:, 0] + prior_tau * rng.standard_normal(n_draws)
    prior = _groups(data, names, prior_coef, prior_tau, prior_theta, prior_new, EXACT_CHAINS)
    # Marginal over the study effect (as the MCMC models): y_i | b, tau ~ N(x_i'b, v_i + tau^2),
    # the pointwise likelihood that leave-one-study-out comparisons need.
    loglik = study_log_likelihood(data.y, fitted, v, tau)
    log_likelihood = xr.Dataset(
        {"y": _chained(loglik, EXACT_CHAINS, ("study",))},
        coords={"study": list(data.row_label)},
    )
    return build_datatree(
        data,
        method="exact",
        seed=seed,
        summary=summary,
        posterior=posterior,
        prior=prior,
        log_likelihood=log_likelihood,
    )


def _exact(spec: AnalysisSpec, data: AnalysisData, grid_from: ExactPosterior | None = None):
    """``(posterior, priors, coefficient names, summary, ExactInfo, warnings)``."""
    priors, uisd_note = priors_in_force(spec, data)
    names = coefficient_names(data)
    post = fit_exact(
        data.y,
        within_variance(data),
        design_matrix(data),
        coef_names=names,
        coef_priors=[priors[name] for name in names],
        tau_prior=priors["tau"],
        grid_from=grid_from,
    )
    summary = _summary(spec, post, names, data.direction)
    info = ExactInfo(tau_mode=post.tau_mode, log_marginal_likelihood=post.log_marginal_likelihood)
    warnings = tuple(w for w in (uisd_note, few_studies_warning(data.n_studies)) if w)
    return post, priors, names, summary, info, warnings


def exact_summary(
    spec: AnalysisSpec, data: AnalysisData
) -> tuple[pd.DataFrame, ExactInfo, tuple[str, ...]]:
    """The summary rows of an exact analysis, without draws, study table or DataTree.

    What :func:`fit_exact_analysis` computes first, and all a batch that keeps no posterior
    files needs: the rows are exact, so they are the same as that function's.

    Returns
    -------
    tuple of (pandas.DataFrame, ExactInfo, tuple of str)
        The rows of ``summary.csv``, the tau mode and log marginal likelihood, the warnings.
    """
    _, _, _, summary, info, warnings = _exact(spec, data)
    return summary, info, warnings


def fit_exact_analysis(
    spec: AnalysisSpec,
    data: AnalysisData,
    settings: Settings,
    seed: int,
    draws: int | None = None,
    posterior: bool = True,
    grid_from: ExactPosterior | None = None,
) -> AnalysisResult:
    """Exact posterior of a random-effects model or meta-regression (no imputation).

    Parameters
    ----------
    spec, data : AnalysisSpec, AnalysisData
        The analysis and its data (:func:`metak.fitting.method.exact_possible` must hold).
    settings : Settings
        ``draws * chains`` exact draws are stored, at least :data:`EXACT_DRAWS_MIN`.
    seed : int
        Seed of the stored draws (the summary is exact and does not depend on it).
    draws : int, optional
        Store this many draws instead (rounded up to a multiple of :data:`EXACT_CHAINS`): for
        derived analyses that give no claim verdicts (:mod:`metak.robustness.bias`).
    posterior : bool
        Draw and package the posterior ``DataTree`` and the study table; ``False`` leaves
        ``datatree`` and ``study_table`` None (a batch that writes no posterior files: the
        summary rows are exact and all it keeps; the robustness checks need no more).
    grid_from : metak.exact.ExactPosterior, optional
        An exact fit of the same model already at hand (e.g. the robustness checks' PET variant
        for the derived PET analysis): its grid and conditionals are reused
        (:func:`metak.exact.fit_exact`); the rows are the same to rounding.

    Returns
    -------
    AnalysisResult
    """
    post, priors, names, summary, info, warnings = _exact(spec, data, grid_from)
    table = tree = None
    if posterior:
        effects = post.study_effects()
        tau_mean = float(summary.loc[summary["parameter"] == "tau", "mean"].iloc[0])
        table = study_table(data, effects.mean, effects.q025, effects.q975, tau_mean, "exact")
        n_draws = stored_draws(settings, draws)
        tree = _datatree(spec, data, post, priors, names, summary, seed, n_draws)
    return AnalysisResult(
        spec=spec,
        data=data,
        method="exact",
        summary=summary,
        study_table=table,
        datatree=tree,
        priors={key: str(value) for key, value in priors.items()},
        seed=seed,
        converged=True,
        warnings=warnings,
        exact=info,
    )
