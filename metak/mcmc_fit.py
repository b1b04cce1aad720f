"""Fit one analysis by MCMC (PyMC 6 + nutpie) and package it like an exact fit.

The diagnostics gate (:mod:`metak.diagnostics`) decides whether the fit is reported as
converged; a failing fit is retried once with ``target_accept = 0.99`` and twice the tuning and
draws, and if it still fails it is kept but flagged ``converged = False`` everywhere.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import xarray as xr

from metak.diagnostics import ESS_MIN, check_gate
from metak.fit_common import (
    PREPOST_VARIANCE_FLOOR,
    design_matrix,
    prepost_r_terms,
    resolve_priors,
    study_table,
    within_variance,
)
from metak.fit_exact import _moderator_counts
from metak.fitting import AnalysisResult
from metak.models import build_model
from metak.models.joint import joint_priors
from metak.generated import with_theta, with_theta_new
from metak.phases import PhaseClock
from metak.posterior import benefit_sign, summary_parameters
from metak.sampling import (
    compile_model,
    divergences,
    log_likelihood,
    sample_posterior,
    sample_prior,
)
from metak.spec import DEFICIENCY_MODERATOR
from metak.summaries import SUMMARY_COLUMNS, summarize_draws, summary_row

__all__ = ["fit_mcmc_analysis", "RETRY_TARGET_ACCEPT"]

RETRY_TARGET_ACCEPT = 0.995


MAX_DRAW_FACTOR = 4


def _retry_settings(settings, gate):
    """Stricter settings for the one retry, chosen from *why* the first attempt failed.

    Divergences mean the step size was too large for the posterior's geometry: raise
    target_accept and tune twice as long. Low ESS / high R-hat without divergences means the chains
    mix slowly but correctly: more draws (enough for the ESS threshold at the observed efficiency,
    2–4×) and longer tuning, at the same target_accept (raising it would only shorten the steps
    and lower the ESS per draw).
    """
    if gate.divergences:
        return max(RETRY_TARGET_ACCEPT, settings.target_accept), 2 * settings.tune, 2 * settings.draws
    worst_ess = max(min(gate.min_ess_bulk, gate.min_ess_tail), 1.0)
    factor = int(np.clip(np.ceil(1.5 * ESS_MIN / worst_ess), 2, MAX_DRAW_FACTOR))
    return settings.target_accept, 2 * settings.tune, factor * settings.draws


def _sample_until_gate_passes(model, parts, settings, seed, show_progress, clock):
    messages = []
    target_accept, tune, draws = settings.target_accept, settings.tune, settings.draws
    with clock("compile"):
        compiled = compile_model(model)  # once: the retry samples the same compiled model
    for attempt in range(2):
        with clock("sampling"):
            tree = sample_posterior(
                compiled,
                draws=draws,
                tune=tune,
                chains=settings.chains,
                seed=seed + 1000 * attempt,
                target_accept=target_accept,
                progressbar=show_progress,
            )
        if parts.theta_new or parts.theta_conditional:
            rng = np.random.default_rng([seed, attempt, 1])
            posterior = tree["posterior"].to_dataset()
            if parts.theta_conditional:
                posterior = with_theta(posterior, rng)
            if parts.theta_new:
                posterior = with_theta_new(posterior, rng)
            tree["posterior"] = posterior
        gate = check_gate(tree, parts.report_vars, divergences(tree))
        if gate.passed:
            if attempt:
                messages.append(f"retry passed the diagnostics gate: {gate.describe()}")
            return tree, gate, messages
        message = f"diagnostics gate failed ({gate.describe()})"
        if attempt == 0:
            target_accept, tune, draws = _retry_settings(settings, gate)
            message += f"; retrying with target_accept {target_accept}, {tune} tuning and {draws} draws per chain"
        messages.append(message)
    return tree, gate, messages


def _deficiency_probability(spec, data, named, converged):
    if spec.deficiency is None or DEFICIENCY_MODERATOR not in named:
        return []
    slope = np.asarray(named[DEFICIENCY_MODERATOR]).reshape(-1)
    more_benefit = slope < 0 if benefit_sign(data.direction) < 0 else slope > 0
    return [
        summary_row(
            spec.name,
            "p_more_deficient_more_benefit",
            mean=float(more_benefit.mean()),
            sd=np.nan,
            q=(np.nan,) * 3,
            method="mcmc",
            converged=converged,
        )
    ]


def _imputed_values(data, posterior, parts):
    """Posterior means of imputed moderator values laid out like ``data.X`` (NaN elsewhere)."""
    if not parts.imputed:
        return None
    j = data.moderator_names.index(DEFICIENCY_MODERATOR)
    means = np.asarray(posterior["log_baseline_imputed"].mean(("chain", "draw")))
    values = np.full(data.X.shape, np.nan)
    for row, sid in enumerate(data.study_id):
        if sid in parts.imputed:
            values[row, j] = means[parts.imputed[sid]]
    return values


def _study_table(data, posterior, parts, method):
    theta = posterior["theta"]
    mean = np.asarray(theta.mean(("chain", "draw")))
    q = np.asarray(theta.quantile([0.025, 0.975], dim=("chain", "draw")))
    tau = posterior["tau"].mean(("chain", "draw"))
    if "outcome" in tau.dims:
        tau_rows = np.array([float(tau.sel(outcome=o)) for o in data.outcome])
    else:
        tau_rows = float(tau)
    table = study_table(data, mean, q[0], q[1], tau_rows, method, _imputed_values(data, posterior, parts))
    if data.spec.model == "joint":
        # Weights are shares within each outcome's own pooled estimate.
        table["weight_pct"] = table.groupby("outcome")["weight_pct"].transform(
            lambda w: 100.0 * w / w.sum()
        )
    return table


def _posterior_predictive(data, posterior, seed) -> xr.Dataset:
    """Replicated effect sizes ``y_rep_i = theta_i + e_i``, ``e_i ~ N(0, v_i)``, per draw.

    ``v_i`` is the row's within-study variance (conversion variance included) and, where the
    pre-post correlation is a parameter, its variance at each draw's correlation (as the model).
    """
    theta = posterior["theta"].transpose("chain", "draw", "study").to_numpy()
    variance = np.broadcast_to(within_variance(data), theta.shape).copy()
    if "r_prepost" in posterior:
        r = posterior["r_prepost"].transpose("chain", "draw").to_numpy()[..., None]
        slope, r0 = prepost_r_terms(data)
        base = variance.copy()
        variance = np.maximum(base + (r - r0) * slope, PREPOST_VARIANCE_FLOOR * base)
    rng = np.random.default_rng(seed)
    replicated = theta + np.sqrt(variance) * rng.standard_normal(theta.shape)
    return xr.Dataset(
        {"y": (("chain", "draw", "study"), replicated)},
        coords={
            "chain": posterior["chain"].values,
            "draw": posterior["draw"].values,
            "study": list(data.row_label),
        },
    )


def _datatree(spec, data, tree, prior, loglik, parts, seed, settings):
    keep = [name for name in parts.report_vars if name in tree["posterior"]]
    posterior = tree["posterior"].to_dataset()[keep]
    prior_keep = [name for name in keep if name in prior]
    v = within_variance(data)
    studies = list(data.row_label)
    observed = xr.Dataset({"y": (("study",), data.y)}, coords={"study": studies})
    constant = {"v": (("study",), v), "v_sampling": (("study",), data.v)}
    coords = {"study": studies}
    if data.X is not None and spec.model != "joint":
        constant["X"] = (("study", "moderator"), design_matrix(data)[:, 1:])
        coords["moderator"] = list(data.moderator_names)
    groups = {
        "posterior": posterior,
        "prior": prior[prior_keep],
        "log_likelihood": loglik,
        "posterior_predictive": _posterior_predictive(data, tree["posterior"].to_dataset(), seed + 11),
        "sample_stats": tree["sample_stats"].to_dataset(),
        "observed_data": observed,
        "constant_data": xr.Dataset(constant, coords=coords),
    }
    out = xr.DataTree.from_dict(groups)
    out.attrs.update(
        {
            "metak_analysis": spec.name,
            "metak_method": "mcmc",
            "metak_model": spec.model,
            "metak_seed": int(seed),
            "metak_sampler": "nutpie",
        }
    )
    return out


def fit_mcmc_analysis(spec, data, settings, seed: int, progress=None) -> AnalysisResult:
    """Sample the posterior of one analysis, gate it, and summarise it."""
    say = progress or (lambda message: None)
    if spec.model == "joint":
        priors, uisd_note = joint_priors(spec, data), (
            "joint model: priors on mu and tau are in units of each outcome's unit information SD"
        )
    else:
        priors, uisd_note = resolve_priors(spec, data)
    model, parts = build_model(data, priors)
    say(f"    {spec.name}: sampling {settings.chains} chains x {settings.draws} draws (nutpie)")
    # The sampler's own progress bar only on an interactive terminal (logs stay clean).
    show_progress = progress is not None and sys.stderr.isatty()
    clock = PhaseClock()
    tree, gate, messages = _sample_until_gate_passes(
        model, parts, settings, seed, show_progress, clock
    )
    converged = gate.passed
    posterior = tree["posterior"].to_dataset()
    n_prior = settings.draws * settings.chains
    with clock("prior"):
        prior = sample_prior(
            model,
            draws=n_prior,
            seed=seed + 7,
            var_names=[v for v in parts.report_vars if v in model],
        )
        if parts.theta_new:
            prior = with_theta_new(prior, np.random.default_rng([seed, 7]))
    loglik = log_likelihood(tree, parts.loglik, parts.observed)
    direction = data.direction
    named = summary_parameters(posterior, data, direction)
    summary = summarize_draws(spec.name, named, "mcmc", converged, diagnostics=True)
    extra = _deficiency_probability(spec, data, named, converged)
    if extra:
        summary = pd.concat([summary, pd.DataFrame(extra, columns=SUMMARY_COLUMNS)], ignore_index=True)
    table = _study_table(data, posterior, parts, "mcmc")
    warnings = [uisd_note, *parts.notes]
    if data.n_studies < 5:
        warnings.append(
            f"only {data.n_studies} studies: tau is poorly identified and the result leans on its prior"
        )
    if not converged:
        warnings.append(
            f"MCMC did not pass the diagnostics gate ({gate.describe()}): do not use these numbers; "
            "rerun with more --draws/--tune or simplify the model"
        )
    counts = {
        "direction": direction,
        "max_rhat": gate.max_rhat,
        "min_ess_bulk": gate.min_ess_bulk,
        "min_ess_tail": gate.min_ess_tail,
        "divergences": gate.divergences,
        "draws_per_chain": int(posterior.sizes["draw"]),
        "chains": int(posterior.sizes["chain"]),
    }
    counts.update(_moderator_counts(data))
    return AnalysisResult(
        spec=spec,
        data=data,
        method="mcmc",
        summary=summary,
        study_table=table,
        datatree=_datatree(spec, data, tree, prior, loglik, parts, seed, settings),
        priors={key: str(value) for key, value in priors.items()},
        converged=converged,
        messages=tuple(messages),
        warnings=tuple(warnings),
        counts=counts,
        phase_seconds=clock.seconds,
    )
