"""Synthetic study records with planted parameters, written as a user's contrast-level data."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np


def _write(path: Path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def write_records(directory: Path, studies, contrasts, study_columns) -> Path:
    """Write a records directory.

    studies: list of dicts (study_id + study_columns); contrasts: (study, outcome, estimate, se).
    """
    directory.mkdir(parents=True, exist_ok=True)
    _write(
        directory / "studies.csv",
        ["study_id", *study_columns],
        [
            [s["study_id"], *("" if s.get(c) is None else s[c] for c in study_columns)]
            for s in studies
        ],
    )
    _write(
        directory / "contrasts.csv",
        ["study_id", "outcome", "measure", "estimate", "se"],
        [
            [sid, outcome, "MD", repr(float(y)), repr(float(se))]
            for sid, outcome, y, se in contrasts
        ],
    )
    return directory


_ARMS_HEADER = ["study_id", "outcome", "arm", "timepoint", "n", "mean", "sd", "se", "median", "q1"]
_ARMS_HEADER += ["q3", "unit", "source", "quote"]


def write_arm_records(directory: Path, k: int, seed: int = 1) -> Path:
    """``k`` two-arm trials as a user's arm-level records: four arms.csv rows per trial.

    Treatment and control, each at baseline and at follow-up (mean and SD) or with a change
    from baseline (mean and SE, every fifth trial); every fifth other trial reports medians with
    quartiles. Every row carries a source and a quote holding each of its numbers, so validation
    checks provenance as it does for real records. The planted effect is -0.3 on outcome ``y``.
    """
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    _write(directory / "studies.csv", ["study_id"], [[f"t{i}"] for i in range(k)])
    _write(
        directory / "outcomes.csv",
        ["outcome", "unit", "direction", "measure"],
        [["y", "mg/L", "lower_is_better", "MD"]],
    )
    rows = []
    for i in range(k):
        for arm, shift in (("treatment", -0.3), ("control", 0.0)):
            n = int(rng.integers(10, 200))
            base = 10 + rng.normal()
            follow = base + shift + rng.normal(0, 0.5)
            for timepoint in ("baseline", "change" if i % 5 == 1 else "followup"):
                cells = dict.fromkeys(_ARMS_HEADER, "")
                cells.update(study_id=f"t{i}", outcome="y", arm=arm, timepoint=timepoint, n=str(n))
                cells.update(unit="mg/L", source=f"PMID:{10_000_000 + i}")
                spread = rng.uniform(1, 3)
                if timepoint == "change":
                    cells.update(mean=f"{follow - base:.2f}", se=f"{spread / n**0.5:.3f}")
                    quote = f"change {cells['mean']} (SE {cells['se']}), n = {n}"
                elif i % 5 == 4:
                    value = base if timepoint == "baseline" else follow
                    cells.update(median=f"{value:.2f}", q1=f"{value - 0.67 * spread:.2f}")
                    cells.update(q3=f"{value + 0.67 * spread:.2f}")
                    quote = (
                        f"n = {n}: median {cells['median']} (IQR {cells['q1']} to {cells['q3']})"
                    )
                else:
                    value = base if timepoint == "baseline" else follow
                    cells.update(mean=f"{value:.2f}", sd=f"{spread:.2f}")
                    quote = f"n = {n}: {cells['mean']} ± {cells['sd']}"
                cells["quote"] = quote
                rows.append([cells[c] for c in _ARMS_HEADER])
    _write(directory / "arms.csv", _ARMS_HEADER, rows)
    return directory


def outlier_records(directory: Path, seed=11, k=24, mu=0.3, tau=0.1, se=0.2, outliers=(3.0, 3.5)):
    """Random-effects data with two gross outliers; the planted pooled effect is ``mu``."""
    rng = np.random.default_rng(seed)
    theta = mu + tau * rng.standard_normal(k)
    y = theta + se * rng.standard_normal(k)
    rows = [(f"s{i:02d}", "y", yi, se) for i, yi in enumerate(y)]
    rows += [(f"out{j}", "y", value, se) for j, value in enumerate(outliers)]
    studies = [{"study_id": sid} for sid, *_ in rows]
    return write_records(directory, studies, rows, [])


def deficiency_records(
    directory: Path, seed=5, k=30, missing_every=3, slope=-0.8, intercept=-0.2, tau=0.05, se=0.1
):
    """Trials whose effect depends on log(baseline dp-ucMGP / 500); every third baseline missing.

    Population classes differ in baseline level, so the imputation sub-model can learn it.
    Returns the directory and a dict of the planted values.
    """
    rng = np.random.default_rng(seed)
    classes = {
        "general": np.log(350 / 500),
        "CKD": np.log(900 / 500),
        "dialysis": np.log(2500 / 500),
    }
    names = list(classes)
    studies, contrasts, truth = [], [], {}
    for i in range(k):
        population = names[i % len(names)]
        x = classes[population] + 0.25 * rng.standard_normal()
        theta = intercept + slope * x + tau * rng.standard_normal()
        sid = f"t{i:02d}"
        truth[sid] = x
        measured = (i % missing_every) != 0
        studies.append(
            {
                "study_id": sid,
                "population": population,
                "baseline_dpucmgp": repr(float(500 * np.exp(x))) if measured else None,
                "baseline_dpucmgp_stat": "mean" if measured else None,
            }
        )
        contrasts.append((sid, "cac", theta + se * rng.standard_normal(), se))
    write_records(
        directory, studies, contrasts, ["population", "baseline_dpucmgp", "baseline_dpucmgp_stat"]
    )
    return directory, {"slope": slope, "intercept": intercept, "log_baseline": truth}


def joint_records(
    directory: Path, seed=3, k=40, corr=0.8, tau=(1.0, 0.5), mu=(-1.0, -0.3), se=(0.2, 0.1)
):
    """Two outcomes (biomarker ``bio``, clinical ``clin``) with correlated true study effects."""
    rng = np.random.default_rng(seed)
    cov = np.array([[tau[0] ** 2, corr * tau[0] * tau[1]], [corr * tau[0] * tau[1], tau[1] ** 2]])
    theta = rng.multivariate_normal(mu, cov, size=k)
    contrasts = []
    for i in range(k):
        for j, outcome in enumerate(("bio", "clin")):
            contrasts.append(
                (f"j{i:02d}", outcome, theta[i, j] + se[j] * rng.standard_normal(), se[j])
            )
    studies = [{"study_id": f"j{i:02d}"} for i in range(k)]
    write_records(directory, studies, contrasts, [])
    return directory, {"corr": corr, "gamma": corr * tau[1] / tau[0], "mu": mu, "tau": tau}


def selected_records(
    directory: Path,
    seed=3,
    k=60,
    mu=0.0,
    tau=0.1,
    weights=(1.0, 0.5, 0.2),
    cutpoints=(0.025, 0.05),
    se_range=(0.1, 0.4),
):
    """Published studies under step-function selection on the one-sided ("greater") p-value.

    Candidate studies are drawn from the random-effects model (``theta ~ N(mu, tau)``, standard
    errors uniform on ``se_range``) and each is published with the probability ``weights[j]`` of
    its p-value interval ``(c_{j-1}, c_j]``, until ``k`` are published. The p-value is computed
    here with scipy, independently of metak's selection model. Returns the directory and the
    planted values.
    """
    from scipy.stats import norm

    rng = np.random.default_rng(seed)
    edges = np.append(np.asarray(cutpoints, dtype=float), 1.0)
    rows, drawn = [], 0
    while len(rows) < k:
        se = rng.uniform(*se_range)
        y = mu + tau * rng.standard_normal() + se * rng.standard_normal()
        drawn += 1
        p = norm.sf(y / se)
        interval = int(np.flatnonzero(p <= edges)[0])
        if rng.uniform() < weights[interval]:
            rows.append((f"s{len(rows):02d}", "y", y, se))
    write_records(directory, [{"study_id": sid} for sid, *_ in rows], rows, [])
    return directory, {"mu": mu, "tau": tau, "weights": tuple(weights), "drawn": drawn}
