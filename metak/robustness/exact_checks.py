"""The checks of an analysis with an exact marginal likelihood (``exact`` / ``exact_r``).

Bayes factors, the 12-model ensemble, PET and PEESE, exact leave-one-out and the alternative
priors, all from exact fits of the analysis' variants (:mod:`metak.robustness.problem`), and the
claim statements on its coefficients re-judged under each.
"""

from __future__ import annotations

import math

from metak.fitting.result import AnalysisResult
from metak.robustness.assessment import Assessment, ClaimChecks, robustness_row, shift_sd
from metak.robustness.averaging import average, averaging_rows, inclusion_rows
from metak.robustness.bayes_factors import bayes_factor_rows, bf10
from metak.robustness.bias import bias_analysis, identified
from metak.robustness.effect import answer_from_mixture
from metak.robustness.leave_one_out import leave_one_out
from metak.robustness.problem import BASE, Fits, Problem, Variant
from metak.robustness.psis import exact_psis
from metak.robustness.selection import SelectionFit, add_selection
from metak.robustness.sensitivity import exact_rows
from metak.robustness.verdicts import Check
from metak.spec import Settings

__all__ = ["assess_exact"]


def _loo_row(problem: Problem, left, base_answer, method: str) -> dict:
    answer = left.answer
    return {
        "analysis": problem.analysis,
        "parameter": problem.effect_name,
        "left_out": left.label,
        "mu_mean": answer.mean,
        "mu_sd": answer.sd,
        "mu_q2.5": answer.q025,
        "mu_q97.5": answer.q975,
        "p_benefit": answer.p_benefit,
        "verdict": answer.verdict,
        "shift_sd": shift_sd(answer, base_answer),
        "flips": answer.verdict != base_answer.verdict,
        "pareto_k": math.nan,
        "method": method,
    }


