"""The displays ArviZ has, drawn with arviz-plots from the saved ``DataTree``.

Prior vs posterior for every fit; for MCMC fits trace with densities, rank plots and the posterior
predictive check.

Each figure is built from a small ``DataTree`` whose variables carry the summary parameters'
names (``intercept``, ``log_baseline_dpucmgp``, ``mu[pwv_cf]``; :mod:`metak.report.quantities`),
so panel titles read as the tables do, and each axis is labelled with its unit. A joint model's
predictive check gets one panel per outcome (``y[<outcome>]``), each in its own unit. The axes'
descriptions (:class:`~metak.report.render.AxisInfo`) are read back from arviz-plots'
``PlotCollection``: which variable it drew on which axes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from metak.report.inputs import AnalysisInfo
from metak.report.quantities import display_dataset
from metak.report.render import AxisInfo, RenderedFigure, figure_to_svg, pyplot, styled
from metak.report.units import effect_unit, parameter_outcome, parameter_unit

__all__ = ["prior_posterior_figure", "trace_figure", "rank_figure", "ppc_figure"]

_WIDTH = 10.0  # inches: the page's figure width
_PANEL_HEIGHT = 1.9  # inches per row of panels
_COLUMNS = 4  # panels per row in the prior/posterior, rank and predictive figures
_PPC_DRAWS = 50  # replicated data sets drawn in the predictive check (arviz-plots' default)


def _arviz_plots():
    """arviz-plots, with pyplot on the Agg backend unless the caller chose one."""
    pyplot()
    import arviz_plots

    return arviz_plots


def _figure(pc):
    figure = pc.viz["figure"]
    return figure.item() if hasattr(figure, "item") else figure


def _axes_of(pc) -> dict[int, tuple[object, list[str]]]:
    """id(axes) -> (axes, the variables drawn on it), from the PlotCollection's layout."""
    found: dict[int, tuple[object, list[str]]] = {}
    plots = pc.viz["plot"]
    for name in plots.data_vars:
        for ax in np.asarray(plots[name].values, dtype=object).reshape(-1):
            found.setdefault(id(ax), (ax, []))[1].append(str(name))
    return found


def _axis_info(info: AnalysisInfo, names: list[str]) -> AxisInfo:
    outcomes = tuple(
        dict.fromkeys(o for o in (parameter_outcome(info, n) for n in names) if o is not None)
    )
    units = tuple(dict.fromkeys(parameter_unit(info, n) for n in names))
    return AxisInfo(", ".join(names), ", ".join(names), units, outcomes)


def _size(panels: int, columns: int = _COLUMNS) -> dict:
    rows = int(np.ceil(panels / columns)) or 1
    return _figure_kwargs(0.5 + _PANEL_HEIGHT * rows)


def _figure_kwargs(height: float) -> dict:
    # Constrained layout keeps titles, unit labels and the legend from overlapping.
    return {"figsize": (_WIDTH, height), "figsize_units": "inches", "layout": "constrained"}


def _label_units(pc, info: AnalysisInfo, where: str = "x") -> None:
    for ax, names in _axes_of(pc).values():
        unit = parameter_unit(info, names[0])
        if unit:
            (ax.set_xlabel if where == "x" else ax.set_ylabel)(unit, fontsize=8)


def prior_posterior_figure(
    key: str, tree: xr.DataTree, info: AnalysisInfo, names: list[str]
) -> tuple[RenderedFigure | None, str]:
    """Prior and posterior densities of each parameter (``arviz_plots.plot_prior_posterior``).

    Returns
    -------
    tuple of (RenderedFigure or None, str)
        The figure (None when no parameter has prior draws) and a note for the reader.
    """
    if "prior" not in tree.children:
        return None, "No prior draws stored: no prior vs posterior figure."
    prior = display_dataset(tree["prior"].dataset, names, info)
    shown = [name for name in names if name in prior.data_vars]
    if not shown:
        return None, "No prior draws stored for these parameters: no prior vs posterior figure."
    posterior = display_dataset(tree["posterior"].dataset, shown, info)
    data = xr.DataTree.from_dict({"posterior": posterior, "prior": prior[shown]})
    azp = _arviz_plots()
    with styled(key):
        pc = azp.plot_prior_posterior(
            data,
            backend="matplotlib",
            figure_kwargs=_size(len(shown)),
            col_wrap=min(_COLUMNS, len(shown)),
        )
        _label_units(pc, info)
        return _rendered(key, pc, info), ""


def _rendered(key: str, pc, info: AnalysisInfo) -> RenderedFigure:
    axes = tuple(_axis_info(info, names) for _, names in _axes_of(pc).values())
    return RenderedFigure(key, figure_to_svg(_figure(pc), key), axes)


