"""Which engine fits an analysis: the exact path where its posterior exists, MCMC otherwise."""

from __future__ import annotations

from typing import TYPE_CHECKING

from metak.errors import ConfigError
from metak.fitting.design import r_prior_integrable
from metak.spec import BIAS_PRIOR_KEYS

if TYPE_CHECKING:
    from metak.fitting.data import AnalysisData
    from metak.spec import AnalysisSpec

__all__ = ["exact_possible", "choose_method"]

# Priors that are not on a coefficient of the model (the exact path handles any tau prior; the
# bias slopes belong to the robustness checks' models, not to the analysis itself).
_NON_COEFFICIENT_PRIORS = ("tau", "nu", "r", "moderator_sd", *BIAS_PRIOR_KEYS)


def exact_possible(spec: AnalysisSpec, data: AnalysisData) -> bool:
    """Whether the analysis has an exact posterior (:mod:`metak.exact`).

    True for random effects and meta-regressions with normal coefficient priors and nothing to
    impute. An uncertain pre-post correlation is integrated out by quadrature over its prior
    (:func:`metak.robustness.package.fit_exact_r_analysis`), which needs that prior within
    [-1, 1].
    """
    return (
        spec.model in ("random_effects", "meta_regression")
        and not data.needs_imputation
        and (r_prior_integrable(spec.priors.get("r")) or not data.has_uncertain_r)
        and all(
            prior.family == "normal"
            for key, prior in spec.priors.items()
            if key not in _NON_COEFFICIENT_PRIORS
        )
    )


def choose_method(spec: AnalysisSpec, data: AnalysisData) -> str:
    """``"exact"`` or ``"mcmc"`` for this analysis, honouring ``spec.method``.

    Raises
    ------
    ConfigError
        When ``method = "exact"`` is asked of an analysis that has no exact posterior.
    """
    possible = exact_possible(spec, data)
    if spec.method == "exact":
        if not possible:
            raise ConfigError(
                f'analysis {spec.name!r}: method = "exact" needs a random_effects or '
                "meta_regression model with normal coefficient priors, no imputed moderators "
                "and a pre-post correlation prior within [-1, 1]; "
                'fix: use method = "auto" or "mcmc", or change the priors'
            )
        return "exact"
    if spec.method == "mcmc":
        return "mcmc"
    return "exact" if possible else "mcmc"
