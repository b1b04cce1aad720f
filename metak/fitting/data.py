"""Turn the effects table and study records into the arrays one analysis fits.

This is where an :class:`~metak.spec.AnalysisSpec` meets the data: which rows enter (outcome,
design, include flag), what the moderator matrix is (centring, dummy coding, the built-in
deficiency moderator from :mod:`metak.fitting.deficiency`), and which moderator values are
missing and must be imputed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from metak.derive import compute_arm_effects
from metak.errors import ConfigError
from metak.fitting.deficiency import DEFICIENCY_MODERATOR, DeficiencyInputs, moderator_inputs
from metak.spec import CENTER_MAX_ABS, AnalysisSpec

if TYPE_CHECKING:
    from metak.records import StudyRecords

__all__ = ["AnalysisData", "build_analysis_data"]

# Designs pooled by default when the study table records a design: single-arm and
# non-randomised studies are kept in the records but left out of pooled estimates.
DEFAULT_DESIGNS = ("RCT",)


@dataclass(frozen=True)
class AnalysisData:
    """Arrays for one analysis, one entry per effect-size row (a study comparison).

    ``X`` holds the *centred* moderator values (NaN where missing), ``X_raw`` the values before
    centring, ``centers`` what was subtracted. ``row_label`` is unique per row: the study id, with
    the comparison appended for multi-arm studies.
    """

    spec: AnalysisSpec
    effects: pd.DataFrame
    y: np.ndarray
    v: np.ndarray
    v_conversion: np.ndarray
    dvi_dr: np.ndarray
    r_assumed: np.ndarray
    row_label: tuple[str, ...]
    study_id: tuple[str, ...]
    outcome: tuple[str, ...]
    moderator_names: tuple[str, ...] = ()
    X: np.ndarray | None = None
    X_raw: np.ndarray | None = None
    centers: tuple[float, ...] = ()
    # The deficiency moderator's imputation inputs (deficiency analyses only).
    deficiency: DeficiencyInputs | None = None
    excluded: dict[str, str] = field(default_factory=dict)  # study_id -> reason
    notes: tuple[str, ...] = ()
    directions: dict[str, str] = field(default_factory=dict)  # outcome -> direction of benefit
    # outcome -> {"description", "unit", "family"} (None where outcomes.csv gives none)
    outcome_meta: dict[str, dict[str, str | None]] = field(default_factory=dict)

    @property
    def direction(self) -> str:
        """Direction of benefit of the (single) outcome.

        ``lower_is_better``, ``higher_is_better`` or ``unspecified``.
        """
        values = {self.directions.get(outcome, "unspecified") for outcome in self.outcome}
        return values.pop() if len(values) == 1 else "unspecified"

    @property
    def k(self) -> int:
        """The number of effect-size rows."""
        return len(self.y)

    @property
    def n_studies(self) -> int:
        """The number of distinct studies (a multi-arm study has several rows)."""
        return len(set(self.study_id))

    @property
    def missing_mask(self) -> np.ndarray:
        """(k, number of moderators) booleans: True where a moderator value is missing."""
        if self.X is None:
            return np.zeros((self.k, 0), dtype=bool)
        return np.isnan(self.X)

    @property
    def needs_imputation(self) -> bool:
        """True when a moderator value is missing (left only for in-model imputation)."""
        return bool(self.missing_mask.any())

    @property
    def has_uncertain_r(self) -> bool:
        """True when some row's variance depends on an uncertain pre-post correlation."""
        return bool(np.isfinite(self.dvi_dr).any())


def _select_rows(
    effects: pd.DataFrame, records: StudyRecords, spec: AnalysisSpec
) -> tuple[pd.DataFrame, dict[str, str]]:
    targets = spec.outcomes if spec.model == "joint" else (spec.outcome,)
    known = set(records.outcomes["outcome"])
    for target in targets:
        if target not in known:
            raise ConfigError(
                f"analysis {spec.name!r}: outcome {target!r} is not in the study records; "
                f"fix: use one of {', '.join(sorted(known))}"
            )
    rows = effects[effects["outcome"].isin(targets)].copy()
    if spec.measure is not None:
        rows = rows[rows["measure"] == spec.measure]
    studies = records.studies.set_index("study_id")
    excluded = {}
    keep = []
    designs = spec.designs
    if designs is None and "design" in studies and studies["design"].notna().any():
        designs = DEFAULT_DESIGNS
    # One dict lookup per row (a pandas .loc per row costs ~0.1 ms: seconds for 10,000 studies).
    by_id = {sid: row for sid, row in zip(studies.index, studies.to_dict("records"), strict=True)}
    for sid in rows["study_id"]:
        study = by_id.get(sid)
        reason = None
        if (
            study is not None
            and not spec.include_excluded
            and str(study.get("include") or "yes") == "no"
        ):
            reason = f"include = no ({study.get('exclusion_reason') or 'no reason given'})"
        elif (
            designs is not None
            and study is not None
            and pd.notna(study.get("design"))
            and study["design"] not in designs
        ):
            reason = f"design {study['design']} not in {', '.join(designs)}"
        if reason:
            excluded[sid] = reason
        keep.append(reason is None)
    rows = rows[np.asarray(keep, dtype=bool)] if len(rows) else rows
    return rows.reset_index(drop=True), excluded


