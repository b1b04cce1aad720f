"""Analysis specifications: plain, frozen data describing what to fit, checked when built.

A spec says *what* (outcome, model, moderators, priors, method); :mod:`metak.fitting` decides
*how* (exact path or MCMC) and :mod:`metak.models` builds PyMC models from it. Every rule about
what a spec may hold lives here, in the constructors: the analysis file (:mod:`metak.config`),
the Python API and the command line all build specs and settings through them, so they accept
exactly the same things and reject the rest with the same one-line :class:`ConfigError`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields

from metak.errors import ConfigError
from metak.priors import Prior, parse_prior
from metak.schema import ARM_LEVELS, ARM_MEASURES, WITHIN_ARM_MEASURES

__all__ = [
    "MODEL_KINDS",
    "METHODS",
    "DEFICIENCY_MODERATOR",
    "PRIOR_KEYS",
    "NAME_PATTERN",
    "NAME_MAX_LENGTH",
    "SETTINGS_LIMITS",
    "BIAS_PRIOR_KEYS",
    "DeficiencySpec",
    "RobustnessSpec",
    "AnalysisSpec",
    "Settings",
    "QuestionSpec",
    "QUESTION_BENEFIT",
    "PROBABILITY_PARAMETER",
    "safe_name",
    "SELECTION_SIDES",
    "CumulativeDirichlet",
    "SelectionSpec",
    "level_name",
    "question_parameters",
    "check_questions",
]

MODEL_KINDS = ("random_effects", "robust", "meta_regression", "joint")
METHODS = ("auto", "exact", "mcmc")

# The built-in deficiency moderator: log of baseline dp-ucMGP (pmol/L), centred at a reference.
DEFICIENCY_MODERATOR = "log_baseline_dpucmgp"

# Priors of the small-study (bias) slopes of the robustness checks (metak.robustness.bias): the
# PET slope on the standard error and the PEESE slope on the variance. Normal only: the checks
# integrate every coefficient analytically.
BIAS_PRIOR_KEYS = ("bias_slope", "bias_slope_peese")
# Prior keys every model understands; slopes may also be given per moderator name.
PRIOR_KEYS = ("mu", "intercept", "slope", "tau", "nu", "r", "moderator_sd", *BIAS_PRIOR_KEYS)

# Analysis names become file names (posterior/<name>.nc): letters, digits, "_", "-" and "."
# only, starting with a letter or digit (so never "..", a hidden file or an absolute path).
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
NAME_MAX_LENGTH = 64
_NAME_RULE = (
    f"letters, digits, '_', '-' and '.', starting with a letter or digit, "
    f"at most {NAME_MAX_LENGTH} characters"
)

# Centring values and moderator values further from 0 than this make the design matrix's
# cross-products overflow or lose all precision; no real moderator needs more.
CENTER_MAX_ABS = 1e15

# Inclusive ranges of the run settings (command line, [settings], API). Upper ends stop typos
# (an extra zero or twelve) long before they exhaust memory; the memory estimate checks the rest.
SETTINGS_LIMITS = {
    "draws": (1, 10_000_000),
    "tune": (1, 1_000_000),
    "chains": (1, 64),
    "seed": (0, 2**32 - 1),
    "jobs": (1, 256),
}
TARGET_ACCEPT_RANGE = (0.5, 1.0)  # [low, high)


def _fail(where: str, message: str, fix: str | None = None) -> ConfigError:
    return ConfigError(f"{where}: {message}" + (f"; fix: {fix}" if fix else ""))


def safe_name(name: object, where: str = "analysis") -> str:
    """Return ``name`` when it is a valid analysis name, else raise :class:`ConfigError`.

    Parameters
    ----------
    name : object
        Candidate analysis name.
    where : str
        What the message says is wrong (e.g. ``"analysis 3"``).

    Returns
    -------
    str
        The name, unchanged.
    """
    if not isinstance(name, str) or not name:
        raise _fail(where, f"name must be non-empty text, got {name!r}", f"use {_NAME_RULE}")
    if len(name) > NAME_MAX_LENGTH or not NAME_PATTERN.fullmatch(name):
        raise _fail(where, f"name {name!r} is not allowed", f"use {_NAME_RULE}")
    return name


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _text(value: object, where: str, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(where, f"{key} must be non-empty text, got {value!r}")
    return value


def _flag(value: object, where: str, key: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(where, f"{key} must be true or false, got {value!r}")
    return value


def _texts(value: object, where: str, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, (list, tuple)):
        raise _fail(where, f"{key} must be a list of text, got {value!r}")
    items = tuple(_text(item, where, f"each entry of {key}") for item in value)
    repeated = sorted({item for item in items if items.count(item) > 1})
    if repeated:
        raise _fail(where, f"{key} lists {repeated[0]!r} twice", "list each once")
    return items


def _positive_finite(value: object, where: str, key: str) -> float:
    if not _is_number(value) or not math.isfinite(value) or not value > 0:
        raise _fail(where, f"{key} must be a positive number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class DeficiencySpec:
    """The deficiency-moderated effect: moderator = log(baseline dp-ucMGP / reference).

    ``reference`` is the centring level in pmol/L, so the intercept is the effect in a study whose
    participants had that baseline level. ``levels`` are the deficient/replete levels at which the
    effect is reported. "More deficient, more benefit" means the slope has the sign of a benefit
    (negative for outcomes where lower is better): higher dp-ucMGP = more deficient.

    Raises
    ------
    ConfigError
        When a value is out of range (one line naming the key).
    """

    reference: float = 500.0
    levels: tuple[float, ...] = (300.0, 700.0)
    impute: bool = True
    marker_outcome: str = "dpucmgp"
    # Column of studies.csv holding the population class used by the imputation sub-model.
    group_column: str = "population"

    def __post_init__(self) -> None:
        where = "deficiency"
        object.__setattr__(self, "reference", _positive_finite(self.reference, where, "reference"))
        levels = self.levels
        if not isinstance(levels, (list, tuple)) or not levels:
            raise _fail(where, f"levels must be a non-empty list of numbers, got {levels!r}")
        levels = tuple(_positive_finite(level, where, "each level") for level in levels)
        object.__setattr__(self, "levels", levels)
        _flag(self.impute, where, "impute")
        _text(self.marker_outcome, where, "marker_outcome")
        _text(self.group_column, where, "group_column")


@dataclass(frozen=True)
class RobustnessSpec:
    """Which robustness checks run for an analysis (README, "How far the answer can be trusted").

    ``robustness = true`` in the analysis file is this with its defaults, ``false`` all off, a
    table switches single checks. Every check is on by default except the selection model, which
    needs MCMC (seconds per analysis, not milliseconds).

    Raises
    ------
    ConfigError
        When a switch is not true or false.
    """

    bayes_factors: bool = True
    bias: bool = True  # PET and PEESE (exact analyses) and the funnel plot
    averaging: bool = True  # the 12-model ensemble (exact analyses)
    leave_one_out: bool = True  # exact leave-one-out, PSIS-LOO and the comparison of analyses
    prior_sensitivity: bool = True  # alternative priors (exact) / power-scaling (MCMC)
    selection: bool = False  # step-function selection model (MCMC)

    def __post_init__(self) -> None:
        for item in fields(self):
            _flag(getattr(self, item.name), "robustness", item.name)

    @classmethod
    def off(cls) -> RobustnessSpec:
        """Every check switched off (``robustness = false``)."""
        return cls(
            bayes_factors=False,
            bias=False,
            averaging=False,
            leave_one_out=False,
            prior_sensitivity=False,
            selection=False,
        )

    @property
    def enabled(self) -> bool:
        """True when at least one check runs."""
        return any(getattr(self, item.name) is True for item in fields(self))


def _robustness(value: object, where: str) -> RobustnessSpec:
    if isinstance(value, RobustnessSpec):
        return value
    if value is True:
        return RobustnessSpec()
    if value is False:
        return RobustnessSpec.off()
    if not isinstance(value, Mapping):
        raise _fail(where, f"robustness must be true, false or a table, got {value!r}")
    allowed = tuple(item.name for item in fields(RobustnessSpec))
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise _fail(
            f"{where}.robustness",
            f"unknown key {unknown[0]!r}",
            f"allowed: {', '.join(allowed)}",
        )
    try:
        return RobustnessSpec(**value)
    except ConfigError as err:
        raise ConfigError(f"{where}.{err}") from None


def _priors(given: object, where: str, allowed: set[str]) -> dict[str, Prior]:
    if not isinstance(given, Mapping):
        raise _fail(where, f"priors must be a table of key = prior text, got {given!r}")
    priors = {}
    for key, value in given.items():
        if key not in allowed:
            raise _fail(
                f"{where}.priors",
                f"unknown prior {key!r}",
                f"use {', '.join(PRIOR_KEYS)}, a moderator name or {DEFICIENCY_MODERATOR} "
                "(deficiency analyses)",
            )
        if isinstance(value, Prior):
            priors[key] = value
        elif isinstance(value, str):
            try:
                priors[key] = parse_prior(value)
            except ConfigError as err:
                raise _fail(f"{where}.priors.{key}", str(err)) from None
        else:
            raise _fail(f"{where}.priors", f"{key} must be prior text, got {value!r}")
        if key in BIAS_PRIOR_KEYS and priors[key].family != "normal":
            raise _fail(
                f"{where}.priors.{key}",
                f"{priors[key]} is not a normal prior",
                'the bias checks integrate the slope exactly: use e.g. "normal(0, 1)"',
            )
    return priors


def _center(value: object, where: str, moderators: tuple[str, ...]) -> dict:
    if isinstance(value, bool):
        return {"*": "mean" if value else "none"}
    if isinstance(value, str):
        if value not in ("mean", "none"):
            raise _fail(where, f"center {value!r} is not allowed", 'use "mean", "none" or a table')
        return {"*": value}
    if not isinstance(value, Mapping):
        raise _fail(where, f"center must be text or a table, got {value!r}")
    out = {}
    for key, item in value.items():
        if key != "*" and key not in moderators:
            raise _fail(
                f"{where}.center",
                f"unknown key {key!r}: not a moderator of this analysis",
                f"use one of {', '.join(moderators) or '(no moderators)'}",
            )
        if _is_number(item):
            if not math.isfinite(item) or abs(item) > CENTER_MAX_ABS:
                raise _fail(
                    f"{where}.center",
                    f"{key} = {item!r} is not allowed",
                    f"use a finite number of magnitude at most {CENTER_MAX_ABS:g}",
                )
            out[key] = float(item)
        elif item in ("mean", "none"):
            out[key] = item
        else:
            raise _fail(
                f"{where}.center",
                f"{key} = {item!r} is not allowed",
                'use "mean", "none" or a number',
            )
    return out


@dataclass(frozen=True)
class AnalysisSpec:
    """One analysis of the analysis file.

    Built from the analysis file by :mod:`metak.config` or directly from Python; both are checked
    here. ``priors`` maps prior keys to :class:`~metak.priors.Prior` objects or prior text
    (``"normal(0, 1)"``); ``center`` is ``"mean"``, ``"none"``, ``True``/``False`` or a table
    ``{moderator: "mean" | "none" | number}`` (normalised to a dict, ``"*"`` meaning all).

    Raises
    ------
    ConfigError
        One line naming the analysis and the key, with a fix.
    """

    name: str
    model: str = "random_effects"
    outcome: str | None = None
    outcomes: tuple[str, ...] = ()
    moderators: tuple[str, ...] = ()
    priors: dict = field(default_factory=dict)  # key -> metak.priors.Prior
    method: str = "auto"
    measure: str | None = None
    designs: tuple[str, ...] | None = None
    include_excluded: bool = False
    center: dict = field(default_factory=lambda: {"*": "mean"})  # moderator -> rule or number
    deficiency: DeficiencySpec | None = None
    link_biomarker: str | None = None
    prepost_r_uncertain: bool = True
    claims: bool = True
    # Pool one arm on its own ("treatment" or "control") on a within-arm measure (MC, MN)
    # instead of the between-group effect; None = between-group (the default).
    arm: str | None = None
    robustness: RobustnessSpec = field(default_factory=RobustnessSpec)

    def __post_init__(self) -> None:
        safe_name(self.name)
        where = f"analysis {self.name!r}"
        set_ = object.__setattr__
        if self.model not in MODEL_KINDS:
            raise _fail(
                where, f"model {self.model!r} is not known", f"use one of {', '.join(MODEL_KINDS)}"
            )
        if self.method not in METHODS:
            raise _fail(
                where, f"method {self.method!r} is not known", f"use one of {', '.join(METHODS)}"
            )
        set_(self, "outcomes", _texts(self.outcomes, where, "outcomes"))
        if self.model == "joint":
            if len(self.outcomes) < 2:
                raise _fail(
                    where, "a joint model needs outcomes = [...] with at least two outcomes"
                )
            if self.outcome is not None:
                raise _fail(where, "a joint model takes 'outcomes', not 'outcome'")
        else:
            if self.outcome is None:
                raise _fail(
                    where,
                    "missing key 'outcome'",
                    'add outcome = "<an outcome in the study records>"',
                )
            _text(self.outcome, where, "outcome")
            if self.outcomes:
                raise _fail(where, "'outcomes' is only for model = \"joint\"")
        set_(self, "moderators", _texts(self.moderators, where, "moderators"))
        if DEFICIENCY_MODERATOR in self.moderators:
            raise _fail(
                where,
                f"{DEFICIENCY_MODERATOR!r} is built in, not a studies.csv column",
                "use deficiency = true instead of listing it in moderators",
            )
        if self.deficiency is not None and not isinstance(self.deficiency, DeficiencySpec):
            raise _fail(
                where, f"deficiency must be a DeficiencySpec or None, got {self.deficiency!r}"
            )
        if self.model == "meta_regression" and not self.moderators and self.deficiency is None:
            raise _fail(where, "meta_regression needs moderators = [...] or deficiency = true")
        if self.model != "meta_regression" and (self.moderators or self.deficiency):
            raise _fail(
                where, f"model {self.model!r} takes no moderators", 'use model = "meta_regression"'
            )
        self._check_arm(where)
        if self.arm is None and self.measure in WITHIN_ARM_MEASURES:
            raise _fail(
                where,
                f"measure {self.measure!r} describes one arm, but no arm is named",
                f'add arm = "treatment" or "control", or use one of {", ".join(ARM_MEASURES)}',
            )
        if self.arm is None and self.measure is not None and self.measure not in ARM_MEASURES:
            raise _fail(
                where,
                f"measure {self.measure!r} is not allowed",
                f"use one of {', '.join(ARM_MEASURES)} (or MC, MN with arm = ...)",
            )
        if self.designs is not None:
            set_(self, "designs", _texts(self.designs, where, "designs"))
        allowed = set(PRIOR_KEYS) | set(self.moderators)
        if self.deficiency is not None:
            allowed.add(DEFICIENCY_MODERATOR)
        set_(self, "priors", _priors(self.priors, where, allowed))
        set_(self, "center", _center(self.center, where, self.moderators))
        if self.link_biomarker is not None and (
            self.model != "joint" or self.link_biomarker not in self.outcomes
        ):
            raise _fail(where, "link_biomarker must name one of the joint model's outcomes")
        for key in ("include_excluded", "prepost_r_uncertain", "claims"):
            _flag(getattr(self, key), where, key)
        set_(self, "robustness", _robustness(self.robustness, where))

    def _check_arm(self, where: str) -> None:
        """The within-arm keys: ``arm`` and a within-arm ``measure`` (MC by default) go together."""
        if self.arm is None:
            return
        if self.arm not in ARM_LEVELS:
            raise _fail(
                where,
                f"arm {self.arm!r} is not allowed",
                f"use {' or '.join(repr(a) for a in ARM_LEVELS)}, or leave arm out to pool "
                "between-group effects",
            )
        if self.measure is None:
            object.__setattr__(self, "measure", WITHIN_ARM_MEASURES[0])
        if self.measure not in WITHIN_ARM_MEASURES:
            raise _fail(
                where,
                f"measure {self.measure!r} compares arms; an analysis of one arm takes "
                f"{' or '.join(WITHIN_ARM_MEASURES)}",
                'use measure = "MC" (mean change) or "MN" (mean), or leave arm out',
            )
        if self.model == "joint" or self.deficiency is not None:
            what = "a joint model" if self.model == "joint" else "deficiency"
            raise _fail(
                where,
                f"arm = {self.arm!r} cannot be combined with {what}",
                "pool one arm with random_effects, robust or meta_regression on moderators",
            )

    def describe(self) -> str:
        """One line saying what the analysis is, for progress output and the report."""
        target = self.outcome if self.outcome else ", ".join(self.outcomes)
        if self.arm is not None:
            target += f" ({self.arm} arm, {self.measure})"
        mods = f" on {', '.join(self.moderators)}" if self.moderators else ""
        if self.deficiency is not None:
            mods = f" on log baseline dp-ucMGP (ref {self.deficiency.reference:g} pmol/L)"
        return f"{self.name}: {self.model}{mods} — {target}"


@dataclass(frozen=True)
class Settings:
    """Run settings from the ``[settings]`` table, the command line and the API (command line wins).

    Raises
    ------
    ConfigError
        When a value is not a whole number in its range (:data:`SETTINGS_LIMITS`) or
        ``target_accept`` is not in [0.5, 1).
    """

    draws: int = 1000
    tune: int = 1000
    chains: int = 2
    seed: int = 20261122
    target_accept: float = 0.9
    # MCMC analyses fitted at once, each in its own worker process (None: one per core, at most
    # one per MCMC analysis; 1: one after the other in this process). Results do not depend on it.
    jobs: int | None = None

    def __post_init__(self) -> None:
        for key, (low, high) in SETTINGS_LIMITS.items():
            value = getattr(self, key)
            if key == "jobs" and value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise _fail(
                    "settings",
                    f"{key} must be a whole number from {low} to {high:,}, got {value!r}",
                    f"e.g. {key} = {getattr(Settings, key) or 2}",
                )
        low, high = TARGET_ACCEPT_RANGE
        value = self.target_accept
        if not _is_number(value) or not low <= value < high:
            raise _fail(
                "settings", f"target_accept must be a number in [{low}, {high}), got {value!r}"
            )

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The setting names (the keys of ``[settings]``)."""
        return tuple(item.name for item in fields(cls))


