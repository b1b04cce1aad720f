"""A fit with the pre-post correlation integrated (``exact_r``) laid out as an analysis result.

The derived analyses of the bias checks (``<name>_pet``, ``<name>_peese``) of an analysis whose
variances depend on the pre-post correlation r are mixtures over r's quadrature nodes of exact
posteriors (:mod:`metak.robustness.problem`). Their summary rows are exact, computed from those
mixtures: coefficients and ``theta_new`` as normal mixtures, ``tau``/``tau2``/``I2`` from the
nodes' tau grids. The posterior file holds independent draws (node by its posterior weight, then
the node's exact draw), laid out as the exact engine lays out its own; the study table's
shrunken estimates come from those draws (as for MCMC fits). r itself is integrated out and not
stored; its posterior is summarised from the nodes (``r_prepost``, :func:`r_posterior`).

The same layout serves an analysis itself whose pre-post correlation is uncertain
(:func:`fit_exact_r_analysis`): it has an exact posterior too, so ``fit`` and ``batch`` fit it on
the exact path (:func:`fit_on_exact_path`) instead of by MCMC. Analyses without r go through the
exact engine itself (:func:`metak.fitting.exact_engine.fit_exact_analysis`).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import xarray as xr

from metak.exact import NormalMixture, study_log_likelihood, typical_within_variance
from metak.fitting.data import AnalysisData
from metak.fitting.deficiency import (
    DEFICIENCY_MODERATOR,
    PROBABILITY_PARAMETER,
    benefit_sign,
    level_values,
)
from metak.fitting.design import coefficient_names, design_matrix, within_variance
from metak.fitting.exact_engine import (
    EXACT_CHAINS,
    few_studies_warning,
    fit_exact_analysis,
    stored_draws,
)
from metak.fitting.package import build_datatree, study_table
from metak.fitting.prior_choice import priors_in_force
from metak.fitting.result import AnalysisResult, ExactInfo
from metak.fitting.summaries import SUMMARY_COLUMNS, probability_row, summary_row
from metak.robustness.problem import (
    MIXTURE_THIN,
    Problem,
    VariantFit,
    combine_mixtures,
    fit_variant,
    problem_of,
)
from metak.spec import AnalysisSpec, Settings

__all__ = ["package_mixture", "fit_exact_r_analysis", "fit_on_exact_path", "r_posterior"]

# Points of the grid on which r's posterior density is integrated (its CDF, mean and SD).
_R_GRID = 4001


def _row(analysis: str, name: str, mean, sd, q) -> dict:
    return summary_row(analysis, name, mean=mean, sd=sd, q=q, method="exact", converged=True)


def _tau_rows(analysis: str, fit: VariantFit, s2: float) -> list[dict]:
    """tau, tau2, I2 (percent, with the typical within-study variance at the assumed r)."""
    weights = fit.node_weights
    union = np.unique(np.concatenate([p.tau_grid for p in fit.posteriors]))
    cdf = sum(w * p.tau_cdf(union) for w, p in zip(weights, fit.posteriors, strict=True))
    q_tau = np.interp([0.025, 0.5, 0.975], cdf, union)
    rows = []
    for name, transform in (
        ("tau", lambda t: t),
        ("tau2", lambda t: t**2),
        ("I2", lambda t: 100.0 * t**2 / (t**2 + s2)),
    ):
        first = sum(
            w * float(p.tau_weights @ transform(p.tau_grid))
            for w, p in zip(weights, fit.posteriors, strict=True)
        )
        second = sum(
            w * float(p.tau_weights @ transform(p.tau_grid) ** 2)
            for w, p in zip(weights, fit.posteriors, strict=True)
        )
        sd = math.sqrt(max(second - first**2, 0.0))
        rows.append(_row(analysis, name, first, sd, tuple(float(x) for x in transform(q_tau))))
    return rows


def _predictive(post, x: np.ndarray) -> NormalMixture:
    """A new study's effect at covariates ``x`` under one node's posterior (thinned grid)."""
    weights = post.quadrature_weights(MIXTURE_THIN)
    keep = np.flatnonzero(weights > 1e-13 * weights.max())
    var = np.einsum("i,gij,j->g", x, post.cond_cov[keep], x) + post.tau_grid[keep] ** 2
    w = weights[keep]
    return NormalMixture(w / w.sum(), post.cond_mean[keep] @ x, np.sqrt(var))


def _tau_mode(fit: VariantFit) -> float:
    """Mode of the mixture's tau density, on the union of the nodes' grids."""
    union = np.unique(np.concatenate([p.tau_grid for p in fit.posteriors]))
    density = sum(
        w * np.interp(union, p.tau_grid, p.tau_density, left=0.0, right=0.0)
        for w, p in zip(fit.node_weights, fit.posteriors, strict=True)
    )
    return float(union[int(np.argmax(density))])


def _summary(
    spec: AnalysisSpec, fit: VariantFit, s2: float, labels, direction: str
) -> pd.DataFrame:
    analysis = spec.name
    rows = []
    for name, label in zip(fit.names, labels, strict=True):
        s = fit.coef(name).summary(label)
        rows.append(_row(analysis, label, s.mean, s.sd, (s.q025, s.q50, s.q975)))
    rows.extend(_tau_rows(analysis, fit, s2))
    reference = np.eye(1, len(fit.names))[0]
    new = combine_mixtures([_predictive(p, reference) for p in fit.posteriors], fit.node_weights)
    s = new.summary("theta_new")
    rows.append(_row(analysis, "theta_new", s.mean, s.sd, (s.q025, s.q50, s.q975)))
    if spec.deficiency is not None and DEFICIENCY_MODERATOR in labels:
        # As the exact engine: the effect at each reported level and P(more deficient, more
        # benefit), here mixed over r's nodes.
        j = list(labels).index(DEFICIENCY_MODERATOR)
        for name, value in level_values(spec).items():
            x = reference.copy()
            x[j] = value
            level = combine_mixtures(
                [p.linear_mixture(x) for p in fit.posteriors], fit.node_weights
            ).summary(name)
            rows.append(
                _row(analysis, name, level.mean, level.sd, (level.q025, level.q50, level.q975))
            )
        op = "<" if benefit_sign(direction) < 0 else ">"
        probability = fit.prob(fit.names[j], op, 0.0)
        rows.append(probability_row(analysis, PROBABILITY_PARAMETER, probability, "exact", True))
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _chained(values: np.ndarray, extra=()) -> tuple[tuple[str, ...], np.ndarray]:
    return ("chain", "draw", *extra), values.reshape(EXACT_CHAINS, -1, *values.shape[1:])


def _dataset(data, names, coef, tau, theta, theta_new) -> xr.Dataset:
    variables = {
        "mu": _chained(coef[:, 0]),
        "tau": _chained(tau),
        "theta": _chained(theta, ("study",)),
        "theta_new": _chained(theta_new),
    }
    coords = {"study": list(data.row_label)}
    if len(names) > 1:
        variables["beta"] = _chained(coef[:, 1:], ("moderator",))
        coords["moderator"] = list(names[1:])
    dataset = xr.Dataset(variables, coords=coords)
    return dataset.assign_coords(
        chain=np.arange(EXACT_CHAINS), draw=np.arange(dataset.sizes["draw"])
    )


def _draws(problem: Problem, fit: VariantFit, data, n: int, rng: np.random.Generator):
    """Independent posterior draws: coefficients, tau, theta_new, and each draw's variances."""
    node = rng.choice(len(fit.posteriors), size=n, p=fit.node_weights)
    x_new = np.eye(1, len(fit.names))[0]
    coef = np.empty((n, len(fit.names)))
    tau, theta_new = np.empty(n), np.empty(n)
    v = np.empty((n, problem.k))
    X = np.empty((n, problem.k, len(fit.names)))
    for j, post in enumerate(fit.posteriors):
        rows = np.flatnonzero(node == j)
        if rows.size == 0:
            continue
        draws = post.sample(rows.size, rng, x_new=x_new)
        coef[rows], tau[rows], theta_new[rows] = draws.coef, draws.tau, draws.theta_new
        v[rows] = post.v
        X[rows] = post.X
    return coef, tau, theta_new, v, X


