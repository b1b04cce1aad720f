"""The one place that lays out an analysis' results: study table and posterior ``DataTree``.

Both engines hand their draws to :func:`build_datatree` and their study-level estimates to
:func:`study_table`; the writer stores the tree as it is (``posterior/<name>.nc``), so the file,
the in-memory result and the report all read the same layout (README, "posterior files").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from metak.fitting.deficiency import baseline_pmol_per_l
from metak.fitting.design import within_variance
from metak.fitting.summaries import SUMMARY_NUMERIC_COLUMNS

if TYPE_CHECKING:
    from metak.fitting.data import AnalysisData

__all__ = ["study_table", "build_datatree", "summary_dataset", "SUMMARY_GROUP"]

SUMMARY_GROUP = "summary"
_Z975 = 1.959963984540054  # standard normal 97.5% quantile


def study_table(
    data: AnalysisData,
    theta_mean: np.ndarray,
    theta_q025: np.ndarray,
    theta_q975: np.ndarray,
    tau_mean: float | np.ndarray,
    method: str,
    moderator_values: np.ndarray | None = None,
) -> pd.DataFrame:
    """Per-study rows: observed effect with CI, derivation, shrunken estimate, weight.

    Parameters
    ----------
    data : AnalysisData
        The analysis' data.
    theta_mean, theta_q025, theta_q975 : numpy.ndarray
        Posterior mean and 95% interval of each row's study effect.
    tau_mean : float or numpy.ndarray
        Posterior mean of tau (per row for joint models), for the weights
        ``w_i = 1 / (v_i + tau^2)`` as a percentage of their sum.
    method : str
        ``"exact"`` or ``"mcmc"``.
    moderator_values : numpy.ndarray, optional
        Posterior means of imputed moderator values laid out like ``data.X`` (NaN elsewhere).

    Returns
    -------
    pandas.DataFrame
        Moderator columns hold the values *as the fit used them* (centred; ``analyses.json``
        gives the centres), imputed entries replaced by their posterior means and flagged in
        ``<name>_imputed``; ``<name>_raw`` holds the values as recorded (NaN where missing).
    """
    effects = data.effects
    v = within_variance(data)
    se = np.sqrt(v)
    weights = 1.0 / (v + np.asarray(tau_mean) ** 2)
    table = pd.DataFrame(
        {
            "analysis": data.spec.name,
            "study_id": list(data.study_id),
            "label": list(data.row_label),
            "outcome": list(data.outcome),
            "comparison": effects["comparison"].to_numpy() if "comparison" in effects else None,
            "measure": effects["measure"].to_numpy() if "measure" in effects else None,
            "yi": data.y,
            "vi": v,
            "ci_low": data.y - _Z975 * se,
            "ci_high": data.y + _Z975 * se,
            "derivation": effects["derivation"].to_numpy() if "derivation" in effects else None,
            "converted": effects["converted"].to_numpy() if "converted" in effects else False,
            "theta_mean": np.asarray(theta_mean, dtype=float),
            "theta_q2.5": np.asarray(theta_q025, dtype=float),
            "theta_q97.5": np.asarray(theta_q975, dtype=float),
            "weight_pct": 100.0 * weights / weights.sum(),
            "method": method,
            # Participants analysed per group (NaN where the records give no n).
            "n_treatment": _column(effects, "n_treatment"),
            "n_control": _column(effects, "n_control"),
        }
    )
    if data.spec.model == "joint":
        # Weights are shares within each outcome's own pooled estimate.
        table["weight_pct"] = table.groupby("outcome")["weight_pct"].transform(
            lambda w: 100.0 * w / w.sum()
        )
    used = (
        data.X if moderator_values is None else np.where(np.isnan(data.X), moderator_values, data.X)
    )
    for j, name in enumerate(data.moderator_names):
        table[name] = used[:, j]
        table[f"{name}_raw"] = data.X_raw[:, j]
        table[f"{name}_imputed"] = np.isnan(data.X_raw[:, j])
    baseline = baseline_pmol_per_l(data)
    if baseline is not None:
        table["baseline_dpucmgp_pmol_l"] = baseline
    return table


def _column(effects: pd.DataFrame, name: str) -> np.ndarray:
    if name not in effects:
        return np.full(len(effects), np.nan)
    return pd.to_numeric(effects[name], errors="coerce").to_numpy(dtype=float)


def summary_dataset(summary: pd.DataFrame) -> xr.Dataset:
    """An analysis' summary rows as a Dataset over ``parameter``: the ``summary`` group.

    Stored in the posterior file so that the file alone carries the numbers of summary.csv
    (exact fits' summaries are exact, not recomputed from the stored draws).
    """
    frame = summary.set_index("parameter")
    values = {
        column: (("parameter",), frame[column].to_numpy(dtype=float))
        for column in SUMMARY_NUMERIC_COLUMNS
    }
    values["converged"] = (("parameter",), frame["converged"].to_numpy(dtype=bool))
    dataset = xr.Dataset(values, coords={"parameter": frame.index.to_numpy(dtype=str)})
    dataset.attrs["method"] = str(frame["method"].iloc[0]) if len(frame) else ""
    return dataset


def _constant_data(data: AnalysisData) -> xr.Dataset:
    studies = list(data.row_label)
    values = {"v": (("study",), within_variance(data)), "v_sampling": (("study",), data.v)}
    coords = {"study": studies}
    if data.X is not None and data.spec.model != "joint":
        # Centred moderators as the fit used them (NaN where a value was imputed).
        values["X"] = (("study", "moderator"), data.X)
        coords["moderator"] = list(data.moderator_names)
    return xr.Dataset(values, coords=coords)


def build_datatree(
    data: AnalysisData,
    *,
    method: str,
    seed: int,
    summary: pd.DataFrame,
    posterior: xr.Dataset,
    prior: xr.Dataset,
    log_likelihood: xr.Dataset,
    posterior_predictive: xr.Dataset | None = None,
    sample_stats: xr.Dataset | None = None,
    attrs: Mapping[str, object] | None = None,
) -> xr.DataTree:
    """The posterior ``DataTree`` of one analysis, in the documented layout.

    Groups: ``posterior``, ``prior``, ``log_likelihood``, ``posterior_predictive`` and
    ``sample_stats`` (when given: MCMC), ``observed_data`` (``y``), ``constant_data`` (``v``,
    ``v_sampling``, moderators ``X``) and ``summary`` (:func:`summary_dataset`). Attributes name
    the analysis, method, model and seed (``metak_*``).

    Parameters
    ----------
    data : AnalysisData
        The analysis' data (observed and constant data, names, study labels).
    method : {"exact", "mcmc"}
        The engine, stored as ``metak_method``.
    seed : int
        The seed of the draws, stored as ``metak_seed``.
    summary : pandas.DataFrame
        The analysis' rows of ``summary.csv``.
    posterior, prior, log_likelihood : xarray.Dataset
        Draws with dims ``(chain, draw, ...)`` in the layout of
        :mod:`metak.fitting.parameters`; ``log_likelihood`` pointwise per study (``y``).
    posterior_predictive, sample_stats : xarray.Dataset, optional
        Replicated data and sampler statistics (MCMC).
    attrs : mapping, optional
        More attributes for the tree (netCDF-storable values).

    Returns
    -------
    xarray.DataTree
    """
    groups = {"posterior": posterior, "prior": prior, "log_likelihood": log_likelihood}
    if posterior_predictive is not None:
        groups["posterior_predictive"] = posterior_predictive
    if sample_stats is not None:
        groups["sample_stats"] = sample_stats
    groups["observed_data"] = xr.Dataset(
        {"y": (("study",), data.y)}, coords={"study": list(data.row_label)}
    )
    groups["constant_data"] = _constant_data(data)
    groups[SUMMARY_GROUP] = summary_dataset(summary)
    tree = xr.DataTree.from_dict(groups)
    tree.attrs.update(
        {
            "metak_analysis": data.spec.name,
            "metak_method": method,
            "metak_model": data.spec.model,
            "metak_seed": int(seed),
            **(attrs or {}),
        }
    )
    return tree