# Sides a step-function selection model may select on (metafor's ``alternative``); "auto" takes
# the side of benefit from the outcome's direction.
SELECTION_SIDES = ("auto", "greater", "less")
# More cut-points than this leave intervals with a handful of studies each in any meta-analysis
# of realistic size; the weights are then prior, not data.
SELECTION_MAX_CUTPOINTS = 10


@dataclass(frozen=True)
class CumulativeDirichlet:
    """Prior on monotone selection weights: RoBMA's "cumulative Dirichlet".

    The default weight prior of R RoBMA 4 (``prior_weightfunction(weights = wf_cumulative())``).

    With ``J`` p-value intervals, ``eta ~ Dirichlet(alpha, ..., alpha)`` (``J`` entries) and the
    weight of interval ``j`` is ``omega_j = eta_j + ... + eta_J``, so ``omega_1 = 1 >= omega_2 >=
    ... >= omega_J > 0``: a less significant result is never *more* likely to be published than a
    more significant one. ``alpha = 1`` is uniform over those monotone weights.

    Raises
    ------
    ConfigError
        When ``alpha`` is not a positive number.
    """

    alpha: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "alpha", _positive_finite(self.alpha, "selection weights", "alpha")
        )

    def __str__(self) -> str:
        return f"cumulative_dirichlet({self.alpha:g})"