def r_posterior(problem: Problem, fit: VariantFit) -> tuple[float, float, np.ndarray]:
    """Mean, SD and 2.5/50/97.5 % quantiles of the pre-post correlation r given the data.

    ``p(r | y)`` is proportional to ``p(r) p(y | r)``. ``log p(y | r)`` is smooth in r and
    known exactly at the quadrature nodes the fit kept: it is interpolated there by the
    polynomial through those nodes (Gauss-Legendre nodes keep that well conditioned), the exact
    log prior is added on a fine grid over the prior's support, and the density is integrated
    there (trapezoid rule). With one node left, r is that node's value.

    Returns
    -------
    tuple of (float, float, numpy.ndarray)
        Mean, SD and the three quantiles.
    """
    r_all, log_w_all = problem.r_nodes()
    keep = np.array([int(np.argmin(np.abs(r_all - r))) for r in fit.r])
    log_lik = fit.log_node - log_w_all[keep]  # log p(y | r) at the kept nodes
    if fit.r.size == 1:
        value = float(fit.r[0])
        return value, 0.0, np.full(3, value)
    lo, hi = problem.r_prior.bounds
    grid = np.linspace(lo, hi, _R_GRID)
    fitted = np.polynomial.Legendre.fit(fit.r, log_lik, deg=fit.r.size - 1, domain=[lo, hi])
    with np.errstate(divide="ignore"):
        log_density = fitted(grid) + problem.r_prior.logpdf(grid)
    density = np.exp(log_density - np.max(log_density[np.isfinite(log_density)]))
    density[~np.isfinite(density)] = 0.0
    steps = np.diff(grid)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * steps)])
    total = cdf[-1]
    mean = float(np.trapezoid(density * grid, grid)) / total
    second = float(np.trapezoid(density * grid**2, grid)) / total
    quantiles = np.interp([0.025, 0.5, 0.975], cdf / total, grid)
    return mean, math.sqrt(max(second - mean**2, 0.0)), quantiles


