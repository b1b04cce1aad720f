"""Small numerical helpers that scipy has, but too slowly for the robustness checks' arrays.

scipy 1.18's :func:`scipy.special.logsumexp` dispatches through its array-API layer: about
0.1 ms per call, twenty times the arithmetic on the few to few thousand numbers the exact checks
pass it (node weights of r, models of the ensemble, tau grids, PSIS rows), and the checks call it
dozens of times per analysis. This is scipy's arithmetic in plain numpy, so the values are the
same to the last bit (tested against scipy).
"""

from __future__ import annotations

import numpy as np

__all__ = ["logsumexp"]


def logsumexp(
    values: np.ndarray, axis: int | None = None, b: float | None = None
) -> np.ndarray | float:
    """``log(sum(b * exp(values)))`` along ``axis`` (all of it when None), without overflow.

    As scipy 1.18's ``logsumexp`` computes it: the largest terms are taken out of the sum
    (``log1p`` of the rest plus ``log`` of their weight); a result that is not finite falls back
    to the direct ``log(sum(b * exp(values)))``.

    Parameters
    ----------
    values : numpy.ndarray
        Log terms; ``-inf`` terms add nothing. A slice of only ``-inf`` gives ``-inf``.
    axis : int, optional
        The axis summed over; None sums every element.
    b : float, optional
        One weight for every term (scipy's scalar ``b``).

    Returns
    -------
    numpy.ndarray or float
        A float when ``axis`` is None, else an array without ``axis``.
    """
    a = np.asarray(values, dtype=float)
    rows = a.reshape(1, -1) if axis is None else np.moveaxis(a, axis, -1)
    shape = rows.shape[:-1]
    rows = rows.reshape(-1, rows.shape[-1])
    a_max = np.max(rows, axis=1, keepdims=True)
    at_max = rows == a_max
    scale = 1.0 if b is None else b
    # scipy sums the weights of the largest terms (their count times b here).
    m = np.count_nonzero(at_max, axis=1) * scale
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        shifted = rows - a_max
        shifted[at_max] = -np.inf
        terms = np.exp(shifted)
        if b is not None:
            terms *= b
        s = np.sum(terms, axis=1)
        s = np.where(s == 0, s, s / m)
        out = np.log1p(s) + np.log(m) + a_max[:, 0]
        bad = ~np.isfinite(out)
        if np.any(bad):
            out[bad] = np.log(np.sum(scale * np.exp(rows[bad]), axis=1))
    return float(out[0]) if axis is None else out.reshape(shape)
