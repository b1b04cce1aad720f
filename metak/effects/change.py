"""Change-from-baseline summaries from baseline and follow-up values with a pre–post correlation.

Cochrane Handbook for Systematic Reviews of Interventions v6.4, 6.5.2.8 ("Imputing standard
deviations for changes from baseline"):

    mean_change = mean_followup - mean_baseline
    sd_change   = sqrt(sd_baseline**2 + sd_followup**2 - 2 r sd_baseline sd_followup)

The variance of an arm's mean change, ``sd_change**2 / n``, is *linear* in r with slope
``-2 sd_baseline sd_followup / n``. Hence the sampling variance of a mean difference of change
scores, the sum of the two arms' variances, is exactly ``vi(r) = vi(r0) + (r - r0) * dvi_dr``,
which lets a model treat r as an uncertain parameter without recomputing the effect sizes.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["arm_change_dvar_dr", "change_from_baseline", "md_change_dvi_dr"]


def change_from_baseline(
    mean_baseline: ArrayLike,
    sd_baseline: ArrayLike,
    mean_followup: ArrayLike,
    sd_followup: ArrayLike,
    r: ArrayLike,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and SD of the change (follow-up − baseline) of one arm (Cochrane Handbook 6.5.2.8).

    Parameters
    ----------
    mean_baseline, sd_baseline, mean_followup, sd_followup : array_like
        Arm summaries at the two time points (same unit).
    r : array_like
        Correlation between baseline and follow-up values, in (-1, 1).

    Returns
    -------
    mean_change, sd_change : ndarray
    """
    mb, sb, mf, sf, r = (
        np.asarray(x, dtype=float)
        for x in (mean_baseline, sd_baseline, mean_followup, sd_followup, r)
    )
    variance = sb**2 + sf**2 - 2 * r * sb * sf
    return mf - mb, np.sqrt(variance)


def arm_change_dvar_dr(sd_baseline: ArrayLike, sd_followup: ArrayLike, n: ArrayLike) -> np.ndarray:
    """Slope in r of one arm's variance of the mean change: ``-2 sd_baseline sd_followup / n``."""
    sb, sf, n = (np.asarray(x, dtype=float) for x in (sd_baseline, sd_followup, n))
    return -2 * sb * sf / n


def md_change_dvi_dr(
    sd_baseline1: ArrayLike,
    sd_followup1: ArrayLike,
    n1: ArrayLike,
    sd_baseline2: ArrayLike,
    sd_followup2: ArrayLike,
    n2: ArrayLike,
) -> np.ndarray:
    """d(vi)/dr of the mean difference of two arms' change scores derived with the same r.

    ``vi(r) = sd_change1(r)**2 / n1 + sd_change2(r)**2 / n2`` is linear in r, so this constant
    slope is exact: ``vi(r) = vi(r0) + (r - r0) * dvi_dr``.
    """
    return arm_change_dvar_dr(sd_baseline1, sd_followup1, n1) + arm_change_dvar_dr(
        sd_baseline2, sd_followup2, n2
    )
