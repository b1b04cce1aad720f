"""Small-study / publication bias: PET and PEESE as exact meta-regressions, reported as analyses.

PET (precision-effect test) adds the standard error of each effect size as a moderator, PEESE
(precision-effect estimate with standard error) its variance (Stanley & Doucouliagos 2014): a
small-study effect shows as a slope, and the intercept — the effect of a study with standard
error 0 — is the bias-adjusted effect. Both are meta-regressions with the analysis' own priors,
moderators and tau, plus the bias slope (prior keys ``bias_slope`` and ``bias_slope_peese``,
defaults in :mod:`metak.robustness.problem`), so they are fitted exactly: through the exact
engine itself, or, when the pre-post correlation is a parameter, as mixtures over its
quadrature nodes (:mod:`metak.robustness.package`; the standard error then moves with r).

They are written as analyses ``<name>_pet`` and ``<name>_peese`` (``summary.csv``,
``study_effects.csv``, ``analyses.json``, posterior files): ``intercept`` is the bias-adjusted
effect, ``sei`` the PET slope, ``sei2`` the PEESE slope. With k studies and p coefficients
(effect, moderators, bias slope) the slope is identified by the data only when k > p; with
k <= p (e.g. PET on two studies) the analysis is still fitted — the priors keep it proper — but
carries a warning, and the robustness verdict does not use it.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from metak.errors import ConfigError
from metak.fitting.exact_engine import fit_exact_analysis
from metak.fitting.prior_choice import priors_in_force
from metak.fitting.result import AnalysisResult
from metak.robustness.package import package_mixture
from metak.robustness.problem import BIAS_REGRESSORS, Fits, Problem, Variant
from metak.spec import RobustnessSpec, Settings

__all__ = ["BIAS_SUFFIX", "DERIVED_DRAWS", "BiasFit", "bias_analysis", "identified"]

BIAS_SUFFIX = {"pet": "_pet", "peese": "_peese"}
# Draws stored in a derived analysis' posterior file. Its summary rows are exact, it gives no
# claim verdicts, and the draws only feed the report's figures: 2,000 independent draws put a
# density's Monte Carlo error below a line width, at an eighth of the 16,000 of an analysis
# (their study-level draws dominate the cost for large k).
DERIVED_DRAWS = 2000


def identified(problem: Problem) -> bool:
    """True when the data can separate a bias slope from the effect: k > p (p with the slope)."""
    return problem.k > len(problem.coef_names) + 1


def _spec(spec, kind: str, prior):
    regressor = BIAS_REGRESSORS[kind]
    return replace(
        spec,
        name=spec.name + BIAS_SUFFIX[kind],
        model="meta_regression",
        moderators=(*spec.moderators, regressor),
        priors={**spec.priors, regressor: prior},
        method="exact",
        claims=False,
        robustness=RobustnessSpec.off(),
    )


def _data(data, spec, kind: str):
    v = data.v + data.v_conversion
    column = np.sqrt(v) if kind == "pet" else v
    X = column[:, None] if data.X is None else np.column_stack([data.X, column])
    X_raw = column[:, None] if data.X_raw is None else np.column_stack([data.X_raw, column])
    return replace(
        data,
        spec=spec,
        moderator_names=(*data.moderator_names, BIAS_REGRESSORS[kind]),
        X=X,
        X_raw=X_raw,
        centers=(*data.centers, 0.0),
    )


class BiasFit:
    """The outcome of one bias model: the derived analysis, or why there is none."""

    def __init__(self, kind: str, result: AnalysisResult | None = None, note: str = "") -> None:
        self.kind = kind
        self.result = result
        self.note = note


def bias_analysis(
    base: AnalysisResult,
    problem: Problem,
    fits: Fits,
    kind: str,
    settings: Settings,
    seed: int,
    posterior: bool = True,
) -> BiasFit:
    """Fit PET (``kind = "pet"``) or PEESE (``"peese"``) of a fitted analysis as its own analysis.

    Parameters
    ----------
    base : metak.fitting.result.AnalysisResult
        The analysis.
    problem : Problem
        Its exact problem (:func:`~metak.robustness.problem.problem_for`).
    fits : Fits
        Its variants' fits (the bias variant is taken from here when r is integrated).
    kind : {"pet", "peese"}
        Which model.
    settings : metak.spec.Settings
        Number of stored draws (as the exact engine).
    seed : int
        Seed of the stored draws.
    posterior : bool
        Store draws, the study table and the posterior ``DataTree``; ``False`` keeps the exact
        summary rows only (``datatree`` and ``study_table`` None) where the engine allows it,
        i.e. unless r is integrated.

    Returns
    -------
    BiasFit
    """
    spec, data = base.spec, base.data
    regressor = BIAS_REGRESSORS[kind]
    if regressor in data.moderator_names:
        return BiasFit(kind, note=f"a moderator is named {regressor!r}: no {kind.upper()} model")
    try:
        derived_spec = _spec(spec, kind, problem.bias_priors[kind])
    except ConfigError as err:  # e.g. the name grows past the length limit
        return BiasFit(kind, note=f"no {kind.upper()} model: {err}")
    derived = _data(data, derived_spec, kind)
    if problem.r_prior is None:
        # The same model as the checks' bias variant: its fit is reused, not refitted.
        (variant_fit,) = fits(Variant(bias=kind)).posteriors
        result = fit_exact_analysis(
            derived_spec,
            derived,
            settings,
            seed,
            draws=DERIVED_DRAWS,
            posterior=posterior,
            grid_from=variant_fit,
        )
    else:
        priors, _ = priors_in_force(derived_spec, derived)
        result = package_mixture(
            problem,
            fits(Variant(bias=kind)),
            derived_spec,
            derived,
            priors,
            seed,
            DERIVED_DRAWS,
        )
    note = ""
    if not identified(problem):
        n_coef = len(problem.coef_names) + 1
        note = (
            f"{kind.upper()} with k = {problem.k} and {n_coef} coefficients: the data cannot "
            "separate the bias slope from the effect; the adjusted effect reflects the priors and "
            "is not used in the robustness verdict"
        )
        result = replace(result, warnings=(*result.warnings, note))
    return BiasFit(kind, result, note)
