"""Would another reasonable prior change the answer.

Exact analyses are refitted exactly under a documented set of alternative priors
(:data:`PRIOR_SET`): tau's prior scaled by 1/2 and by 2 (the distribution of ``c * tau``), a
half-Cauchy in place of a half-normal tau prior (same scale; a half-normal in place of a
half-Cauchy; any other family: a half-Cauchy with the same median), and the effect prior's SD
halved and doubled. Each gives the pooled effect, P(benefit), the verdict and the Bayes factor
for an effect under that prior.

MCMC analyses cannot be refitted in milliseconds; their prior is *power-scaled* instead
(priorsense, Kallioinen et al. 2024): arviz-stats' :func:`~arviz_stats.psense_summary` gives the
prior and likelihood sensitivity of the pooled effect and its diagnosis, and importance weights
``p(theta)^(alpha - 1)`` (Pareto-smoothed, with their k) give the answer under the prior raised to
``alpha`` = 1/2 (flatter) and 2 (sharper). The power-scaled priors are those of the coefficients,
tau, nu and the pre-post correlation; the LKJ correlation of joint models and the imputation
sub-model's priors are left as they are.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import xarray as xr
from arviz_stats import psense_summary
from arviz_stats.base import array_stats

from metak.fitting.design import coefficient_names
from metak.fitting.prior_choice import priors_in_force
from metak.fitting.result import AnalysisResult
from metak.priors import Prior
from metak.robustness.effect import (
    answer_from_draws,
    answer_from_mixture,
    answers_from_mixtures,
)
from metak.robustness.problem import BASE, Problem, Variant, VariantFit, fit_variant

__all__ = [
    "PRIOR_SET",
    "POWER_ALPHAS",
    "POWER_SCALING_GOOD_K",
    "SENSITIVITY_COLUMNS",
    "PSENSE_COLUMNS",
    "scaled",
    "swapped_tau",
    "alternatives",
    "exact_rows",
    "log_prior",
    "power_scaling_rows",
    "psense_rows",
]

PRIOR_SET = (
    "tau scale x0.5",
    "tau scale x2",
    "tau half-Cauchy",
    "effect prior sd x0.5",
    "effect prior sd x2",
)
# Power-scaling exponents of the MCMC check: the prior's log density times 1/2 (as if its scale
# were about sqrt(2) wider, for a normal) and times 2 (about sqrt(2) narrower).
POWER_ALPHAS = (0.5, 2.0)
# Importance weights with a Pareto k above this cannot be trusted (Vehtari et al. 2024, for the
# thousands of draws metak keeps); such a power-scaled answer is reported but not used.
POWER_SCALING_GOOD_K = 0.7
SENSITIVITY_COLUMNS = [
    "analysis",
    "parameter",
    "prior_set",
    "tau_prior",
    "effect_prior",
    "mu_mean",
    "mu_sd",
    "mu_q2.5",
    "mu_q97.5",
    "p_benefit",
    "verdict",
    "log_bf10_effect",
    "flips",
    "pareto_k",
    "method",
]
PSENSE_COLUMNS = ["analysis", "parameter", "prior", "likelihood", "diagnosis"]


def scaled(prior: Prior, factor: float) -> Prior:
    """The prior of ``factor * X`` for X with ``prior`` (positive-support families)."""
    p = prior.params
    if prior.family in ("halfnormal", "halfcauchy"):
        return Prior(prior.family, (p[0] * factor,))
    if prior.family == "exponential":
        return Prior("exponential", (p[0] / factor,))
    if prior.family == "uniform":
        return Prior("uniform", (p[0] * factor, p[1] * factor))
    if prior.family == "halfstudent_t":
        return Prior("halfstudent_t", (p[0], p[1] * factor))
    if prior.family == "lognormal":
        return Prior("lognormal", (p[0] + math.log(factor), p[1]))
    if prior.family == "gamma":
        return Prior("gamma", (p[0], p[1] / factor))
    raise ValueError(f"cannot scale a {prior.family} prior")


def swapped_tau(prior: Prior) -> Prior:
    """Half-Cauchy for half-normal (same scale) and back; else a half-Cauchy of equal median."""
    if prior.family == "halfnormal":
        return Prior("halfcauchy", prior.params)
    if prior.family == "halfcauchy":
        return Prior("halfnormal", prior.params)
    # The half-Cauchy's median is its scale.
    return Prior("halfcauchy", (float(prior.ppf(0.5)),))


def alternatives(problem: Problem) -> list[tuple[str, Problem]]:
    """The analysis under each prior of :data:`PRIOR_SET`, in that order."""
    tau = problem.tau_prior
    effect = problem.coef_priors[0]
    mean, sd = effect.params
    return [
        (PRIOR_SET[0], problem.with_priors(tau=scaled(tau, 0.5))),
        (PRIOR_SET[1], problem.with_priors(tau=scaled(tau, 2.0))),
        (PRIOR_SET[2], problem.with_priors(tau=swapped_tau(tau))),
        (PRIOR_SET[3], problem.with_priors(effect=Prior("normal", (mean, sd * 0.5)))),
        (PRIOR_SET[4], problem.with_priors(effect=Prior("normal", (mean, sd * 2.0)))),
    ]


def _row(analysis, parameter, label, tau, effect, answer, log_bf, flips, method, k=math.nan):
    return {
        "analysis": analysis,
        "parameter": parameter,
        "prior_set": label,
        "tau_prior": str(tau),
        "effect_prior": str(effect),
        "mu_mean": answer.mean,
        "mu_sd": answer.sd,
        "mu_q2.5": answer.q025,
        "mu_q97.5": answer.q975,
        "p_benefit": answer.p_benefit,
        "verdict": answer.verdict,
        "log_bf10_effect": log_bf,
        "flips": flips,
        "pareto_k": k,
        "method": method,
    }


def exact_rows(
    problem: Problem, base_fit: VariantFit, null_fit: VariantFit, statements: Sequence = ()
) -> tuple[list[dict], dict]:
    """The analysis under its own priors and each alternative: rows and statement probabilities.

    Parameters
    ----------
    problem : Problem
        The analysis.
    base_fit, null_fit : VariantFit
        Its fits under its own priors: the model, and the model without an effect.
    statements : sequence of (key, coefficient, op, low, high)
        Claim statements whose probability is wanted under each alternative.

    Returns
    -------
    tuple of (list of dict, dict)
        The rows (:data:`SENSITIVITY_COLUMNS`) and ``{prior set: {key: probability}}``.
    """
    base = answer_from_mixture(base_fit.coef(problem.effect_name), problem.direction)
    log_bf = base_fit.log_marginal_likelihood - null_fit.log_marginal_likelihood
    rows = [
        _row(
            problem.analysis,
            problem.effect_name,
            "analysis priors",
            problem.tau_prior,
            problem.coef_priors[0],
            base,
            log_bf,
            False,
            problem.method,
        )
    ]
    probabilities = {}
    refits = []
    for label, alternative in alternatives(problem):
        # The analysis' own fits' tau grids usually hold the posteriors under these priors too.
        fit = fit_variant(alternative, BASE, near=base_fit)
        same_tau = alternative.tau_prior == problem.tau_prior
        # Without an effect the effect prior plays no part: only a new tau prior needs a refit.
        null = (
            null_fit if same_tau else fit_variant(alternative, Variant(effect=False), near=null_fit)
        )
        refits.append((label, alternative, fit, null))
        probabilities[label] = {
            key: fit.prob(name, op, low, high) for key, name, op, low, high in statements
        }
    answers = answers_from_mixtures(
        [fit.coef(problem.effect_name) for _, _, fit, _ in refits], problem.direction
    )
    for (label, alternative, fit, null), answer in zip(refits, answers, strict=True):
        rows.append(
            _row(
                problem.analysis,
                problem.effect_name,
                label,
                alternative.tau_prior,
                alternative.coef_priors[0],
                answer,
                fit.log_marginal_likelihood - null.log_marginal_likelihood,
                answer.verdict != base.verdict,
                problem.method,
            )
        )
    return rows, probabilities


def _prior_terms(spec, data, posterior: xr.Dataset) -> dict[str, xr.DataArray]:
    """Log prior density of each power-scaled parameter at every posterior draw."""
    priors, _ = priors_in_force(spec, data)
    terms = {}

    def add(name: str, prior: Prior, values: xr.DataArray) -> None:
        terms[name] = xr.apply_ufunc(prior.logpdf, values)

    if spec.model == "joint":
        for var, key in (("mu_std", "mu"), ("tau_std", "tau")):
            if var in posterior:
                add(var, priors[key], posterior[var])
    else:
        add("mu", priors[coefficient_names(data)[0]], posterior["mu"])
        if "beta" in posterior:
            for moderator in posterior["beta"].coords["moderator"].values:
                add(
                    f"beta[{moderator}]",
                    priors[str(moderator)],
                    posterior["beta"].sel(moderator=moderator, drop=True),
                )
        add("tau", priors["tau"], posterior["tau"])
        if "nu" in posterior and "nu" in priors:
            add("nu", priors["nu"], posterior["nu"])
    if "r_prepost" in posterior and "r" in priors:
        add("r_prepost", priors["r"], posterior["r_prepost"])
    return terms


def log_prior(result: AnalysisResult) -> xr.Dataset:
    """The ``log_prior`` group priorsense needs (one variable per power-scaled prior term)."""
    posterior = result.datatree["posterior"].to_dataset()
    terms = _prior_terms(result.spec, result.data, posterior)
    return xr.Dataset(
        {name: value.transpose("chain", "draw", ...) for name, value in terms.items()}
    )


@contextmanager
def _quiet(logger: logging.Logger) -> Iterator[None]:
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def psense_rows(result: AnalysisResult, var_name: str = "mu") -> list[dict]:
    """``psense.csv`` rows: arviz-stats' prior/likelihood power-scaling sensitivity."""
    tree = result.datatree.copy()
    tree["log_prior"] = log_prior(result)
    with _quiet(logging.getLogger("arviz_stats.psense")):
        # It logs a pointer to its documentation whenever a diagnosis is not "ok"; the diagnosis
        # itself is what psense.csv records.
        table = psense_summary(tree, var_names=[var_name], round_to=6)
    return [
        {
            "analysis": result.spec.name,
            "parameter": str(index),
            "prior": float(row["prior"]),
            "likelihood": float(row["likelihood"]),
            "diagnosis": "ok" if row["diagnosis"] == "✓" else str(row["diagnosis"]),
        }
        for index, row in table.iterrows()
    ]