def assess_exact(
    result: AnalysisResult,
    problem: Problem,
    settings: Settings,
    seed: int,
    statements: dict,
    selection: SelectionFit | None = None,
    posterior: bool = True,
) -> Assessment:
    """Run the switched-on checks of one exact analysis.

    Parameters
    ----------
    result : metak.fitting.result.AnalysisResult
        The analysis as fitted.
    problem : Problem
        Its exact problem.
    settings : metak.spec.Settings
        Draws stored for the derived analyses.
    seed : int
        Seed of the derived analyses' stored draws.
    statements : dict
        ``{claim key: Statement}`` of the claims on this analysis.
    selection : metak.robustness.selection.SelectionFit, optional
        The selection model of this analysis, when it was asked for.
    posterior : bool
        Give the derived PET/PEESE analyses draws and posterior trees (``False``: their summary
        rows only, see :func:`~metak.robustness.bias.bias_analysis`).

    Returns
    -------
    Assessment
    """
    switches = result.spec.robustness
    out = Assessment(problem.analysis)
    fits = Fits(problem)
    base_fit = fits(BASE)
    name = problem.effect_name
    base = answer_from_mixture(base_fit.coef(name), problem.direction)
    checks: list[Check] = []
    missing: dict[str, str] = {}
    extra = {}
    claims = {}
    for key, statement in statements.items():
        if statement.parameter not in problem.coef_names:
            claims[key] = ClaimChecks(
                statement,
                math.nan,
                not_assessable=(
                    f"the robustness checks re-judge the model's coefficients "
                    f"({', '.join(problem.coef_names)}), not {statement.parameter}"
                ),
            )
        else:
            probability = base_fit.prob(statement.parameter, *_args(statement))
            claims[key] = ClaimChecks(statement, probability)
    coefficient_claims = {k: s for k, s in statements.items() if not claims[k].not_assessable}

    if switches.bayes_factors:
        out.bayes_factors.extend(bayes_factor_rows(fits, with_bias=switches.bias))
        effect = fits(Variant(effect=False)).log_marginal_likelihood
        log_bf = base_fit.log_marginal_likelihood - effect
        extra |= {"log_bf10_effect": log_bf, "bf10_effect": bf10(log_bf)}
    if switches.averaging:
        averaged = average(fits)
        out.model_averaging.extend(averaging_rows(averaged))
        out.bayes_factors.extend(inclusion_rows(averaged))
        extra |= {"averaged_mean": averaged.mean, "p_effect": 1.0 - averaged.spike}

    if switches.bias:
        for kind in ("pet", "peese"):
            fitted = bias_analysis(result, problem, fits, kind, settings, seed, posterior)
            if fitted.result is not None:
                out.derived.append(fitted.result)
            model = fits(Variant(bias=kind))
            answer = answer_from_mixture(model.coef(name), problem.direction)
            extra |= {
                f"{kind}_mean": answer.mean,
                f"{kind}_p_benefit": answer.p_benefit,
                f"{kind}_verdict": answer.verdict,
            }
            usable = identified(problem)
            why = f"k = {problem.k}: not identified"
            checks.append(
                Check(
                    "bias",
                    kind.upper(),
                    answer.verdict if usable else None,
                    f"P = {answer.p_benefit:.3f}" if usable else why,
                )
            )
            for key, statement in coefficient_claims.items():
                p = model.prob(statement.parameter, *_args(statement)) if usable else None
                claims[key].add("bias", kind.upper(), p, why)
    else:
        missing["bias"] = "switched off (robustness.bias = false)"
    if selection is not None:
        add_selection(out, selection, name, problem.direction, checks, extra, claims)

    if switches.leave_one_out:
        names = sorted({name} | {s.parameter for s in coefficient_claims.values()})
        left = leave_one_out(problem, base_fit, names)
        if not left:
            missing["leave-one-out"] = "one study: nothing to leave out"
            for key in coefficient_claims:
                claims[key].missing["leave-one-out"] = "one study: nothing to leave out"
        shifts = []
        for item in left:
            out.leave_one_out.append(_loo_row(problem, item, base, problem.method))
            checks.append(
                Check(
                    "leave-one-out",
                    f"leaving out {item.label}",
                    item.answer.verdict,
                    f"P = {item.answer.p_benefit:.3f}",
                )
            )
            shifts.append((abs(shift_sd(item.answer, base)), item.label))
            for key, statement in coefficient_claims.items():
                p = item.coefs[statement.parameter].prob(*_args(statement))
                claims[key].add("leave-one-out", f"leaving out {item.label}", p)
        if shifts:
            size, label = max(shifts)
            extra |= {"most_influential": label, "max_shift_sd": size}
        if left:  # PSIS-LOO needs something to leave out too
            tree_psis = exact_psis(problem, base_fit, seed)
            out.loo.extend(tree_psis.rows(problem.analysis, [item.elpd for item in left]))
            out.psis[problem.analysis] = tree_psis.elpd_data
    else:
        missing["leave-one-out"] = "switched off (robustness.leave_one_out = false)"

    if switches.prior_sensitivity:
        null_fit = fits(Variant(effect=False))
        tuples = [(k, s.parameter, s.op, s.low, s.high) for k, s in coefficient_claims.items()]
        rows, probabilities = exact_rows(problem, base_fit, null_fit, tuples)
        out.prior_sensitivity.extend(rows)
        for row in rows[1:]:
            checks.append(
                Check("prior", row["prior_set"], row["verdict"], f"P = {row['p_benefit']:.3f}")
            )
        for label, values in probabilities.items():
            for key, p in values.items():
                claims[key].add("prior", label, p)
    else:
        missing["prior"] = "switched off (robustness.prior_sensitivity = false)"

    for key in coefficient_claims:
        for family, reason in missing.items():
            claims[key].missing.setdefault(family, reason)
    out.claims = claims
    out.robustness.append(
        robustness_row(problem.analysis, name, problem.method, base, checks, missing, extra)
    )
    return out


def _args(statement) -> tuple:
    return statement.op, statement.low, statement.high
