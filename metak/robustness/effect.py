"""The answer every check re-asks: the pooled effect, P(benefit) and the verdict on it.

The verdict uses the thresholds of claim verdicts (:mod:`metak.claims`): ``benefit`` when
P(the effect favours the intervention) >= 0.95, ``harm`` when <= 0.05, else ``uncertain``.
Outcomes without a direction of benefit speak of the sign only: P(effect < 0) and the verdicts
``negative`` / ``positive`` / ``uncertain``, as do analyses of one arm (a change within an arm is
not a benefit over a control). A check *flips* the answer when its verdict differs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from metak.claims import CONTRADICTED_AT, SUPPORTED_AT
from metak.exact import NormalMixture, mixture_quantiles

__all__ = [
    "Answer",
    "answer_direction",
    "benefit_op",
    "verdict_of",
    "answer_from_mixture",
    "answers_from_mixtures",
    "answer_from_draws",
    "weighted_quantiles",
]


def answer_direction(spec: object, direction: str) -> str:
    """The direction verdicts speak of.

    The outcome's, but ``unspecified`` (the sign only) for an analysis of one arm (``spec.arm``),
    whose change is not a comparison with a control.
    """
    return "unspecified" if getattr(spec, "arm", None) is not None else direction


def benefit_op(direction: str) -> str:
    """``">"`` when higher values are better, else ``"<"`` (unspecified: the sign, as negative)."""
    return ">" if direction == "higher_is_better" else "<"


def verdict_of(p_benefit: float, direction: str) -> str:
    """``benefit`` / ``harm`` / ``uncertain`` (``negative`` / ``positive`` without a direction)."""
    if not math.isfinite(p_benefit):
        return "not assessable"
    favourable, unfavourable = ("benefit", "harm")
    if direction not in ("lower_is_better", "higher_is_better"):
        favourable, unfavourable = ("negative", "positive")
    if p_benefit >= SUPPORTED_AT:
        return favourable
    if p_benefit <= CONTRADICTED_AT:
        return unfavourable
    return "uncertain"


@dataclass(frozen=True)
class Answer:
    """The pooled effect under one check: summary, P(benefit) and verdict."""

    mean: float
    sd: float
    q025: float
    q975: float
    p_benefit: float
    verdict: str


def answer_from_mixture(mixture: NormalMixture, direction: str) -> Answer:
    """The answer from an exact posterior (a normal mixture)."""
    q025, q975 = mixture.quantile(np.array([0.025, 0.975]))
    return _answer(mixture, q025, q975, direction)


def answers_from_mixtures(mixtures: Sequence[NormalMixture], direction: str) -> list[Answer]:
    """:func:`answer_from_mixture` of each mixture, their quantiles found together.

    One call of :func:`~metak.exact.mixture_quantiles` instead of one per mixture.
    """
    if not mixtures:
        return []
    quantiles = mixture_quantiles(mixtures, np.array([0.025, 0.975]))
    return [
        _answer(mixture, q025, q975, direction)
        for mixture, (q025, q975) in zip(mixtures, quantiles.T, strict=True)
    ]


def _answer(mixture: NormalMixture, q025: float, q975: float, direction: str) -> Answer:
    p = mixture.prob(benefit_op(direction), 0.0)
    return Answer(mixture.mean, mixture.sd, float(q025), float(q975), p, verdict_of(p, direction))


def weighted_quantiles(
    values: np.ndarray, weights: np.ndarray, probs: Sequence[float]
) -> np.ndarray:
    """Quantiles of weighted draws (weights need not be normalised).

    The inverse of the weighted empirical CDF, interpolated between the midpoints of the draws'
    weight steps.
    """
    order = np.argsort(values)
    values, weights = values[order], weights[order]
    cumulative = np.cumsum(weights)
    cumulative = (cumulative - 0.5 * weights) / cumulative[-1]
    return np.interp(probs, cumulative, values)


def answer_from_draws(draws: np.ndarray, weights: np.ndarray | None, direction: str) -> Answer:
    """The answer from (importance-weighted) posterior draws."""
    draws = np.asarray(draws, dtype=float).ravel()
    weights = np.ones(draws.size) if weights is None else np.asarray(weights, float).ravel()
    weights = weights / weights.sum()
    mean = float(weights @ draws)
    sd = math.sqrt(max(float(weights @ (draws - mean) ** 2), 0.0))
    q025, q975 = weighted_quantiles(draws, weights, [0.025, 0.975])
    favours = draws > 0 if benefit_op(direction) == ">" else draws < 0
    p = float(weights @ favours)
    return Answer(mean, sd, float(q025), float(q975), p, verdict_of(p, direction))
