"""Batch tables in the study-record schema: arm and contrast rows of many reviews in one table.

Columns (README, "Batches of reviews"): ``review_id``, ``study_id`` and ``outcome``; a row with an
``arm`` is an arm row (the columns of ``arms.csv``), a row with an ``estimate`` a contrast row (the
columns of ``contrasts.csv``, ``measure`` being the contrast's); the columns of ``studies.csv`` and
any other column (a moderator) describe the row's study, and must agree between its rows;
``outcome_measure`` (the outcome's analysis measure, ``outcomes.csv``'s ``measure``),
``direction``, ``prepost_r``, ``family`` and ``description`` describe the row's outcome.

The rows are checked by the records layer itself (:func:`metak.records.load_records`) — every
cell rule, row rule and provenance rule of a study-records directory, with the same messages —
and their effect sizes computed by :func:`metak.derive.compute_effects`, once for the whole
table: the table is written as *one* records directory in a temporary folder (each review's
studies and outcomes under ids of their own), and every problem is mapped back to the table's
file, line and cell. A review with a problem is set aside and the rest loaded again.
"""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from metak import schema
from metak.batch.reviews import ROW_COLUMNS, Reviews
from metak.batch.table import REVIEW_ID, RawTable
from metak.derive import compute_effects
from metak.errors import InputError, Problem
from metak.records import load_records

__all__ = ["read_records_table", "OUTCOME_COLUMNS"]

# Outcome-level columns of the table -> their outcomes.csv names.
OUTCOME_COLUMNS = {
    "outcome_measure": "measure",
    "direction": "direction",
    "prepost_r": "prepost_r",
    "family": "family",
    "description": "description",
}
_ROW_SHARED = ("study_id", "outcome", "source", "quote", "secondary", "notes")
_ARM_ONLY = tuple(c for c in schema.ARMS.names if c not in schema.CONTRASTS.names)
_CONTRAST_ONLY = tuple(c for c in schema.CONTRASTS.names if c not in schema.ARMS.names)
# Rounds of "load, set the bad reviews aside, load the rest": one per kind of problem that can
# only show once the others are gone (cell problems, then effect-size arithmetic).
_ROUNDS = 3


