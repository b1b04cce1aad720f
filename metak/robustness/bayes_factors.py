"""Bayes factors of an analysis, exact: ratios of exact marginal likelihoods.

Each hypothesis compares two variants of the analysis (:mod:`metak.robustness.problem`) that
differ in one term and share every other prior — the analysis' own priors:

===============  ===============================================  ============================
hypothesis       H1                                               H0
===============  ===============================================  ============================
effect           pooled effect ~ its prior, tau ~ its prior       effect = 0, tau ~ its prior
heterogeneity    tau ~ its prior, effect ~ its prior              tau = 0, effect ~ its prior
moderators       the slopes ~ their priors (meta-regressions)     no moderators
bias_pet         + PET slope on the SE ~ ``bias_slope``           the analysis' model
bias_peese       + PEESE slope on the variance ~ ``bias_slope_peese``  the analysis' model
===============  ===============================================  ============================

``log_bf10 = log p(y | H1) - log p(y | H0)``; positive values favour H1. Because the priors are
shared, the effect and heterogeneity factors equal the Savage-Dickey density ratios
``p(0) / p(0 | y)`` at the tested value (a test checks both routes).
"""

from __future__ import annotations

import math

from metak.robustness.problem import BASE, Fits, Variant

__all__ = ["BAYES_FACTOR_COLUMNS", "HYPOTHESES", "bayes_factor_rows", "unavailable_rows", "bf10"]

BAYES_FACTOR_COLUMNS = ["analysis", "hypothesis", "log_bf10", "bf10", "method", "note"]

# hypothesis -> (H1, H0)
HYPOTHESES = {
    "effect": (BASE, Variant(effect=False)),
    "heterogeneity": (BASE, Variant(random=False)),
    "moderators": (BASE, Variant(slopes=False)),
    "bias_pet": (Variant(bias="pet"), BASE),
    "bias_peese": (Variant(bias="peese"), BASE),
}


def bf10(log_bf10: float) -> float:
    """``exp(log_bf10)``; infinite (not an error) beyond double precision."""
    try:
        return math.exp(log_bf10)
    except OverflowError:
        return math.inf


def _note(fits: Fits, hypothesis: str) -> str:
    problem = fits.problem
    if hypothesis.startswith("bias_"):
        n_coef = len(problem.coef_names) + 1
        if problem.k <= n_coef:
            return (
                f"k = {problem.k} for {n_coef} coefficients: the data cannot separate the bias "
                "slope from the effect, so this factor mostly compares priors"
            )
    if hypothesis == "heterogeneity" and problem.k == 1:
        return "one study: tau is informed by its prior alone"
    return ""


def bayes_factor_rows(fits: Fits, with_bias: bool = True) -> list[dict]:
    """The Bayes-factor rows of one analysis (its exact fits are memoised in ``fits``).

    Parameters
    ----------
    fits : Fits
        The analysis' variants.
    with_bias : bool
        Include ``bias_pet`` and ``bias_peese``.

    Returns
    -------
    list of dict
        Rows with :data:`BAYES_FACTOR_COLUMNS`.
    """
    problem = fits.problem
    rows = []
    for hypothesis, (h1, h0) in HYPOTHESES.items():
        if hypothesis == "moderators" and not problem.has_slopes:
            continue
        if hypothesis.startswith("bias_") and not with_bias:
            continue
        log_bf = fits(h1).log_marginal_likelihood - fits(h0).log_marginal_likelihood
        rows.append(
            {
                "analysis": problem.analysis,
                "hypothesis": hypothesis,
                "log_bf10": log_bf,
                "bf10": bf10(log_bf),
                "method": problem.method,
                "note": _note(fits, hypothesis),
            }
        )
    return rows


def unavailable_rows(analysis: str, reason: str) -> list[dict]:
    """One row saying why an analysis has no Bayes factors (no number is made up)."""
    return [
        {
            "analysis": analysis,
            "hypothesis": "effect",
            "log_bf10": math.nan,
            "bf10": math.nan,
            "method": "unavailable",
            "note": f"{reason}; PSIS-LOO and power-scaling sensitivity are computed instead",
        }
    ]
