"""The checked rows of every review of a batch, whichever kind of table they came from.

Both input kinds — effect sizes (:mod:`metak.batch.effect_sizes`) and study records
(:mod:`metak.batch.records_input`) — end here: one table of effect-size rows with the columns of
:data:`metak.derive.EFFECT_COLUMNS` that the fit reads, a ``review_id`` and the moderators, for
the reviews whose rows passed every check, plus one-line problems for the reviews that did not.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from metak.batch.table import REVIEW_ID

__all__ = ["Reviews", "ROW_COLUMNS", "first_problems"]

# The effect-size columns a review's fit reads (metak.derive's names), beside review_id and
# the moderator columns.
ROW_COLUMNS = (
    "study_id",
    "outcome",
    "comparison",
    "measure",
    "yi",
    "vi",
    "vi_conversion",
    "prepost_r",
    "dvi_dr",
    "n_treatment",
    "n_control",
    "derivation",
    "converted",
    "line",
    "direction",
)
# Problems of one review shown in its status line; the rest are counted.
_SHOWN = 1


def first_problems(problems: Iterable[object]) -> str:
    """One status line for a review's problems: the first in full, the others counted."""
    problems = [str(p) for p in problems]
    text = "; ".join(problems[:_SHOWN])
    extra = len(problems) - _SHOWN
    if extra > 0:
        text += f" (and {extra} more problem{'s' if extra > 1 else ''} in this review)"
    return text


@dataclass(frozen=True)
class Reviews:
    """Every review of a batch: order, checked rows, problems.

    ``rows`` holds the effect-size rows of the reviews without problems, grouped by review in
    ``order`` (input order within a review), with each row's outcome ``direction`` and, where the
    table has them, its study's ``design`` and ``include``. ``moderators`` maps each moderator
    column to ``"numeric"`` or ``"categorical"``. ``notes`` holds, per review, the rows that gave
    no effect size (not an error: as ``fit``, such rows are left out and said so).
    """

    path: Path
    kind: str  # "effect sizes" | "study records"
    order: tuple[str, ...]
    rows: pd.DataFrame
    moderators: dict[str, str]
    problems: dict[str, tuple[str, ...]]
    input_rows: dict[str, int]
    notes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def slices(self) -> dict[str, tuple[int, int]]:
        """``review_id -> (start, stop)``: the positions of each good review's rows."""
        ids = self.rows[REVIEW_ID].to_numpy()
        if not len(ids):
            return {}
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        stops = np.r_[starts[1:], len(ids)]
        return {ids[a]: (int(a), int(b)) for a, b in zip(starts, stops, strict=True)}

    def subset(self, review_ids: Iterable[str]) -> Reviews:
        """The same batch restricted to ``review_ids`` (a chunk), in that order."""
        wanted = list(review_ids)
        ids = set(wanted)
        rows = self.rows[self.rows[REVIEW_ID].isin(ids)].reset_index(drop=True)
        return replace(
            self,
            order=tuple(wanted),
            rows=rows,
            problems={key: value for key, value in self.problems.items() if key in ids},
            notes={key: value for key, value in self.notes.items() if key in ids},
            input_rows={key: self.input_rows.get(key, 0) for key in wanted},
        )

    @property
    def outcomes(self) -> list[str]:
        """The outcomes the good reviews report, in order of first appearance."""
        return list(dict.fromkeys(self.rows["outcome"])) if len(self.rows) else []
