"""Run the robustness checks of every fitted analysis: the orchestrator's one call.

For each analysis whose ``robustness`` switches are on (README, "How far the answer can be
trusted"): the exact checks where the analysis has an exact marginal likelihood
(:mod:`metak.robustness.exact_checks`), the draw-based ones otherwise
(:mod:`metak.robustness.draw_checks`); then the PSIS-LOO comparison of analyses fitted to the
same effect sizes, and the robustness label of every judged claim (two new columns of
``claims.csv``). The derived analyses (``<name>_pet``, ``<name>_peese``, ``<name>_selection``)
are placed right after their analysis.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import pandas as pd

from metak.claims import parse_statement
from metak.robustness.assessment import Assessment
from metak.robustness.averaging import AVERAGING_COLUMNS
from metak.robustness.bayes_factors import BAYES_FACTOR_COLUMNS
from metak.robustness.draw_checks import assess_draws, targets
from metak.robustness.exact_checks import assess_exact
from metak.robustness.problem import problem_for
from metak.robustness.psis import COMPARE_COLUMNS, LOO_COLUMNS, comparison_groups, comparison_rows
from metak.robustness.selection import selection_analysis
from metak.robustness.sensitivity import PSENSE_COLUMNS, SENSITIVITY_COLUMNS
from metak.robustness.tables import (
    CLAIM_COLUMNS,
    LEAVE_ONE_OUT_COLUMNS,
    ROBUSTNESS_COLUMNS,
    RobustnessTables,
)
from metak.spec import Settings

__all__ = ["RobustnessOutcome", "assess_robustness"]

_JUDGED = ("supported", "contradicted", "uncertain")


@dataclass(frozen=True)
class RobustnessOutcome:
    """The analyses with their derived ones, the claims with their labels, and the tables."""

    analyses: dict
    claims: pd.DataFrame | None
    tables: RobustnessTables


def _statements(claims: pd.DataFrame | None, name: str) -> dict:
    if claims is None or claims.empty:
        return {}
    out = {}
    for index, row in claims.iterrows():
        text = row.get("statement")
        if row.get("analysis") == name and isinstance(text, str) and text:
            out[index] = parse_statement(text)
    return out


def _skipped(result, detail: str) -> Assessment:
    out = Assessment(result.spec.name)
    for parameter, _, _ in targets(result):
        row = dict.fromkeys(ROBUSTNESS_COLUMNS)
        row |= {
            "analysis": result.spec.name,
            "parameter": parameter,
            "method": result.method,
            "label": "not assessable",
            "detail": detail,
        }
        out.robustness.append(row)
    return out


def _assess_one(result, settings, claims, progress, posterior) -> Assessment:
    switches = result.spec.robustness
    if not switches.enabled:
        return _skipped(result, "robustness = false for this analysis")
    problem, reason = problem_for(result)
    if problem is None and not result.converged:
        # The exact checks recompute the posterior and need no sampler; the draw-based ones
        # would reweight draws that failed the diagnostics gate.
        return _skipped(result, "the analysis failed the MCMC diagnostics gate")
    statements = _statements(claims, result.spec.name)
    selection = None
    if switches.selection:
        selection = selection_analysis(result, settings, result.seed, progress)
    if problem is not None:
        return assess_exact(
            result, problem, settings, result.seed, statements, selection, posterior
        )
    return assess_draws(result, reason, statements, selection)


def _frame(rows: list, columns: list) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns)


def _labelled_claims(claims: pd.DataFrame | None, assessments: list, results: dict):
    if claims is None:
        return None
    labels = {}
    for assessment in assessments:
        for key, checks in assessment.claims.items():
            labels[key] = checks.label()
    robustness, detail = [], []
    for index, row in claims.iterrows():
        if row.get("verdict") not in _JUDGED:
            label = ("not assessable", "the claim has no verdict to test")
        elif index in labels:
            label = labels[index]
        elif row.get("analysis") in results:
            label = ("not assessable", "no robustness checks ran for its analysis")
        else:
            label = ("not assessable", "its analysis is not in these results")
        robustness.append(label[0])
        detail.append(label[1])
    return claims.assign(**dict(zip(CLAIM_COLUMNS, (robustness, detail), strict=True)))


def assess_robustness(
    results: dict,
    claims: pd.DataFrame | None,
    settings: Settings,
    progress: Callable[[str], None] | None = None,
    posterior: bool = True,
) -> RobustnessOutcome:
    """Run every analysis' robustness checks (README, "How far the answer can be trusted").

    Parameters
    ----------
    results : dict
        ``{name: AnalysisResult}`` as fitted, in file order.
    claims : pandas.DataFrame or None
        The judged claims (:func:`metak.claims.judge_claims`), or None without a claims file.
    settings : metak.spec.Settings
        The run settings (draws stored for the derived analyses; MCMC settings of the
        selection model).
    progress : callable, optional
        Receives one-line progress messages.
    posterior : bool
        Give exact derived analyses (PET/PEESE) draws and posterior trees, as ``fit`` writes
        them; ``False`` (a batch without posterior files) keeps their summary rows only, which
        are exact and the same either way.

    Returns
    -------
    RobustnessOutcome
    """
    say = progress or (lambda message: None)
    assessments = []
    analyses = {}
    for name, result in results.items():
        start = time.perf_counter()
        assessment = _assess_one(result, settings, claims, progress, posterior)
        assessments.append(assessment)
        analyses[name] = result
        for derived in assessment.derived:
            if derived.spec.name in results:
                # A user's analysis already has the name: never replace it.
                note = (
                    f"robustness: {derived.spec.name} not written, an analysis of that name "
                    "exists; rename it to see this check as an analysis"
                )
                analyses[name] = replace(analyses[name], warnings=(*analyses[name].warnings, note))
                say(f"    {note}")
                continue
            analyses[derived.spec.name] = replace(derived, check_of=name)
        labels = sorted({row["label"] for row in assessment.robustness if row.get("label")})
        say(
            f"    robustness {name}: {', '.join(labels) or 'no checks'} "
            f"({time.perf_counter() - start:.2f} s)"
        )
    elpds = {}
    for assessment in assessments:
        elpds.update(assessment.psis)
    compare_rows = []
    for group, names in comparison_groups({n: analyses[n] for n in elpds}).items():
        compare_rows.extend(comparison_rows(group, {n: elpds[n] for n in names}))

    def gather(field: str) -> list:
        return [row for assessment in assessments for row in getattr(assessment, field)]

    tables = RobustnessTables(
        robustness=_frame(gather("robustness"), ROBUSTNESS_COLUMNS),
        bayes_factors=_frame(gather("bayes_factors"), BAYES_FACTOR_COLUMNS),
        model_averaging=_frame(gather("model_averaging"), AVERAGING_COLUMNS),
        leave_one_out=_frame(gather("leave_one_out"), LEAVE_ONE_OUT_COLUMNS),
        loo=_frame(gather("loo"), LOO_COLUMNS),
        loo_compare=_frame(compare_rows, COMPARE_COLUMNS),
        prior_sensitivity=_frame(gather("prior_sensitivity"), SENSITIVITY_COLUMNS),
        psense=_frame(gather("psense"), PSENSE_COLUMNS),
    )
    return RobustnessOutcome(analyses, _labelled_claims(claims, assessments, results), tables)
