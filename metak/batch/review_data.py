"""One review's rows -> the :class:`~metak.fitting.data.AnalysisData` of each analysis.

The same selection and shaping as :func:`metak.fitting.data.build_analysis_data` — the rows of
the analysis' outcome (and measure), moderators numeric or dummy-coded against their most
frequent level, centred by the analysis' rule, complete cases, row labels — on the rows of one
review that the batch has already checked. Why not call that function: it works on a whole
:class:`~metak.records.StudyRecords` and costs about 5 ms of pandas per call, as much as the
exact fit itself; a batch of 10,000 reviews would spend most of its time there. A test builds
both from the same rows and requires identical arrays.

Batches fit random-effects, robust and meta-regression analyses of between-group effects
(:func:`check_batch_specs`): joint models, analyses of one arm and the deficiency moderator need
the study records' own tables.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import pandas as pd

from metak.batch.reviews import Reviews
from metak.errors import ConfigError
from metak.fitting.data import (
    DEFAULT_DESIGNS,
    AnalysisData,
    moderator_center,
    note_complete_case,
)
from metak.spec import AnalysisSpec

__all__ = ["review_analysis_data", "check_batch_specs", "NoRowsError", "BATCH_MODELS"]

BATCH_MODELS = ("random_effects", "robust", "meta_regression")


class NoRowsError(ConfigError):
    """The review has no effect size the analysis pools (not an error of the review's rows)."""


def check_batch_specs(specs: Sequence[AnalysisSpec], reviews: Reviews, config_name: str) -> None:
    """Refuse analyses a batch cannot fit, before any work.

    Raises
    ------
    ConfigError
        One line naming the analysis, what is not possible and the fix.
    """
    for spec in specs:
        where = f"error: {config_name}: analysis {spec.name!r}"
        if spec.model not in BATCH_MODELS or spec.arm is not None or spec.deficiency is not None:
            raise ConfigError(
                f"{where}: a batch fits {', '.join(BATCH_MODELS)} analyses of between-group "
                "effects; joint models, analyses of one arm and the deficiency moderator need "
                "study-record directories; fix: run them with `python -m metak fit`"
            )
        for moderator in spec.moderators:
            if moderator not in reviews.moderators:
                known = ", ".join(sorted(reviews.moderators)) or "none"
                raise ConfigError(
                    f"{where}: moderator {moderator!r} is not a column of {reviews.path.name} "
                    f"(moderator columns: {known}); fix: add the column or drop the moderator"
                )


def _moderators(rows: pd.DataFrame, spec: AnalysisSpec, kinds: dict, notes: list):
    names, columns = [], []
    for moderator in spec.moderators:
        values = rows[moderator]
        if kinds[moderator] == "numeric":
            names.append(moderator)
            columns.append(values.to_numpy(dtype=float))
            continue
        present = values.dropna().astype(str)
        levels = sorted(set(present))
        if len(levels) < 2:
            raise ConfigError(
                f"analysis {spec.name!r}: categorical moderator {moderator!r} has fewer than "
                "two levels in this review; fix: drop it from moderators"
            )
        counts = Counter(present)
        reference = sorted(levels, key=lambda level: (-counts[level], level))[0]
        notes.append(f"{moderator}: categorical, reference level {reference!r}")
        text = values.astype(object).to_numpy()
        missing = values.isna().to_numpy()
        for level in levels:
            if level != reference:
                names.append(f"{moderator}[{level}]")
                same = np.array([str(v) == level for v in text], dtype=float)
                columns.append(np.where(missing, np.nan, same))
    X = np.column_stack(columns) if columns else np.zeros((len(rows), 0))
    return names, X


def _pooled(rows: pd.DataFrame, spec: AnalysisSpec, excluded: dict, recorded: bool) -> np.ndarray:
    """Rows whose study is pooled (``include``, ``design``), as metak.fitting.data decides.

    ``recorded``: the review records designs (then only RCTs are pooled by default).
    """
    keep = np.ones(len(rows), dtype=bool)
    designs = spec.designs
    if designs is None and recorded:
        designs = DEFAULT_DESIGNS
    include = rows["include"] if "include" in rows else None
    design = rows["design"] if "design" in rows else None
    reasons = rows["exclusion_reason"] if "exclusion_reason" in rows else None
    for i, sid in enumerate(rows["study_id"]):
        reason = None
        if include is not None and not spec.include_excluded and include.iloc[i] == "no":
            given = reasons.iloc[i] if reasons is not None else None
            reason = f"include = no ({given or 'no reason given'})"
        elif designs is not None and design is not None and pd.notna(design.iloc[i]):
            if design.iloc[i] not in designs:
                reason = f"design {design.iloc[i]} not in {', '.join(designs)}"
        if reason:
            excluded[sid] = reason
            keep[i] = False
    return keep


def _labels(rows: pd.DataFrame) -> tuple[str, ...]:
    studies = [str(sid) for sid in rows["study_id"].to_numpy()]
    outcomes = [str(outcome) for outcome in rows["outcome"].to_numpy()]
    repeated = Counter(zip(studies, outcomes, strict=True))
    if len(repeated) == len(studies):
        return tuple(studies)  # one row per study and outcome: the study id is the label
    labels = []
    comparisons = rows["comparison"].to_numpy()
    for sid, outcome, comparison in zip(studies, outcomes, comparisons, strict=True):
        label = sid
        if repeated[(sid, outcome)] > 1 and isinstance(comparison, str) and comparison:
            label += f" ({comparison})"
        labels.append(label)
    return tuple(labels)


def review_analysis_data(rows: pd.DataFrame, spec: AnalysisSpec, reviews: Reviews) -> AnalysisData:
    """The data of analysis ``spec`` on one review's checked rows.

    Raises
    ------
    NoRowsError
        When the review has no effect size of the analysis' outcome (and measure).
    ConfigError
        When a categorical moderator has fewer than two levels in the review, or no study has
        every moderator.
    """
    outcomes = rows["outcome"].to_numpy()
    directions = dict(zip(outcomes, rows["direction"].to_numpy(), strict=True))
    keep = outcomes == spec.outcome
    if spec.measure is not None:
        keep &= rows["measure"].to_numpy() == spec.measure
    recorded = "design" in rows and rows["design"].notna().any()
    # Filtering copies the frame: only when some row goes (a review of one outcome keeps all).
    rows = rows if keep.all() else rows[keep]
    excluded: dict = {}
    if "design" in rows or "include" in rows or spec.designs is not None:
        pooled = _pooled(rows, spec, excluded, recorded)
        rows = rows if pooled.all() else rows[pooled]
    if rows.empty:
        measure = f" on measure {spec.measure}" if spec.measure else ""
        pooled = " that is pooled (design/include)" if excluded else ""
        raise NoRowsError(
            f"analysis {spec.name!r} not fitted: no effect size of outcome {spec.outcome!r}"
            f"{measure}{pooled} in this review"
        )
    notes: list[str] = []
    names, X_raw = _moderators(rows, spec, reviews.moderators, notes)
    centers = [moderator_center(spec, name, X_raw[:, j]) for j, name in enumerate(names)]
    X = X_raw - np.asarray(centers) if names else X_raw.copy()
    missing = np.isnan(X).any(axis=1) if names else np.zeros(len(rows), bool)
    if missing.any():
        note_complete_case(rows, missing, notes, excluded)
        rows = rows[~missing]
        X, X_raw = X[~missing], X_raw[~missing]
    if rows.empty:
        raise ConfigError(
            f"analysis {spec.name!r}: no study has every moderator; fix: drop a moderator"
        )
    rows = rows.reset_index(drop=True)
    k = len(rows)
    return AnalysisData(
        spec=spec,
        effects=rows,
        y=rows["yi"].to_numpy(dtype=float),
        v=rows["vi"].to_numpy(dtype=float),
        v_conversion=np.nan_to_num(rows["vi_conversion"].to_numpy(dtype=float), nan=0.0),
        dvi_dr=rows["dvi_dr"].to_numpy(dtype=float)
        if spec.prepost_r_uncertain
        else np.full(k, np.nan),
        r_assumed=rows["prepost_r"].to_numpy(dtype=float),
        row_label=_labels(rows),
        study_id=tuple(str(sid) for sid in rows["study_id"].to_numpy()),
        outcome=tuple(str(outcome) for outcome in rows["outcome"].to_numpy()),
        moderator_names=tuple(names),
        X=X if names else None,
        X_raw=X_raw if names else None,
        centers=tuple(centers),
        excluded=excluded,
        notes=tuple(notes),
        directions=directions,
        outcome_meta={
            outcome: {"description": None, "unit": None, "family": None} for outcome in directions
        },
    )