def _row_labels(rows: pd.DataFrame, joint: bool) -> tuple[str, ...]:
    """Study id per row, made unique.

    The comparison is appended where a study has several rows of one outcome (multi-arm), the
    outcome in joint analyses. Linear in the number of rows.
    """
    studies = [str(sid) for sid in rows["study_id"]]
    outcomes = [str(outcome) for outcome in rows["outcome"]]
    comparisons = list(rows["comparison"]) if "comparison" in rows else [None] * len(rows)
    repeated = Counter(zip(studies, outcomes, strict=True))
    labels = []
    for sid, outcome, comparison in zip(studies, outcomes, comparisons, strict=True):
        label = sid
        if repeated[(sid, outcome)] > 1 and isinstance(comparison, str) and comparison:
            label += f" ({comparison})"
        if joint:
            label += f" [{outcome}]"
        labels.append(label)
    return tuple(labels)


def _moderator_columns(
    rows: pd.DataFrame, records: StudyRecords, spec: AnalysisSpec, notes: list[str]
) -> tuple[list[str], np.ndarray]:
    """Raw moderator matrix (NaN = missing) with dummy coding for categorical columns."""
    studies = records.studies.set_index("study_id")
    names, columns = [], []
    for moderator in spec.moderators:
        if moderator not in records.studies.columns:
            raise ConfigError(
                f"analysis {spec.name!r}: moderator {moderator!r} is not a column of studies.csv; "
                f"fix: use one of {', '.join(sorted(records.moderators))}"
            )
        kind = records.moderators.get(moderator, "categorical")
        values = rows["study_id"].map(studies[moderator])
        if kind == "numeric":
            names.append(moderator)
            columns.append(pd.to_numeric(values, errors="coerce").to_numpy(dtype=float))
            continue
        levels = sorted({str(v) for v in values.dropna()})
        if len(levels) < 2:
            raise ConfigError(
                f"analysis {spec.name!r}: categorical moderator {moderator!r} has fewer than "
                "two levels "
                "among the included studies; fix: drop it from moderators"
            )
        counts = values.dropna().astype(str).value_counts()
        reference = sorted(levels, key=lambda level: (-counts[level], level))[0]
        notes.append(f"{moderator}: categorical, reference level {reference!r}")
        for level in levels:
            if level == reference:
                continue
            names.append(f"{moderator}[{level}]")
            column = np.where(values.isna(), np.nan, (values.astype(str) == level).astype(float))
            columns.append(column)
    X = np.column_stack(columns) if columns else np.zeros((len(rows), 0))
    return names, X


def moderator_center(spec: AnalysisSpec, name: str, column: np.ndarray) -> float:
    """What is subtracted from a moderator column (its centring rule; see README).

    Parameters
    ----------
    spec : AnalysisSpec
        The analysis, whose ``center`` holds the rules.
    name : str
        The design column: a moderator, a categorical level ``name[level]`` or the deficiency
        moderator.
    column : numpy.ndarray
        The column's values (NaN where missing).

    Returns
    -------
    float
    """
    if name == DEFICIENCY_MODERATOR:
        return 0.0  # already centred: log(baseline / reference)
    if "[" in name:
        return 0.0  # dummy columns stay 0/1 so slopes are level differences
    base = name.split("[")[0]
    rule = spec.center.get(base, spec.center.get("*", "mean"))
    if rule == "mean":
        return float(np.nanmean(column)) if np.isfinite(column).any() else 0.0
    if rule == "none":
        return 0.0
    return float(rule)


def note_complete_case(
    rows: pd.DataFrame, missing: np.ndarray, notes: list[str], excluded: dict[str, str]
) -> None:
    """Record the studies a complete-case analysis drops: a note, and each study's reason.

    Parameters
    ----------
    rows : pandas.DataFrame
        The analysis' effect-size rows (with ``study_id``).
    missing : numpy.ndarray
        Boolean per row: a moderator value is missing.
    notes : list of str
        Receives one note naming the dropped studies.
    excluded : dict
        Receives ``{study_id: reason}`` for each dropped study.
    """
    dropped = sorted(set(rows.loc[missing, "study_id"]))
    notes.append(
        f"complete-case: dropped {len(dropped)} studies with a missing moderator: "
        f"{', '.join(dropped)}"
    )
    for sid in dropped:
        excluded[sid] = "moderator value missing (complete-case analysis)"


