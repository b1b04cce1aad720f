"""The deficiency moderator, in one place: log(baseline dp-ucMGP / reference).

Does the effect depend on how vitamin-K deficient a trial's participants were at baseline? The
spec (:class:`metak.spec.DeficiencySpec`) says where the marker is and at which levels to report;
this module owns everything else:

- data preparation: each study's baseline marker level (whole-sample value from ``studies.csv``
  or the n-weighted per-arm baselines of the marker outcome), its log ratio to the reference, the
  population class and inclusion threshold used by the imputation sub-model, and the baselines of
  studies outside the analysis that inform it (:func:`moderator_inputs`);
- the complete-case twin reported beside an imputing analysis (:func:`complete_case_spec`);
- the reported quantities: the effect at each level, P(more deficient, more benefit), how many
  studies were measured or imputed, and the imputed values shown in the study table.

The imputation itself is PyMC (:mod:`metak.models.imputation`); it reads
:class:`DeficiencyInputs` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from metak.spec import (
    DEFICIENCY_MODERATOR,
    PROBABILITY_PARAMETER,
    AnalysisSpec,
    DeficiencySpec,
    level_name,
)

if TYPE_CHECKING:
    # AnalysisData's module imports this one: for annotations only.
    from metak.fitting.data import AnalysisData
    from metak.records import StudyRecords

__all__ = [
    "DEFICIENCY_MODERATOR",
    "COMPLETE_CASE_SUFFIX",
    "PROBABILITY_PARAMETER",
    "DeficiencyInputs",
    "baseline_marker_by_study",
    "moderator_inputs",
    "complete_case_spec",
    "level_name",
    "benefit_sign",
    "level_values",
    "more_benefit_probability",
    "moderator_counts",
    "imputed_moderator_means",
    "baseline_pmol_per_l",
    "analysis_record",
]

COMPLETE_CASE_SUFFIX = "_complete_case"


@dataclass(frozen=True)
class DeficiencyInputs:
    """What the imputation sub-model needs, one entry per effect-size row of the analysis.

    ``log_ratio`` is log(baseline / reference), NaN where the study reports no baseline;
    ``group`` the population class; ``lower`` the log ratio of a recorded inclusion threshold
    (NaN where none); ``marker_pool`` the (class, log ratio) of marker-reporting studies of the
    records that are *not* rows of this analysis.
    """

    log_ratio: np.ndarray
    group: tuple[str, ...]
    lower: np.ndarray
    marker_pool: tuple[tuple[str, float], ...]

    def select(self, keep: np.ndarray) -> DeficiencyInputs:
        """The inputs of the rows where ``keep`` is True (complete-case filtering)."""
        return replace(
            self,
            log_ratio=self.log_ratio[keep],
            group=tuple(np.asarray(self.group, dtype=object)[keep]),
            lower=self.lower[keep],
        )


def baseline_marker_by_study(records: StudyRecords, marker_outcome: str) -> pd.DataFrame:
    """Baseline level of the deficiency marker per study, with how it was obtained.

    Parameters
    ----------
    records : metak.records.StudyRecords
        Validated study records.
    marker_outcome : str
        The outcome whose baseline rows in ``arms.csv`` hold the marker.

    Returns
    -------
    pandas.DataFrame
        Columns ``study_id, value, stat, origin``: ``studies.baseline_dpucmgp`` when given (whole
        sample), else the n-weighted average of the per-arm baseline means (or medians).
    """
    rows = []
    studies = records.studies
    whole = studies.get("baseline_dpucmgp")
    for _, study in studies.iterrows():
        sid = study["study_id"]
        if whole is not None and pd.notna(study.get("baseline_dpucmgp")):
            stat = study.get("baseline_dpucmgp_stat")
            rows.append((sid, float(study["baseline_dpucmgp"]), stat, "studies.csv"))
            continue
        arms = records.arms
        sel = arms[
            (arms["study_id"] == sid)
            & (arms["outcome"] == marker_outcome)
            & (arms["timepoint"] == "baseline")
        ]
        if sel.empty:
            continue
        whole_rows = sel[sel["arm"] == "all"]
        if not whole_rows.empty:
            sel = whole_rows
        values, weights, stats = [], [], set()
        for _, arm in sel.iterrows():
            if pd.notna(arm.get("mean")):
                values.append(float(arm["mean"]))
                stats.add("mean")
            elif pd.notna(arm.get("median")):
                values.append(float(arm["median"]))
                stats.add("median")
            else:
                continue
            weights.append(float(arm["n"]) if pd.notna(arm.get("n")) else 1.0)
        if values:
            value = float(np.average(values, weights=weights))
            stat = stats.pop() if len(stats) == 1 else "mixed"
            rows.append((sid, value, stat, f"arms.csv ({marker_outcome} baseline, n-weighted)"))
    return pd.DataFrame(rows, columns=["study_id", "value", "stat", "origin"])


def _group_label(studies: pd.DataFrame, column: str, sid: str) -> str:
    if column not in studies or sid not in studies.index:
        return "all" if column not in studies else "unknown"
    value = studies.at[sid, column]
    return str(value) if pd.notna(value) else "unknown"


def moderator_inputs(
    rows: pd.DataFrame, records: StudyRecords, deficiency: DeficiencySpec
) -> DeficiencyInputs:
    """The deficiency moderator of the effect-size ``rows`` of one analysis.

    Parameters
    ----------
    rows : pandas.DataFrame
        The analysis' effect-size rows (column ``study_id``).
    records : metak.records.StudyRecords
        Validated study records.
    deficiency : DeficiencySpec
        Reference, marker outcome and population column.

    Returns
    -------
    DeficiencyInputs
    """
    marker = baseline_marker_by_study(records, deficiency.marker_outcome).set_index("study_id")
    study_ids = rows["study_id"]
    # Baselines are validated > 0; studies without one are NaN here (to be imputed).
    log_ratio = np.log(study_ids.map(marker["value"]).to_numpy(dtype=float) / deficiency.reference)
    studies = records.studies.set_index("study_id")
    if deficiency.group_column in studies:
        group = tuple(
            str(g) if pd.notna(g) else "unknown"
            for g in study_ids.map(studies[deficiency.group_column])
        )
    else:
        group = tuple("all" for _ in range(len(rows)))
    lower = np.full(len(rows), np.nan)
    if "dpucmgp_inclusion_min" in studies:
        threshold = study_ids.map(studies["dpucmgp_inclusion_min"]).to_numpy(dtype=float)
        lower = np.log(threshold / deficiency.reference)
    in_rows = set(study_ids)
    pool = tuple(
        (
            _group_label(studies, deficiency.group_column, sid),
            float(np.log(value / deficiency.reference)),
        )
        for sid, value in marker["value"].items()
        if sid not in in_rows and np.isfinite(value) and value > 0
    )
    return DeficiencyInputs(log_ratio, group, lower, pool)


def complete_case_spec(spec: AnalysisSpec) -> AnalysisSpec | None:
    """The complete-case twin of an imputing deficiency analysis (reported beside it), or None."""
    if spec.deficiency is None or not spec.deficiency.impute:
        return None
    return replace(
        spec,
        name=f"{spec.name}{COMPLETE_CASE_SUFFIX}",
        deficiency=replace(spec.deficiency, impute=False),
        claims=False,
    )


def benefit_sign(direction: str | None) -> int:
    """-1 when lower values are better (a negative effect is a benefit), +1 when higher is."""
    return 1 if direction == "higher_is_better" else -1


def level_values(spec: AnalysisSpec) -> dict[str, float]:
    """Where each reported baseline level sits on the moderator's (centred log) scale.

    Returns
    -------
    dict of str to float
        ``{effect_at_<level>: log(level / reference)}`` (levels and reference in pmol/L), in the
        order of ``spec.deficiency.levels``.
    """
    deficiency = spec.deficiency
    return {
        level_name(level): float(np.log(level / deficiency.reference))
        for level in deficiency.levels
    }


def more_benefit_probability(slope_draws: np.ndarray, direction: str | None) -> float:
    """P(more deficient, more benefit) from draws of the slope on log baseline dp-ucMGP.

    Parameters
    ----------
    slope_draws : numpy.ndarray
        Posterior draws of the slope on log(baseline / reference), any shape.
    direction : str or None
        The outcome's direction of benefit (:func:`benefit_sign`): with ``lower_is_better`` (or
        none given) a negative slope is more benefit at higher baselines.

    Returns
    -------
    float
        The share of draws whose slope has the sign of benefit.
    """
    slope = np.asarray(slope_draws).reshape(-1)
    more = slope < 0 if benefit_sign(direction) < 0 else slope > 0
    return float(more.mean())


def moderator_counts(data: AnalysisData) -> dict[str, dict[str, int]]:
    """Per moderator: how many studies had a measured value and how many were imputed.

    Returns
    -------
    dict
        ``{"measured": {moderator: n}, "imputed": {moderator: n}}``, counting distinct studies.
    """
    measured, imputed = {}, {}
    for j, name in enumerate(data.moderator_names):
        missing = np.isnan(data.X_raw[:, j])
        measured[name] = len({s for s, m in zip(data.study_id, missing, strict=True) if not m})
        imputed[name] = len({s for s, m in zip(data.study_id, missing, strict=True) if m})
    return {"measured": measured, "imputed": imputed}


def imputed_moderator_means(
    data: AnalysisData, posterior: xr.Dataset, imputed: Mapping[str, int]
) -> np.ndarray | None:
    """Posterior means of imputed moderator values laid out like ``data.X`` (NaN elsewhere).

    Parameters
    ----------
    data : AnalysisData
        The analysis' data.
    posterior : xarray.Dataset
        The posterior group, holding ``log_baseline_imputed`` when anything was imputed.
    imputed : mapping of str to int
        Study id -> position in the ``log_baseline_imputed`` variable.

    Returns
    -------
    numpy.ndarray or None
        The means on the moderator's centred log scale; None when nothing was imputed.
    """
    if not imputed:
        return None
    j = data.moderator_names.index(DEFICIENCY_MODERATOR)
    means = np.asarray(posterior["log_baseline_imputed"].mean(("chain", "draw")))
    values = np.full(data.X.shape, np.nan)
    for row, sid in enumerate(data.study_id):
        if sid in imputed:
            values[row, j] = means[imputed[sid]]
    return values


def baseline_pmol_per_l(data: AnalysisData) -> np.ndarray | None:
    """Each row's measured baseline dp-ucMGP in pmol/L (NaN where imputed), or None."""
    if data.spec.deficiency is None or DEFICIENCY_MODERATOR not in data.moderator_names:
        return None
    j = data.moderator_names.index(DEFICIENCY_MODERATOR)
    return np.exp(data.X_raw[:, j]) * data.spec.deficiency.reference


def analysis_record(spec: AnalysisSpec) -> dict[str, object] | None:
    """The ``deficiency`` entry of ``analyses.json``, or None for other analyses."""
    if spec.deficiency is None:
        return None
    return {
        "reference_pmol_per_l": spec.deficiency.reference,
        "levels_pmol_per_l": list(spec.deficiency.levels),
        "imputed": spec.deficiency.impute,
        "marker_outcome": spec.deficiency.marker_outcome,
    }