def package_mixture(
    problem: Problem,
    fit: VariantFit,
    spec: AnalysisSpec,
    data: AnalysisData,
    priors: dict,
    seed: int,
    n_draws: int,
    r_summary: bool = False,
) -> AnalysisResult:
    """An ``exact_r`` fit as an :class:`~metak.fitting.result.AnalysisResult`.

    Parameters
    ----------
    problem : Problem
        The base analysis.
    fit : VariantFit
        The derived model's fit (several quadrature nodes of r).
    spec, data
        The derived analysis' spec and data (its design at the assumed r).
    priors : dict
        The derived model's priors by parameter name (printed in ``analyses.json``).
    seed : int
        Seed of the stored draws.
    n_draws : int
        Draws stored (rounded up to a multiple of the exact engine's chains).
    r_summary : bool
        Add the posterior of r as the summary row ``r_prepost`` (an analysis itself, as its
        MCMC fit reports it; the bias checks' derived analyses leave it to their analysis).

    Returns
    -------
    AnalysisResult
    """
    n = EXACT_CHAINS * math.ceil(n_draws / EXACT_CHAINS)
    rng = np.random.default_rng(seed)
    s2 = typical_within_variance(within_variance(data), design_matrix(data))
    labels = coefficient_names(data)
    summary = _summary(spec, fit, s2, labels, data.direction)
    if r_summary:
        mean, sd, q = r_posterior(problem, fit)
        row = _row(spec.name, "r_prepost", mean, sd, tuple(float(x) for x in q))
        summary = pd.concat([summary, pd.DataFrame([row], columns=SUMMARY_COLUMNS)])
        summary = summary.reset_index(drop=True)
    coef, tau, theta_new, v, X = _draws(problem, fit, data, n, rng)
    fitted = np.einsum("nkp,np->nk", X, coef)
    shrink = tau[:, None] ** 2 / (tau[:, None] ** 2 + v)
    theta = (
        shrink * data.y + (1 - shrink) * fitted + np.sqrt(shrink * v) * rng.standard_normal(v.shape)
    )
    posterior = _dataset(data, labels, coef, tau, theta, theta_new)
    prior_coef = np.column_stack([priors[name].rvs(n, rng) for name in labels])
    prior_tau = priors["tau"].rvs(n, rng)
    design = design_matrix(data)
    prior_theta = prior_coef @ design.T + prior_tau[:, None] * rng.standard_normal((n, data.k))
    prior_new = prior_coef[:, 0] + prior_tau * rng.standard_normal(n)
    prior = _dataset(data, labels, prior_coef, prior_tau, prior_theta, prior_new)
    loglik = study_log_likelihood(data.y, fitted, v, tau)
    log_likelihood = xr.Dataset(
        {"y": _chained(loglik, ("study",))}, coords={"study": list(data.row_label)}
    )
    tree = build_datatree(
        data,
        method="exact",
        seed=seed,
        summary=summary,
        posterior=posterior,
        prior=prior,
        log_likelihood=log_likelihood,
        attrs={"metak_r_nodes": len(fit.posteriors)},
    )
    theta_q = np.quantile(theta, [0.025, 0.975], axis=0)
    tau_mean = float(summary.loc[summary["parameter"] == "tau", "mean"].iloc[0])
    table = study_table(data, theta.mean(axis=0), theta_q[0], theta_q[1], tau_mean, "exact")
    note = (
        f"pre-post correlation r integrated out by {len(fit.posteriors)}-node quadrature over its "
        "prior (exact given r); the shrunken study estimates come from the stored draws"
    )
    warnings = [note, few_studies_warning(data.n_studies)]
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
        warnings=tuple(w for w in warnings if w),
        exact=ExactInfo(
            tau_mode=_tau_mode(fit), log_marginal_likelihood=fit.log_marginal_likelihood
        ),
    )


