"""Named posterior quantities, the same for exact and MCMC fits.

Both paths store their draws in a ``DataTree`` whose ``posterior`` group uses the stable variable
names ``mu``, ``beta`` (dim ``moderator``), ``tau``, ``theta`` (dim ``study``), ``theta_new`` and,
when present, ``nu``, ``r_prepost``; joint models add the outcome dimension. This module turns
those into the documented *summary parameters* (``intercept``, moderator slopes by column name,
``tau2``, ``I2``, ``effect_at_300``, ...), each as draws with dims ``(chain, draw)``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from metak.spec import DEFICIENCY_MODERATOR
from metak.exact import typical_within_variance
from metak.fit_common import design_matrix, within_variance

__all__ = ["summary_parameters", "parameter_draws", "effect_level_name", "benefit_sign"]


def effect_level_name(level: float) -> str:
    return f"effect_at_{level:g}"


def benefit_sign(direction: str | None) -> int:
    """-1 when lower values are better (a negative effect is a benefit), +1 when higher is better."""
    return 1 if direction == "higher_is_better" else -1


def summary_parameters(posterior: xr.Dataset, data, direction: str | None = None) -> dict:
    """Summary parameter name -> DataArray with dims (chain, draw).

    ``direction`` is the outcome's direction of benefit, used for the deficiency probability.
    """
    spec = data.spec
    out = {}
    if spec.model == "joint":
        return _joint_parameters(posterior, data)
    out["intercept" if spec.model == "meta_regression" else "mu"] = posterior["mu"]
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
    if spec.deficiency is not None and DEFICIENCY_MODERATOR in data.moderator_names:
        slope = out[DEFICIENCY_MODERATOR]
        for level in spec.deficiency.levels:
            out[effect_level_name(level)] = out["intercept"] + slope * np.log(
                level / spec.deficiency.reference
            )
    return {name: value.transpose("chain", "draw") for name, value in out.items()}


def _joint_parameters(posterior: xr.Dataset, data) -> dict:
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


def parameter_draws(result, parameter: str) -> np.ndarray | None:
    """Flattened draws of one summary parameter of an analysis result, or None if absent."""
    params = summary_parameters(
        result.datatree["posterior"].to_dataset(), result.data, result.counts.get("direction")
    )
    if parameter not in params:
        return None
    return np.asarray(params[parameter]).reshape(-1)
