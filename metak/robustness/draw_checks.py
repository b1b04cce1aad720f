"""The checks of an analysis without an exact marginal likelihood (robust, imputing, joint).

Only what its posterior draws can honestly give: leave-one-out posteriors by PSIS importance
weighting (Pareto k above ``good_k`` marks a study whose check cannot be trusted), power-scaling
prior sensitivity, and no Bayes factor (``bayes_factors.csv`` says why) and no PET/PEESE (they
need the exact path). Claim statements on any summary parameter are re-judged with the same
weights.
"""

from __future__ import annotations

import math

import numpy as np

from metak.fitting.result import AnalysisResult
from metak.robustness.assessment import Assessment, ClaimChecks, robustness_row, shift_sd
from metak.robustness.bayes_factors import unavailable_rows
from metak.robustness.effect import answer_direction, answer_from_draws
from metak.robustness.psis import psis, psis_left_out
from metak.robustness.selection import SelectionFit, add_selection
from metak.robustness.sensitivity import (
    POWER_SCALING_GOOD_K,
    power_scaling_rows,
    psense_rows,
)
from metak.robustness.verdicts import Check

__all__ = ["assess_draws", "targets"]


def targets(result: AnalysisResult) -> list[tuple[str, str, str]]:
    """``(summary parameter, posterior variable selector, direction)`` of the pooled effects."""
    spec, data = result.spec, result.data
    if spec.model == "joint":
        return [(f"mu[{o}]", o, data.directions.get(o, "unspecified")) for o in spec.outcomes]
    parameter = "intercept" if spec.model == "meta_regression" else "mu"
    return [(parameter, "", answer_direction(spec, data.direction))]


def assess_draws(
    result: AnalysisResult, reason: str, statements: dict, selection: SelectionFit | None = None
) -> Assessment:
    """Run the switched-on draw-based checks of one MCMC analysis.

    Parameters
    ----------
    result : metak.fitting.result.AnalysisResult
        The analysis as fitted (its diagnostics gate passed).
    reason : str
        Why it has no exact marginal likelihood (for the files).
    statements : dict
        ``{claim key: Statement}`` of the claims on this analysis.
    selection : metak.robustness.selection.SelectionFit, optional
        Its selection model, when asked for.

    Returns
    -------
    Assessment
    """
    switches = result.spec.robustness
    name = result.spec.name
    out = Assessment(name)
    if switches.bayes_factors:
        out.bayes_factors.extend(unavailable_rows(name, reason))
    missing_all = {"bias": f"PET/PEESE need an exact marginal likelihood ({reason})"}
    claims = {}
    holds = {}
    for key, statement in statements.items():
        draws = result.draws(statement.parameter)
        if draws is None:
            claims[key] = ClaimChecks(
                statement, math.nan, not_assessable=f"no parameter {statement.parameter!r}"
            )
            continue
        holds[key] = statement.holds(np.asarray(draws, dtype=float))
        claims[key] = ClaimChecks(statement, float(np.mean(holds[key])))
        claims[key].missing.update(missing_all)
    tree_psis = None
    if switches.leave_one_out:
        tree_psis = psis(result.datatree)
        out.loo.extend(tree_psis.rows(name))
        out.psis[name] = tree_psis.elpd_data
        for key, values in holds.items():
            for i, study in enumerate(tree_psis.studies):
                k = tree_psis.pareto_k[i]
                label = f"leaving out {study}"
                if k > tree_psis.good_k:
                    claims[key].add("leave-one-out", label, None, f"Pareto k {k:.2f}")
                    continue
                log_w = tree_psis.log_weights[i]
                w = np.exp(log_w - log_w.max())
                claims[key].add("leave-one-out", label, float(w @ values / w.sum()))
    for parameter, outcome, direction in targets(result):
        draws = result.draws(parameter)
        base = answer_from_draws(draws, None, direction)
        checks: list[Check] = []
        missing = dict(missing_all)
        extra: dict = {}
        if selection is not None and not outcome:
            add_selection(out, selection, parameter, direction, checks, extra, claims)
        if tree_psis is not None:
            shifts = []
            for study, answer, k in psis_left_out(tree_psis, draws, direction):
                trusted = k <= tree_psis.good_k
                out.leave_one_out.append(
                    {
                        "analysis": name,
                        "parameter": parameter,
                        "left_out": study,
                        "mu_mean": answer.mean,
                        "mu_sd": answer.sd,
                        "mu_q2.5": answer.q025,
                        "mu_q97.5": answer.q975,
                        "p_benefit": answer.p_benefit,
                        "verdict": answer.verdict,
                        "shift_sd": shift_sd(answer, base),
                        "flips": answer.verdict != base.verdict,
                        "pareto_k": k,
                        "method": "psis",
                    }
                )
                checks.append(
                    Check(
                        "leave-one-out",
                        f"leaving out {study}",
                        answer.verdict if trusted else None,
                        f"P = {answer.p_benefit:.3f}" if trusted else f"Pareto k {k:.2f}",
                    )
                )
                if trusted:
                    shifts.append((abs(shift_sd(answer, base)), study))
            if shifts:
                size, label = max(shifts)
                extra |= {"most_influential": label, "max_shift_sd": size}
        else:
            missing["leave-one-out"] = "switched off (robustness.leave_one_out = false)"
        if switches.prior_sensitivity:
            sensitivity = psense_rows(result, "mu")
            sensitivity = [r for r in sensitivity if not outcome or outcome in r["parameter"]]
            out.psense.extend(sensitivity)
            if sensitivity:
                extra["psense_diagnosis"] = sensitivity[0]["diagnosis"]
            rows, probabilities = power_scaling_rows(
                result, parameter, direction, base.verdict, list(holds.items())
            )
            out.prior_sensitivity.extend(rows)
            for row in rows:
                trusted = row["pareto_k"] <= POWER_SCALING_GOOD_K
                checks.append(
                    Check(
                        "prior",
                        row["prior_set"],
                        row["verdict"] if trusted else None,
                        f"P = {row['p_benefit']:.3f}"
                        if trusted
                        else f"Pareto k {row['pareto_k']:.2f}",
                    )
                )
            if outcome == "" or outcome == targets(result)[0][1]:
                for label, values in probabilities.items():
                    k = next(r["pareto_k"] for r in rows if r["prior_set"] == label)
                    for key, p in values.items():
                        claims[key].add(
                            "prior", label, p if k <= 0.7 else None, f"Pareto k {k:.2f}"
                        )
        else:
            missing["prior"] = "switched off (robustness.prior_sensitivity = false)"
        out.robustness.append(robustness_row(name, parameter, "mcmc", base, checks, missing, extra))
    for key in holds:
        if not switches.leave_one_out:
            claims[key].missing["leave-one-out"] = "switched off"
        if not switches.prior_sensitivity:
            claims[key].missing["prior"] = "switched off"
    out.claims = claims
    return out
