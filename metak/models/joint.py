"""Joint random-effects model across outcomes, with the biomarker link.

Each study has a vector of true effects, one per outcome, on the scale of each outcome's unit
information SD ``s_o`` (so that one prior fits outcomes measured in pmol/L, m/s and Agatston
units alike):

    theta[s, :] / s = mu_std + L z[s, :],   L L' = diag(tau_std) R diag(tau_std),  R ~ LKJ(eta)

and each reported effect ``y_r ~ Normal(theta[study_r, outcome_r], se_r)``. Studies need not
report every outcome: the missing components are integrated over by the sampler.

The **biomarker link** is the regression slope of a study's true clinical effect on its true
biomarker effect implied by that covariance, on the original scales:
``gamma_link[o] = corr[o, b] * tau[o] / tau[b]`` (clinical units per biomarker unit). It answers
"do trials that lowered dp-ucMGP more show more clinical benefit?" without a second model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from metak.models.common import ModelParts, pointwise_loglik, prior_variable, within_sd
from metak.priors import unit_information_sd

if TYPE_CHECKING:
    from metak.fitting.data import AnalysisData

__all__ = ["build_joint_model", "outcome_scales", "lkj_cholesky", "LKJ_ETA"]

# LKJ(2) shrinks correlations mildly towards 0 (density ∝ (1 - r^2) for two outcomes): with a
# handful of studies reporting two outcomes, a flat prior on the correlation would be reported
# back as a "finding".
LKJ_ETA = 2.0


def outcome_scales(data: AnalysisData) -> dict:
    """Unit information SD of each outcome of a joint analysis."""
    scales = {}
    effects = data.effects
    v = data.v + data.v_conversion
    outcome = np.asarray(data.outcome)
    n_total = None
    if {"n_treatment", "n_control"} <= set(effects.columns):
        n_total = (effects["n_treatment"] + effects["n_control"]).to_numpy(dtype=float)
    for name in dict.fromkeys(data.outcome):
        rows = outcome == name
        measure = str(effects.loc[rows, "measure"].iloc[0]) if "measure" in effects else None
        scales[name] = float(
            unit_information_sd(v[rows], None if n_total is None else n_total[rows], measure)
        )
    return scales


def lkj_cholesky(name: str, n: int, eta: float) -> pt.TensorVariable:
    """Cholesky factor L of a correlation matrix R = L L' with an LKJ(eta) prior.

    Built from canonical partial correlations (the C-vine of Lewandowski, Kurowicka & Joe 2009).

    The partial correlation of outcomes i and j given outcomes 0..k-1 (k = level, 0 <= k < i < j)
    is Beta(b_k, b_k) on (-1, 1) with b_k = eta + (n - 2 - k) / 2, independently: exactly the
    LKJ(eta) distribution of R (their section 3.2). L follows from them as in Stan's
    ``cholesky_corr`` transform. Why not ``pm.LKJCorr``: its transform compiles to a Scan, which
    took ~80 s to compile with numba on an empty cache for a three-outcome model; these are
    n(n-1)/2 Beta variables and a few products, written out at graph-construction time.
    """
    levels = [k for k in range(n - 1) for _ in range(k + 1, n)]
    alpha = np.array([eta + (n - 2 - k) / 2 for k in levels])
    unit = pm.Beta(name, alpha=alpha, beta=alpha, shape=len(levels))
    partial = 2 * unit - 1
    index = {}
    pairs = ((level, j) for level in range(n - 1) for j in range(level + 1, n))
    for position, pair in enumerate(pairs):
        index[pair] = position
    rows = []
    for i in range(n):
        row, remaining = [], 1.0
        for k in range(i):
            p = partial[index[(k, i)]]
            row.append(p * pt.sqrt(remaining))
            remaining = remaining * (1 - p**2)
        row.append(pt.sqrt(remaining) if i else pt.as_tensor_variable(1.0))
        row.extend(pt.as_tensor_variable(0.0) for _ in range(n - i - 1))
        rows.append(pt.stack(row))
    return pt.stack(rows)


def build_joint_model(data: AnalysisData, priors: dict) -> tuple[pm.Model, ModelParts]:
    """``(pm.Model, ModelParts)`` of a joint analysis of several outcomes (module docstring)."""
    spec = data.spec
    outcomes = [o for o in spec.outcomes if o in set(data.outcome)]
    if len(outcomes) < 2:
        raise ValueError("a joint model needs effect sizes for at least two outcomes")
    studies = list(dict.fromkeys(data.study_id))
    scales = outcome_scales(data)
    scale = np.array([scales[o] for o in outcomes])
    study_index = np.array([studies.index(s) for s in data.study_id])
    outcome_index = np.array([outcomes.index(o) for o in data.outcome])
    coords = {
        "outcome": outcomes,
        "outcome_bis": outcomes,
        "joint_study": studies,
        "study": list(data.row_label),
    }
    link = spec.link_biomarker
    linked = [o for o in outcomes if o != link] if link in outcomes else []
    if linked:
        coords["linked_outcome"] = linked
    with pm.Model(coords=coords) as model:
        mu_std = prior_variable("mu_std", priors["mu"], dims="outcome")
        tau_std = prior_variable("tau_std", priors["tau"], dims="outcome")
        chol_corr = lkj_cholesky("corr_partial", len(outcomes), LKJ_ETA)
        z = pm.Normal("z", 0.0, 1.0, dims=("joint_study", "outcome"))
        # theta_std[s] = mu_std + diag(tau_std) L_R z[s]
        deviations = (z @ chol_corr.T) * tau_std
        theta_study = pm.Deterministic(
            "theta_study", (mu_std + deviations) * scale, dims=("joint_study", "outcome")
        )
        pm.Deterministic("mu", mu_std * scale, dims="outcome")
        tau = pm.Deterministic("tau", tau_std * scale, dims="outcome")
        corr = pm.Deterministic("corr", chol_corr @ chol_corr.T, dims=("outcome", "outcome_bis"))
        theta = pm.Deterministic("theta", theta_study[study_index, outcome_index], dims="study")
        if linked:
            b = outcomes.index(link)
            others = [outcomes.index(o) for o in linked]
            pm.Deterministic(
                "gamma_link", corr[others, b] * tau[others] / tau[b], dims="linked_outcome"
            )
        y = pm.Normal("y", mu=theta, sigma=within_sd(data, priors), observed=data.y, dims="study")
        pointwise_loglik(y, data.y)
    report = ["mu", "tau", "corr", "theta", "mu_std", "tau_std"]
    if linked:
        report.append("gamma_link")
    if data.has_uncertain_r:
        report.append("r_prepost")
    notes = [
        "outcome scales (unit information SD): "
        + ", ".join(f"{o} {scales[o]:.4g}" for o in outcomes)
    ]
    return model, ModelParts(report_vars=tuple(report), notes=tuple(notes))
