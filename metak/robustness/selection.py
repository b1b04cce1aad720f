"""Integration point of the step-function selection model (``robustness.selection = true``).

The model itself (Vevea & Hedges 1995; metafor ``selmodel(type = "stepfun")``, one-sided p-value
cut-points .025 and .05) is built and fitted by MCMC in
:func:`metak.fitting.mcmc.selection.fit_selection_analysis`, with its default
:class:`~metak.spec.SelectionSpec`. This module calls it for a random-effects analysis and hands
back the analysis ``<name>_selection``, whose ``mu`` is the selection-adjusted effect;
:mod:`metak.robustness.assess` adds it to the results and uses it as one more bias check. The
import is made only when the check is switched on (it loads PyMC); should the module be missing
from a build, the check says so in ``robustness.csv`` and nothing is fitted.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from metak.errors import ConfigError
from metak.fitting.result import AnalysisResult
from metak.robustness.assessment import Assessment
from metak.robustness.effect import answer_from_draws
from metak.robustness.verdicts import Check
from metak.spec import Settings

__all__ = ["SELECTION_SUFFIX", "SelectionFit", "selection_analysis", "add_selection"]

SELECTION_SUFFIX = "_selection"


class SelectionFit:
    """The selection model of one analysis, or why there is none."""

    def __init__(self, result: AnalysisResult | None = None, note: str = "") -> None:
        self.result = result
        self.note = note


def selection_analysis(
    base: AnalysisResult,
    settings: Settings,
    seed: int,
    progress: Callable[[str], None] | None = None,
) -> SelectionFit:
    """Fit the step-function selection model of ``base`` (an AnalysisResult), if available.

    Parameters
    ----------
    base : metak.fitting.result.AnalysisResult
        A fitted random-effects analysis.
    settings : metak.spec.Settings
        MCMC settings.
    seed : int
        Seed of the fit.
    progress : callable, optional
        Receives one-line progress messages.

    Returns
    -------
    SelectionFit
    """
    if base.spec.model != "random_effects":
        return SelectionFit(note="the selection model adjusts random-effects analyses only")
    try:
        from metak.fitting.mcmc.selection import fit_selection_analysis
    except ModuleNotFoundError:
        return SelectionFit(
            note="the selection model (metak.fitting.mcmc.selection) is not part of this build"
        )
    try:
        result = fit_selection_analysis(base.spec, base.data, settings, seed, progress=progress)
    except ConfigError as err:  # e.g. too few studies for the cut-points
        return SelectionFit(note=str(err))
    return SelectionFit(result)


def add_selection(
    out: Assessment,
    selection: SelectionFit,
    parameter: str,
    direction: str,
    checks: list[Check],
    extra: dict,
    claims: dict,
) -> None:
    """Add the selection model's result to an analysis' assessment.

    The derived analysis, one bias check, the ``selection_*`` columns of robustness.csv and the
    claim probabilities (from its ``mu`` draws).
    """
    name = "selection model"
    if selection.result is None:
        checks.append(Check("bias", name, None, selection.note))
        for claim in claims.values():
            if not claim.not_assessable:
                claim.add("bias", name, None, selection.note)
        return
    result = selection.result
    out.derived.append(result)
    draws = result.draws("mu")
    answer = answer_from_draws(draws, None, direction)
    extra |= {
        "selection_mean": answer.mean,
        "selection_p_benefit": answer.p_benefit,
        "selection_verdict": answer.verdict,
    }
    trusted = result.converged
    note = f"P = {answer.p_benefit:.3f}" if trusted else "failed the MCMC diagnostics gate"
    checks.append(Check("bias", name, answer.verdict if trusted else None, note))
    for claim in claims.values():
        if claim.not_assessable:
            continue
        statement = claim.statement
        p = None
        if trusted and statement.parameter == parameter:
            p = float(np.mean(statement.holds(draws)))
        claim.add("bias", name, p, note if not trusted else "the selection model has mu only")
