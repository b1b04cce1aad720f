"""Analysis specifications: plain, frozen data describing what to fit.

A spec says *what* (outcome, model, moderators, priors, method); :mod:`metak.fitting` decides *how*
(exact path or MCMC) and :mod:`metak.models` builds PyMC models from it. Specs are built from the
analysis file by :mod:`metak.config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "MODEL_KINDS",
    "METHODS",
    "DEFICIENCY_MODERATOR",
    "DeficiencySpec",
    "AnalysisSpec",
    "Settings",
]

MODEL_KINDS = ("random_effects", "robust", "meta_regression", "joint")
METHODS = ("auto", "exact", "mcmc")

# The built-in deficiency moderator: log of baseline dp-ucMGP (pmol/L), centred at a reference.
DEFICIENCY_MODERATOR = "log_baseline_dpucmgp"


@dataclass(frozen=True)
class DeficiencySpec:
    """The deficiency-moderated effect: moderator = log(baseline dp-ucMGP / reference).

    ``reference`` is the centring level in pmol/L, so the intercept is the effect in a study whose
    participants had that baseline level. ``levels`` are the deficient/replete levels at which the
    effect is reported. ``benefit_sign`` is -1 when a more negative effect is a benefit (outcomes
    where lower is better) and +1 otherwise; "more deficient, more benefit" means the slope has
    that sign (higher dp-ucMGP = more deficient).
    """

    reference: float = 500.0
    levels: tuple[float, ...] = (300.0, 700.0)
    impute: bool = True
    marker_outcome: str = "dpucmgp"
    # Column of studies.csv holding the population class used by the imputation sub-model.
    group_column: str = "population"


@dataclass(frozen=True)
class AnalysisSpec:
    """One analysis of the analysis file."""

    name: str
    model: str
    outcome: str | None = None
    outcomes: tuple[str, ...] = ()
    moderators: tuple[str, ...] = ()
    priors: dict = field(default_factory=dict)  # key -> metak.priors.Prior
    method: str = "auto"
    measure: str | None = None
    designs: tuple[str, ...] | None = None
    include_excluded: bool = False
    center: dict = field(default_factory=dict)  # moderator -> "mean" | "none" | float
    deficiency: DeficiencySpec | None = None
    link_biomarker: str | None = None
    prepost_r_uncertain: bool = True
    claims: bool = True

    def describe(self) -> str:
        """One line saying what the analysis is, for progress output and the report."""
        target = self.outcome if self.outcome else ", ".join(self.outcomes)
        mods = f" on {', '.join(self.moderators)}" if self.moderators else ""
        if self.deficiency is not None:
            mods = f" on log baseline dp-ucMGP (ref {self.deficiency.reference:g} pmol/L)"
        return f"{self.name}: {self.model}{mods} — {target}"


@dataclass(frozen=True)
class Settings:
    """Run settings from the ``[settings]`` table and the command line (command line wins)."""

    draws: int = 1000
    tune: int = 1000
    chains: int = 2
    seed: int = 20261122
    target_accept: float = 0.9
    # MCMC analyses fitted at once, each in its own worker process (None: one per core, at most
    # one per MCMC analysis; 1: one after the other in this process). Results do not depend on it.
    jobs: int | None = None