@dataclass(frozen=True)
class SelectionSpec:
    """A step-function selection model (Vevea & Hedges 1995; metafor's ``type = "stepfun"``).

    ``cutpoints`` are one-sided p-values ``0 < c_1 < ... < c_m < 1``: they cut [0, 1] into
    ``m + 1`` intervals, each with its own relative probability of publication (the first, most
    significant, fixed at 1). ``side`` is the direction the one-sided p-values test: ``"greater"``
    (p small for large positive effects, metafor's default), ``"less"``, or ``"auto"``: the side
    of benefit from the outcome's direction (``lower_is_better`` -> ``"less"``; otherwise
    ``"greater"``). ``weight_prior`` is a :class:`CumulativeDirichlet` (default, monotone weights)
    or a :class:`~metak.priors.Prior` with non-negative support given to each weight
    independently (e.g. ``uniform(0, 1)``; ``uniform(0, 100)`` is flat enough for the posterior
    mode to be the maximum-likelihood estimate).

    Raises
    ------
    ConfigError
        One line naming the bad key and what is allowed.
    """

    cutpoints: tuple[float, ...] = (0.025, 0.05)
    side: str = "auto"
    weight_prior: CumulativeDirichlet | Prior = field(default_factory=CumulativeDirichlet)

    def __post_init__(self) -> None:
        where = "selection model"
        cuts = self.cutpoints
        if not isinstance(cuts, (list, tuple)) or not 1 <= len(cuts) <= SELECTION_MAX_CUTPOINTS:
            raise _fail(
                where,
                f"cutpoints must be a list of 1 to {SELECTION_MAX_CUTPOINTS} p-values, "
                f"got {cuts!r}",
            )
        if not all(_is_number(c) and 0 < c < 1 for c in cuts) or list(cuts) != sorted(set(cuts)):
            raise _fail(
                where,
                f"cutpoints must be increasing p-values strictly between 0 and 1, got {cuts!r}",
                "e.g. cutpoints = [0.025, 0.05]",
            )
        object.__setattr__(self, "cutpoints", tuple(float(c) for c in cuts))
        if self.side not in SELECTION_SIDES:
            raise _fail(
                where,
                f"side {self.side!r} is not known",
                f"use one of {', '.join(SELECTION_SIDES)}",
            )
        prior = self.weight_prior
        if isinstance(prior, str):
            try:
                prior = parse_prior(prior)
            except ConfigError as err:
                raise _fail(f"{where}.weight_prior", str(err)) from None
            object.__setattr__(self, "weight_prior", prior)
        if not isinstance(prior, (CumulativeDirichlet, Prior)):
            raise _fail(
                where, f"weight_prior must be CumulativeDirichlet or a Prior, got {prior!r}"
            )
        if isinstance(prior, Prior) and prior.support == "real":
            raise _fail(
                where,
                f"weight prior {prior} allows negative weights",
                "use a prior on [0, inf), e.g. uniform(0, 1) or beta(1, 1)",
            )

    @property
    def n_intervals(self) -> int:
        """Number of p-value intervals (cut-points + 1)."""
        return len(self.cutpoints) + 1