def _check_magnitude(spec: AnalysisSpec, names: list[str], X: np.ndarray) -> None:
    """Refuse moderator values so large that their mean or the fit's cross-products overflow."""
    for j, name in enumerate(names):
        column = X[:, j]
        finite = column[np.isfinite(column)]
        if finite.size and np.max(np.abs(finite)) > CENTER_MAX_ABS:
            raise ConfigError(
                f"analysis {spec.name!r}: moderator {name!r} has values of magnitude "
                f"{np.max(np.abs(finite)):.3g}; metak needs at most {CENTER_MAX_ABS:g}; "
                "fix: rescale the moderator (e.g. in thousands)"
            )


def _outcome_meta(records: StudyRecords) -> dict[str, dict[str, str | None]]:
    """Each outcome's description, unit and family as outcomes.csv declares them (else None)."""
    meta = {}
    for row in records.outcomes.to_dict("records"):
        meta[row["outcome"]] = {
            key: (row.get(key) if isinstance(row.get(key), str) and row.get(key) else None)
            for key in ("description", "unit", "family")
        }
    return meta


def build_analysis_data(
    effects: pd.DataFrame, records: StudyRecords, spec: AnalysisSpec
) -> AnalysisData:
    """Select and shape the rows of one analysis.

    An analysis of one arm (``spec.arm``) pools within-arm effects instead: they are computed
    here from ``records`` (:func:`metak.derive.compute_arm_effects`) and ``effects`` is not used.

    Parameters
    ----------
    effects : pandas.DataFrame
        The effects table of :func:`metak.derive.compute_effects`.
    records : metak.records.StudyRecords
        The validated study records (moderators, design and include flags, outcomes).
    spec : AnalysisSpec
        The analysis.

    Returns
    -------
    AnalysisData

    Raises
    ------
    ConfigError
        When no row is usable, a moderator is unknown or unusable, or no study has every moderator.
    """
    if spec.arm is not None:
        effects = compute_arm_effects(records, spec.arm, spec.measure).effects
    rows, excluded = _select_rows(effects, records, spec)
    notes: list[str] = []
    if rows.empty:
        what = f" ({spec.arm} arms, {spec.measure})" if spec.arm is not None else ""
        raise ConfigError(
            f"analysis {spec.name!r}: no usable effect sizes for {spec.outcome or spec.outcomes}"
            f"{what} after applying design/include filters; "
            "fix: check the outcome name and `python -m metak effects`"
        )
    names, X_raw = _moderator_columns(rows, records, spec, notes)
    deficiency = None
    if spec.deficiency is not None:
        deficiency = moderator_inputs(rows, records, spec.deficiency)
        column = deficiency.log_ratio
        X_raw = np.column_stack([X_raw, column]) if X_raw.size else column[:, None]
        names.append(DEFICIENCY_MODERATOR)
    _check_magnitude(spec, names, X_raw)
    centers = [moderator_center(spec, name, X_raw[:, j]) for j, name in enumerate(names)]
    X = X_raw - np.asarray(centers) if names else X_raw.copy()
    imputable = np.zeros(len(names), dtype=bool)
    if spec.deficiency is not None and spec.deficiency.impute:
        imputable[names.index(DEFICIENCY_MODERATOR)] = True  # imputed in the model
    missing = np.isnan(X[:, ~imputable]).any(axis=1) if names else np.zeros(len(rows), bool)
    if missing.any():
        note_complete_case(rows, missing, notes, excluded)
        keep = ~missing
        rows = rows[keep].reset_index(drop=True)
        X, X_raw = X[keep], X_raw[keep]
        deficiency = deficiency.select(keep) if deficiency is not None else None
    if rows.empty:
        raise ConfigError(
            f"analysis {spec.name!r}: no study has every moderator; fix: drop a moderator"
        )
    has = lambda col: col in rows.columns  # noqa: E731 - tiny local predicate
    n = len(rows)
    return AnalysisData(
        spec=spec,
        effects=rows,
        y=rows["yi"].to_numpy(dtype=float),
        v=rows["vi"].to_numpy(dtype=float),
        v_conversion=rows["vi_conversion"].fillna(0.0).to_numpy(dtype=float)
        if has("vi_conversion")
        else np.zeros(n),
        dvi_dr=rows["dvi_dr"].to_numpy(dtype=float)
        if has("dvi_dr") and spec.prepost_r_uncertain
        else np.full(n, np.nan),
        r_assumed=rows["prepost_r"].to_numpy(dtype=float)
        if has("prepost_r")
        else np.full(n, np.nan),
        row_label=_row_labels(rows, spec.model == "joint"),
        study_id=tuple(rows["study_id"].astype(str)),
        outcome=tuple(rows["outcome"].astype(str)),
        moderator_names=tuple(names),
        X=X if names else None,
        X_raw=X_raw if names else None,
        centers=tuple(centers),
        deficiency=deficiency,
        excluded=excluded,
        notes=tuple(notes),
        directions=dict(
            zip(records.outcomes["outcome"], records.outcomes["direction"], strict=True)
        ),
        outcome_meta=_outcome_meta(records),
    )
