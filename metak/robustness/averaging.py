"""Bayesian model averaging over {effect, no effect} x {random, common} x {no bias, PET, PEESE}.

The ensemble of RoBMA-PP (Bartos et al. 2023, Res Synth Methods 14:99), without its selection
models, and exact: each of the 12 models is a variant of the analysis
(:mod:`metak.robustness.problem`) with an exact marginal likelihood, so the posterior model
probabilities, inclusion Bayes factors and the averaged effect take milliseconds, not minutes of
JAGS sampling.

Prior model probabilities are products of independent halves, as in RoBMA: effect 1/2, no effect
1/2; random 1/2, common 1/2; no bias 1/2 and the bias half split equally between PET and PEESE
(1/4 each; RoBMA-PP splits it further with six selection models, which need MCMC). Meta-
regressions keep their moderators in every model.

The averaged effect is a spike-and-slab mixture: the no-effect models put their posterior
probability on exactly 0, the others their (bias-adjusted) posterior of the effect. It is the row
``averaged`` of ``model_averaging.csv`` (``method = "averaged"``); ``averaged_given_effect`` is
the same over the effect models only (RoBMA's "conditional" estimate).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import special

from metak.exact import NormalMixture
from metak.numeric import logsumexp
from metak.robustness.bayes_factors import bf10
from metak.robustness.effect import answers_from_mixtures, benefit_op
from metak.robustness.problem import BIAS_KINDS, Fits, Variant, combine_mixtures

__all__ = [
    "ENSEMBLE",
    "BIAS_PRIOR",
    "prior_probability",
    "AVERAGING_COLUMNS",
    "Averaged",
    "average",
    "averaging_rows",
    "inclusion_rows",
]

ENSEMBLE = tuple(
    Variant(effect=effect, random=random, bias=bias)
    for effect in (True, False)
    for random in (True, False)
    for bias in BIAS_KINDS
)
# Prior probability of each bias model; effect / no effect and random / common are 1/2 each.
BIAS_PRIOR = {"none": 0.5, "pet": 0.25, "peese": 0.25}


def prior_probability(variant: Variant) -> float:
    """Prior probability of an ensemble model (see the module docstring)."""
    return 0.5 * 0.5 * BIAS_PRIOR[variant.bias]


AVERAGING_COLUMNS = [
    "analysis",
    "model",
    "effect",
    "heterogeneity",
    "bias",
    "prior_prob",
    "log_marginal_likelihood",
    "posterior_prob",
    "mu_mean",
    "mu_sd",
    "mu_q2.5",
    "mu_q97.5",
    "p_benefit",
    "method",
]
_QUANTILE_STEPS = 200  # bisection steps: the bracket shrinks by 2^-200, far below double precision


@dataclass(frozen=True, eq=False)
class Averaged:
    """The ensemble of one analysis: its models' probabilities and the averaged effect."""

    analysis: str
    effect_name: str
    direction: str
    method: str
    models: tuple[Variant, ...]
    log_ml: np.ndarray
    prior: np.ndarray
    posterior: np.ndarray
    log_posterior: np.ndarray  # log posterior probabilities (no underflow for tiny ones)
    effects: tuple  # NormalMixture of the effect per model, None for no-effect models
    spike: float  # posterior probability that the effect is exactly 0
    slab: NormalMixture | None  # the effect models' mixture, weights summing to 1 - spike

    def inclusion_log_bf(self, included: Callable[[Variant], bool]) -> float:
        """The log inclusion Bayes factor of the models where ``included(variant)`` holds."""
        mask = np.array([bool(included(m)) for m in self.models])
        post = logsumexp(self.log_posterior[mask]) - logsumexp(self.log_posterior[~mask])
        prior = math.log(self.prior[mask].sum()) - math.log(self.prior[~mask].sum())
        return float(post - prior)

    def cdf(self, x: float) -> float:
        """P(averaged effect <= x), the spike at 0 included."""
        slab = 0.0 if self.slab is None else float(self.slab.weights @ _ndtr(x, self.slab))
        return slab + (self.spike if x >= 0 else 0.0)

    def quantile(self, q: float) -> float:
        """Inverse of :meth:`cdf` (0 when q falls in the spike)."""
        below_zero = self.cdf(-np.finfo(float).tiny) if self.spike > 0 else None
        if below_zero is not None and below_zero < q <= self.cdf(0.0):
            return 0.0
        means, sds = (self.slab.means, self.slab.sds) if self.slab else (np.zeros(1), np.ones(1))
        lo = min(float(np.min(means - 40 * sds)), 0.0)
        hi = max(float(np.max(means + 40 * sds)), 0.0)
        for _ in range(_QUANTILE_STEPS):
            mid = 0.5 * (lo + hi)
            if self.cdf(mid) >= q:
                hi = mid
            else:
                lo = mid
            if hi - lo <= 1e-12 * max(abs(lo), abs(hi), 1e-300):
                break
        return 0.5 * (lo + hi)

    @property
    def mean(self) -> float:
        """Mean of the averaged effect (the spike contributes 0)."""
        return 0.0 if self.slab is None else float(self.slab.weights @ self.slab.means)

    @property
    def sd(self) -> float:
        """SD of the averaged effect."""
        if self.slab is None:
            return 0.0
        second = float(self.slab.weights @ (self.slab.sds**2 + self.slab.means**2))
        return math.sqrt(max(second - self.mean**2, 0.0))

    @property
    def p_benefit(self) -> float:
        """P(the averaged effect favours the intervention); 0 = no effect does not."""
        if self.slab is None:
            return 0.0
        op = benefit_op(self.direction)
        below = float(self.slab.weights @ _ndtr(0.0, self.slab))
        return below if op == "<" else float(self.slab.weights.sum()) - below


