"""Within-arm measures: the raw mean change of one arm (MC) and the raw mean of one arm (MN).

Where the between-group measures of :mod:`metak.effects.basic` compare treatment with control,
these describe one arm on its own, so that a question such as "does calcification *fall* under
treatment?" can be answered from the treated arms. The formulas are those of R metafor's
``escalc()`` (Viechtbauer 2010, J Stat Softw 36(3); ``?escalc``, "Outcome Measures for
Variable-Level Data" for ``MN`` and "Outcome Measures for Matched Pairs / Pre-Post Designs" for
``MC``; Becker 1988, Br J Math Stat Psychol 41:257; Morris & DeShon 2002, Psychol Methods
7:105). Tests compare them with values metafor 3.8-1 computed (``tests/data/metafor_arm_level``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["mean_change", "mean_change_reported", "raw_mean"]


def _floats(*values: ArrayLike) -> list[np.ndarray]:
    return [np.asarray(value, dtype=float) for value in values]


def mean_change(
    m_followup: ArrayLike,
    sd_followup: ArrayLike,
    m_baseline: ArrayLike,
    sd_baseline: ArrayLike,
    n: ArrayLike,
    r: ArrayLike,
) -> tuple[np.ndarray, np.ndarray]:
    """Raw mean change of one arm from baseline and follow-up (metafor ``measure="MC"``).

    Parameters
    ----------
    m_followup, sd_followup : array_like
        Mean and SD at follow-up (metafor's ``m1i``, ``sd1i``).
    m_baseline, sd_baseline : array_like
        Mean and SD at baseline (``m2i``, ``sd2i``), same unit.
    n : array_like
        Number of participants measured at both times (``ni``).
    r : array_like
        Correlation between baseline and follow-up values (``ri``), in (-1, 1).

    Returns
    -------
    yi : ndarray
        ``m_followup - m_baseline``.
    vi : ndarray
        ``(sd_followup**2 + sd_baseline**2 - 2 r sd_followup sd_baseline) / n``: the SD of the
        change scores squared (Cochrane Handbook v6.4, 6.5.2.8), over n. Linear in ``r`` with
        slope ``-2 sd_followup sd_baseline / n``
        (:func:`metak.effects.change.arm_change_dvar_dr`).
    """
    m1, s1, m2, s2, n, r = _floats(m_followup, sd_followup, m_baseline, sd_baseline, n, r)
    return m1 - m2, (s1 * s1 + s2 * s2 - 2 * r * s1 * s2) / n


def mean_change_reported(
    m_change: ArrayLike, sd_change: ArrayLike, n: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """Raw mean change of one arm from a reported change mean and change SD (metafor ``"MC"``).

    metafor's documented route for a reported change: ``m1i`` = the change, ``m2i = 0``,
    ``sd1i`` = the SD of the change scores, ``sd2i = ri = 0``.

    Parameters
    ----------
    m_change, sd_change, n : array_like
        Mean and SD of the change scores (follow-up - baseline) and the number of participants.

    Returns
    -------
    yi, vi : ndarray
        ``m_change`` and ``sd_change**2 / n``.
    """
    m, s, n = _floats(m_change, sd_change, n)
    return m, s * s / n


def raw_mean(m: ArrayLike, sd: ArrayLike, n: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Raw mean of one arm (metafor ``measure="MN"``).

    Parameters
    ----------
    m, sd, n : array_like
        Mean, standard deviation and size of the arm (``mi``, ``sdi``, ``ni``).

    Returns
    -------
    yi, vi : ndarray
        ``m`` and ``sd**2 / n``.
    """
    m, s, n = _floats(m, sd, n)
    return m, s * s / n
