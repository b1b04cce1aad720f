"""Fit the step-function selection model of a random-effects analysis: ``<name>_selection``.

A sensitivity analysis for small-study / publication bias: the analysis' own data and priors on
``mu`` and ``tau``, with publication probability a step function of each study's one-sided
p-value (:mod:`metak.models.selection`). It is sampled, gated, retried and packaged by the MCMC
engine like any analysis; its summary rows are ``mu`` (the selection-adjusted pooled effect),
``tau``, ``tau2``, ``I2``, ``theta_new`` and one ``omega[<interval>]`` per p-value interval after
the first (whose weight is fixed at 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial

from metak.errors import ConfigError
from metak.fitting.data import AnalysisData
from metak.fitting.mcmc.engine import fit_mcmc_analysis
from metak.fitting.result import AnalysisResult
from metak.models.selection import build_selection_model
from metak.spec import NAME_MAX_LENGTH, AnalysisSpec, SelectionSpec, Settings

__all__ = ["fit_selection_analysis", "selection_name", "SELECTION_SUFFIX"]

SELECTION_SUFFIX = "_selection"


def selection_name(name: str) -> str:
    """The selection model's analysis name for analysis ``name``."""
    return f"{name}{SELECTION_SUFFIX}"


def _check(spec: AnalysisSpec, data: AnalysisData, selection: SelectionSpec) -> None:
    where = f"analysis {spec.name!r}"
    if spec.model != "random_effects":
        raise ConfigError(
            f"{where}: the selection model adjusts a random-effects analysis, not model "
            f'{spec.model!r}; fix: fit it for a model = "random_effects" analysis'
        )
    if len(selection_name(spec.name)) > NAME_MAX_LENGTH:
        raise ConfigError(
            f"{where}: the selection model's name {selection_name(spec.name)!r} is longer than "
            f"{NAME_MAX_LENGTH} characters; fix: shorten the analysis name"
        )
    # One free weight per interval after the first, plus mu and tau: fewer studies cannot
    # identify them (metafor refuses the same fit).
    needed = selection.n_intervals + 1
    if data.k < needed:
        raise ConfigError(
            f"{where}: {data.k} effect sizes are too few for a selection model with "
            f"{selection.n_intervals} p-value intervals (needs at least {needed}); "
            "fix: use fewer cut-points"
        )


def fit_selection_analysis(
    spec: AnalysisSpec,
    data: AnalysisData,
    settings: Settings,
    seed: int,
    selection: SelectionSpec | None = None,
    progress: Callable[[str], None] | None = None,
) -> AnalysisResult:
    """The step-function selection model of one random-effects analysis, by MCMC.

    Parameters
    ----------
    spec, data : AnalysisSpec, AnalysisData
        A random-effects analysis and its data (as the orchestrator built them).
    settings : Settings
        Draws, tuning, chains and target_accept of the first attempt.
    seed : int
        Seed of everything random in this fit.
    selection : SelectionSpec, optional
        Cut-points (default .025 and .05), side (default: the side of benefit) and weight prior
        (default cumulative Dirichlet(1)).
    progress : callable, optional
        Receives one-line progress messages.

    Returns
    -------
    AnalysisResult
        Named ``<name>_selection`` (analysis, summary rows, study table, DataTree), MCMC method,
        ``claims`` off: a sensitivity analysis, not a second answer to the claims.

    Raises
    ------
    ConfigError
        For a model other than random effects, a name too long to extend, or too few studies.
    """
    selection = selection or SelectionSpec()
    _check(spec, data, selection)
    twin = replace(spec, name=selection_name(spec.name), method="mcmc", claims=False)
    builder = partial(build_selection_model, selection=selection)
    return fit_mcmc_analysis(
        twin, replace(data, spec=twin), settings, seed, progress=progress, builder=builder
    )
