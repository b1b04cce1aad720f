"""Effect-size tables: one row per study of a review, ``yi`` with ``vi`` or ``se``.

Columns (README, "Batches of reviews"): ``review_id``; ``yi`` (the effect size); ``vi`` (its
sampling variance) or ``se`` (its standard error) — one of the two in every row; optional
``study_id`` (default: the row's position in its review), ``outcome`` (default ``effect``),
``measure`` (one of the analysis measures, default ``GEN``: already on the analysis scale),
``n_treatment`` and ``n_control`` (group sizes, which scale the default priors), ``direction``
(the outcome's direction of benefit), ``design`` and ``include`` (as in ``studies.csv``: which
studies are pooled); every other column is a study-level moderator (numeric when every filled
cell is a number).

Every cell is checked once, here, vectorised over the whole table, by the rules of the study
records (ASCII numbers, finite, variances positive and not underflowing). A row that breaks a
rule makes its review "bad input": reported with one line per problem, skipped, never fatal.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from metak.batch.reviews import ROW_COLUMNS, Reviews
from metak.batch.table import REVIEW_ID, RawTable
from metak.errors import Problem
from metak.schema import (
    ANALYSIS_MEASURES,
    DESIGNS,
    DIRECTIONS,
    IMPLICIT_DIRECTION,
    NUMBER_PATTERN,
    YES_NO,
)
from metak.spec import CENTER_MAX_ABS

__all__ = ["read_effect_sizes", "EFFECT_SIZE_COLUMNS", "DEFAULT_OUTCOME", "DEFAULT_MEASURE"]

DEFAULT_OUTCOME = "effect"
DEFAULT_MEASURE = "GEN"
EFFECT_SIZE_COLUMNS = (
    REVIEW_ID,
    "study_id",
    "outcome",
    "measure",
    "yi",
    "vi",
    "se",
    "n_treatment",
    "n_control",
    "direction",
    "design",
    "include",
)
# The smallest variance whose reciprocal (a precision) is finite, as for the study records.
_VARIANCE_MIN = np.finfo(float).tiny
_INTEGER_PATTERN = r"[+-]?[0-9]+"


class _Checks:
    """Collects problems per row; a row with any problem spoils its review."""

    def __init__(self, table: RawTable) -> None:
        self.table = table
        self.problems: dict[int, list[Problem]] = {}

    def flag(self, rows: np.ndarray, column: str, message: str, fix: str) -> None:
        for i in np.flatnonzero(rows):
            value = self.table.cells[column][i] if column in self.table.cells else None
            self.problems.setdefault(int(i), []).append(
                Problem(
                    self.table.path,
                    message,
                    row=int(self.table.lines[i]),
                    column=column,
                    value=value or None,
                    fix=fix,
                )
            )


def _numbers(text: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(values, is_number)``: NaN where a cell is empty or no ASCII number."""
    series = pd.Series(text, dtype=object)
    ok = series.str.fullmatch(NUMBER_PATTERN).fillna(False).to_numpy(dtype=bool)
    values = np.full(len(text), np.nan)
    if ok.any():
        values[ok] = np.asarray(text[ok], dtype=float)
    return values, ok


def _number_column(checks: _Checks, name: str, required: bool) -> np.ndarray:
    text = checks.table.cells[name]
    values, ok = _numbers(text)
    empty = text == ""
    if required:
        checks.flag(empty, name, "empty, but every row needs it", f"fill in {name}")
    checks.flag(
        ~ok & ~empty,
        name,
        "not a number",
        "write a plain number such as 0.25 (ASCII digits, '.' as decimal point)",
    )
    bad = ok & ~np.isfinite(values)
    checks.flag(bad, name, "not a finite number", "check the number")
    values[bad] = np.nan
    return values