def power_scaling_rows(
    result: AnalysisResult,
    parameter: str,
    direction: str,
    base_verdict: str,
    statements: Sequence = (),
) -> tuple[list[dict], dict]:
    """The answer under the prior power-scaled by each of :data:`POWER_ALPHAS` (MCMC fits).

    ``statements`` are ``(key, truth of the statement at each draw)``; returns the rows and
    ``{label: {key: probability}}``.
    """
    lp = log_prior(result)
    total = sum(
        term.sum([d for d in term.dims if d not in ("chain", "draw")])
        for term in lp.data_vars.values()
    )
    flat = np.asarray(total.transpose("chain", "draw")).reshape(-1)
    draws = result.draws(parameter)
    rows, probabilities = [], {}
    for alpha in POWER_ALPHAS:
        log_w, khat = array_stats.psislw(-(alpha - 1.0) * flat, axis=-1)
        weights = np.exp(log_w - np.max(log_w))
        answer = answer_from_draws(draws, weights, direction)
        label = f"prior power-scaled alpha={alpha:g}"
        rows.append(
            _row(
                result.spec.name,
                parameter,
                label,
                "",
                "",
                answer,
                math.nan,
                answer.verdict != base_verdict,
                "power-scaling",
                float(khat),
            )
        )
        probabilities[label] = {
            key: float(weights @ holds / weights.sum()) for key, holds in statements
        }
    return rows, probabilities
