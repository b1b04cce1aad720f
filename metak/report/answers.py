"""The answers the report opens with: one block per question, in plain words and units.

A question (``[[question]]`` of the analysis file, carried in ``analyses.json``; without any,
one per analysis) names an analysis and a summary parameter. Its answer gives the posterior
median with its 95% credible interval in the outcome's unit, the probability of benefit, how many
trials and participants the analysis rests on, and how strongly the data rather than the prior
determine the number: the prior-to-posterior contraction ``1 - var_post / var_prior``
(Betancourt 2018, "Calibrating model-based inferences and decisions", arXiv:1803.08393), which is
near 1 when the data pin the parameter down and near 0 when the posterior merely restates the
prior. Below :data:`CONTRACTION_MIN` the answer says the data cannot tell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from metak.report.html import esc, note, section
from metak.report.inputs import AnalysisInfo, QuestionInfo, ReportInputs
from metak.report.quantities import parameter_draws
from metak.report.text import decimals_for, fmt, sentence
from metak.report.units import (
    DEFICIENCY_MODERATOR,
    PROBABILITY_PARAMETER,
    parameter_outcome,
    parameter_unit,
    split_parameter,
    with_unit,
)

if TYPE_CHECKING:
    import xarray as xr

__all__ = [
    "CONTRACTION_MIN",
    "VERDICT_HIGH",
    "VERDICT_LOW",
    "Answer",
    "report_questions",
    "compute_answer",
    "participants",
    "participants_words",
    "answer_html",
    "answers_section",
]

# Below this contraction the posterior SD is more than half the prior SD: the trials have not
# even halved the spread the prior allowed, so the answer says "the data cannot tell" (for a
# normal prior and likelihood the contraction is the data's share of the posterior precision,
# 0.75 = the data carry three times the prior's information).
CONTRACTION_MIN = 0.75
# The probability thresholds of the claim verdicts (README.md, "Claim verdicts"): a benefit is
# "likely" at P >= 0.95 and "unlikely" at P <= 0.05; between, it is not settled.
VERDICT_HIGH = 0.95
VERDICT_LOW = 0.05
_COMPLETE_CASE = "_complete_case"
_DOUBLING = math.log(2.0)  # the deficiency slope is per unit of log(baseline): x ln 2 per doubling


@dataclass(frozen=True)
class Answer:
    """The numbers of one answer (raw floats; the block formats them)."""

    question: QuestionInfo
    info: AnalysisInfo
    parameter: str
    quantity: str  # what the estimate is, in words
    unit: str
    estimate: float
    low: float
    high: float
    probability: float | None  # P(benefit) or the question's P(lower / higher)
    probability_words: str  # what the probability is of
    trials: int
    participants: int
    trials_without_n: int
    contraction: float | None
    extra: tuple[str, ...] = ()  # further facts in words (effects at the reported levels)

    @property
    def data_cannot_tell(self) -> bool:
        """True when the contraction is below :data:`CONTRACTION_MIN`."""
        return self.contraction is not None and self.contraction < CONTRACTION_MIN


def _default_parameter(inputs: ReportInputs, info: AnalysisInfo) -> str | None:
    names = list(inputs.summary.loc[inputs.summary["analysis"] == info.name, "parameter"])
    if info.model == "joint":
        if info.link_biomarker is not None:
            linked = [n for n in names if n.startswith("gamma_link[")]
            if linked:
                return linked[0]
        return next((n for n in names if n.startswith("mu[")), None)
    if info.deficiency is not None and DEFICIENCY_MODERATOR in names:
        return DEFICIENCY_MODERATOR
    slopes = [m for m in info.moderators if m in names]
    if slopes:
        return slopes[0]
    return next((n for n in ("mu", "intercept") if n in names), None)


def _default_text(info: AnalysisInfo, parameter: str) -> str:
    base, inner = split_parameter(parameter)
    what = info.outcome_info(parameter_outcome(info, parameter)).description or info.outcome
    if base == DEFICIENCY_MODERATOR:
        return f"Does baseline dp-ucMGP change the effect of {info.intervention} on {what}?"
    if base == "gamma_link" and info.link_biomarker is not None:
        marker = info.outcome_info(info.link_biomarker).description or info.link_biomarker
        return f"Does a trial's effect on {marker} predict its effect on {what}?"
    if base in info.moderators:
        return f"Does {base} change the effect of {info.intervention} on {what}?"
    return f"What is the effect of {info.intervention} on {what}?"


def report_questions(inputs: ReportInputs) -> list[QuestionInfo]:
    """The questions to answer: the declared ones, or one per analysis.

    Complete-case twins are reported beside their analysis and the robustness checks' analyses
    (``<name>_pet`` ...) in its robustness section: neither gets a question of its own.
    """
    if inputs.questions:
        return list(inputs.questions)
    questions = []
    for info in inputs.analyses.values():
        if info.check_of is not None:
            continue
        twin_of = info.name.removesuffix(_COMPLETE_CASE)
        if info.name.endswith(_COMPLETE_CASE) and twin_of in inputs.analyses:
            continue
        parameter = _default_parameter(inputs, info)
        if parameter is not None:
            questions.append(QuestionInfo(_default_text(info, parameter), info.name, parameter))
    return questions


def participants(rows: pd.DataFrame, arm: str | None = None) -> tuple[int, int, int]:
    """(trials, participants, trials without group sizes) of an analysis' study rows.

    A trial's participants are, per outcome, its treatment groups' n (one row per comparison)
    plus its largest control group (shared by a multi-arm trial's comparisons), taken at the
    outcome with the most; trials without a recorded n count as trials only. An analysis of one
    ``arm`` counts that arm's group sizes only.
    """
    total, missing = 0, 0
    for _, study in rows.groupby("study_id", sort=False):
        counts = []
        for _, rows_o in study.groupby("outcome", sort=False):
            treated, control = rows_o["n_treatment"], rows_o["n_control"]
            if arm is not None:
                sizes = control if arm == "control" else treated
                if sizes.notna().any():
                    counts.append(float(sizes.max() if arm == "control" else sizes.sum()))
            elif treated.notna().all() and control.notna().any():
                counts.append(float(treated.sum() + control.max()))
        if counts:
            total += int(max(counts))
        else:
            missing += 1
    return int(rows["study_id"].nunique()), total, missing


def _summary_row(inputs: ReportInputs, name: str, parameter: str) -> pd.Series | None:
    summary = inputs.summary
    rows = summary[(summary["analysis"] == name) & (summary["parameter"] == parameter)]
    return None if rows.empty else rows.iloc[0]


def _benefit_sign(info: AnalysisInfo, question: QuestionInfo, parameter: str) -> int | None:
    """Which sign of ``parameter`` is a benefit: -1 (lower), +1 (higher) or None (not said).

    The question's ``benefit`` wins; else the outcome's direction in ``outcomes.csv``.
    """
    if question.benefit is not None:
        return -1 if question.benefit == "lower" else 1
    base, _ = split_parameter(parameter)
    if base in ("tau", "tau2", "I2", "nu", "r_prepost", "corr", "theta_new"):
        return None

    def sign(outcome):
        direction = info.outcome_info(outcome).direction
        return {"lower_is_better": -1, "higher_is_better": 1}.get(direction)

    outcome_sign = sign(parameter_outcome(info, parameter))
    if base == "gamma_link":  # a benefit on the marker going with a benefit on the outcome
        marker_sign = sign(info.link_biomarker)
        return None if outcome_sign is None or marker_sign is None else outcome_sign * marker_sign
    return outcome_sign


def _probability_words(info: AnalysisInfo, question: QuestionInfo, parameter: str) -> str:
    base, _ = split_parameter(parameter)
    if question.benefit is not None:
        return f"probability that {parameter} is {question.benefit} than 0"
    if base in (DEFICIENCY_MODERATOR, PROBABILITY_PARAMETER):
        return "probability that more deficient trials (higher baseline dp-ucMGP) benefit more"
    if base == "gamma_link":
        return "probability that a larger benefit on the marker goes with a larger benefit here"
    if base in info.moderators:
        return f"probability that the benefit grows with {base}"
    if info.arm is not None and base == "mu":
        direction = info.outcome_info(parameter_outcome(info, parameter)).direction
        change = "fall" if direction == "lower_is_better" else "rise"
        return f"probability of a {change} within the arm"
    return f"probability of benefit ({_benefit_words(info, parameter)})"


def _benefit_words(info: AnalysisInfo, parameter: str) -> str:
    direction = info.outcome_info(parameter_outcome(info, parameter)).direction
    word = "lower" if direction == "lower_is_better" else "higher"
    return f"a {word} value with {info.intervention}"


def _quantity(info: AnalysisInfo, parameter: str) -> str:
    base, _ = split_parameter(parameter)
    outcome = parameter_outcome(info, parameter)
    what = info.outcome_info(outcome).description or outcome or info.outcome
    versus = f"{info.intervention} vs {info.comparator}"
    if info.arm is not None and base == "mu":  # a change within one arm, not a comparison
        group = info.intervention if info.arm == "treatment" else info.comparator
        return f"Within the {info.arm} arm ({group}), pooled mean change in {what}"
    if base in ("mu", "intercept"):
        where = " at the moderators' reference values" if base == "intercept" else ""
        if info.deficiency is not None and base == "intercept":
            where = f" at baseline dp-ucMGP {fmt(info.deficiency.reference, 0)} pmol/L"
        return f"{sentence(versus)}, pooled difference in {what}{where}"
    if base.startswith("effect_at_"):
        return f"{sentence(versus)}, difference in {what} at baseline dp-ucMGP {base[10:]} pmol/L"
    if base in (DEFICIENCY_MODERATOR, PROBABILITY_PARAMETER):
        return f"Change in the effect on {what} per doubling of baseline dp-ucMGP"
    if base == "gamma_link":
        marker = info.outcome_info(info.link_biomarker).description or info.link_biomarker
        return f"Change in a trial's effect on {what} per unit of its effect on {marker}"
    if base == "theta_new":
        return f"{sentence(versus)}: the effect on {what} expected in a new trial"
    if base in ("tau", "tau2"):
        return f"Between-trial {'SD' if base == 'tau' else 'variance'} of the effect on {what}"
    if base in info.moderators:
        return f"Change in the effect on {what} per unit of {base}"
    return f"{parameter} ({what})"


def compute_answer(
    inputs: ReportInputs, tree: xr.DataTree | None, question: QuestionInfo
) -> Answer | None:
    """The answer to ``question`` from the summary, study rows and posterior file.

    Parameters
    ----------
    inputs : ReportInputs
        The results directory's tables and analyses.
    tree : xarray.DataTree or None
        The analysis' posterior file (its ``posterior`` and ``prior`` groups).
    question : QuestionInfo
        The question.

    Returns
    -------
    Answer or None
        None when summary.csv has no row of the question's parameter.
    """
    info = inputs.analyses[question.analysis]
    parameter = question.parameter
    source = DEFICIENCY_MODERATOR if parameter == PROBABILITY_PARAMETER else parameter
    row = _summary_row(inputs, info.name, source)
    if row is None:
        return None
    base, _ = split_parameter(parameter)
    scale = _DOUBLING if base in (DEFICIENCY_MODERATOR, PROBABILITY_PARAMETER) else 1.0
    # The slope is shown per doubling of baseline; the quantity's words say so, the unit is the
    # effect's.
    unit = parameter_unit(info, "intercept" if scale != 1.0 else source)
    sign = _benefit_sign(info, question, parameter)
    if base == PROBABILITY_PARAMETER:
        sign = _benefit_sign(info, question, "intercept")
    probability = None
    draws = parameter_draws(tree, "posterior", source, info)
    if sign is not None and draws is not None and draws.size:
        probability = float(np.mean(draws < 0) if sign < 0 else np.mean(draws > 0))
    rows = inputs.studies[inputs.studies["analysis"] == info.name]
    outcome = parameter_outcome(info, parameter)
    if info.model == "joint" and outcome is not None:
        rows = rows[rows["outcome"] == outcome]
    trials, people, without_n = participants(rows, info.arm)
    return Answer(
        question=question,
        info=info,
        parameter=parameter,
        quantity=_quantity(info, parameter),
        unit=unit,
        estimate=float(row["q50"]) * scale,
        low=float(row["q2.5"]) * scale,
        high=float(row["q97.5"]) * scale,
        probability=probability,
        probability_words=_probability_words(info, question, parameter),
        trials=trials,
        participants=people,
        trials_without_n=without_n,
        contraction=_contraction(tree, info, source, float(row["sd"])),
        extra=_level_effects(inputs, info) if scale != 1.0 else (),
    )


def _contraction(
    tree: xr.DataTree | None, info: AnalysisInfo, parameter: str, posterior_sd: float
) -> float | None:
    """Prior-to-posterior contraction ``1 - var_post / var_prior``.

    The posterior variance is summary.csv's sd squared (exact for exact fits), the prior variance
    that of the posterior file's prior draws; None without prior draws.
    """
    prior = parameter_draws(tree, "prior", parameter, info)
    if prior is None or prior.size < 2 or not np.isfinite(posterior_sd):
        return None
    prior_var = float(np.var(prior, ddof=1))
    if not np.isfinite(prior_var) or prior_var <= 0:
        return None
    return 1.0 - posterior_sd**2 / prior_var


def _level_effects(inputs: ReportInputs, info: AnalysisInfo) -> tuple[str, ...]:
    if info.deficiency is None:
        return ()
    unit = parameter_unit(info, "intercept")
    rows = [
        _summary_row(inputs, info.name, f"effect_at_{level:g}") for level in info.deficiency.levels
    ]
    found = [
        (level, row)
        for level, row in zip(info.deficiency.levels, rows, strict=True)
        if row is not None
    ]
    digits = decimals_for([row[c] for _, row in found for c in ("q50", "q2.5", "q97.5")])
    parts = []
    for level, row in found:
        parts.append(
            f"at {fmt(level, 0)} pmol/L {with_unit(fmt(row['q50'], digits), unit)} "
            f"({fmt(row['q2.5'], digits)} to {fmt(row['q97.5'], digits)})"
        )
    return (f"Effect of {info.intervention}: " + "; ".join(parts) + ".",) if parts else ()


def _verdict(answer: Answer) -> str:
    if answer.data_cannot_tell:
        return "The data cannot tell"
    p = answer.probability
    if p is None:
        return "Estimate"
    if p >= VERDICT_HIGH:
        return "Likely"
    if p <= VERDICT_LOW:
        return "Unlikely"
    return "Not settled"


def _probability(p: float) -> str:
    if p > 0.99:
        return "> 0.99"
    if p < 0.01:
        return "< 0.01"
    return f"{p:.2f}"


def _strength(answer: Answer) -> str:
    c = answer.contraction
    if c is None:
        return "Data vs prior: the posterior file has no prior draws of this parameter to compare"
    narrowed = 100 * (1.0 - math.sqrt(max(0.0, 1.0 - c)))
    if answer.data_cannot_tell:
        return (
            f"Data vs prior: the trials narrowed the prior's spread by only {narrowed:.0f}% "
            f"(prior-to-posterior contraction {c:.2f}, below {CONTRACTION_MIN}), so this "
            "estimate mostly restates the prior"
        )
    return (
        f"Data vs prior: the trials narrowed the prior's spread by {narrowed:.0f}% "
        f"(prior-to-posterior contraction {c:.2f}), so the data, not the prior, determine it"
    )


def _trials(answer: Answer) -> str:
    counts = answer.info.counts
    text = f"{answer.trials} trial{'' if answer.trials == 1 else 's'}"
    if answer.info.deficiency is not None:
        measured = counts.get("measured", {}).get(DEFICIENCY_MODERATOR)
        imputed = counts.get("imputed", {}).get(DEFICIENCY_MODERATOR)
        if measured is not None and imputed is not None:
            text += f" ({measured} with a measured baseline dp-ucMGP, {imputed} imputed)"
    return text + ", " + participants_words(answer.participants, answer.trials_without_n)


def participants_words(people: int, without_n: int) -> str:
    """E.g. "645 participants", "223 participants (group sizes not recorded for 1 trial)"."""
    if people == 0 and without_n:
        return "participants not recorded"
    text = f"{people:,} participants"
    if without_n:
        text += f" (group sizes not recorded for {without_n} trial{'s' if without_n > 1 else ''})"
    return text


def answer_html(answer: Answer, index: int) -> str:
    """One answer block: the question, the sentence with the estimate, and the facts line."""
    digits = decimals_for([answer.estimate, answer.low, answer.high])
    estimate = with_unit(fmt(answer.estimate, digits), answer.unit)
    lead = (
        f"<strong>{esc(_verdict(answer))}.</strong> {esc(answer.quantity)}: "
        f"<strong>{esc(estimate)}</strong> (95% credible interval {esc(fmt(answer.low, digits))} "
        f"to {esc(fmt(answer.high, digits))})"
    )
    if answer.probability is not None:
        lead += f"; {esc(answer.probability_words)}: <strong>{_probability(answer.probability)}"
        lead += "</strong>"
    lead += "."
    extra = "".join(f" {esc(text)}" for text in answer.extra)
    facts = (
        f"{esc(_trials(answer))}. {esc(_strength(answer))}. "
        f'<span class="where">Analysis <a href="#analysis-{esc(answer.info.name)}"><code>'
        f"{esc(answer.info.name)}</code></a>, parameter <code>{esc(answer.parameter)}</code>"
        "</span>"
    )
    kind = "weak" if answer.data_cannot_tell else "informed"
    return (
        f'<article class="answer {kind}" id="answer-{index}" '
        f'data-analysis="{esc(answer.info.name)}" data-parameter="{esc(answer.parameter)}" '
        f'data-unit="{esc(answer.unit)}">'
        f"<h3>{esc(answer.question.text)}</h3>"
        f'<p class="lead">{lead}{extra}</p><p class="facts">{facts}</p></article>'
    )


def answers_section(inputs: ReportInputs, trees: dict) -> str:
    """The report's first section: one answer per question."""
    blocks = []
    questions = report_questions(inputs)
    for index, question in enumerate(questions, start=1):
        answer = compute_answer(inputs, trees.get(question.analysis), question)
        if answer is None:
            blocks.append(
                f"<article class=answer><h3>{esc(question.text)}</h3>"
                + note(
                    f"No summary row <code>{esc(question.parameter)}</code> for analysis "
                    f"<code>{esc(question.analysis)}</code>.",
                    "warn",
                )
                + "</article>"
            )
            continue
        blocks.append(answer_html(answer, index))
    source = (
        "the analysis file's questions"
        if inputs.questions
        else "one question per analysis (the analysis file declares none)"
    )
    intro = note(
        f"Posterior medians with 95% credible intervals; {esc(source)}. A benefit is called "
        f"likely at a probability of at least {VERDICT_HIGH} and unlikely at most {VERDICT_LOW}. "
        f"How much the data rather than the prior determine each number is the "
        f"prior-to-posterior contraction; below {CONTRACTION_MIN} the data cannot tell."
    )
    return section("answers", "Answers", intro + "\n".join(blocks))
