"""In-model imputation of the deficiency moderator (log baseline dp-ucMGP).

Sub-model, on the centred log scale ``x = log(baseline / reference)``, one value per study:

    x_s ~ Normal(m[g_s], sigma_within)            studies that report a baseline (observed);
                                                   sigma_within ~ LogNormal(-1.2, 0.3)
    x_s ~ Normal(m[g_s], sigma_within) T[lower_s,] studies that do not (imputed; truncated below
                                                   at a recorded inclusion threshold if any)
    m[g] ~ Normal(m0, sigma_between), m0 ~ Normal(0, 1.5), sigma_between ~ HalfNormal(1)

with ``g`` the population class (``studies.population`` by default). Baselines reported by
studies of the records that are not in this analysis (e.g. trials of other outcomes, single-arm
studies) inform ``m`` and ``sigma_within`` too: a population's dp-ucMGP level does not depend on
which outcome a trial reported. Imputed values carry their
posterior uncertainty into the slope: no study is dropped and none is given a made-up number.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from metak.fitting.deficiency import DEFICIENCY_MODERATOR
from metak.models.common import prior_variable
from metak.priors import Prior

if TYPE_CHECKING:
    from metak.fitting.data import AnalysisData

__all__ = ["impute_moderator", "DEFAULT_MODERATOR_SD_PRIOR"]

# Between-study SD of log baseline dp-ucMGP within one population class: lognormal(-1.2, 0.3)
# has median 0.30 (trials of similar populations differ by about ±35% in mean level) and 95%
# of its mass in 0.17-0.54. It is kept away from 0 on purpose: with one or two reported baselines
# per class a prior reaching 0 lets the sampler into a funnel (sigma -> 0 pins the class mean to
# the single observation) and the fit fails its diagnostics.
DEFAULT_MODERATOR_SD_PRIOR = Prior("lognormal", (-1.2, 0.3))


def impute_moderator(data: AnalysisData, priors: dict) -> pt.TensorVariable:
    """Design-matrix tensor with missing deficiency values replaced by model variables.

    Reads the analysis' :class:`~metak.fitting.deficiency.DeficiencyInputs` (population classes,
    inclusion thresholds, baselines of other studies). Returns ``(X, imputed, notes)``:
    ``imputed`` maps each imputed study id to its index in the
    ``log_baseline_imputed`` variable.
    """
    inputs = data.deficiency
    j = data.moderator_names.index(DEFICIENCY_MODERATOR)
    others = np.delete(data.missing_mask, j, axis=1)
    if others.any():
        raise ValueError("only the deficiency moderator is imputed; others must be complete")
    studies = list(dict.fromkeys(data.study_id))
    row_study = np.array([studies.index(s) for s in data.study_id])
    first_row = np.array([list(data.study_id).index(s) for s in studies])
    values = data.X[first_row, j]
    groups_of = np.array([inputs.group[i] for i in first_row], dtype=object)
    lower = inputs.lower[first_row]
    pool_groups = np.array([g for g, _ in inputs.marker_pool], dtype=object)
    pool_values = np.array([x for _, x in inputs.marker_pool], dtype=float)
    groups = sorted(set(groups_of) | set(pool_groups))
    group_index = np.array([groups.index(g) for g in groups_of])
    pool_index = np.array([groups.index(g) for g in pool_groups], dtype=int)
    measured = np.isfinite(values)
    missing = np.flatnonzero(~measured)
    model = pm.modelcontext(None)
    model.add_coords({"imputation_group": groups, "imputed_study": [studies[i] for i in missing]})
    overall = pm.Normal("imputation_overall_mean", 0.0, 1.5)
    between = pm.HalfNormal("imputation_between_sd", 1.0)
    offset = pm.Normal("imputation_group_offset", 0.0, 1.0, dims="imputation_group")
    group_mean = pm.Deterministic(
        "imputation_group_mean", overall + between * offset, dims="imputation_group"
    )
    within = prior_variable(
        "imputation_sd", priors.get("moderator_sd") or DEFAULT_MODERATOR_SD_PRIOR
    )
    if measured.any():
        pm.Normal(
            "log_baseline_observed",
            mu=group_mean[group_index[measured]],
            sigma=within,
            observed=values[measured],
        )
    if pool_values.size:
        # Baselines reported by studies of the records outside this analysis.
        pm.Normal(
            "log_baseline_other_studies",
            mu=group_mean[pool_index],
            sigma=within,
            observed=pool_values,
        )
    # Imputed values are non-centred, x = m[g] + sigma_within * e: the effect-size likelihood
    # sees them only through the uncertain slope, so they are weakly identified and the
    # non-centred form avoids the funnel between them and the sub-model's parameters.
    bounded = np.isfinite(lower[missing])
    pieces = []
    if bounded.any():
        centre = group_mean[group_index[missing[bounded]]]
        standard = pm.TruncatedNormal(
            "log_baseline_truncated_z",
            mu=0.0,
            sigma=1.0,
            lower=(lower[missing[bounded]] - centre) / within,
        )
        pieces.append((np.flatnonzero(bounded), centre + within * standard))
    if (~bounded).any():
        standard = pm.Normal("log_baseline_free_z", 0.0, 1.0, shape=int((~bounded).sum()))
        pieces.append(
            (
                np.flatnonzero(~bounded),
                group_mean[group_index[missing[~bounded]]] + within * standard,
            )
        )
    imputed_vector = pt.zeros(len(missing))
    for positions, variable in pieces:
        imputed_vector = pt.set_subtensor(imputed_vector[positions], variable)
    imputed_vector = pm.Deterministic("log_baseline_imputed", imputed_vector, dims="imputed_study")
    per_study = pt.as_tensor_variable(np.where(measured, values, 0.0))
    per_study = pt.set_subtensor(per_study[missing], imputed_vector)
    X = pt.as_tensor_variable(np.nan_to_num(data.X, nan=0.0))
    X = pt.set_subtensor(X[:, j], per_study[row_study])
    imputed = {studies[i]: position for position, i in enumerate(missing)}
    notes = [
        f"log baseline dp-ucMGP imputed in the model for {len(missing)} of {len(studies)} studies "
        f"({', '.join(studies[i] for i in missing)}) from {int(measured.sum())} measured here "
        f"and {pool_values.size} reported by other studies of the records, "
        f"by {data.spec.deficiency.group_column if data.spec.deficiency else 'group'} "
        f"({', '.join(groups)})"
    ]
    return X, imputed, notes