class _Layout:
    """How the table's rows become the files of one records directory, and back."""

    def __init__(self, table: RawTable, keep: np.ndarray) -> None:
        cells = table.cells
        self.table = table
        columns = set(table.columns)
        review = cells[REVIEW_ID]
        self.rows = np.flatnonzero(keep)
        self.review_index = {rid: i for i, rid in enumerate(dict.fromkeys(review[self.rows]))}
        self.study_key = np.array(
            [
                f"r{self.review_index.get(r, -1)}:{s}"
                for r, s in zip(review, cells["study_id"], strict=True)
            ],
            dtype=object,
        )
        self.outcome_key = np.array(
            [
                f"r{self.review_index.get(r, -1)}:{o}"
                for r, o in zip(review, cells.get("outcome", np.full(len(review), "")), strict=True)
            ],
            dtype=object,
        )
        arm_text = cells["arm"] if "arm" in columns else np.full(len(review), "")
        estimate = cells["estimate"] if "estimate" in columns else np.full(len(review), "")
        self.arm_rows = self.rows[arm_text[self.rows] != ""]
        self.contrast_rows = self.rows[estimate[self.rows] != ""]
        known = set(schema.ARMS.names) | set(schema.CONTRASTS.names) | set(OUTCOME_COLUMNS)
        self.arm_columns = [c for c in schema.ARMS.names if c in columns]
        self.contrast_columns = [c for c in schema.CONTRASTS.names if c in columns]
        self.study_columns = ["study_id"] + [
            c for c in table.columns if c not in known and c not in _ROW_SHARED and c != REVIEW_ID
        ]
        self.outcome_columns = [c for c in OUTCOME_COLUMNS if c in columns]
        self.lines: dict[str, list[int]] = {}

    def _write(self, path: Path, header: list[str], records: list[list[str]], lines: list[int]):
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(records)
        self.lines[path.name] = [1, *lines]  # temporary line -> table line (header -> 1)

    def _cells(self, i: int, columns: list[str]) -> list[str]:
        out = []
        for column in columns:
            if column == "study_id":
                out.append(self.study_key[i])
            elif column == "outcome":
                out.append(self.outcome_key[i])
            else:
                out.append(self.table.cells[column][i])
        return out

    def _grouped(self, keys: np.ndarray, columns: list[str]) -> tuple[list, list, list]:
        """One record per key (first row's cells, the first filled value of each column)."""
        records, lines, conflicts = {}, {}, []
        for i in self.rows:
            key = keys[i]
            values = self._cells(i, columns)
            if key not in records:
                records[key], lines[key] = values, int(self.table.lines[i])
                continue
            for j, (old, new) in enumerate(zip(records[key], values, strict=True)):
                if new and not old:
                    records[key][j] = new
                elif new and old and new != old:
                    conflicts.append((i, columns[j], lines[key]))
        return list(records.values()), list(lines.values()), conflicts

    def write(self, folder: Path) -> list[tuple[int, str, int]]:
        """Write the records files; returns the study/outcome cells that disagree."""
        studies, lines, conflicts = self._grouped(self.study_key, self.study_columns)
        self._write(folder / schema.STUDIES.name, self.study_columns, studies, lines)
        if self.arm_columns and len(self.arm_rows):
            self._write(
                folder / schema.ARMS.name,
                self.arm_columns,
                [self._cells(i, self.arm_columns) for i in self.arm_rows],
                [int(self.table.lines[i]) for i in self.arm_rows],
            )
        if self.contrast_columns and len(self.contrast_rows):
            self._write(
                folder / schema.CONTRASTS.name,
                self.contrast_columns,
                [self._cells(i, self.contrast_columns) for i in self.contrast_rows],
                [int(self.table.lines[i]) for i in self.contrast_rows],
            )
        if self.outcome_columns:
            wanted = ["outcome", *self.outcome_columns]
            outcomes, lines, more = self._grouped(self.outcome_key, wanted)
            header = ["outcome", *(OUTCOME_COLUMNS[c] for c in self.outcome_columns)]
            self._write(folder / schema.OUTCOMES.name, header, outcomes, lines)
            conflicts += more
        return conflicts

    def table_line(self, problem: Problem) -> int | None:
        lines = self.lines.get(Path(problem.file).name)
        if lines is None or problem.row is None or not 0 < problem.row <= len(lines):
            return None
        return lines[problem.row - 1]


def _review_of_line(table: RawTable) -> dict[int, str]:
    return dict(zip(table.lines.tolist(), table.cells[REVIEW_ID].tolist(), strict=True))


def _mapped(layout: _Layout, problem: Problem, by_line: dict) -> tuple[str | None, Problem]:
    """``(review_id or None, the problem pointing at the table)``."""
    line = layout.table_line(problem)
    value = problem.value
    if isinstance(value, str) and problem.column in ("study_id", "outcome"):
        value = value.split(":", 1)[-1]
    column = problem.column
    if column == "measure" and Path(problem.file).name == schema.OUTCOMES.name:
        column = "outcome_measure"
    mapped = Problem(
        layout.table.path, problem.message, row=line, column=column, value=value, fix=problem.fix
    )
    return (by_line.get(line) if line is not None else None), mapped


def _check_required(table: RawTable) -> None:
    missing = [c for c in ("study_id", "outcome") if c not in table.columns]
    if missing or not ({"arm", "estimate"} & set(table.columns)):
        raise table.problem(
            "neither yi (effect sizes) nor the columns of study records "
            "(study_id, outcome, and arm or estimate)",
            "give yi with vi or se, or the arms.csv/contrasts.csv columns (README, Batches)",
        )


def _effect_problems(err: InputError, layout: _Layout, by_line: dict):
    """Numeric faults of compute_effects name cells as ``arms.csv:12``; map those too."""
    found = []
    for problem in err.problems:
        review, mapped = _mapped(layout, problem, by_line)
        found.append((review, mapped))
    return found


