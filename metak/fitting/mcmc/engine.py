"""Fit one analysis by MCMC (PyMC 6 + nutpie) and package it like an exact fit.

The diagnostics gate (:mod:`metak.fitting.mcmc.diagnostics`) decides whether the fit is reported
as converged; a failing fit is retried once with settings chosen from why it failed, and if it
still fails it is kept but flagged ``converged = False`` everywhere.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from metak.fitting.data import AnalysisData
from metak.fitting.deficiency import (
    DEFICIENCY_MODERATOR,
    PROBABILITY_PARAMETER,
    imputed_moderator_means,
    more_benefit_probability,
)
from metak.fitting.design import PREPOST_VARIANCE_FLOOR, prepost_r_terms, within_variance
from metak.fitting.exact_engine import few_studies_warning
from metak.fitting.mcmc.compiled import PROCESS_MODELS, CompiledModels, ModelInUse, trim_padding
from metak.fitting.mcmc.diagnostics import ESS_MIN, GateResult, check_gate
from metak.fitting.mcmc.generated import with_theta, with_theta_new
from metak.fitting.mcmc.progress import ChainReporter
from metak.fitting.mcmc.sampling import (
    compile_model,
    divergences,
    log_likelihood,
    sample_posterior,
    sample_prior,
)
from metak.fitting.package import build_datatree, study_table
from metak.fitting.parameters import summary_parameters
from metak.fitting.phases import PhaseClock
from metak.fitting.prior_choice import priors_in_force
from metak.fitting.result import AnalysisResult, McmcInfo
from metak.fitting.summaries import SUMMARY_COLUMNS, probability_row, summarize_draws
from metak.models import ModelParts, SharedModel, build_model, shared_model
from metak.spec import AnalysisSpec, Settings

__all__ = ["fit_mcmc_analysis", "ModelBuilder", "RETRY_TARGET_ACCEPT", "MAX_DRAW_FACTOR"]

# ``builder(data, priors) -> (pm.Model, ModelParts)``: the selection model
# (:mod:`metak.fitting.mcmc.selection`) passes its own; by default the analysis' model is compiled
# once per structure (:mod:`metak.fitting.mcmc.compiled`), or built by
# :func:`metak.models.build_model` when it cannot share a compilation.
ModelBuilder = Callable[[AnalysisData, dict], tuple[Any, ModelParts]]

RETRY_TARGET_ACCEPT = 0.995
# Chains sampled at once when fitting in the main process (the reference machine's 2 cores).
_MAIN_PROCESS_THREADS = 2
# The retry after low ESS multiplies the draws by at most this (and at least 2).
MAX_DRAW_FACTOR = 4


def _retry_settings(settings: Settings, gate: GateResult) -> tuple[float, int, int]:
    """Stricter ``(target_accept, tune, draws)`` for the one retry, from *why* the first failed.

    Divergences mean the step size was too large for the posterior's geometry: raise
    target_accept and tune twice as long. Low ESS / high R-hat without divergences means the chains
    mix slowly but correctly: more draws (enough for the ESS threshold at the observed efficiency,
    2–4×) and longer tuning, at the same target_accept (raising it would only shorten the steps
    and lower the ESS per draw).
    """
    if gate.divergences:
        return (
            max(RETRY_TARGET_ACCEPT, settings.target_accept),
            2 * settings.tune,
            2 * settings.draws,
        )
    worst_ess = max(min(gate.min_ess_bulk, gate.min_ess_tail), 1.0)
    factor = int(np.clip(np.ceil(1.5 * ESS_MIN / worst_ess), 2, MAX_DRAW_FACTOR))
    return settings.target_accept, 2 * settings.tune, factor * settings.draws


def _sample_until_gate_passes(
    use: ModelInUse,
    settings: Settings,
    seed: int,
    show_progress: bool,
    clock: PhaseClock,
    on_chains: Callable[[list], None] | None,
    shared: SharedModel | None,
    threads: int,
):
    """``(tree, gate, messages, attempts)``: sample, gate, and retry once if the gate fails.

    The retry samples the same compiled model (compiled once, not per attempt).
    """
    messages = []
    parts = use.parts
    target_accept, tune, draws = settings.target_accept, settings.tune, settings.draws
    for attempt in range(2):
        with clock("sampling"):
            tree = sample_posterior(
                use.compiled,
                draws=draws,
                tune=tune,
                chains=settings.chains,
                seed=seed + 1000 * attempt,
                target_accept=target_accept,
                progressbar=show_progress,
                on_chains=on_chains,
                threads=threads,
            )
        posterior = tree["posterior"].to_dataset()
        if shared is not None:
            posterior = trim_padding(posterior, shared)
        if parts.theta_new or parts.theta_conditional:
            rng = np.random.default_rng([seed, attempt, 1])
            if parts.theta_conditional:
                posterior = with_theta(posterior, rng)
            if parts.theta_new:
                posterior = with_theta_new(posterior, rng)
        tree["posterior"] = posterior
        gate = check_gate(tree, parts.report_vars, divergences(tree))
        if gate.passed:
            if attempt:
                messages.append(f"retry passed the diagnostics gate: {gate.describe()}")
            return tree, gate, messages, attempt + 1
        message = f"diagnostics gate failed ({gate.describe()})"
        if attempt == 0:
            target_accept, tune, draws = _retry_settings(settings, gate)
            message += (
                f"; retrying with target_accept {target_accept}, {tune} tuning and "
                f"{draws} draws per chain"
            )
        messages.append(message)
    return tree, gate, messages, 2


def _model_in_use(data, priors, builder, models: CompiledModels, clock: PhaseClock):
    """``(context manager giving a ModelInUse, SharedModel or None)`` for this analysis."""
    shared = shared_model(data, priors) if builder is None else None
    if shared is not None:
        return models.use(shared, clock), shared
    model, parts = (builder or build_model)(data, priors)
    with clock("compile"):
        compiled = compile_model(model)  # once: the retry samples the same compiled model
    return nullcontext(ModelInUse(model, parts, compiled, reused=False)), None


def _study_table(data: AnalysisData, posterior: xr.Dataset, parts: ModelParts) -> pd.DataFrame:
    theta = posterior["theta"]
    mean = np.asarray(theta.mean(("chain", "draw")))
    q = np.asarray(theta.quantile([0.025, 0.975], dim=("chain", "draw")))
    tau = posterior["tau"].mean(("chain", "draw"))
    if "outcome" in tau.dims:
        tau_rows = np.array([float(tau.sel(outcome=o)) for o in data.outcome])
    else:
        tau_rows = float(tau)
    imputed = imputed_moderator_means(data, posterior, parts.imputed)
    return study_table(data, mean, q[0], q[1], tau_rows, "mcmc", imputed)


def _posterior_predictive(data: AnalysisData, posterior: xr.Dataset, seed: int) -> xr.Dataset:
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


def _summary(
    spec: AnalysisSpec, data: AnalysisData, posterior: xr.Dataset, converged: bool
) -> pd.DataFrame:
    named = summary_parameters(posterior, data)
    summary = summarize_draws(spec.name, named, "mcmc", converged, diagnostics=True)
    if spec.deficiency is not None and DEFICIENCY_MODERATOR in named:
        probability = more_benefit_probability(named[DEFICIENCY_MODERATOR], data.direction)
        row = probability_row(spec.name, PROBABILITY_PARAMETER, probability, "mcmc", converged)
        summary = pd.concat(
            [summary, pd.DataFrame([row], columns=SUMMARY_COLUMNS)], ignore_index=True
        )
    return summary


def fit_mcmc_analysis(
    spec: AnalysisSpec,
    data: AnalysisData,
    settings: Settings,
    seed: int,
    progress: Callable[[str], None] | None = None,
    in_worker: bool = False,
    builder: ModelBuilder | None = None,
    prior_draws: bool = True,
    models: CompiledModels | None = None,
) -> AnalysisResult:
    """Sample the posterior of one analysis, gate it, and summarise it.

    Parameters
    ----------
    spec, data : AnalysisSpec, AnalysisData
        The analysis and its data.
    settings : Settings
        Draws, tuning, chains and target_accept of the first attempt.
    seed : int
        Seed of everything random in this analysis.
    progress : callable, optional
        Receives one-line progress messages, including the chains' progress now and then.
    in_worker : bool
        Fitting in a worker process: never draw nutpie's terminal bar there, and sample the
        chains one after the other (one thread per worker process).
    builder : callable, optional
        Builds the PyMC model from the data and the priors in force (:data:`ModelBuilder`), when
        another model of the same data is wanted. By default the analysis' own model, compiled
        once per model structure in this process (``models``) and given this analysis' data.
    prior_draws : bool
        Draw from the prior for the ``prior`` group (False leaves the group empty: a batch that
        keeps no posterior files needs none).
    models : CompiledModels, optional
        The compiled models to reuse (default: this process's, ``PROCESS_MODELS``).

    Returns
    -------
    AnalysisResult
    """
    say = progress or (lambda message: None)
    priors, uisd_note = priors_in_force(spec, data)
    clock = PhaseClock()
    context, shared = _model_in_use(data, priors, builder, models or PROCESS_MODELS, clock)
    say(
        f"    {spec.name}: compiling, then {settings.chains} chains x {settings.tune} warm-up + "
        f"{settings.draws} draws (nutpie)"
    )
    # nutpie's own bar on an interactive terminal when fitting here; plain lines otherwise
    # (logs, pipes, and worker processes, whose bars would overwrite each other).
    show_progress = progress is not None and not in_worker and sys.stderr.isatty()
    on_chains = (
        ChainReporter(spec.name, say) if progress is not None and not show_progress else None
    )
    with context as use:
        parts, model = use.parts, use.model
        # A worker process is one of as many as there are cores: its chains take turns on one
        # thread (two threads per worker would oversubscribe the cores). Fitting here, the chains
        # run side by side on two.
        threads = 1 if in_worker else _MAIN_PROCESS_THREADS
        tree, gate, messages, attempts = _sample_until_gate_passes(
            use, settings, seed, show_progress, clock, on_chains, shared, threads
        )
        converged = gate.passed
        full_posterior = tree["posterior"].to_dataset()
        keep = [name for name in parts.report_vars if name in full_posterior]
        prior = xr.Dataset()
        if prior_draws:
            with clock("prior"):
                prior = sample_prior(
                    model,
                    draws=settings.draws * settings.chains,
                    seed=seed + 7,
                    var_names=[v for v in parts.report_vars if v in model],
                )
                if parts.theta_new:
                    prior = with_theta_new(prior, np.random.default_rng([seed, 7]))
            if shared is not None:
                prior = trim_padding(prior, shared)
        log_lik = log_likelihood(tree, parts.loglik, parts.observed)
    summary = _summary(spec, data, full_posterior, converged)
    datatree = build_datatree(
        data,
        method="mcmc",
        seed=seed,
        summary=summary,
        posterior=full_posterior[keep],
        prior=prior[[name for name in keep if name in prior]],
        log_likelihood=log_lik,
        posterior_predictive=(
            _posterior_predictive(data, full_posterior, seed + 11) if parts.replicates else None
        ),
        sample_stats=tree["sample_stats"].to_dataset(),
        attrs={"metak_sampler": "nutpie", **parts.attrs},
    )
    warnings = [uisd_note, *parts.notes, few_studies_warning(data.n_studies)]
    if not converged:
        warnings.append(
            f"MCMC did not pass the diagnostics gate ({gate.describe()}): "
            "do not use these numbers; "
            "rerun with more --draws/--tune or simplify the model"
        )
    info = McmcInfo(
        max_rhat=gate.max_rhat,
        min_ess_bulk=gate.min_ess_bulk,
        min_ess_tail=gate.min_ess_tail,
        divergences=gate.divergences,
        chains=int(full_posterior.sizes["chain"]),
        draws_per_chain=int(full_posterior.sizes["draw"]),
        attempts=attempts,
        phase_seconds=dict(clock.seconds),
        model_reused=use.reused,
    )
    return AnalysisResult(
        spec=spec,
        data=data,
        method="mcmc",
        summary=summary,
        study_table=_study_table(data, full_posterior, parts),
        datatree=datatree,
        priors={key: str(value) for key, value in priors.items()} | parts.extra_priors,
        seed=seed,
        converged=converged,
        messages=tuple(messages),
        warnings=tuple(w for w in warnings if w),
        mcmc=info,
    )
