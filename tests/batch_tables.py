"""Batch tables (``metak batch`` input) built from the reference data sets and synthetic reviews.

The reference data (R metafor's data sets, tests/data/reference) are written both as batch
tables and as study-records directories, so a batch can be compared with ``fit`` on each review
alone. Numbers are written as the text of the reference files (or ``repr`` of their square
roots, as :func:`tests.bcg_records.write_contrast_records` does), so both routes read the same
doubles.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pandas as pd

from tests.bcg_records import write_contrast_records

# dataset, outcome, measure, moderator
CONTRAST_SETS = (
    ("bcg_logRR", "logRR", "logRR", "ablat"),
    ("raudenbush1985_SMD", "SMD", "GEN", "weeks"),
)
# dataset: arm-level means and SDs (treatment = group 1, control = group 2), as escalc reads them
ARM_SETS = ("escalc_normand1999",)


def _rows(reference: Path, dataset: str) -> list[dict]:
    with open(reference / f"{dataset}.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def effect_size_rows(reference: Path) -> list[dict]:
    """``yi``/``se`` rows of the contrast-level reference sets, one review per set."""
    rows = []
    for dataset, outcome, measure, moderator in CONTRAST_SETS:
        for row in _rows(reference, dataset):
            rows.append(
                {
                    "review_id": dataset,
                    "study_id": row["study"],
                    "outcome": outcome,
                    "measure": measure,
                    "yi": row["yi"],
                    "se": repr(math.sqrt(float(row["vi"]))),
                    moderator: row[moderator],
                }
            )
    return rows


def record_rows(reference: Path) -> list[dict]:
    """The same reviews as study-record rows (contrasts), plus the arm-level sets as arm rows."""
    rows = []
    for dataset, outcome, measure, moderator in CONTRAST_SETS:
        for row in _rows(reference, dataset):
            rows.append(
                {
                    "review_id": dataset,
                    "study_id": row["study"],
                    "outcome": outcome,
                    "measure": measure,
                    "estimate": row["yi"],
                    "se": repr(math.sqrt(float(row["vi"]))),
                    moderator: row[moderator],
                }
            )
    for dataset in ARM_SETS:
        for row in _rows(reference, dataset):
            for arm, suffix in (("treatment", "1"), ("control", "2")):
                rows.append(
                    {
                        "review_id": dataset,
                        "study_id": row["study"],
                        "outcome": "los",
                        "arm": arm,
                        "timepoint": "followup",
                        "n": row[f"n{suffix}i"],
                        "mean": row[f"m{suffix}i"],
                        "sd": row[f"sd{suffix}i"],
                        "unit": "days",
                    }
                )
    return rows


def write_table(rows: list[dict], path: Path) -> Path:
    """Rows as a CSV table (``.csv``) or a Parquet file (``.parquet``), every cell as text."""
    frame = pd.DataFrame(rows).fillna("").astype(str)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def write_review_records(reference: Path, dataset: str, directory: Path) -> Path:
    """One reference set as a study-records directory (for ``fit`` on that review alone)."""
    for name, outcome, measure, moderator in CONTRAST_SETS:
        if name == dataset:
            return write_contrast_records(reference, name, directory, outcome, measure, moderator)
    directory.mkdir(parents=True, exist_ok=True)
    rows = _rows(reference, dataset)
    with open(directory / "studies.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["study_id"])
        writer.writerows([[row["study"]] for row in rows])
    with open(directory / "arms.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["study_id", "outcome", "arm", "timepoint", "n", "mean", "sd", "unit"])
        for row in rows:
            for arm, suffix in (("treatment", "1"), ("control", "2")):
                writer.writerow(
                    [
                        row["study"],
                        "los",
                        arm,
                        "followup",
                        row[f"n{suffix}i"],
                        row[f"m{suffix}i"],
                        row[f"sd{suffix}i"],
                        "days",
                    ]
                )
    return directory


def synthetic_reviews(n_reviews: int, seed: int = 1, k_range=(5, 50), prefix="r") -> pd.DataFrame:
    """Random-effects reviews with planted parameters: ``yi``, ``vi`` and a moderator ``x``."""
    rng = np.random.default_rng(seed)
    frames = []
    for r in range(n_reviews):
        k = int(rng.integers(k_range[0], k_range[1] + 1))
        v = rng.uniform(0.01, 0.2, size=k)
        x = rng.normal(size=k)
        theta = rng.normal(0.2, 0.3) + 0.1 * x + rng.normal(0, 0.2, size=k)
        frames.append(
            pd.DataFrame(
                {
                    "review_id": f"{prefix}{r:05d}",
                    "study_id": [f"s{i}" for i in range(k)],
                    "yi": theta + rng.normal(0, np.sqrt(v)),
                    "vi": v,
                    "x": x,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