def read_records_table(table: RawTable) -> Reviews:
    """Check a table of study-record rows and compute every review's effect sizes.

    Raises
    ------
    metak.errors.InputError
        For a problem that belongs to no review (the table as a whole).
    """
    _check_required(table)
    by_line = _review_of_line(table)
    review = table.cells[REVIEW_ID]
    order = tuple(dict.fromkeys(review[review != ""]))
    problems: dict[str, list[Problem]] = {}
    for i in np.flatnonzero(review == ""):
        key = f"(no review_id, line {table.lines[i]})"
        problems[key] = [
            Problem(
                table.path,
                "empty",
                row=int(table.lines[i]),
                column=REVIEW_ID,
                fix="name the meta-analysis the row belongs to",
            )
        ]
    for _ in range(_ROUNDS):
        keep = (review != "") & ~np.isin(review, list(problems))
        layout = _Layout(table, keep)
        with tempfile.TemporaryDirectory(prefix="metak-batch-records-") as folder:
            conflicts = layout.write(Path(folder))
            for i, column, first in conflicts:
                problems.setdefault(review[i], []).append(
                    Problem(
                        table.path,
                        f"differs from the value of this study or outcome on line {first}",
                        row=int(table.lines[i]),
                        column=column,
                        value=table.cells[column][i] or None,
                        fix="give one value per study (or outcome) in a review",
                    )
                )
            if conflicts:
                continue
            try:
                records = load_records(Path(folder), provenance="auto")
                effects = compute_effects(records)
            except InputError as err:
                found = _effect_problems(err, layout, by_line)
                unplaced = [p for r, p in found if r is None]
                if unplaced:
                    raise InputError(unplaced) from None
                for rid, problem in found:
                    problems.setdefault(rid, []).append(problem)
                continue
        return _reviews(table, layout, records, effects, order, problems)
    raise InputError(
        Problem(table.path, "problems kept appearing", fix="validate the reviews one by one")
    )


def _reviews(table, layout, records, effects, order, problems) -> Reviews:
    """The checked reviews' effect rows, with review_id, original ids and moderators."""
    frame = effects.effects
    keys = {f"r{i}": rid for rid, i in layout.review_index.items()}
    review_of = frame["study_id"].map(lambda s: keys[s.split(":", 1)[0]])
    studies = records.studies.set_index("study_id")
    moderators = {
        name: kind for name, kind in records.moderators.items() if name in studies.columns
    }
    outcome_info = records.outcomes.set_index("outcome")
    rows = pd.DataFrame({REVIEW_ID: review_of.to_numpy()})
    for column in ROW_COLUMNS:
        rows[column] = frame[column].to_numpy() if column in frame else np.nan
    rows["line"] = np.nan  # effect rows may come from several table lines
    rows["study_id"] = frame["study_id"].str.split(":", n=1).str[1].to_numpy()
    rows["outcome"] = frame["outcome"].str.split(":", n=1).str[1].to_numpy()
    rows["direction"] = frame["outcome"].map(outcome_info["direction"]).to_numpy()
    for column in ("design", "include", "exclusion_reason"):
        if column in studies:
            rows[column] = frame["study_id"].map(studies[column]).to_numpy()
    for name in moderators:
        rows[name] = frame["study_id"].map(studies[name]).to_numpy()
    rank = {rid: i for i, rid in enumerate(order)}
    rows = rows.iloc[np.argsort(rows[REVIEW_ID].map(rank).to_numpy(), kind="stable")]
    counts = pd.Series(table.cells[REVIEW_ID]).value_counts().to_dict()
    ids = order + tuple(key for key in problems if key not in set(order))
    unusable = effects.unusable
    notes: dict[str, list[str]] = {}
    for sid, outcome, reason in zip(
        unusable["study_id"], unusable["outcome"], unusable["reason"], strict=True
    ):
        rid = keys[str(sid).split(":", 1)[0]]
        notes.setdefault(rid, []).append(
            f"{str(sid).split(':', 1)[1]} / {str(outcome).split(':', 1)[1]}: no effect size "
            f"({reason})"
        )
    return Reviews(
        path=table.path,
        kind="study records",
        order=ids,
        rows=rows.reset_index(drop=True),
        moderators=moderators,
        problems={key: tuple(value) for key, value in problems.items()},
        input_rows={key: int(counts.get(key, 1)) for key in ids},
        warnings=(
            ("provenance not checked for rows without source and quote columns",)
            if records.warnings
            else ()
        ),
        notes={key: tuple(value) for key, value in notes.items()},
    )
