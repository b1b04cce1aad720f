"""One analysis as the exact machinery sees it, and exact fits of its variants.

A *variant* of an analysis keeps its data and priors and changes one model choice: the pooled
effect fixed at 0 ("no effect"), tau fixed at 0 ("common effect"), a small-study regressor added
(PET: the standard error; PEESE: the variance), the moderator slopes dropped. Every variant is
fitted exactly — coefficients integrated analytically, tau by the quadrature of
:func:`metak.exact.fit_exact`, the tau = 0 limit in closed form
(:func:`metak.exact.fit_common_effect`) — so its marginal likelihood is exact too.

Analyses whose change scores enter with the pre-post correlation r as a parameter (its prior
``r``, support within [-1, 1]) are exact given r; r is then integrated out by Gauss-Legendre
quadrature over the prior's support, ``p(y) = int p(y | r) p(r) dr`` (``R_NODES`` nodes; the
integrand is smooth there, e.g. a polynomial times p(y | r) for the default beta(6, 4)). Each
node is an exact fit; the posterior is the mixture of the nodes' posteriors weighted by
``w_j p(r_j) p(y | r_j)``. Such analyses report ``method = "exact_r"``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from metak.exact import (
    CommonEffectPosterior,
    ExactPosterior,
    NormalMixture,
    fit_common_effect,
    fit_exact,
    study_log_likelihood,
)
from metak.fitting.data import AnalysisData
from metak.fitting.design import (
    PREPOST_VARIANCE_FLOOR,
    coefficient_names,
    design_matrix,
    prepost_r_terms,
    r_prior_integrable,
    within_variance,
)
from metak.fitting.prior_choice import outcome_unit_sd, priors_in_force
from metak.fitting.result import AnalysisResult
from metak.numeric import logsumexp
from metak.priors import Prior
from metak.robustness.effect import answer_direction
from metak.spec import BIAS_PRIOR_KEYS, AnalysisSpec

__all__ = [
    "R_NODES",
    "BIAS_KINDS",
    "BIAS_REGRESSORS",
    "DEFAULT_PET_PRIOR_SD",
    "DEFAULT_PEESE_PRIOR_SD_UNITS",
    "Problem",
    "Variant",
    "VariantFit",
    "problem_for",
    "problem_of",
    "fit_variant",
    "Fits",
    "combine_mixtures",
]

# Gauss-Legendre nodes over the support of the pre-post correlation's prior. p(y | r) p(r) is
# smooth there: 12 nodes integrate it to 1e-10 in log p(y) on the bundled CAC data and on the
# tests' three-study example (tests compare with adaptive quadrature and with 96 nodes), each
# node costing one exact fit.
R_NODES = 12
BIAS_KINDS = ("none", "pet", "peese")
# The regressor each small-study model adds: the standard error (PET, metafor regtest()'s "sei")
# or the variance (PEESE, "sei2" = sei^2; not "vi", which study_effects.csv already uses).
BIAS_REGRESSORS = {"pet": "sei", "peese": "sei2"}
# Default bias-slope priors (README, "Small-study bias"). The PET slope multiplies the standard
# error, which has the effect's unit, so it is unit-free: normal(0, 1) has RoBMA's PET scale (a
# Cauchy(0, 1) there) and puts 95% of its mass on slopes within +-2, i.e. up to the bias of
# publishing only studies just significant at z = 1.96. The PEESE slope multiplies the variance, so
# it is in 1 / (effect unit): normal(0, 5 / sigma_U), RoBMA's PEESE scale 5 on the standardised
# scale (Cohen's d, whose unit information SD is about 1-2) carried to the outcome's unit.
DEFAULT_PET_PRIOR_SD = 1.0
DEFAULT_PEESE_PRIOR_SD_UNITS = 5.0
# Node log-weights below the largest by more than this carry no mass (e^-40 ~ 4e-18).
_NODE_DROP = 40.0
# Mixtures over tau use every MIXTURE_THIN-th node of the exact grid (Simpson's rule on the
# coarser grid; metak.exact.ExactPosterior.quadrature_weights): 1e-8 accurate, and 10 times fewer
# components when a quantity mixes many fits (r's nodes, the ensemble's models).
MIXTURE_THIN = 10


@dataclass(frozen=True)
class Variant:
    """One model of the family around an analysis (see the module docstring).

    ``effect``: the pooled effect (first coefficient) has its prior (True) or is 0; ``random``:
    tau has its prior (True) or is 0; ``bias``: ``"none"``, ``"pet"`` or ``"peese"``; ``slopes``:
    the meta-regression's moderator slopes are in the model.
    """

    effect: bool = True
    random: bool = True
    bias: str = "none"
    slopes: bool = True

    def __post_init__(self) -> None:
        if self.bias not in BIAS_KINDS:
            raise ValueError(f"bias must be one of {BIAS_KINDS}, got {self.bias!r}")

    @property
    def label(self) -> str:
        """E.g. ``"effect, random effects, PET"``."""
        parts = [
            "effect" if self.effect else "no effect",
            "random effects" if self.random else "common effect",
            {"none": "no bias", "pet": "PET", "peese": "PEESE"}[self.bias],
        ]
        if not self.slopes:
            parts.append("no moderators")
        return ", ".join(parts)


BASE = Variant()


@dataclass(frozen=True, eq=False)
class Problem:
    """An analysis' arrays and priors, ready for exact fits of its variants.

    ``X`` is the analysis' design (a column of ones, then the centred moderators) and
    ``coef_priors`` its coefficient priors in that order; ``v`` the within-study variances at
    the assumed pre-post correlation, ``r_slope`` and ``r0`` how they move with r (all zero when
    r is not a parameter, ``r_prior`` then None).
    """

    analysis: str
    effect_name: str
    y: np.ndarray
    v: np.ndarray
    r_slope: np.ndarray
    r0: np.ndarray
    X: np.ndarray
    coef_names: tuple[str, ...]
    coef_priors: tuple[Prior, ...]
    tau_prior: Prior
    r_prior: Prior | None
    bias_priors: dict
    labels: tuple[str, ...]
    direction: str

    @property
    def k(self) -> int:
        """Number of effect sizes."""
        return int(self.y.size)

    @property
    def method(self) -> str:
        """``"exact"``, or ``"exact_r"`` when r is integrated by quadrature."""
        return "exact" if self.r_prior is None else "exact_r"

    @property
    def has_slopes(self) -> bool:
        """True for a meta-regression (moderator slopes besides the effect)."""
        return len(self.coef_names) > 1

    def variance(self, r: float) -> np.ndarray:
        """Within-study variances at pre-post correlation ``r`` (as the MCMC models have them)."""
        if self.r_prior is None:
            return self.v
        moved = self.v + (r - self.r0) * self.r_slope
        return np.maximum(moved, PREPOST_VARIANCE_FLOOR * self.v)

    def r_nodes(self) -> tuple[np.ndarray, np.ndarray]:
        """``(r values, log quadrature weights)``; one node (r = NaN, weight 1) without r."""
        if self.r_prior is None:
            return np.array([math.nan]), np.zeros(1)
        lo, hi = self.r_prior.bounds
        x, w = np.polynomial.legendre.leggauss(R_NODES)
        r = lo + (hi - lo) * (x + 1.0) / 2.0
        return r, np.log(w * (hi - lo) / 2.0) + self.r_prior.logpdf(r)

    def without(self, index: int) -> Problem:
        """The same analysis with effect size ``index`` left out."""
        keep = np.arange(self.k) != index
        return replace(
            self,
            y=self.y[keep],
            v=self.v[keep],
            r_slope=self.r_slope[keep],
            r0=self.r0[keep],
            X=self.X[keep],
            labels=tuple(label for i, label in enumerate(self.labels) if i != index),
        )

    def with_priors(self, effect: Prior | None = None, tau: Prior | None = None) -> Problem:
        """The same analysis under another effect (first coefficient) and/or tau prior."""
        priors = self.coef_priors
        if effect is not None:
            priors = (effect, *priors[1:])
        return replace(self, coef_priors=priors, tau_prior=tau or self.tau_prior)

    def design(
        self, variant: Variant, v: np.ndarray
    ) -> tuple[np.ndarray, tuple[str, ...], tuple[Prior, ...]]:
        """``(X, names, priors)`` of ``variant`` at within-study variances ``v``."""
        columns, names, priors = [], [], []
        if variant.effect:
            columns.append(self.X[:, 0])
            names.append(self.effect_name)
            priors.append(self.coef_priors[0])
        if variant.slopes:
            for j in range(1, self.X.shape[1]):
                columns.append(self.X[:, j])
                names.append(self.coef_names[j])
                priors.append(self.coef_priors[j])
        if variant.bias != "none":
            columns.append(np.sqrt(v) if variant.bias == "pet" else v)
            names.append(BIAS_REGRESSORS[variant.bias])
            priors.append(self.bias_priors[variant.bias])
        X = np.column_stack(columns) if columns else np.zeros((self.k, 0))
        return X, tuple(names), tuple(priors)


def _bias_priors(spec, data) -> dict[str, Prior]:
    given = spec.priors
    pet_key, peese_key = BIAS_PRIOR_KEYS
    unit_sd = float(outcome_unit_sd(data))
    return {
        "pet": given.get(pet_key) or Prior("normal", (0.0, DEFAULT_PET_PRIOR_SD)),
        "peese": given.get(peese_key)
        or Prior("normal", (0.0, DEFAULT_PEESE_PRIOR_SD_UNITS / unit_sd)),
    }


def problem_for(result: AnalysisResult) -> tuple[Problem | None, str]:
    """The exact problem of a fitted analysis, or ``(None, why not)`` (:func:`problem_of`)."""
    return problem_of(result.spec, result.data)


def problem_of(spec: AnalysisSpec, data: AnalysisData) -> tuple[Problem | None, str]:
    """The exact problem of an analysis on its data, or ``(None, why not)``.

    Random-effects models and meta-regressions with normal coefficient priors and nothing to
    impute qualify, whichever engine fits them: an uncertain pre-post correlation is integrated
    by quadrature (``method = "exact_r"``). Robust, joint and imputing models have no exact
    marginal likelihood.

    Parameters
    ----------
    spec : metak.spec.AnalysisSpec
        The analysis.
    data : metak.fitting.data.AnalysisData
        Its data.

    Returns
    -------
    tuple of (Problem or None, str)
        The problem and ``""``, or None and the reason (one phrase, for the files and report).
    """
    if spec.model not in ("random_effects", "meta_regression"):
        return None, f"{spec.model} model: no exact marginal likelihood"
    if data.needs_imputation:
        return None, "imputed moderator: no exact marginal likelihood"
    priors, _ = priors_in_force(spec, data)
    names = coefficient_names(data)
    coef_priors = tuple(priors[name] for name in names)
    if any(prior.family != "normal" for prior in coef_priors):
        return None, "a coefficient prior is not normal: no exact marginal likelihood"
    slope, r0 = prepost_r_terms(data)
    r_prior = priors.get("r") if data.has_uncertain_r else None
    if not r_prior_integrable(r_prior):
        return None, f"pre-post correlation prior {r_prior} reaches beyond [-1, 1]"
    problem = Problem(
        analysis=spec.name,
        effect_name=names[0],
        y=np.asarray(data.y, dtype=float),
        v=np.asarray(within_variance(data), dtype=float),
        r_slope=slope if r_prior is not None else np.zeros(data.k),
        r0=r0 if r_prior is not None else np.zeros(data.k),
        X=design_matrix(data),
        coef_names=names,
        coef_priors=coef_priors,
        tau_prior=priors["tau"],
        r_prior=r_prior,
        bias_priors=_bias_priors(spec, data),
        labels=tuple(data.row_label),
        direction=answer_direction(spec, data.direction),
    )
    return problem, ""


def combine_mixtures(mixtures: Sequence[NormalMixture], weights: np.ndarray) -> NormalMixture:
    """The mixture ``sum_j weights[j] * mixtures[j]`` of normal mixtures (weights sum to 1)."""
    parts = [(w, m) for w, m in zip(weights, mixtures, strict=True) if w > 0]
    return NormalMixture(
        np.concatenate([w * m.weights for w, m in parts]),
        np.concatenate([m.means for _, m in parts]),
        np.concatenate([m.sds for _, m in parts]),
    )


@dataclass(frozen=True, eq=False)
class VariantFit:
    """The exact posterior of one variant: one fit per quadrature node of r (one without r).

    ``log_node[j]`` is ``log w_j + log p(y | r_j)``; the marginal likelihood is their log-sum-exp
    and the posterior the mixture of the nodes' posteriors with weights ``node_weights``.
    """

    variant: Variant
    names: tuple[str, ...]
    r: np.ndarray
    log_node: np.ndarray
    posteriors: tuple  # ExactPosterior (random) or CommonEffectPosterior (common), per node
    log_marginal_likelihood: float  # log p(y), r integrated out when it is a parameter
    node_weights: np.ndarray  # posterior weight of each quadrature node (sums to 1)

    def has(self, name: str) -> bool:
        """True when ``name`` is a coefficient of this variant."""
        return name in self.names

    def coef(self, name: str) -> NormalMixture:
        """The marginal posterior of one coefficient, a normal mixture."""
        parts = [
            p.coef_mixture(name, MIXTURE_THIN)
            if isinstance(p, ExactPosterior)
            else p.coef_mixture(name)
            for p in self.posteriors
        ]
        return combine_mixtures(parts, self.node_weights)

    def prob(self, name: str, op: str, low: float, high: float | None = None) -> float:
        """Exact posterior probability of a statement about a coefficient."""
        weights = self.node_weights
        pairs = zip(weights, self.posteriors, strict=True)
        return float(sum(w * p.prob(name, op, low, high) for w, p in pairs))

    def pointwise_log_likelihood(
        self, problem: Problem, n: int, rng: np.random.Generator
    ) -> np.ndarray:
        """``log p(y_i | b, tau, r)`` at ``n`` independent posterior draws, shape ``(n, k)``.

        The study effects integrated out, as in every analysis' posterior file. Draws are taken
        node by node of r (multinomial counts from ``node_weights``), then (tau, b) exactly
        given r; their order does not matter to importance sampling with independent draws.
        """
        if not self.variant.random:
            raise ValueError("pointwise draws need a variant with tau (a random-effects model)")
        counts = rng.multinomial(n, self.node_weights)
        parts = []
        for r, posterior, count in zip(self.r, self.posteriors, counts, strict=True):
            if count == 0:
                continue
            draws = posterior.sample(int(count), rng)
            v = problem.variance(float(r))
            X, _, _ = problem.design(self.variant, v)
            parts.append(study_log_likelihood(problem.y, draws.coef @ X.T, v, draws.tau))
        return np.concatenate(parts)


def _fit_node(problem: Problem, variant: Variant, r: float, grid_from: ExactPosterior | None):
    v = problem.variance(r)
    X, names, priors = problem.design(variant, v)
    if variant.random:
        return fit_exact(
            problem.y,
            v,
            X,
            coef_names=names,
            coef_priors=list(priors),
            tau_prior=problem.tau_prior,
            summarize=False,
            grid_from=grid_from,
        )
    return fit_common_effect(problem.y, v, X, coef_names=names, coef_priors=list(priors))


def _node_grids(r_values: np.ndarray, near: VariantFit | None) -> list[ExactPosterior | None]:
    """The posterior of ``near`` at each r node (matched by r), whose tau grid to try."""
    if near is None or not near.variant.random:
        return [None] * r_values.size
    by_r = {float(r): post for r, post in zip(near.r, near.posteriors, strict=True)}
    if len(by_r) == 1 and math.isnan(next(iter(by_r))):
        return [next(iter(by_r.values()))] * r_values.size
    return [by_r.get(float(r)) for r in r_values]


def fit_variant(
    problem: Problem, variant: Variant = BASE, near: VariantFit | None = None
) -> VariantFit:
    """Fit ``variant`` of ``problem`` exactly (r integrated by quadrature when a parameter).

    Parameters
    ----------
    problem : Problem
        The analysis.
    variant : Variant
        Which model; the analysis' own model by default.
    near : VariantFit, optional
        A fit of a nearby model (e.g. the same variant under the analysis' own priors): each
        r node's tau grid is taken over where it holds the new posterior
        (``grid_from`` of :func:`metak.exact.fit_exact`), which skips the grid search.

    Returns
    -------
    VariantFit
    """
    r_values, log_w = problem.r_nodes()
    posteriors: list[ExactPosterior | CommonEffectPosterior] = []
    for r, grid_from in zip(r_values, _node_grids(r_values, near), strict=True):
        posteriors.append(_fit_node(problem, variant, float(r), grid_from))
    log_node = log_w + np.array([p.log_marginal_likelihood for p in posteriors])
    # Nodes with no posterior mass are dropped so that mixtures stay small.
    keep = log_node >= np.max(log_node) - _NODE_DROP
    names = posteriors[0].coef_names
    log_ml = float(logsumexp(log_node))
    return VariantFit(
        variant,
        tuple(names),
        r_values[keep],
        log_node[keep],
        tuple(p for p, k in zip(posteriors, keep, strict=True) if k),
        log_ml,
        np.exp(log_node[keep] - log_ml),
    )


class Fits:
    """The variants of one problem, each fitted once when first asked for (a memo)."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self._fits: dict[Variant, VariantFit] = {}

    def __call__(self, variant: Variant = BASE) -> VariantFit:
        """The fit of ``variant`` (computed on first use)."""
        if variant not in self._fits:
            self._fits[variant] = fit_variant(self.problem, variant)
        return self._fits[variant]
