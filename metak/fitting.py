"""Run analyses: choose the exact path or MCMC, fit, and collect typed results.

The exact path (:mod:`metak.exact`) is used whenever it applies: normal-normal random effects or
meta-regression, no moderator values to impute, no uncertain pre–post correlation, and normal
priors on the coefficients. Everything else goes to PyMC (:mod:`metak.mcmc_fit`), imported only
then, so analyses that need no MCMC never pay PyMC's import time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from metak.dataset import AnalysisData, build_analysis_data
from metak.errors import ConfigError
from metak.spec import AnalysisSpec, Settings

__all__ = ["AnalysisResult", "FitResult", "choose_method", "fit_analyses", "complete_case_spec"]


@dataclass(frozen=True)
class AnalysisResult:
    """Everything one analysis produced."""

    spec: AnalysisSpec
    data: AnalysisData
    method: str
    summary: pd.DataFrame
    study_table: pd.DataFrame
    datatree: object  # xarray.DataTree
    priors: dict  # parameter -> prior text actually used
    converged: bool = True
    messages: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    counts: dict = field(default_factory=dict)
    seconds: float = 0.0
    phase_seconds: dict = field(default_factory=dict)  # e.g. compile, sampling (manifest.json)

    def draws(self, parameter: str) -> np.ndarray | None:
        """Flattened posterior draws of a summary parameter, or None."""
        from metak.posterior import parameter_draws

        return parameter_draws(self, parameter)


@dataclass(frozen=True)
class FitResult:
    """All analyses of one run, plus the inputs they used."""

    analyses: dict  # name -> AnalysisResult
    effects: pd.DataFrame
    unusable: pd.DataFrame
    claims: pd.DataFrame | None = None

    @property
    def summary(self) -> pd.DataFrame:
        frames = [result.summary for result in self.analyses.values()]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    @property
    def study_effects(self) -> pd.DataFrame:
        frames = [result.study_table for result in self.analyses.values()]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def datatree(self, name: str):
        """The posterior ``xarray.DataTree`` of one analysis."""
        try:
            return self.analyses[name].datatree
        except KeyError:
            raise ConfigError(
                f"no analysis named {name!r}; have {', '.join(self.analyses)}"
            ) from None

    @property
    def converged(self) -> bool:
        return all(result.converged for result in self.analyses.values())


def choose_method(spec: AnalysisSpec, data: AnalysisData) -> str:
    """``exact`` where the closed-form-plus-quadrature posterior exists, else ``mcmc``."""
    exact_possible = (
        spec.model in ("random_effects", "meta_regression")
        and not data.needs_imputation
        and not data.has_uncertain_r
        and all(
            spec.priors[key].family == "normal"
            for key in spec.priors
            if key not in ("tau", "nu", "r", "moderator_sd")
        )
    )
    if spec.method == "exact":
        if not exact_possible:
            raise ConfigError(
                f'analysis {spec.name!r}: method = "exact" needs a random_effects or meta_regression model '
                "with normal coefficient priors, no imputed moderators and no uncertain pre-post correlation; "
                'fix: use method = "auto" or "mcmc", or set prepost_r_uncertain = false'
            )
        return "exact"
    if spec.method == "mcmc":
        return "mcmc"
    return "exact" if exact_possible else "mcmc"


def _fit_mcmc(jobs, settings: Settings, say, progress) -> dict:
    """The MCMC analyses: in worker processes when there are several and cores to spare."""
    from metak.parallel import default_jobs, run_mcmc_jobs

    if settings.jobs is not None and settings.jobs < 1:
        raise ConfigError(f"jobs must be a whole number >= 1, got {settings.jobs}; fix: e.g. --jobs 2")
    workers = min(settings.jobs or default_jobs(len(jobs)), len(jobs))
    if workers > 1:
        names = ", ".join(name for name, *_ in jobs)
        say(f"MCMC: {len(jobs)} analyses on {workers} worker processes ({names})")

    def done(name, result):
        say(f"    {name}: {'converged' if result.converged else 'NOT converged'} "
            f"({settings.chains} chains x {result.counts.get('draws_per_chain', '?')} draws, "
            f"{result.seconds:.1f} s)")
        for message in result.messages:
            say(f"    {name}: {message}")

    return run_mcmc_jobs(jobs, settings, workers, on_done=done, progress=progress)


def complete_case_spec(spec: AnalysisSpec) -> AnalysisSpec | None:
    """The complete-case twin of an imputing deficiency analysis (reported beside it)."""
    if spec.deficiency is None or not spec.deficiency.impute:
        return None
    return replace(
        spec,
        name=f"{spec.name}_complete_case",
        deficiency=replace(spec.deficiency, impute=False),
        claims=False,
    )


def fit_analyses(
    records, effects_result, specs, settings: Settings, method_override=None, progress=None
) -> FitResult:
    """Fit every analysis in ``specs`` on the records' effect sizes."""
    from metak.fit_exact import fit_exact_analysis

    say = progress or (lambda message: None)
    expanded = []
    for spec in specs:
        if method_override:
            spec = replace(spec, method=method_override)
        expanded.append(spec)
        twin = complete_case_spec(spec)
        if twin is not None:
            expanded.append(twin)
    results = {}
    skipped = {}  # complete-case twin name -> why it could not run
    mcmc_jobs = []
    for index, spec in enumerate(expanded):
        start = time.perf_counter()
        try:
            data = build_analysis_data(effects_result.effects, records, spec)
        except ConfigError as err:
            if not spec.name.endswith("_complete_case"):
                raise
            # No study measured the moderator: the complete-case analysis has nothing to fit.
            skipped[spec.name] = str(err)
            say(f"[{index + 1}/{len(expanded)}] {spec.name}: not fitted (no study has a measured baseline)")
            continue
        method = choose_method(spec, data)
        say(f"[{index + 1}/{len(expanded)}] {spec.describe()} (k = {data.k}, {method})")
        # Seeds are fixed here, in file order, so parallel fitting cannot change any result.
        seed = settings.seed + index
        if method == "exact":
            result = fit_exact_analysis(spec, data, settings, seed)
            results[spec.name] = replace(result, seconds=time.perf_counter() - start)
        else:
            mcmc_jobs.append((spec.name, spec, data, seed))
    if mcmc_jobs:
        results.update(_fit_mcmc(mcmc_jobs, settings, say, progress))
    # File order, whatever order the workers finished in.
    results = {spec.name: results[spec.name] for spec in expanded if spec.name in results}
    for name, reason in skipped.items():
        main = name.removesuffix("_complete_case")
        if main in results:
            result = results[main]
            counts = dict(result.counts, complete_case_studies=0)
            note = "complete-case analysis not fitted: no study in it reports a baseline dp-ucMGP"
            results[main] = replace(result, counts=counts, warnings=(*result.warnings, note))
    return FitResult(
        analyses=results, effects=effects_result.effects, unusable=effects_result.unusable
    )
