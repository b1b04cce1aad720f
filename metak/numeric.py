"""Small numerical helpers that scipy has, but too slowly for the robustness checks' arrays.

scipy 1.18's :func:`scipy.special.logsumexp` dispatches through its array-API layer: about
0.1 ms per call, twenty times the arithmetic on the few to few thousand numbers the exact checks
pass it (node weights of r, models of the ensemble, tau grids), and the checks call it dozens of
times per analysis. The same formula in numpy (shift by the maximum, sum, log) gives the same
values to rounding.
"""

from __future__ import annotations

import numpy as np

__all__ = ["logsumexp"]


def logsumexp(values: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """``log(sum(exp(values)))`` along ``axis`` (all of it when None), without overflow.

    Parameters
    ----------
    values : numpy.ndarray
        Log terms; ``-inf`` terms add nothing. A slice of only ``-inf`` gives ``-inf``.
    axis : int, optional
        The axis summed over; None sums every element.

    Returns
    -------
    numpy.ndarray or float
        A float when ``axis`` is None, else an array without ``axis``.
    """
    values = np.asarray(values, dtype=float)
    peak = np.max(values, axis=axis, keepdims=True)
    # A slice of only -inf (or a +inf peak) would give inf - inf: shift it by 0 instead.
    peak = np.where(np.isfinite(peak), peak, 0.0)
    with np.errstate(divide="ignore"):
        total = np.log(np.sum(np.exp(values - peak), axis=axis, keepdims=True)) + peak
    total = np.squeeze(total, axis=axis) if axis is not None else total.reshape(())
    return float(total) if axis is None else total