def _sampled(tree: xr.DataTree | None, info: AnalysisInfo, names: list[str]) -> xr.DataTree:
    groups = {"posterior": display_dataset(tree["posterior"].dataset, names, info)}
    if "sample_stats" in tree.children and "diverging" in tree["sample_stats"].dataset:
        groups["sample_stats"] = tree["sample_stats"].dataset[["diverging"]]
    return xr.DataTree.from_dict(groups)


def trace_figure(
    key: str, tree: xr.DataTree | None, info: AnalysisInfo, names: list[str]
) -> RenderedFigure:
    """Per-chain densities and traces, divergent transitions marked (``plot_trace_dist``)."""
    azp = _arviz_plots()
    with styled(key):
        pc = azp.plot_trace_dist(
            _sampled(tree, info, names),
            backend="matplotlib",
            figure_kwargs=_figure_kwargs(0.6 + 1.5 * len(names)),
        )
        plots = pc.viz["plot"]
        for name in plots.data_vars:
            unit = parameter_unit(info, str(name))
            if unit:  # the density column has the parameter on its x-axis
                plots[name].sel(column="dist").item().set_xlabel(f"{name} ({unit})", fontsize=8)
        return _rendered(key, pc, info)


def rank_figure(
    key: str, tree: xr.DataTree | None, info: AnalysisInfo, names: list[str]
) -> RenderedFigure:
    """Fractional rank ECDF differences by chain with their envelope (``arviz_plots.plot_rank``)."""
    azp = _arviz_plots()
    with styled(key):
        pc = azp.plot_rank(
            _sampled(tree, info, names),
            backend="matplotlib",
            figure_kwargs=_size(len(names)),
            col_wrap=min(_COLUMNS, len(names)),
        )
        axes = tuple(
            AxisInfo(", ".join(found), f"rank of {', '.join(found)}", ())
            for _, found in _axes_of(pc).values()
        )
        return RenderedFigure(key, figure_to_svg(_figure(pc), key), axes)


def _by_outcome(tree: xr.DataTree | None, rows: pd.DataFrame) -> xr.DataTree | None:
    """The predictive and observed groups with one variable ``y[<outcome>]`` per outcome.

    Each holds that outcome's studies only, so each outcome gets its own panel and axis.
    """
    predicted = tree["posterior_predictive"].dataset["y"]
    observed = tree["observed_data"].dataset["y"]
    outcome_of = dict(zip(rows["label"].astype(str), rows["outcome"].astype(str), strict=True))
    labels = [str(label) for label in predicted["study"].values]
    if any(label not in outcome_of for label in labels):
        return None
    predictive, data = {}, {}
    for outcome in dict.fromkeys(outcome_of[label] for label in labels):
        keep = [label for label in labels if outcome_of[label] == outcome]
        dim = f"study_{outcome}"
        predictive[f"y[{outcome}]"] = predicted.sel(study=keep).rename(study=dim)
        data[f"y[{outcome}]"] = observed.sel(study=keep).rename(study=dim)
    return xr.DataTree.from_dict(
        {"posterior_predictive": xr.Dataset(predictive), "observed_data": xr.Dataset(data)}
    )


def ppc_figure(
    key: str, tree: xr.DataTree | None, info: AnalysisInfo, rows: pd.DataFrame
) -> RenderedFigure | None:
    """Posterior predictive check, one panel per outcome (``arviz_plots.plot_ppc_dist``).

    ECDF of the observed effects against replicated data sets; None without the groups.
    """
    if "posterior_predictive" not in tree.children or "observed_data" not in tree.children:
        return None
    if "y" not in tree["posterior_predictive"].dataset:
        return None
    data = _by_outcome(tree, rows)
    if data is None:
        return None
    names = list(data["posterior_predictive"].dataset.data_vars)
    azp = _arviz_plots()
    with styled(key):
        pc = azp.plot_ppc_dist(
            data,
            kind="ecdf",
            num_samples=_PPC_DRAWS,
            backend="matplotlib",
            figure_kwargs=_size(len(names)),
            col_wrap=min(_COLUMNS, len(names)),
        )
        axes = []
        for ax, found in _axes_of(pc).values():
            outcomes = tuple(dict.fromkeys(name[2:-1] for name in found))
            units = tuple(dict.fromkeys(effect_unit(info, o) for o in outcomes))
            if len(units) == 1 and units[0]:
                ax.set_xlabel(f"effect ({units[0]})", fontsize=8)
            axes.append(AxisInfo(", ".join(found), "effect", units, outcomes))
        return RenderedFigure(key, figure_to_svg(_figure(pc), key), tuple(axes))