def _variances(checks: _Checks) -> tuple[np.ndarray, np.ndarray]:
    """``(vi, given)``: the variance of each row, from ``vi`` or ``se``, and which was given."""
    cells = checks.table.cells
    n = len(checks.table)
    has_vi, has_se = "vi" in cells, "se" in cells
    if not (has_vi or has_se):
        raise checks.table.problem(
            "neither a vi nor an se column", "add vi (sampling variance) or se (standard error)"
        )
    vi = _number_column(checks, "vi", required=False) if has_vi else np.full(n, np.nan)
    se = _number_column(checks, "se", required=False) if has_se else np.full(n, np.nan)
    vi_text = cells["vi"] != "" if has_vi else np.zeros(n, bool)
    se_text = cells["se"] != "" if has_se else np.zeros(n, bool)
    neither = ~vi_text & ~se_text
    both = vi_text & se_text
    column = "vi" if has_vi else "se"
    checks.flag(neither, column, "no vi and no se", "give the sampling variance or the SE")
    checks.flag(both, "se", "both vi and se given", "give one of them (vi = se²)")
    checks.flag(vi_text & (vi <= 0), "vi", "must be > 0", "check the variance")
    checks.flag(se_text & (se <= 0), "se", "must be > 0", "check the standard error")
    # vi = se * se, as metak.derive computes it from a contrast's SE (bit for bit the same).
    with np.errstate(over="ignore"):
        from_se = np.where(se_text & ~both, se * se, np.nan)
    variance = np.where(vi_text & ~both, vi, from_se)
    tiny = np.isfinite(variance) & (variance > 0) & (variance < _VARIANCE_MIN)
    with np.errstate(over="ignore"):
        huge = se_text & ~both & np.isfinite(se) & ~np.isfinite(se * se)
    checks.flag(tiny & vi_text, "vi", "underflows: below 2.2e-308", "check the variance's units")
    checks.flag(tiny & se_text, "se", "its square underflows to 0", "check the SE's units")
    checks.flag(huge, "se", "its square overflows", "check the SE's units")
    return variance, np.where(se_text & ~vi_text, "se", "vi")


def _sizes(checks: _Checks, name: str) -> np.ndarray:
    if name not in checks.table.cells:
        return np.full(len(checks.table), np.nan)
    values = _number_column(checks, name, required=False)
    text = checks.table.cells[name]
    whole = pd.Series(text, dtype=object).str.fullmatch(_INTEGER_PATTERN).fillna(False)
    bad = np.isfinite(values) & (~whole.to_numpy(dtype=bool) | (values < 2))
    checks.flag(bad, name, "must be a whole number >= 2", "give the number of participants")
    return np.where(bad, np.nan, values)


def _text_column(checks: _Checks, name: str, default: str | None) -> np.ndarray:
    cells = checks.table.cells
    if name not in cells:
        return np.full(len(checks.table), default, dtype=object)
    text = cells[name]
    if default is None:
        checks.flag(text == "", name, "empty", f"fill in {name}")
        return text
    return np.where(text == "", default, text).astype(object)


def _enum_column(checks: _Checks, name: str, allowed: tuple[str, ...]) -> np.ndarray:
    """Text that must be one of ``allowed`` where filled (None where empty)."""
    if name not in checks.table.cells:
        return np.full(len(checks.table), IMPLICIT_DIRECTION if name == "direction" else None)
    text = checks.table.cells[name]
    bad = (text != "") & ~np.isin(text, allowed)
    checks.flag(bad, name, f"not allowed; allowed: {', '.join(allowed)}", "use an allowed value")
    if name == "direction":
        return np.where(text == "", IMPLICIT_DIRECTION, text).astype(object)
    return np.where(text == "", None, text).astype(object)


def _moderators(checks: _Checks) -> dict[str, tuple[str, np.ndarray]]:
    """Every other column: ``name -> (kind, values)`` (floats with NaN, or text with None)."""
    found = {}
    for name in checks.table.columns:
        if name in EFFECT_SIZE_COLUMNS:
            continue
        text = checks.table.cells[name]
        values, ok = _numbers(text)
        filled = text != ""
        if filled.any() and ok[filled].all():
            bad = ~np.isfinite(values) | (np.abs(values) > CENTER_MAX_ABS)
            bad &= filled
            checks.flag(
                bad,
                name,
                f"moderator values must be finite and of magnitude at most {CENTER_MAX_ABS:g}",
                "rescale the moderator (e.g. in thousands)",
            )
            found[name] = ("numeric", np.where(bad, np.nan, values))
        else:
            found[name] = ("categorical", np.where(filled, text, None).astype(object))
    return found


def _duplicates(checks: _Checks, review: np.ndarray, study: np.ndarray, outcome: np.ndarray):
    frame = pd.DataFrame({"r": review, "s": study, "o": outcome})
    repeated = frame.duplicated(keep="first").to_numpy()
    checks.flag(
        repeated,
        "study_id",
        "this study already has an effect size of this outcome in this review",
        "give each study one row per outcome (or distinct study_id values)",
    )


