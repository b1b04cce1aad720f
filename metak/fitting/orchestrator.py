"""The one orchestrator: study records + analyses + settings -> :class:`FitResult`.

Both the Python API (:func:`metak.fit`) and the command line (``python -m metak fit``) call
:func:`run_analyses`. It checks everything before any work starts (analysis names, the method
override, every analysis' data and engine, the memory the requested draws need), then fits:
exact analyses here, MCMC analyses on Dask worker processes (:mod:`metak.fitting.parallel`),
imported only when needed so analyses that need no MCMC never pay PyMC's import time. Claim
verdicts are judged from the records' ``claims.csv``, and the robustness checks
(:mod:`metak.robustness`) run last.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from metak.claims import judge_claims, load_claims
from metak.derive import EffectsResult, compute_effects
from metak.errors import ConfigError
from metak.fitting.data import build_analysis_data
from metak.fitting.deficiency import COMPLETE_CASE_SUFFIX, complete_case_spec
from metak.fitting.memory import check_memory
from metak.fitting.method import choose_method
from metak.fitting.parallel import default_jobs, run_mcmc_jobs
from metak.fitting.result import AnalysisResult, FitResult
from metak.records import StudyRecords
from metak.robustness.assess import assess_robustness
from metak.robustness.package import fit_on_exact_path
from metak.spec import METHODS, AnalysisSpec, QuestionSpec, Settings, check_questions

__all__ = ["run_analyses", "CLAIMS_NAME"]

CLAIMS_NAME = "claims.csv"

Progress = Callable[[str], None]


def _selected(specs: Sequence[AnalysisSpec], only: Sequence[str] | None) -> list[AnalysisSpec]:
    for spec in specs:
        if not isinstance(spec, AnalysisSpec):
            raise ConfigError(f"analyses must be AnalysisSpec objects, got {spec!r}")
    if only is None:
        return list(specs)
    if isinstance(only, str):
        only = [only]
    names = [spec.name for spec in specs]
    missing = [name for name in only if name not in names]
    if missing:
        raise ConfigError(
            f"analysis {missing[0]!r} is not in the analysis file; "
            f"fix: use one of {', '.join(sorted(names))}"
        )
    return [spec for spec in specs if spec.name in set(only)]


def _expand(specs: list[AnalysisSpec], method: str | None) -> list[AnalysisSpec]:
    """The method override applied, and each imputing deficiency analysis' complete-case twin."""
    if method is not None and method not in METHODS:
        raise ConfigError(f"method {method!r} is not known; fix: use one of {', '.join(METHODS)}")
    expanded = []
    for spec in specs:
        if method:
            spec = replace(spec, method=method)
        expanded.append(spec)
        twin = complete_case_spec(spec)
        if twin is not None:
            expanded.append(twin)
    return expanded


def _prepare(records, effects, specs) -> tuple[list, dict[str, str]]:
    """``[(position, spec, data, method)]`` of every analysis that can run, and the skipped.

    The skipped are complete-case twins, with the reason.
    """
    prepared, skipped = [], {}
    for position, spec in enumerate(specs):
        try:
            data = build_analysis_data(effects, records, spec)
        except ConfigError as err:
            if not spec.name.endswith(COMPLETE_CASE_SUFFIX):
                raise
            # No study measured the moderator: the complete-case analysis has nothing to fit.
            skipped[spec.name] = str(err)
            continue
        prepared.append((position, spec, data, choose_method(spec, data)))
    return prepared, skipped


def _fit_mcmc(jobs: list, settings: Settings, say: Progress, progress) -> dict:
    workers = min(settings.jobs or default_jobs(len(jobs)), len(jobs))
    if workers > 1:
        names = ", ".join(name for name, *_ in jobs)
        say(f"MCMC: {len(jobs)} analyses on {workers} worker processes ({names})")

    def done(name: str, result: AnalysisResult) -> None:
        draws = result.mcmc.draws_per_chain if result.mcmc else "?"
        state = "converged" if result.converged else "NOT converged"
        work = f"{settings.chains} chains x {draws} draws, {result.seconds:.1f} s"
        say(f"    {name}: {state} ({work})")
        for message in result.messages:
            say(f"    {name}: {message}")

    return run_mcmc_jobs(jobs, settings, workers, on_done=done, progress=progress)


def _note_skipped_twins(results: dict, skipped: dict) -> None:
    for name in skipped:
        main = name.removesuffix(COMPLETE_CASE_SUFFIX)
        if main in results:
            note = "complete-case analysis not fitted: no study in it reports a baseline dp-ucMGP"
            result = results[main]
            results[main] = replace(result, warnings=(*result.warnings, note))


