"""Summary parameters as draws, from a posterior file's ``posterior`` or ``prior`` group.

The posterior files store the model's variables (``mu``, ``beta`` over ``moderator``, ``tau``,
joint models' ``mu`` over ``outcome``, ...); the tables and sentences use the summary names
(``intercept``, the moderator's column name, ``mu[pwv_cf]``, ``effect_at_300``; README.md,
"summary.csv columns"). This module maps one onto the other so that figures, probabilities and
the prior-to-posterior contraction use the names the tables use, for both groups alike.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from metak.report.inputs import AnalysisInfo
from metak.report.units import DEFICIENCY_MODERATOR, PROBABILITY_PARAMETER, split_parameter

__all__ = [
    "SAMPLE_DIMS",
    "DERIVED",
    "parameter_array",
    "parameter_draws",
    "model_parameters",
    "display_dataset",
]

SAMPLE_DIMS = ("chain", "draw")
# Summary rows computed from other parameters: shown in tables, not drawn as separate panels.
DERIVED = ("tau2", "I2", "theta_new", PROBABILITY_PARAMETER)
_EFFECT_AT = "effect_at_"


def _other_dims(array: xr.DataArray) -> list[str]:
    return [dim for dim in array.dims if dim not in SAMPLE_DIMS]


def _slope(dataset: xr.Dataset, name: str) -> xr.DataArray | None:
    if "beta" not in dataset or "moderator" not in dataset["beta"].dims:
        return None
    labels = [str(v) for v in dataset["beta"]["moderator"].values]
    if name not in labels:
        return None
    return dataset["beta"].isel(moderator=labels.index(name), drop=True)


def _by_label(array: xr.DataArray, labels: tuple[str, ...]) -> xr.DataArray | None:
    """``array`` at the given labels of its non-sample dimensions, in order."""
    dims = _other_dims(array)
    if len(dims) != len(labels):
        return None
    index = {}
    for dim, label in zip(dims, labels, strict=True):
        values = [str(v) for v in array[dim].values]
        if label not in values:
            return None
        index[dim] = values.index(label)
    return array.isel(index, drop=True)


def parameter_array(dataset: xr.Dataset, parameter: str, info: AnalysisInfo) -> xr.DataArray | None:
    """Draws of the summary parameter ``parameter`` with dims ``(chain, draw)``, or None.

    Parameters
    ----------
    dataset : xarray.Dataset
        The ``posterior`` or ``prior`` group of the analysis' posterior file.
    parameter : str
        A name of summary.csv's ``parameter`` column. ``p_more_deficient_more_benefit`` gives the
        slope it is a probability about; ``tau2`` is ``tau`` squared; ``I2`` gives None (it needs
        the within-study variances, and its rows are in the tables).
    info : AnalysisInfo
        The analysis (model, deficiency reference).
    """
    base, inner = split_parameter(parameter)
    slope = _slope(dataset, parameter)
    if slope is not None:
        found = slope
    elif parameter == PROBABILITY_PARAMETER:
        found = _slope(dataset, DEFICIENCY_MODERATOR)
    elif parameter in ("intercept", "mu") and "mu" in dataset and not _other_dims(dataset["mu"]):
        found = dataset["mu"]
    elif parameter.startswith(_EFFECT_AT) and info.deficiency is not None and "mu" in dataset:
        found = _effect_at(dataset, parameter, info)
    elif parameter == "tau2" and "tau" in dataset and not _other_dims(dataset["tau"]):
        found = dataset["tau"] ** 2
    elif inner is not None and base in dataset:
        found = _by_label(dataset[base], tuple(inner.split(",")))
    elif inner is None and base in dataset and not _other_dims(dataset[base]):
        found = dataset[base]
    else:
        found = None
    if found is None:
        return None
    return found.transpose(*SAMPLE_DIMS).rename(parameter)


def _effect_at(dataset: xr.Dataset, parameter: str, info: AnalysisInfo) -> xr.DataArray | None:
    slope = _slope(dataset, DEFICIENCY_MODERATOR)
    try:
        level = float(parameter.removeprefix(_EFFECT_AT))
    except ValueError:
        return None
    if slope is None or not level > 0:
        return None
    return dataset["mu"] + slope * np.log(level / info.deficiency.reference)


def parameter_draws(
    tree: xr.DataTree | None, group: str, parameter: str, info: AnalysisInfo
) -> np.ndarray | None:
    """Flattened draws of a summary parameter in ``group`` of ``tree``, or None."""
    if tree is None or group not in tree.children:
        return None
    array = parameter_array(tree[group].dataset, parameter, info)
    return None if array is None else np.asarray(array.values, dtype=float).reshape(-1)


def model_parameters(
    tree: xr.DataTree | None, info: AnalysisInfo, summary_names: list[str]
) -> list[str]:
    """The summary parameters with posterior draws of their own, in summary order.

    These are what the prior/posterior, trace and rank figures show; derived rows (``tau2``,
    ``I2``, ``theta_new``, the level effects) stay in the tables.
    """
    if tree is None or "posterior" not in tree.children:
        return []
    posterior = tree["posterior"].dataset
    return [
        name
        for name in summary_names
        if name not in DERIVED
        and not name.startswith(_EFFECT_AT)
        and parameter_array(posterior, name, info) is not None
    ]


def display_dataset(dataset: xr.Dataset, names: list[str], info: AnalysisInfo) -> xr.Dataset:
    """One ``(chain, draw)`` variable per summary parameter in ``names``, named as in the tables.

    For arviz-plots, whose panel titles are the variable names.
    """
    arrays = {}
    for name in names:
        array = parameter_array(dataset, name, info)
        if array is not None:
            arrays[name] = array.drop_vars(
                [c for c in array.coords if c not in SAMPLE_DIMS], errors="ignore"
            )
    return xr.Dataset(arrays)
