"""Pieces shared by the exact and MCMC paths: priors in force, design matrix, per-study table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from metak.priors import Prior, default_priors, unit_information_sd
from metak.spec import DEFICIENCY_MODERATOR

__all__ = [
    "resolve_priors",
    "design_matrix",
    "study_table",
    "within_variance",
    "coefficient_names",
    "DEFAULT_R_PRIOR",
    "PREPOST_VARIANCE_FLOOR",
    "prepost_r_terms",
]

# Pre-post correlation of change scores when it is a parameter: Beta(6, 4) has mean 0.6 and a
# 95% interval of about 0.29-0.86, spanning the correlations seen for repeated measurements of
# biomarkers and PWV over months to years (Cochrane Handbook 6.5.2.8 suggests imputing 0.5-0.8).
DEFAULT_R_PRIOR = Prior("beta", (6.0, 4.0))


def coefficient_names(data) -> tuple[str, ...]:
    if data.spec.model == "meta_regression":
        return ("intercept", *data.moderator_names)
    return ("mu",)


def design_matrix(data) -> np.ndarray:
    """Intercept column plus the centred moderators (complete rows only)."""
    ones = np.ones((data.k, 1))
    if data.X is None:
        return ones
    return np.column_stack([ones, data.X])


def within_variance(data) -> np.ndarray:
    """Within-study variance entering the likelihood: sampling variance plus conversion variance."""
    return data.v + data.v_conversion


# Floor on a row's within-study variance when the pre-post correlation moves it (fraction of the
# variance at the assumed correlation): keeps the likelihood proper at extreme correlations.
PREPOST_VARIANCE_FLOOR = 1e-3


def prepost_r_terms(data) -> tuple[np.ndarray, np.ndarray]:
    """``(dvi/dr, r assumed)`` per row, both 0 where the row's variance does not depend on r.

    A row's variance at correlation r is ``within_variance + (r - r_assumed) * dvi/dr`` (floored
    at ``PREPOST_VARIANCE_FLOOR`` times ``within_variance``): the model and the replicated data
    use the same terms.
    """
    slope = np.where(np.isfinite(data.dvi_dr), data.dvi_dr, 0.0)
    r0 = np.where(np.isfinite(data.r_assumed), data.r_assumed, 0.0)
    return slope, r0


def resolve_priors(spec, data) -> tuple[dict, str]:
    """The priors in force for this analysis (user's where given, scale-aware defaults otherwise).

    Returns ``{key: Prior}`` with keys ``intercept``/``mu``, each moderator name, ``tau`` (and
    ``nu`` for robust models, ``r`` when change-score correlations are uncertain), plus a note on
    how the unit information SD was obtained.
    """
    effects = data.effects
    n_total = None
    if {"n_treatment", "n_control"} <= set(effects.columns):
        n_total = (effects["n_treatment"] + effects["n_control"]).to_numpy(dtype=float)
    measure = str(effects["measure"].iloc[0]) if "measure" in effects and len(effects) else None
    uisd = unit_information_sd(within_variance(data), n_total, measure)
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


def study_table(
    data, theta_mean, theta_q025, theta_q975, tau_mean: float, method: str, moderator_values=None
) -> pd.DataFrame:
    """Per-study rows: observed effect with CI, derivation, shrunken estimate, weight.

    Moderator columns hold the values *as the fit used them* (centred; see ``analyses.json`` for
    the centres), with imputed entries replaced by their posterior means from
    ``moderator_values`` and flagged in ``<name>_imputed``; ``<name>_raw`` holds the values as
    recorded (NaN where missing).
    """
    effects = data.effects
    v = within_variance(data)
    se = np.sqrt(v)
    weights = 1.0 / (v + tau_mean**2)
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
            "ci_low": data.y - 1.959963984540054 * se,
            "ci_high": data.y + 1.959963984540054 * se,
            "derivation": effects["derivation"].to_numpy() if "derivation" in effects else None,
            "converted": effects["converted"].to_numpy() if "converted" in effects else False,
            "theta_mean": np.asarray(theta_mean, dtype=float),
            "theta_q2.5": np.asarray(theta_q025, dtype=float),
            "theta_q97.5": np.asarray(theta_q975, dtype=float),
            "weight_pct": 100.0 * weights / weights.sum(),
            "method": method,
        }
    )
    used = (
        data.X if moderator_values is None else np.where(np.isnan(data.X), moderator_values, data.X)
    )
    for j, name in enumerate(data.moderator_names):
        table[name] = used[:, j]
        table[f"{name}_raw"] = data.X_raw[:, j]
        table[f"{name}_imputed"] = np.isnan(data.X_raw[:, j])
    if DEFICIENCY_MODERATOR in data.moderator_names:
        j = data.moderator_names.index(DEFICIENCY_MODERATOR)
        table["baseline_dpucmgp_pmol_l"] = np.exp(data.X_raw[:, j]) * data.spec.deficiency.reference
    return table