def _measures(checks: _Checks, review, outcome, measure) -> None:
    frame = pd.DataFrame({"r": review, "o": outcome, "m": measure})
    unknown = ~np.isin(measure, ANALYSIS_MEASURES)
    checks.flag(
        unknown,
        "measure",
        f"not a known measure; allowed: {', '.join(ANALYSIS_MEASURES)}",
        "use GEN for an effect size already on the scale to pool",
    )
    mixed = frame.groupby(["r", "o"])["m"].transform("nunique").to_numpy() > 1
    checks.flag(
        mixed & ~unknown,
        "measure",
        "one outcome of a review mixes measures",
        "give one measure per outcome, or name the outcomes apart",
    )


def read_effect_sizes(table: RawTable) -> Reviews:
    """Check an effect-size table and group its rows by review.

    Returns
    -------
    Reviews
        The rows of the reviews without problems, and every problem by review.

    Raises
    ------
    metak.errors.InputError
        When the table has neither ``vi`` nor ``se``.
    """
    checks = _Checks(table)
    review = _text_column(checks, REVIEW_ID, default=None)
    order = tuple(dict.fromkeys(review[review != ""]))
    yi = _number_column(checks, "yi", required=True)
    vi, given = _variances(checks)
    outcome = _text_column(checks, "outcome", DEFAULT_OUTCOME)
    measure = _text_column(checks, "measure", DEFAULT_MEASURE)
    if "study_id" in table.cells:
        study = _text_column(checks, "study_id", default=None)
    else:
        # The position of the row within its review: 1, 2, ...
        position = pd.Series(review).groupby(review).cumcount().to_numpy() + 1
        study = position.astype(str).astype(object)
    _duplicates(checks, review, study, outcome)
    _measures(checks, review, outcome, measure)
    n_t, n_c = _sizes(checks, "n_treatment"), _sizes(checks, "n_control")
    direction = _enum_column(checks, "direction", (*DIRECTIONS, IMPLICIT_DIRECTION))
    study_flags = {
        name: _enum_column(checks, name, allowed)
        for name, allowed in (("design", DESIGNS), ("include", YES_NO))
        if name in table.cells
    }
    moderators = _moderators(checks)
    bad_rows = np.zeros(len(table), dtype=bool)
    bad_rows[list(checks.problems)] = True
    problems: dict[str, list] = {}
    for i in sorted(checks.problems):
        key = review[i] if review[i] != "" else f"(no review_id, line {table.lines[i]})"
        problems.setdefault(key, []).extend(checks.problems[i])
    bad_reviews = np.isin(review, list(problems)) | bad_rows
    keep = ~bad_reviews
    rows = pd.DataFrame(
        {
            REVIEW_ID: review[keep],
            "study_id": study[keep],
            "outcome": outcome[keep],
            "comparison": np.full(int(keep.sum()), None, dtype=object),
            "measure": measure[keep],
            "yi": yi[keep],
            "vi": vi[keep],
            "vi_conversion": 0.0,
            "prepost_r": np.nan,
            "dvi_dr": np.nan,
            "n_treatment": n_t[keep],
            "n_control": n_c[keep],
            "derivation": np.where(given[keep] == "se", "given yi and se", "given yi and vi"),
            "converted": False,
            "line": table.lines[keep],
            "direction": direction[keep],
        },
        columns=[REVIEW_ID, *ROW_COLUMNS],
    )
    for name, values in study_flags.items():
        rows[name] = values[keep]
    for name, (_, values) in moderators.items():
        rows[name] = values[keep]
    rank = {rid: i for i, rid in enumerate(order)}
    rows = rows.iloc[np.argsort(rows[REVIEW_ID].map(rank).to_numpy(), kind="stable")]
    counts = pd.Series(review).value_counts().to_dict()
    return Reviews(
        path=table.path,
        kind="effect sizes",
        order=_all_ids(order, problems),
        rows=rows.reset_index(drop=True),
        moderators={name: kind for name, (kind, _) in moderators.items()},
        problems={key: tuple(value) for key, value in problems.items()},
        input_rows={key: int(counts.get(key, 1)) for key in _all_ids(order, problems)},
    )


def _all_ids(order: tuple[str, ...], problems: dict) -> tuple[str, ...]:
    """Review ids in input order, then rows without a review id (each its own entry)."""
    return order + tuple(key for key in problems if key not in set(order))