# The deficiency analyses' summary parameter holding P(more deficient, more benefit).
PROBABILITY_PARAMETER = "p_more_deficient_more_benefit"

# Which sign of a question's parameter is a benefit, when the outcome's direction does not say
# (``benefit`` of a question): "lower" or "higher" values are better.
QUESTION_BENEFIT = ("lower", "higher")
# A question heads a block of the report: one line of plain words.
QUESTION_TEXT_MAX = 300
_PARAMETER_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*(\[[^\]\[]+\])?")


def level_name(level: float) -> str:
    """Summary parameter name of the effect at a baseline level, e.g. ``effect_at_300``."""
    return f"effect_at_{level:g}"


@dataclass(frozen=True)
class QuestionSpec:
    """A question the report answers first: which parameter of which analysis answers it.

    ``text`` is the question in plain words (one line, e.g. "Does vitamin K slow coronary
    calcification?"); ``analysis`` names an analysis of the run and ``parameter`` one of its
    summary parameters (``mu``, ``intercept``, a slope, ``effect_at_300``, ``mu[pwv_cf]``, ...;
    :func:`question_parameters`). ``benefit`` says which sign of the parameter is a benefit
    (``"lower"`` or ``"higher"``) when the outcome's direction of benefit does not (e.g. a joint
    model's link coefficient); by default it follows the outcome's direction.

    Raises
    ------
    ConfigError
        One line naming the question and the key, with a fix.
    """

    text: str
    analysis: str
    parameter: str
    benefit: str | None = None

    def __post_init__(self) -> None:
        where = "question"
        if not isinstance(self.text, str) or not self.text.strip():
            raise _fail(where, f"text must be non-empty text, got {self.text!r}")
        if len(self.text) > QUESTION_TEXT_MAX or any(c in self.text for c in "\r\n"):
            raise _fail(
                where,
                f"text {self.text[:40]!r}... is not one line of at most {QUESTION_TEXT_MAX} "
                "characters",
                "ask the question in one short sentence",
            )
        where = f"question {self.text!r}"
        safe_name(self.analysis, f"{where}: analysis")
        if not isinstance(self.parameter, str) or not _PARAMETER_PATTERN.fullmatch(self.parameter):
            raise _fail(
                where,
                f"parameter {self.parameter!r} is not a summary parameter name",
                'use a name of summary.csv\'s parameter column, e.g. "mu" or "mu[pwv_cf]"',
            )
        if self.benefit is not None and self.benefit not in QUESTION_BENEFIT:
            raise _fail(
                where,
                f"benefit {self.benefit!r} is not allowed",
                f"use {' or '.join(repr(b) for b in QUESTION_BENEFIT)}, or leave it out",
            )