def fit_exact_r_analysis(
    spec: AnalysisSpec, data: AnalysisData, settings: Settings, seed: int
) -> AnalysisResult:
    """Exact posterior of an analysis whose pre-post correlation r is uncertain.

    r is integrated out by quadrature over its prior (:mod:`metak.robustness.problem`), each
    node an exact fit; the result is laid out as the exact engine's, with ``r_prepost``.

    Parameters
    ----------
    spec, data : AnalysisSpec, AnalysisData
        The analysis and its data (:func:`metak.fitting.method.exact_possible` must hold).
    settings : Settings
        Exact draws stored as the exact engine stores them
        (:func:`~metak.fitting.exact_engine.stored_draws`).
    seed : int
        Seed of the stored draws.

    Returns
    -------
    AnalysisResult
    """
    problem, why = problem_of(spec, data)
    if problem is None or problem.r_prior is None:
        raise ValueError(f"analysis {spec.name!r} has no exact posterior over r ({why})")
    priors, uisd_note = priors_in_force(spec, data)
    result = package_mixture(
        problem, fit_variant(problem), spec, data, priors, seed, stored_draws(settings), True
    )
    if uisd_note:
        result = replace(result, warnings=(uisd_note, *result.warnings))
    return result


def fit_on_exact_path(
    spec: AnalysisSpec,
    data: AnalysisData,
    settings: Settings,
    seed: int,
    posterior: bool = True,
) -> AnalysisResult:
    """The exact fit of an analysis: the exact engine, or r integrated when it is uncertain.

    Parameters
    ----------
    spec, data : AnalysisSpec, AnalysisData
        The analysis and its data (:func:`metak.fitting.method.exact_possible` must hold).
    settings : Settings
        Draws stored (see the two engines).
    seed : int
        Seed of the stored draws.
    posterior : bool
        Draw and package the posterior ``DataTree`` and the study table (``False``: neither,
        as a batch without posterior files needs; the robustness checks draw what they need
        from the exact posterior). With r integrated both are always built: its study-level
        summaries come from the draws.

    Returns
    -------
    AnalysisResult
    """
    if data.has_uncertain_r:
        return fit_exact_r_analysis(spec, data, settings, seed)
    return fit_exact_analysis(spec, data, settings, seed, posterior=posterior)
