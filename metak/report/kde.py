"""Gaussian kernel density estimates of posterior and prior draws, for the report's figures.

numpy only, and fast: draws are binned linearly on a fine grid and the bins are convolved with
the kernel, so 16,000 exact draws cost about a millisecond (direct evaluation costs
draws x grid kernel terms). The bandwidth is Scott's rule, as ``scipy.stats.gaussian_kde``'s
default. Draws that live on ``[0, inf)`` (tau, nu) are reflected at 0, so the estimate does not
leak mass below the boundary and dip towards it where the density is in fact highest.
"""

from __future__ import annotations

import numpy as np

__all__ = ["scott_bandwidth", "density"]

# Bin width as a fraction of the bandwidth: linear binning then changes the estimate by
# O((width / bandwidth)^2) relative, about 1e-4 here.
_BINS_PER_BANDWIDTH = 20
_MAX_BINS = 1 << 16
_KERNEL_REACH = 5.0  # kernel truncated at 5 bandwidths (tail mass 6e-7)


def scott_bandwidth(draws: np.ndarray) -> float:
    """Scott's rule, ``sd * n^(-1/5)`` (``scipy.stats.gaussian_kde``'s default)."""
    draws = np.asarray(draws, dtype=float)
    return float(np.std(draws, ddof=1) * draws.size ** (-0.2))


def density(draws, grid, *, reflect_at_zero: bool | None = None) -> np.ndarray:
    """Kernel density of ``draws`` at the points of ``grid`` (an increasing array).

    ``reflect_at_zero=None`` reflects when every draw is >= 0. Non-finite draws are ignored.
    Returns zeros when fewer than two distinct draws are finite (no spread to estimate).
    """
    draws = np.asarray(draws, dtype=float).reshape(-1)
    draws = draws[np.isfinite(draws)]
    grid = np.asarray(grid, dtype=float)
    if draws.size < 2 or np.ptp(draws) == 0:
        return np.zeros_like(grid)
    h = scott_bandwidth(draws)
    if reflect_at_zero is None:
        reflect_at_zero = bool(draws.min() >= 0)
    low = grid.min() - _KERNEL_REACH * h
    high = grid.max() + _KERNEL_REACH * h
    if reflect_at_zero:
        low = min(low, -_KERNEL_REACH * h)
    n_bins = int(min(_MAX_BINS, np.ceil((high - low) / h * _BINS_PER_BANDWIDTH) + 1))
    edges_width = (high - low) / (n_bins - 1)
    # Linear binning: each draw split between its two neighbouring bin centres.
    inside = draws[(draws >= low) & (draws <= high)]
    position = (inside - low) / edges_width
    left = np.floor(position).astype(int)
    frac = position - left
    counts = np.bincount(left, weights=1.0 - frac, minlength=n_bins + 1)
    counts += np.bincount(left + 1, weights=frac, minlength=n_bins + 1)
    counts = counts[:n_bins]
    reach = int(np.ceil(_KERNEL_REACH * h / edges_width))
    offsets = np.arange(-reach, reach + 1) * edges_width
    kernel = np.exp(-0.5 * (offsets / h) ** 2) / (h * np.sqrt(2 * np.pi))
    # "full" then the centred slice: correct even when the kernel is longer than the bins.
    smoothed = np.convolve(counts, kernel)[reach : reach + n_bins] / draws.size
    centres = low + np.arange(n_bins) * edges_width
    values = np.interp(grid, centres, smoothed)
    if reflect_at_zero:
        values = values + np.interp(-grid, centres, smoothed)
        values = np.where(grid >= 0, values, 0.0)
    return values
