"""Write the reference data sets (bcg, raudenbush1985) as contrast-level study records."""

from __future__ import annotations

import csv
import math
from pathlib import Path

CONFIG_TEMPLATE = """
[[analysis]]
name = "{name}_re"
outcome = "{outcome}"
model = "random_effects"
[analysis.priors]
mu = "normal(0, 10)"
tau = "{tau}"

[[analysis]]
name = "{name}_mr"
outcome = "{outcome}"
model = "meta_regression"
moderators = ["{moderator}"]
[analysis.priors]
intercept = "normal(0, 10)"
slope = "normal(0, 10)"
tau = "{tau}"
"""


def write_contrast_records(
    reference: Path,
    dataset: str,
    directory: Path,
    outcome: str,
    measure: str,
    moderator: str,
    study_prefix: str = "",
) -> Path:
    """Write studies.csv (with the moderator) and contrasts.csv (estimate, se) for a dataset."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(reference / f"{dataset}.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    with open(directory / "studies.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["study_id", "author", "year", moderator])
        for row in rows:
            writer.writerow(
                [f"{study_prefix}{row['study']}", row["author"], row["year"], row[moderator]]
            )
    with open(directory / "contrasts.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["study_id", "outcome", "measure", "estimate", "se"])
        for row in rows:
            se = math.sqrt(float(row["vi"]))
            writer.writerow(
                [f"{study_prefix}{row['study']}", outcome, measure, row["yi"], repr(se)]
            )
    return directory
