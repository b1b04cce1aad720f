"""The arrays both engines and every model read: coefficient names, design matrix, variances.

Plain numpy on an :class:`~metak.fitting.data.AnalysisData`; the exact path, the PyMC models and
the packaging of results all take these from here, so they can never disagree on, say, which
variance a row enters the likelihood with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from metak.fitting.data import AnalysisData
    from metak.priors import Prior

__all__ = [
    "coefficient_names",
    "design_matrix",
    "within_variance",
    "PREPOST_VARIANCE_FLOOR",
    "prepost_r_terms",
    "r_prior_integrable",
]


def r_prior_integrable(prior: Prior | None) -> bool:
    """True when a pre-post correlation prior lies within [-1, 1] (or there is none).

    Only then can the exact path integrate r over its prior's support by quadrature.
    """
    return prior is None or (-1.0 <= prior.bounds[0] and prior.bounds[1] <= 1.0)


# Floor on a row's within-study variance when the pre-post correlation moves it (fraction of the
# variance at the assumed correlation): keeps the likelihood proper at extreme correlations.
PREPOST_VARIANCE_FLOOR = 1e-3


def coefficient_names(data: AnalysisData) -> tuple[str, ...]:
    """``("intercept", <moderators>...)`` for meta-regressions, else ``("mu",)``."""
    if data.spec.model == "meta_regression":
        return ("intercept", *data.moderator_names)
    return ("mu",)


def design_matrix(data: AnalysisData) -> np.ndarray:
    """The (k, 1 + number of moderators) matrix: a column of ones, then the centred moderators.

    NaN where a moderator value is to be imputed.
    """
    ones = np.ones((data.k, 1))
    if data.X is None:
        return ones
    return np.column_stack([ones, data.X])


def within_variance(data: AnalysisData) -> np.ndarray:
    """Within-study variance entering the likelihood: sampling plus conversion variance."""
    return data.v + data.v_conversion


def prepost_r_terms(data: AnalysisData) -> tuple[np.ndarray, np.ndarray]:
    """``(dvi/dr, r assumed)`` per row, both 0 where the row's variance does not depend on r.

    A row's variance at correlation r is ``within_variance + (r - r_assumed) * dvi/dr`` (floored
    at ``PREPOST_VARIANCE_FLOOR`` times ``within_variance``): the model and the replicated data
    use the same terms.
    """
    slope = np.where(np.isfinite(data.dvi_dr), data.dvi_dr, 0.0)
    r0 = np.where(np.isfinite(data.r_assumed), data.r_assumed, 0.0)
    return slope, r0
