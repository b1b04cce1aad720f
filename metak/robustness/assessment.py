"""What the checks of one analysis produce: table rows, derived analyses and claim labels."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from metak.claims import verdict_for
from metak.robustness.effect import Answer
from metak.robustness.verdicts import Check, label_for

__all__ = ["Assessment", "ClaimChecks", "robustness_row", "shift_sd"]


@dataclass
class ClaimChecks:
    """One claim's statement re-judged by each check: the base probability and the checks."""

    statement: object  # metak.claims.Statement
    probability: float
    checks: list[Check] = field(default_factory=list)
    missing: dict = field(default_factory=dict)
    not_assessable: str = ""  # why the claim cannot be checked at all

    def add(self, family: str, name: str, probability: float | None, note: str = "") -> None:
        """Add the statement's probability under one check (None: the check has no verdict)."""
        if probability is None or not math.isfinite(probability):
            self.checks.append(Check(family, name, None, note or "no probability"))
        else:
            self.checks.append(
                Check(family, name, verdict_for(probability), f"P = {probability:.3f}")
            )

    def label(self) -> tuple[str, str]:
        """``(robustness, robustness_detail)`` of the claim."""
        if self.not_assessable:
            return "not assessable", self.not_assessable
        return label_for(verdict_for(self.probability), self.checks, self.missing)


@dataclass
class Assessment:
    """Everything the checks of one analysis produced (rows of each results table)."""

    analysis: str
    derived: list = field(default_factory=list)  # AnalysisResult of <name>_pet, _peese, ...
    bayes_factors: list = field(default_factory=list)
    model_averaging: list = field(default_factory=list)
    leave_one_out: list = field(default_factory=list)
    loo: list = field(default_factory=list)
    prior_sensitivity: list = field(default_factory=list)
    psense: list = field(default_factory=list)
    robustness: list = field(default_factory=list)
    claims: dict = field(default_factory=dict)  # claim key -> ClaimChecks
    psis: dict = field(default_factory=dict)  # analysis name -> arviz-stats ELPDData


def shift_sd(answer: Answer, base: Answer) -> float:
    """How far a check moves the pooled effect, in posterior SDs of the analysis as fitted."""
    return (answer.mean - base.mean) / base.sd if base.sd > 0 else math.nan


def robustness_row(
    analysis: str,
    parameter: str,
    method: str,
    base: Answer,
    checks: list[Check],
    missing: dict,
    extra: dict,
) -> dict:
    """One ``robustness.csv`` row: the answer, its checks' summary and the label."""
    label, detail = label_for(base.verdict, checks, missing)
    loo_flips = [
        c.name.removeprefix("leaving out ")
        for c in checks
        if c.family == "leave-one-out" and c.verdict is not None and c.verdict != base.verdict
    ]
    prior_flips = [
        c.name
        for c in checks
        if c.family == "prior" and c.verdict is not None and c.verdict != base.verdict
    ]
    row = {
        "analysis": analysis,
        "parameter": parameter,
        "method": method,
        "mean": base.mean,
        "q2.5": base.q025,
        "q97.5": base.q975,
        "p_benefit": base.p_benefit,
        "verdict": base.verdict,
        "loo_flips": "; ".join(loo_flips),
        "prior_flips": "; ".join(prior_flips),
        "sensitive_to_prior": bool(prior_flips),
        "label": label,
        "detail": detail,
    }
    row.update(extra)
    return row
