"""Named posterior quantities, the same for exact and MCMC fits.

Both engines store their draws in a ``DataTree`` whose ``posterior`` group uses the stable
variable names ``mu``, ``beta`` (dim ``moderator``), ``tau``, ``theta`` (dim ``study``),
``theta_new`` and, when present, ``nu``, ``r_prepost``; joint models add the outcome dimension.
This module turns those into the documented *summary parameters* (``intercept``, moderator slopes
by column name, ``tau2``, ``I2``, ``effect_at_300``, ...), each as draws with dims
``(chain, draw)``, and gives the draws of one study's effect, ``theta[<row label>]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from metak.exact import typical_within_variance
from metak.fitting.deficiency import DEFICIENCY_MODERATOR, level_values
from metak.fitting.design import design_matrix, within_variance

if TYPE_CHECKING:
    from metak.fitting.data import AnalysisData

__all__ = ["summary_parameters", "parameter_draws", "study_label", "THETA_PREFIX"]

# A study's own (shrunken) effect is asked for as theta[<row label>] (claims, the API).
THETA_PREFIX = "theta["


def summary_parameters(posterior: xr.Dataset, data: AnalysisData) -> dict[str, xr.DataArray]:
    """Summary parameter name -> draws with dims ``(chain, draw)``.

    Parameters
    ----------
    posterior : xarray.Dataset
        The ``posterior`` group of an analysis' DataTree (or its ``prior`` group: the same
        layout).
    data : AnalysisData
        The analysis' data (moderator names, within-study variances, the spec).

    Returns
    -------
    dict of str to xarray.DataArray
        In the order of ``summary.csv``; ``I2`` in percent.
    """
    spec = data.spec
    if spec.model == "joint":
        return _joint_parameters(posterior)
    out = {"intercept" if spec.model == "meta_regression" else "mu": posterior["mu"]}
    for name in data.moderator_names:
        out[name] = posterior["beta"].sel(moderator=name, drop=True)
    tau = posterior["tau"]
    out["tau"] = tau
    out["tau2"] = tau**2
    s2 = typical_within_variance(
        within_variance(data), design_matrix(data) if not data.needs_imputation else None
    )
    out["I2"] = 100.0 * tau**2 / (tau**2 + s2)
    if "theta_new" in posterior:
        out["theta_new"] = posterior["theta_new"]
    for extra in ("nu", "r_prepost"):
        if extra in posterior:
            out[extra] = posterior[extra]
    if "omega" in posterior:
        # Selection weights (metak.models.selection); the first interval's is fixed at 1.
        weights = posterior["omega"]
        for label in weights.coords["p_interval"].values[1:]:
            out[f"omega[{label}]"] = weights.sel(p_interval=label, drop=True)
    if spec.deficiency is not None and DEFICIENCY_MODERATOR in data.moderator_names:
        slope = out[DEFICIENCY_MODERATOR]
        for name, x in level_values(spec).items():
            out[name] = out["intercept"] + slope * x
    return {name: value.transpose("chain", "draw") for name, value in out.items()}


def _joint_parameters(posterior: xr.Dataset) -> dict[str, xr.DataArray]:
    out = {}
    outcomes = list(posterior["mu"].coords["outcome"].values)
    for outcome in outcomes:
        out[f"mu[{outcome}]"] = posterior["mu"].sel(outcome=outcome, drop=True)
        out[f"tau[{outcome}]"] = posterior["tau"].sel(outcome=outcome, drop=True)
    if "corr" in posterior:
        corr = posterior["corr"]
        dims = [d for d in corr.dims if d not in ("chain", "draw")]
        for i, first in enumerate(outcomes):
            for second in outcomes[i + 1 :]:
                out[f"corr[{first},{second}]"] = corr.sel(
                    {dims[0]: first, dims[1]: second}, drop=True
                )
    if "gamma_link" in posterior:
        link = posterior["gamma_link"]
        link_dims = [d for d in link.dims if d not in ("chain", "draw")]
        if link_dims:
            for outcome in link.coords[link_dims[0]].values:
                out[f"gamma_link[{outcome}]"] = link.sel({link_dims[0]: outcome}, drop=True)
        else:
            out["gamma_link"] = link
    return {name: value.transpose("chain", "draw") for name, value in out.items()}


def parameter_draws(datatree: xr.DataTree, data: AnalysisData, parameter: str) -> np.ndarray | None:
    """Flattened posterior draws of one summary parameter, or None if the analysis has none.

    Parameters
    ----------
    datatree : xarray.DataTree
        The analysis' posterior tree.
    data : AnalysisData
        The analysis' data.
    parameter : str
        A summary parameter name (see :func:`summary_parameters`), or ``theta[<label>]``: the
        shrunken effect of the study row labelled ``<label>`` (:func:`study_label`).

    Returns
    -------
    numpy.ndarray or None
        1-D, chains one after the other.
    """
    posterior = datatree["posterior"].to_dataset()
    label = study_label(parameter)
    if label is not None:
        if "theta" not in posterior or label not in set(posterior["theta"].coords["study"].values):
            return None
        theta = posterior["theta"].sel(study=label, drop=True)
        return np.asarray(theta.transpose("chain", "draw")).reshape(-1)
    params = summary_parameters(posterior, data)
    if parameter not in params:
        return None
    return np.asarray(params[parameter]).reshape(-1)


def study_label(parameter: str) -> str | None:
    """The row label in ``theta[<label>]``, or None when ``parameter`` is not a study effect.

    ``<label>`` is a row label of the analysis: the study id, ``study (comparison)`` for a study
    with several comparisons of one outcome, ``study [outcome]`` in joint models.
    """
    if parameter.startswith(THETA_PREFIX) and parameter.endswith("]"):
        label = parameter[len(THETA_PREFIX) : -1]
        return label or None
    return None
