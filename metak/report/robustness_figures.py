"""The robustness section's figures: contour-enhanced funnel plot and leave-one-out influence.

Plain arrays in, inline SVG out (:func:`~metak.report.render.figure_to_svg`), drawn on
``matplotlib.figure.Figure`` directly like the other report figures.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from metak.report.render import figure_to_svg, styled

__all__ = ["funnel_svg", "influence_svg", "CONTOURS"]

# Contour-enhanced funnel (Peters et al. 2008): regions where a study's two-sided p-value for
# "effect = 0" is above 0.10, between 0.05 and 0.10, 0.01 and 0.05, and below 0.01 — a gap of
# studies in the non-significant regions suggests publication bias, a gap elsewhere other causes.
CONTOURS = ((0.10, 1.6448536269514722), (0.05, 1.959963984540054), (0.01, 2.5758293035489004))
_SHADES = ("#ffffff", "#e4e7ec", "#c9ced8", "#aeb5c3")
_POINT = "#1f3b73"
_PET = "#b3261e"
_PEESE = "#2e7d32"


def funnel_svg(
    key: str,
    yi: np.ndarray,
    sei: np.ndarray,
    pooled: float | None,
    lines: dict,
    axis_label: str,
) -> str:
    """Contour-enhanced funnel plot: effect sizes against their standard errors (axis reversed).

    ``lines`` maps a label (``"PET"``, ``"PEESE"``) to ``(intercept, slope, power)``: the fitted
    mean effect ``intercept + slope * se**power`` drawn over the range of standard errors.
    """
    yi, sei = np.asarray(yi, float), np.asarray(sei, float)
    top = float(np.nanmax(sei)) * 1.15 if sei.size else 1.0
    se_grid = np.linspace(0.0, top, 200)
    with styled(key):
        fig = Figure(figsize=(7.4, 4.2))
        ax = fig.add_axes((0.11, 0.14, 0.58, 0.80))
        bound = CONTOURS[-1][1] * top
        span = max(bound, float(np.nanmax(np.abs(yi))) * 1.1 if yi.size else bound)
        # Darkest outside every contour (p < 0.01), then each narrower region drawn over it.
        ax.set_facecolor(_SHADES[3])
        ax.fill_betweenx([], [], [], color=_SHADES[3], label="p < 0.01")
        bands = (("0.01 < p < 0.05", 2), ("0.05 < p < 0.10", 1), ("p > 0.10", 0))
        for (label, shade), (_, z) in zip(bands, reversed(CONTOURS), strict=True):
            color = _SHADES[shade]
            ax.fill_betweenx(se_grid, -z * se_grid, z * se_grid, color=color, lw=0, zorder=0)
            ax.fill_betweenx([], [], [], color=color, label=label, ec="#999999", lw=0.5)
        ax.axvline(0.0, color="#777777", lw=0.8, zorder=1)
        if pooled is not None and np.isfinite(pooled):
            ax.axvline(pooled, color="#111111", lw=1.2, ls="--", zorder=2, label="pooled effect")
        for label, (intercept, slope, power) in lines.items():
            color = _PET if label == "PET" else _PEESE
            ax.plot(
                intercept + slope * se_grid**power,
                se_grid,
                color=color,
                lw=1.3,
                zorder=3,
                label=f"{label} (se = 0: {intercept:.3g})",
            )
        ax.scatter(yi, sei, s=30, color=_POINT, zorder=4, label="studies")
        ax.set_ylim(top, 0.0)
        ax.set_xlim(-span, span)
        ax.set_xlabel(axis_label)
        ax.set_ylabel("Standard error")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8.5)
    return figure_to_svg(fig, key)


def influence_svg(
    key: str,
    labels: list[str],
    estimates: np.ndarray,
    lows: np.ndarray,
    highs: np.ndarray,
    full: tuple[float, float, float],
    flips: np.ndarray,
    axis_label: str,
) -> str:
    """The pooled effect with each study left out (point and 95% interval) against the full fit.

    ``full`` is (q2.5, mean, q97.5) of the pooled effect with every study; rows whose verdict
    differs from the full fit's (``flips``) are drawn in red.
    """
    k = len(labels)
    y = np.arange(k, 0, -1, dtype=float)
    with styled(key):
        height = 0.75 + 0.34 * (k + 1)
        fig = Figure(figsize=(7.6, height))
        ax = fig.add_axes((0.30, 0.6 / height, 0.66, 0.34 * (k + 0.6) / height))
        low, mid, high = full
        ax.axvspan(low, high, color="#e4e7ec", lw=0, zorder=0)
        ax.axvline(mid, color="#111111", lw=1.0, ls="--", zorder=1)
        ax.axvline(0.0, color="#777777", lw=0.8, zorder=1)
        colors = np.where(np.asarray(flips, bool), "#b3261e", _POINT)
        ax.hlines(y, lows, highs, colors=colors, lw=1.3, zorder=2)
        ax.scatter(estimates, y, s=28, c=colors, zorder=3)
        ax.set_yticks(y)
        ax.set_yticklabels([f"without {label}" for label in labels])
        ax.set_ylim(0.4, k + 0.6)
        ax.set_xlabel(axis_label)
    return figure_to_svg(fig, key)
