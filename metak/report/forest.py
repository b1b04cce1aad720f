"""The Cochrane-style forest plot, drawn with matplotlib, one outcome per figure.

metak's own rather than ArviZ's: a meta-analysis forest plot shows observed effects with their
confidence intervals, weights and the pooled diamond, which ``arviz_plots.plot_forest`` (posterior
intervals of model variables) does not. Figures are built on ``matplotlib.figure.Figure``
directly (no pyplot state to leak) and returned as :class:`~metak.report.render.RenderedFigure`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Polygon
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import blended_transform_factory

from metak.report.render import AxisInfo, RenderedFigure, figure_to_svg, styled
from metak.report.text import fmt, interval

__all__ = ["OBSERVED", "SHRUNKEN", "POOLED", "PREDICTION", "forest_figure"]

OBSERVED = "#1f3b73"
SHRUNKEN = "#d9730d"
POOLED = "#111111"
PREDICTION = "#8c2d2d"
_LABEL_CHARS = 38  # longer study labels are cut in the figure (the tables show them whole)
_MAX_MARKER_AREA = 260.0  # pt², the heaviest study's square
_ROW_IN, _BOTTOM_IN, _TOP_IN = 0.34, 1.1, 0.05  # row height, room for axis + legend, top margin


def _label(text: str) -> str:
    text = str(text)
    return text if len(text) <= _LABEL_CHARS else text[: _LABEL_CHARS - 1] + "\u2026"


def forest_figure(
    key: str,
    studies: pd.DataFrame,
    units: dict[str, str],
    pooled: tuple[float, float, float] | None,
    pooled_label: str,
    prediction: tuple[float, float] | None,
    decimals: int,
    axis_label: str,
    favours: tuple[str, str],
) -> RenderedFigure:
    """Cochrane-style forest plot of one outcome.

    Parameters
    ----------
    key : str
        Unique figure key (SVG ids).
    studies : pandas.DataFrame
        Columns ``label, outcome, yi, ci_low, ci_high, theta_mean, theta_q2.5, theta_q97.5,
        weight_pct``, one row per study, top to bottom.
    units : dict
        Outcome -> unit of its effects: the figure's axis description lists the units of the
        rows it plotted (one, unless rows of several outcomes were passed).
    pooled : tuple, optional
        (q2.5, q50, q97.5) of the pooled effect: a diamond.
    pooled_label : str
        The diamond's row label.
    prediction : tuple, optional
        (q2.5, q97.5) of ``theta_new``: a bar under the diamond.
    decimals : int
        Decimals of the numbers in the table columns.
    axis_label : str
        The x-axis label (measure and unit).
    favours : tuple of str
        Labels for the left and right of zero.

    Returns
    -------
    RenderedFigure
    """
    k = len(studies)
    drawn = {"observed"}
    y_study = np.arange(k, 0, -1, dtype=float) + 2.0  # rows 3..k+2; pooled at 1.5, PI at 0.6
    y_pooled, y_pred, y_header = 1.5, 0.6, k + 3.2
    with styled(key):
        # Fixed margins in inches (header/axis/legend room) so short and long plots look alike.
        height = _BOTTOM_IN + _TOP_IN + _ROW_IN * (y_header + 0.6)
        fig = Figure(figsize=(10.0, height))
        ax = fig.add_axes((0.30, _BOTTOM_IN / height, 0.40, 1 - (_BOTTOM_IN + _TOP_IN) / height))
        text_at = blended_transform_factory(fig.transFigure, ax.transData)
        weights = studies["weight_pct"].to_numpy(float)
        wmax = np.nanmax(weights) if np.isfinite(weights).any() else 1.0
        # One collection per kind of mark (not one artist per study): drawing and writing the
        # SVG cost grows with the number of artists, and a forest plot can have many rows.
        yi, lows, highs = (studies[c].to_numpy(float) for c in ("yi", "ci_low", "ci_high"))
        ax.add_collection(
            LineCollection(
                _segments(lows, highs, y_study), colors=OBSERVED, linewidths=1.2, zorder=2
            )
        )
        area = _MAX_MARKER_AREA * np.where(np.isfinite(weights), weights / wmax, 0.1)
        ax.scatter(yi, y_study, s=np.maximum(area, 8.0), marker="s", color=OBSERVED, zorder=3)
        if "theta_mean" in studies:
            theta = studies["theta_mean"].to_numpy(float)
            shown = np.isfinite(theta)
            ys = y_study[shown] - 0.32
            ax.add_collection(
                LineCollection(
                    _segments(
                        studies["theta_q2.5"].to_numpy(float)[shown],
                        studies["theta_q97.5"].to_numpy(float)[shown],
                        ys,
                    ),
                    colors=SHRUNKEN,
                    linewidths=0.9,
                )
            )
            ax.scatter(
                theta[shown],
                ys,
                s=26,
                marker="o",
                facecolors="white",
                edgecolors=SHRUNKEN,
                linewidths=1.2,
                zorder=3,
            )
            drawn.add("shrunken")
        for y, label, estimate, ci_low, ci_high, weight in zip(
            y_study, studies["label"], yi, lows, highs, weights, strict=True
        ):
            ax.text(0.015, y, _label(label), transform=text_at, va="center", ha="left")
            ax.text(
                0.825,
                y,
                interval(estimate, ci_low, ci_high, decimals),
                transform=text_at,
                va="center",
                ha="center",
            )
            ax.text(0.975, y, fmt(weight, 1), transform=text_at, va="center", ha="right")
        if pooled is not None and all(np.isfinite(pooled)):
            low, mid, high = pooled
            ax.add_patch(
                Polygon(
                    [
                        (low, y_pooled),
                        (mid, y_pooled + 0.38),
                        (high, y_pooled),
                        (mid, y_pooled - 0.38),
                    ],
                    closed=True,
                    color=POOLED,
                    zorder=3,
                )
            )
            drawn.add("pooled")
            for x, text, ha in (
                (0.015, pooled_label, "left"),
                (0.825, interval(mid, low, high, decimals), "center"),
                (0.975, "100.0", "right"),
            ):
                ax.text(x, y_pooled, text, transform=text_at, va="center", ha=ha, fontweight="bold")
        if prediction is not None and all(np.isfinite(prediction)):
            ax.plot(
                prediction,
                [y_pred, y_pred],
                color=PREDICTION,
                lw=5,
                solid_capstyle="butt",
                zorder=2,
            )
            ax.text(
                0.015,
                y_pred,
                "Prediction interval (a new study)",
                transform=text_at,
                va="center",
                ha="left",
                style="italic",
            )
            ax.text(
                0.825,
                y_pred,
                f"[{fmt(prediction[0], decimals)}, {fmt(prediction[1], decimals)}]",
                transform=text_at,
                va="center",
                ha="center",
                style="italic",
            )
            drawn.add("prediction")
        for x, text, ha in (
            (0.015, "Study", "left"),
            (0.825, "Effect [95% CI]", "center"),
            (0.975, "Weight %", "right"),
        ):
            ax.text(x, y_header, text, transform=text_at, va="center", ha=ha, fontweight="bold")
        top = k + 2.6  # the no-effect and pooled lines stop below the header row
        ax.plot([0.0, 0.0], [0.1, top], color="#555555", lw=0.9, zorder=1)
        if pooled is not None and all(np.isfinite(pooled)):
            ax.plot([pooled[1], pooled[1]], [0.1, top], color=POOLED, lw=0.7, ls=":", zorder=1)
        ax.axhline(2.2, color="#bbbbbb", lw=0.6, zorder=0)
        ax.set_ylim(0.0, y_header + 0.6)
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)
        low_x, high_x = ax.get_xlim()
        ax.set_xlim(min(low_x, -0.05 * (high_x - low_x)), max(high_x, 0.05 * (high_x - low_x)))
        # At most 6 ticks: the axis is 40% of a 10-inch figure and labels like "−1500" are wide.
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
        ax.set_xlabel(axis_label, labelpad=24)
        below = blended_transform_factory(ax.transData, ax.transAxes)
        for text, dx, ha in (
            (f"\u2190 {favours[0]}", -5, "right"),
            (f"{favours[1]} \u2192", 5, "left"),
        ):
            ax.annotate(
                text,
                xy=(0.0, 0.0),
                xycoords=below,
                xytext=(dx, -20),
                textcoords="offset points",
                ha=ha,
                va="top",
                fontsize=9,
                color="#333333",
            )
        handles = _forest_legend(drawn)  # only what is drawn: no diamond promised and missing
        fig.legend(
            handles=handles,
            loc="lower center",
            ncol=len(handles),
            fontsize=8.5,
            bbox_to_anchor=(0.5, 0.0),
        )
        outcomes = tuple(dict.fromkeys(str(o) for o in studies["outcome"]))
        axis = AxisInfo(
            title=axis_label,
            quantity="effect",
            units=tuple(dict.fromkeys(units.get(o, "") for o in outcomes)),
            outcomes=outcomes,
        )
        return RenderedFigure(key, figure_to_svg(fig, key), (axis,))


def _segments(low, high, y) -> np.ndarray:
    """Horizontal segments ``(low_i, y_i) - (high_i, y_i)`` as a LineCollection wants them."""
    return np.stack([np.column_stack([low, y]), np.column_stack([high, y])], axis=1)


def _forest_legend(drawn: set[str]) -> list[Line2D]:
    handles = {
        "observed": Line2D(
            [],
            [],
            color=OBSERVED,
            marker="s",
            lw=1.2,
            label="Observed effect, 95% CI (area \u221d weight)",
        ),
        "shrunken": Line2D(
            [],
            [],
            color=SHRUNKEN,
            marker="o",
            markerfacecolor="white",
            lw=0.9,
            label="Shrunken estimate, 95% CrI",
        ),
        "pooled": Line2D([], [], color=POOLED, marker="D", lw=0, label="Pooled, 95% CrI"),
        "prediction": Line2D([], [], color=PREDICTION, lw=5, label="95% prediction interval"),
    }
    return [handle for kind, handle in handles.items() if kind in drawn]
