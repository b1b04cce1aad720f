"""Shared helpers of the robustness tests: problems built from the reference data, brute force."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from metak.priors import parse_prior
from metak.robustness.problem import DEFAULT_PET_PRIOR_SD, Problem
from tests.conftest import REFERENCE

__all__ = ["reference_problem", "simpson", "log_normal_pdf", "log_integral", "write_change_records"]


def reference_problem(
    dataset: str = "bcg_logRR",
    moderator: str | None = None,
    tau: str = "halfnormal(1.0)",
    coef: str = "normal(0, 10)",
) -> Problem:
    """The random-effects (or meta-regression) problem of a reference data set, priors as in
    ``exact_bayes.csv``; PEESE slope prior normal(0, 5) (the data are on a unit-free scale)."""
    data = pd.read_csv(REFERENCE / f"{dataset}.csv")
    y, v = data["yi"].to_numpy(float), data["vi"].to_numpy(float)
    k = y.size
    if moderator is None:
        X, names = np.ones((k, 1)), ("mu",)
    else:
        x = data[moderator].to_numpy(float)
        X, names = np.column_stack([np.ones(k), x - x.mean()]), ("intercept", moderator)
    return Problem(
        analysis=dataset,
        effect_name=names[0],
        y=y,
        v=v,
        r_slope=np.zeros(k),
        r0=np.zeros(k),
        X=X,
        coef_names=names,
        coef_priors=tuple(parse_prior(coef) for _ in names),
        tau_prior=parse_prior(tau),
        r_prior=None,
        bias_priors={
            "pet": parse_prior(f"normal(0, {DEFAULT_PET_PRIOR_SD})"),
            "peese": parse_prior("normal(0, 5)"),
        },
        labels=tuple(data["author"].astype(str)),
        direction="lower_is_better",
    )


def simpson(n: int) -> np.ndarray:
    """Composite Simpson weights for n (odd) equally spaced points, spacing 1."""
    if n % 2 == 0:
        raise ValueError("Simpson's rule needs an odd number of points")
    w = np.ones(n)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    return w / 3.0


def log_normal_pdf(x, mean, var) -> np.ndarray:
    """Log density of Normal(mean, var), elementwise."""
    return -0.5 * (np.log(2 * np.pi * var) + (x - mean) ** 2 / var)


def log_integral(log_f: np.ndarray, log_w: np.ndarray) -> float:
    """``log sum exp(log_f + log_w)`` over every axis."""
    return float(special.logsumexp(log_f + log_w))


def write_change_records(directory, k: int = 4, seed: int = 7):
    """Arm-level baseline and follow-up means: change scores derived with an assumed pre-post
    correlation (0.5), which then enters the analysis as a parameter (``r``, beta(6, 4))."""
    import csv

    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "studies.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["study_id"])
        writer.writerows([[f"s{i}"] for i in range(k)])
    with open(directory / "outcomes.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["outcome", "direction", "measure", "prepost_r"])
        writer.writerow(["score", "lower_is_better", "MD", "0.5"])
    with open(directory / "arms.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["study_id", "outcome", "arm", "timepoint", "n", "mean", "sd", "unit"])
        for i in range(k):
            n = int(rng.integers(30, 120))
            base = 50 + 5 * rng.standard_normal()
            for arm, shift in (("treatment", -3.0), ("control", 0.0)):
                follow = base + shift + 2 * rng.standard_normal()
                writer.writerow([f"s{i}", "score", arm, "baseline", n, f"{base:.2f}", "10", "u"])
                writer.writerow([f"s{i}", "score", arm, "followup", n, f"{follow:.2f}", "11", "u"])
    return directory