def _judge_claims(results: dict[str, AnalysisResult], claims_path: Path):
    if not claims_path.is_file():
        return None

    def draws_for(analysis: str, parameter: str):
        result = results.get(analysis)
        return None if result is None else result.draws(parameter)

    def unusable(analysis: str) -> str | None:
        result = results[analysis]
        if not result.spec.claims:
            return f"analysis {analysis!r} is excluded from claim verdicts (claims = false)"
        if not result.converged:
            return f"analysis {analysis!r} failed the MCMC diagnostics gate"
        return None

    def observed_for(analysis: str, parameter: str):
        result = results.get(analysis)
        return None if result is None else result.study_estimate(parameter)

    return judge_claims(load_claims(claims_path), draws_for, unusable, observed_for)


def run_analyses(
    records: StudyRecords,
    specs: Sequence[AnalysisSpec],
    settings: Settings,
    *,
    only: Sequence[str] | None = None,
    method: str | None = None,
    progress: Progress | None = None,
    effects: EffectsResult | None = None,
    questions: Sequence[QuestionSpec] = (),
) -> FitResult:
    """Fit the analyses ``specs`` to ``records`` and judge the records' claims.

    Parameters
    ----------
    records : StudyRecords
        Validated study records (:func:`metak.records.load_records`).
    specs : sequence of AnalysisSpec
        The analyses, in file order.
    settings : Settings
        Draws, tuning, chains, seed, target_accept, jobs.
    only : sequence of str, optional
        Fit only the analyses with these names.
    method : {"auto", "exact", "mcmc"}, optional
        Override every analysis' ``method``.
    progress : callable, optional
        Receives one-line progress messages.
    effects : EffectsResult, optional
        The records' effect sizes when already computed (else computed here).
    questions : sequence of QuestionSpec
        The questions the report answers first; each must name an analysis of ``specs`` and one
        of its parameters. Those whose analysis is not fitted (``only``) are left out.

    Returns
    -------
    FitResult

    Raises
    ------
    ConfigError
        An unknown analysis name or method, an analysis whose data or engine does not fit it, or
        draws needing more memory than is available — all before any fitting starts.
    """
    say = progress or (lambda message: None)
    if not isinstance(settings, Settings):
        raise ConfigError(f"settings must be a metak.spec.Settings, got {settings!r}")
    selected = _selected(specs, only)  # checks every spec is an AnalysisSpec
    questions = check_questions(questions, specs)
    # An analysis' seed offset is its position among all the file's analyses (twins included),
    # so that `--analysis X` gives X the draws it has in the run of the whole file.
    offsets = {spec.name: i for i, spec in enumerate(_expand(list(specs), method))}
    specs = _expand(selected, method)
    effects = compute_effects(records) if effects is None else effects
    prepared, skipped = _prepare(records, effects.effects, specs)
    check_memory([(data, chosen) for _, _, data, chosen in prepared], settings)
    results: dict[str, AnalysisResult] = {}
    mcmc_jobs = []
    for index, (_, spec, data, chosen) in enumerate(prepared):
        say(f"[{index + 1}/{len(prepared)}] {spec.describe()} (k = {data.k}, {chosen})")
        # Seeds are fixed here, by position in the file, so parallel fitting cannot change any
        # result.
        seed = settings.seed + offsets[spec.name]
        if chosen == "exact":
            start = time.perf_counter()
            result = fit_on_exact_path(spec, data, settings, seed)
            results[spec.name] = replace(result, seconds=time.perf_counter() - start)
        else:
            mcmc_jobs.append((spec.name, spec, data, seed))
    for name in skipped:
        say(f"    {name}: not fitted (no study has a measured baseline)")
    if mcmc_jobs:
        results.update(_fit_mcmc(mcmc_jobs, settings, say, progress))
    # File order, whatever order the workers finished in.
    results = {spec.name: results[spec.name] for spec in specs if spec.name in results}
    _note_skipped_twins(results, skipped)
    claims = _judge_claims(results, Path(records.directory) / CLAIMS_NAME)
    # How far each answer can be trusted: adds <name>_pet/_peese/_selection after each analysis,
    # the robustness tables, and a robustness label on every judged claim.
    robust = assess_robustness(results, claims, settings, say)
    return FitResult(
        analyses=robust.analyses,
        effects=effects.effects,
        unusable=effects.unusable,
        claims=robust.claims,
        robustness=robust.tables,
        questions=tuple(q for q in questions if q.analysis in robust.analyses),
    )