def question_parameters(spec: AnalysisSpec) -> tuple[str, ...]:
    """The summary parameters of ``spec`` a question may ask about.

    Categorical moderators' slopes are named ``<column>[<level>]`` with levels known only from
    the data, so any ``<column>[...]`` is accepted for them (as ``<column>[*]`` here).
    """
    if spec.model == "joint":
        names = [f"{kind}[{o}]" for o in spec.outcomes for kind in ("mu", "tau")]
        names += [
            f"corr[{a},{b}]" for i, a in enumerate(spec.outcomes) for b in spec.outcomes[i + 1 :]
        ]
        if spec.link_biomarker is not None:
            names += [f"gamma_link[{o}]" for o in spec.outcomes if o != spec.link_biomarker]
        return tuple(names)
    names = ["intercept" if spec.model == "meta_regression" else "mu"]
    for moderator in spec.moderators:
        names += [moderator, f"{moderator}[*]"]
    names += ["tau", "tau2", "I2", "theta_new"]
    if spec.model == "robust":
        names.append("nu")
    if spec.deficiency is not None:
        names.append(DEFICIENCY_MODERATOR)
        names += [level_name(level) for level in spec.deficiency.levels]
        names.append(PROBABILITY_PARAMETER)
    return tuple(names)


def check_questions(
    questions: Sequence[QuestionSpec], specs: Sequence[AnalysisSpec]
) -> tuple[QuestionSpec, ...]:
    """Check that every question names an analysis of ``specs`` and one of its parameters.

    Returns
    -------
    tuple of QuestionSpec
        The questions, in order.

    Raises
    ------
    ConfigError
        One line naming the question, with the analyses or parameters to choose from.
    """
    by_name = {spec.name: spec for spec in specs}
    checked = []
    for question in questions:
        if not isinstance(question, QuestionSpec):
            raise ConfigError(f"questions must be QuestionSpec objects, got {question!r}")
        where = f"question {question.text!r}"
        spec = by_name.get(question.analysis)
        if spec is None:
            raise _fail(
                where,
                f"analysis {question.analysis!r} is not in the analysis file",
                f"use one of {', '.join(by_name) or '(no analyses)'}",
            )
        allowed = question_parameters(spec)
        categorical = question.parameter.split("[", 1)[0] + "[*]"
        if question.parameter not in allowed and not (
            "[" in question.parameter and categorical in allowed
        ):
            shown = [name for name in allowed if not name.endswith("[*]")]
            raise _fail(
                where,
                f"parameter {question.parameter!r} is not a parameter of analysis "
                f"{spec.name!r} ({spec.model})",
                f"use one of {', '.join(shown)}",
            )
        checked.append(question)
    return tuple(checked)
