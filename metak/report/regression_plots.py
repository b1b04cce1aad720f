"""Meta-regression figures, drawn with matplotlib.

The effect against a moderator, and against baseline dp-ucMGP for the deficiency analyses.

metak's own: a meta-regression bubble plot shows each study's observed effect against its
moderator value with the posterior regression line, which ArviZ does not draw. The deficiency
figure puts the effect on baseline dp-ucMGP in pmol/L on a log axis (the model is linear in the
log), draws studies whose baseline was measured as points and those whose baseline was imputed as
the 95% posterior interval of their imputed baseline, and marks the reference and the reported
levels with the effect there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from metak.report.forest import OBSERVED, POOLED, PREDICTION, SHRUNKEN
from metak.report.render import AxisInfo, RenderedFigure, figure_to_svg, styled
from metak.report.text import fmt

__all__ = ["RegressionLine", "bubble_figure", "deficiency_figure"]

_MIN_AREA, _MAX_AREA = 40.0, 640.0  # pt², the lightest and heaviest study's bubble
_LOG_TICKS = (1.0, 2.0, 5.0)  # pmol/L ticks at 1, 2 and 5 times each power of ten


@dataclass(frozen=True)
class RegressionLine:
    """Posterior mean and 95% band of the expected effect along ``grid`` (moderator values)."""

    grid: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray


def _sizes(weight: np.ndarray) -> np.ndarray:
    weight = np.asarray(weight, dtype=float)
    top = np.nanmax(weight) if np.isfinite(weight).any() else 1.0
    return _MIN_AREA + (_MAX_AREA - _MIN_AREA) * np.nan_to_num(weight / top, nan=0.0)


def _effect_axis(rows: pd.DataFrame, units: dict[str, str], label: str) -> AxisInfo:
    outcomes = tuple(dict.fromkeys(str(o) for o in rows["outcome"]))
    return AxisInfo(
        title=label,
        quantity="effect",
        units=tuple(dict.fromkeys(units.get(o, "") for o in outcomes)),
        outcomes=outcomes,
    )


def _band(ax, line: RegressionLine | None) -> list:
    if line is None:
        return []
    ax.fill_between(line.grid, line.low, line.high, color=SHRUNKEN, alpha=0.18, lw=0)
    ax.plot(line.grid, line.mean, color=SHRUNKEN, lw=2)
    return [
        Patch(color=SHRUNKEN, alpha=0.3, label="95% credible band"),
        Line2D([], [], color=SHRUNKEN, lw=2, label="Posterior mean line"),
    ]


def bubble_figure(
    key: str,
    rows: pd.DataFrame,
    moderator: str,
    x: np.ndarray,
    line: RegressionLine | None,
    units: dict[str, str],
    axis_label: str,
) -> RenderedFigure:
    """Observed effects against a numeric moderator, with the posterior regression line.

    Parameters
    ----------
    key : str
        Unique figure key.
    rows : pandas.DataFrame
        The analysis' study rows (``outcome``, ``yi``, ``weight_pct``), aligned with ``x``.
    moderator : str
        The moderator's column name (the x-axis label).
    x : numpy.ndarray
        Each row's moderator value as recorded (NaN rows are not drawn).
    line : RegressionLine, optional
        The posterior regression line over the moderator's range.
    units : dict
        Outcome -> unit of its effects.
    axis_label : str
        The y-axis label (measure and unit).

    Returns
    -------
    RenderedFigure
    """
    keep = np.isfinite(x)
    with styled(key):
        fig = Figure(figsize=(8.0, 4.6))
        ax = fig.add_subplot()
        handles = _band(ax, line)
        ax.scatter(
            x[keep],
            rows["yi"].to_numpy(float)[keep],
            s=_sizes(rows["weight_pct"].to_numpy(float))[keep],
            color=OBSERVED,
            alpha=0.75,
            edgecolors="white",
            linewidths=0.8,
            zorder=3,
        )
        handles.insert(
            0,
            Line2D([], [], color=OBSERVED, marker="o", lw=0, label="Study (area \u221d weight)"),
        )
        ax.axhline(0.0, color="#555555", lw=0.8, zorder=1)
        ax.set_xlabel(moderator)
        ax.set_ylabel(axis_label)
        ax.legend(handles=handles, loc="best", fontsize=8.5)
        fig.tight_layout()
        axes = (
            AxisInfo(title=moderator, quantity=moderator, units=()),
            _effect_axis(rows[keep], units, axis_label),
        )
        return RenderedFigure(key, figure_to_svg(fig, key), axes)


def deficiency_figure(
    key: str,
    rows: pd.DataFrame,
    measured: np.ndarray,
    imputed: dict[int, tuple[float, float, float]],
    line: RegressionLine,
    reference: float,
    levels: dict[float, tuple[float, float, float]],
    units: dict[str, str],
    axis_label: str,
) -> RenderedFigure:
    """The effect against baseline dp-ucMGP (pmol/L, log axis).

    Parameters
    ----------
    key : str
        Unique figure key.
    rows : pandas.DataFrame
        The analysis' study rows (``outcome``, ``yi``, ``ci_low``, ``ci_high``, ``weight_pct``).
    measured : numpy.ndarray
        Each row's measured baseline in pmol/L (NaN where it was imputed).
    imputed : dict
        Row position -> (q2.5, q50, q97.5) of the imputed baseline in pmol/L.
    line : RegressionLine
        The posterior regression line, ``grid`` in pmol/L.
    reference : float
        The reference level (pmol/L): the intercept is the effect there.
    levels : dict
        Reported level (pmol/L) -> (q2.5, q50, q97.5) of the effect there.
    units : dict
        Outcome -> unit of its effects.
    axis_label : str
        The y-axis label (measure and unit).

    Returns
    -------
    RenderedFigure
    """
    y = rows["yi"].to_numpy(float)
    low, high = rows["ci_low"].to_numpy(float), rows["ci_high"].to_numpy(float)
    sizes = _sizes(rows["weight_pct"].to_numpy(float))
    with styled(key):
        fig = Figure(figsize=(8.0, 4.8))
        ax = fig.add_subplot()
        ax.set_xscale("log")
        handles = _band(ax, line)
        shown = np.isfinite(measured)
        ax.vlines(measured[shown], low[shown], high[shown], color=OBSERVED, lw=0.9, zorder=2)
        ax.scatter(
            measured[shown],
            y[shown],
            s=sizes[shown],
            color=OBSERVED,
            alpha=0.8,
            edgecolors="white",
            linewidths=0.8,
            zorder=3,
        )
        if shown.any():
            handles.insert(
                0,
                Line2D(
                    [],
                    [],
                    color=OBSERVED,
                    marker="o",
                    lw=0.9,
                    label="Measured baseline: effect, 95% CI (area \u221d weight)",
                ),
            )
        for row, (q_low, q_mid, q_high) in imputed.items():
            ax.hlines(y[row], q_low, q_high, color=OBSERVED, lw=1.4, linestyles="--", zorder=2)
            ax.vlines(q_mid, low[row], high[row], color=OBSERVED, lw=0.6, alpha=0.6, zorder=2)
            ax.scatter(
                [q_mid],
                [y[row]],
                s=sizes[row],
                facecolors="white",
                edgecolors=OBSERVED,
                linewidths=1.4,
                zorder=3,
            )
        if imputed:
            handles.insert(
                1 if shown.any() else 0,
                Line2D(
                    [],
                    [],
                    color=OBSERVED,
                    marker="o",
                    markerfacecolor="white",
                    ls="--",
                    lw=1.4,
                    label="Imputed baseline: 95% posterior interval (not measured)",
                ),
            )
        ax.axvline(reference, color=PREDICTION, lw=1.0, ls="--", zorder=1)
        handles.append(
            Line2D([], [], color=PREDICTION, ls="--", label=f"Reference {fmt(reference, 0)} pmol/L")
        )
        for level, (q_low, q_mid, q_high) in levels.items():
            ax.axvline(level, color="#888888", lw=0.8, ls=":", zorder=1)
            ax.errorbar(
                [level],
                [q_mid],
                yerr=[[q_mid - q_low], [q_high - q_mid]],
                fmt="D",
                color=POOLED,
                ms=6,
                capsize=3,
                zorder=4,
            )
        if levels:
            shown_levels = ", ".join(fmt(level, 0) for level in levels)
            handles.append(
                Line2D(
                    [],
                    [],
                    color=POOLED,
                    marker="D",
                    lw=0,
                    label=f"Effect at {shown_levels} pmol/L, 95% CrI",
                )
            )
        ax.axhline(0.0, color="#555555", lw=0.8, zorder=1)
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=_LOG_TICKS))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: fmt(value, 0)))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("Baseline dp-ucMGP (pmol/L, log scale)")
        ax.set_ylabel(axis_label)
        fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=8.5)
        fig.subplots_adjust(left=0.12, right=0.97, top=0.97, bottom=0.3)
        axes = (
            AxisInfo(title="Baseline dp-ucMGP", quantity="baseline dp-ucMGP", units=("pmol/L",)),
            _effect_axis(rows, units, axis_label),
        )
        return RenderedFigure(key, figure_to_svg(fig, key), axes)
