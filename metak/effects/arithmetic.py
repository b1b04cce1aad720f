"""Arithmetic the effect-size functions share, giving one row the same numbers as many rows.

:mod:`metak.derive` computes the effect sizes of all studies in batches (arrays), while the
numbers metak has always produced come from one study at a time. numpy squares an *array*
exactly (``x * x``) but a single number (``numpy.float64 ** 2``) with C's ``pow``, and the two
differ in the last bit for about one value in a thousand; :func:`squared` computes every element
the way a single number is, so batching changes no number.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["squared"]


def squared(x: ArrayLike) -> np.ndarray | np.float64:
    """``x ** 2`` of every element, computed as numpy computes it for a single number.

    Parameters
    ----------
    x : array_like
        Numbers to square.

    Returns
    -------
    numpy.float64 or ndarray
        A number for a 0-d input, else an array of ``x``'s shape. Overflow follows numpy's
        floating-point error settings (``numpy.errstate``), as for a single number.
    """
    x = np.asarray(x, dtype=float)
    if x.ndim == 0:
        return x[()] ** 2
    # One numpy.float64 power per element: C pow, as for a single number (see module docstring).
    return np.array([value**2 for value in map(np.float64, x.ravel().tolist())]).reshape(x.shape)
