"""The priors in force for one analysis: the user's where given, scale-aware defaults otherwise.

One function, :func:`priors_in_force`, serves both engines and every model kind, so the priors
printed in ``analyses.json`` are the ones the fit used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from metak.fitting.design import coefficient_names, within_variance
from metak.priors import Prior, UnitInformationSD, default_priors, unit_information_sd

if TYPE_CHECKING:
    from metak.fitting.data import AnalysisData
    from metak.spec import AnalysisSpec

__all__ = [
    "priors_in_force",
    "outcome_unit_sd",
    "DEFAULT_R_PRIOR",
    "JOINT_MU_PRIOR",
    "JOINT_TAU_PRIOR",
]

# Pre-post correlation of change scores when it is a parameter: Beta(6, 4) has mean 0.6 and a
# 95% interval of about 0.29-0.86, spanning the correlations seen for repeated measurements of
# biomarkers and PWV over months to years (Cochrane Handbook 6.5.2.8 suggests imputing 0.5-0.8).
DEFAULT_R_PRIOR = Prior("beta", (6.0, 4.0))
# Joint models put each outcome on the scale of its unit information SD: these defaults are in
# those units (the univariate defaults normal(0, 4 sd_U) and halfnormal(0.5 sd_U), standardised).
JOINT_MU_PRIOR = Prior("normal", (0.0, 4.0))
JOINT_TAU_PRIOR = Prior("halfnormal", (0.5,))
_JOINT_NOTE = "joint model: priors on mu and tau are in units of each outcome's unit information SD"


def _joint(spec: AnalysisSpec, data: AnalysisData) -> tuple[dict[str, Prior], str]:
    given = spec.priors
    priors = {"mu": given.get("mu") or JOINT_MU_PRIOR, "tau": given.get("tau") or JOINT_TAU_PRIOR}
    if data.has_uncertain_r:
        priors["r"] = given.get("r") or DEFAULT_R_PRIOR
    return priors, _JOINT_NOTE


def outcome_unit_sd(data: AnalysisData) -> UnitInformationSD:
    """The unit information SD of a (univariate) analysis' outcome, which scales its defaults.

    Parameters
    ----------
    data : metak.fitting.data.AnalysisData
        The analysis' data (variances, sample sizes and measure of its effect sizes).

    Returns
    -------
    metak.priors.UnitInformationSD
    """
    effects = data.effects
    n_total = None
    if {"n_treatment", "n_control"} <= set(effects.columns):
        n_total = (effects["n_treatment"] + effects["n_control"]).to_numpy(dtype=float)
        if data.spec.arm is not None:  # one arm: its n is the one that is given
            n_total = effects[["n_treatment", "n_control"]].sum(axis=1, min_count=1).to_numpy()
    measure = str(effects["measure"].iloc[0]) if "measure" in effects and len(effects) else None
    return unit_information_sd(within_variance(data), n_total, measure)


def priors_in_force(spec: AnalysisSpec, data: AnalysisData) -> tuple[dict[str, Prior], str]:
    """The priors of ``spec`` on ``data``, and a note on how their scale was set.

    Parameters
    ----------
    spec : AnalysisSpec
        The analysis (its ``priors`` are the user's).
    data : AnalysisData
        Its data (the defaults scale with the outcome's unit information SD and the moderators'
        spread).

    Returns
    -------
    tuple of (dict, str)
        ``{key: Prior}`` with keys ``intercept``/``mu``, each moderator name, ``tau`` (and ``nu``
        for robust models, ``r`` when change-score correlations are uncertain; joint models:
        ``mu``, ``tau``, ``r``), and a one-line note for the report.
    """
    if spec.model == "joint":
        return _joint(spec, data)
    uisd = outcome_unit_sd(data)
    moderator_sds = {}
    for j, name in enumerate(data.moderator_names):
        column = data.X_raw[:, j]
        finite = column[np.isfinite(column)]
        if finite.size > 1 and np.std(finite) > 0 and "[" not in name:
            moderator_sds[name] = float(np.std(finite, ddof=1))
    defaults = default_priors(float(uisd), moderator_sds)
    given = spec.priors
    priors = {}
    first = coefficient_names(data)[0]
    priors[first] = given.get(first) or given.get("mu") or given.get("intercept") or defaults[first]
    for name in data.moderator_names:
        base = name.split("[")[0]
        priors[name] = (
            given.get(name)
            or given.get(base)
            or given.get("slope")
            or defaults.get(name)
            or defaults["slope"]
        )
    priors["tau"] = given.get("tau") or defaults["tau"]
    if spec.model == "robust":
        priors["nu"] = given.get("nu") or defaults["nu"]
    if data.has_uncertain_r:
        priors["r"] = given.get("r") or DEFAULT_R_PRIOR
    return priors, uisd.note