def _ndtr(x: float, mixture: NormalMixture) -> np.ndarray:
    return special.ndtr((x - mixture.means) / mixture.sds)


def average(fits: Fits) -> Averaged:
    """Fit the 12 models of the ensemble (memoised in ``fits``) and average them."""
    problem = fits.problem
    log_ml = np.array([fits(m).log_marginal_likelihood for m in ENSEMBLE])
    prior = np.array([prior_probability(m) for m in ENSEMBLE])
    log_post = np.log(prior) + log_ml
    log_post = log_post - logsumexp(log_post)
    posterior = np.exp(log_post)
    effects = tuple(fits(m).coef(problem.effect_name) if m.effect else None for m in ENSEMBLE)
    with_effect = [i for i, m in enumerate(ENSEMBLE) if m.effect]
    slab_weight = float(posterior[with_effect].sum())
    slab = None
    if slab_weight > 0:
        slab = combine_mixtures([effects[i] for i in with_effect], posterior[with_effect])
    return Averaged(
        problem.analysis,
        problem.effect_name,
        problem.direction,
        problem.method,
        ENSEMBLE,
        log_ml,
        prior,
        posterior,
        log_post,
        effects,
        spike=1.0 - slab_weight,
        slab=slab,
    )


def _conditional(averaged: Averaged) -> Averaged:
    """The same ensemble restricted to the effect models (renormalised)."""
    mask = np.array([m.effect for m in averaged.models])
    log_posterior = np.where(mask, averaged.log_posterior, -np.inf)
    log_posterior = log_posterior - logsumexp(log_posterior)
    posterior = np.exp(log_posterior)
    slab = combine_mixtures(
        [e for e, keep in zip(averaged.effects, mask, strict=True) if keep], posterior[mask]
    )
    return Averaged(
        averaged.analysis,
        averaged.effect_name,
        averaged.direction,
        averaged.method,
        averaged.models,
        averaged.log_ml,
        averaged.prior,
        posterior,
        log_posterior,
        averaged.effects,
        spike=0.0,
        slab=slab,
    )


def _summary_values(averaged: Averaged) -> dict:
    return {
        "mu_mean": averaged.mean,
        "mu_sd": averaged.sd,
        "mu_q2.5": averaged.quantile(0.025),
        "mu_q97.5": averaged.quantile(0.975),
        "p_benefit": averaged.p_benefit,
    }


def averaging_rows(averaged: Averaged) -> list[dict]:
    """``model_averaging.csv`` rows: the 12 models, ``averaged``, ``averaged_given_effect``."""
    rows = []
    effect_models = np.array([m.effect for m in averaged.models])
    prior_effect = float(averaged.prior[effect_models].sum())
    # The effect models' answers with their quantiles in one Newton iteration, not one per model.
    with_effect = [effect for effect in averaged.effects if effect is not None]
    answers = iter(answers_from_mixtures(with_effect, averaged.direction))
    for i, model in enumerate(averaged.models):
        values = {"mu_mean": 0.0, "mu_sd": 0.0, "mu_q2.5": 0.0, "mu_q97.5": 0.0, "p_benefit": 0.0}
        if averaged.effects[i] is not None:
            answer = next(answers)
            values = {
                "mu_mean": answer.mean,
                "mu_sd": answer.sd,
                "mu_q2.5": answer.q025,
                "mu_q97.5": answer.q975,
                "p_benefit": answer.p_benefit,
            }
        rows.append(
            {
                "analysis": averaged.analysis,
                "model": model.label,
                "effect": model.effect,
                "heterogeneity": model.random,
                "bias": model.bias,
                "prior_prob": float(averaged.prior[i]),
                "log_marginal_likelihood": float(averaged.log_ml[i]),
                "posterior_prob": float(averaged.posterior[i]),
                **values,
                "method": averaged.method,
            }
        )
    for label, version in (
        ("averaged", averaged),
        ("averaged_given_effect", _conditional(averaged)),
    ):
        rows.append(
            {
                "analysis": averaged.analysis,
                "model": label,
                "effect": None,
                "heterogeneity": None,
                "bias": None,
                "prior_prob": 1.0 if label == "averaged" else prior_effect,
                "log_marginal_likelihood": math.nan,
                "posterior_prob": 1.0 if label == "averaged" else 1.0 - averaged.spike,
                **_summary_values(version),
                "method": "averaged",
            }
        )
    return rows


def inclusion_rows(averaged: Averaged) -> list[dict]:
    """``bayes_factors.csv`` rows of the inclusion Bayes factors (``method = "averaged"``)."""
    rows = []
    for hypothesis, included in (
        ("effect", lambda m: m.effect),
        ("heterogeneity", lambda m: m.random),
        ("bias", lambda m: m.bias != "none"),
    ):
        log_bf = averaged.inclusion_log_bf(included)
        rows.append(
            {
                "analysis": averaged.analysis,
                "hypothesis": hypothesis,
                "log_bf10": log_bf,
                "bf10": bf10(log_bf),
                "method": "averaged",
                "note": "inclusion Bayes factor over the 12-model ensemble",
            }
        )
    return rows
