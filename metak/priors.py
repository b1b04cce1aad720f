"""Prior specifications: small frozen dataclasses parsed from text like ``"normal(0, 10)"``.

A :class:`Prior` is plain data (a family name and its parameters) with numpy/scipy densities for
the exact path; :mod:`metak.models` turns it into a PyMC distribution. ``str(prior)`` is the text
form and parses back to an equal prior.

Families (parameter names follow PyMC, so ``Prior.kwargs`` can be passed to the PyMC class named
by ``Prior.pymc_name``):

=============  ===================  ========  ============================================
text           parameters           support   note
=============  ===================  ========  ============================================
normal         mu, sigma            real
halfnormal     sigma                positive
halfcauchy     beta                 positive  ``beta`` is the scale
exponential    lam                  positive  ``lam`` is the *rate* (mean ``1/lam``)
uniform        lower, upper         real      "positive" when ``lower >= 0``
student_t      nu, mu, sigma        real
halfstudent_t  nu, sigma            positive
lognormal      mu, sigma            positive  ``mu``, ``sigma`` on the log scale
beta           alpha, beta          unit
gamma          alpha, beta          positive  ``beta`` is the *rate* (mean ``alpha/beta``)
=============  ===================  ========  ============================================

Default priors (:func:`default_priors`) are scaled by the outcome's *unit information standard
deviation* σ_U (:func:`unit_information_sd`): the within-study standard deviation of one
participant's contribution, so that a study of ``n`` participants has standard error about
``σ_U / sqrt(n)`` (Röver et al. 2021, Res Synth Methods 12:448, eq. 6; R bayesmeta ``uisd()``).
Because σ_U carries the outcome's unit, the defaults mean the same thing for an outcome in mmHg
as for a standardised mean difference:

- heterogeneity ``tau ~ halfnormal(0.5 σ_U)``: a weakly informative half-normal scaled to the unit
  information SD, as discussed by Röver et al. (2021); it puts about 95 % of its mass below σ_U,
  i.e. between-study spread smaller than the spread of individual participants.
- overall effect / intercept ``mu, intercept ~ normal(0, 4 σ_U)``: deliberately weak, so that it is
  practically flat over any plausible effect (an effect of 4 σ_U is four participant SDs). Note
  this is *wider* than RoBMA 4's defaults (``normal(0, σ_U/2)`` for the effect and
  ``halfnormal(σ_U/4)`` for tau), which are tuned for Bayes-factor testing; metak's defaults are
  for estimation, where a wider effect prior costs nothing.
- slopes ``normal(0, 4 σ_U / sd(moderator))`` when the moderator's SD is given (a one-SD change
  in the moderator gets the same prior as the effect), else ``normal(0, 4 σ_U)`` per unit.
- Student-t degrees of freedom ``nu ~ gamma(2, 0.1)`` (Juárez & Steel 2010), for robust models.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from metak.distributions import Distribution, distribution
from metak.errors import ConfigError

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = [
    "FAMILIES",
    "Prior",
    "parse_prior",
    "UnitInformationSD",
    "unit_information_sd",
    "default_priors",
    "ASSUMED_N_WHEN_UNKNOWN",
]

# family -> (parameter names, PyMC class name)
FAMILIES: dict[str, tuple[tuple[str, ...], str]] = {
    "normal": (("mu", "sigma"), "Normal"),
    "halfnormal": (("sigma",), "HalfNormal"),
    "halfcauchy": (("beta",), "HalfCauchy"),
    "exponential": (("lam",), "Exponential"),
    "uniform": (("lower", "upper"), "Uniform"),
    "student_t": (("nu", "mu", "sigma"), "StudentT"),
    "halfstudent_t": (("nu", "sigma"), "HalfStudentT"),
    "lognormal": (("mu", "sigma"), "LogNormal"),
    "beta": (("alpha", "beta"), "Beta"),
    "gamma": (("alpha", "beta"), "Gamma"),
}
# Parameters that must be > 0, per family (location parameters may be any real number).
_POSITIVE = {
    "normal": ("sigma",),
    "halfnormal": ("sigma",),
    "halfcauchy": ("beta",),
    "exponential": ("lam",),
    "uniform": (),
    "student_t": ("nu", "sigma"),
    "halfstudent_t": ("nu", "sigma"),
    "lognormal": ("sigma",),
    "beta": ("alpha", "beta"),
    "gamma": ("alpha", "beta"),
}
# Spellings accepted for a family, after lower-casing and removing "_", "-" and spaces.
_ALIASES = {name.replace("_", ""): name for name in FAMILIES} | {
    "t": "student_t",
    "halft": "halfstudent_t",
}
_ALLOWED_TEXT = ", ".join(f"{name}({', '.join(params)})" for name, (params, _) in FAMILIES.items())
_EXAMPLE = 'e.g. "normal(0, 1)" or "halfnormal(0.5)"'
_CALL = re.compile(r"^\s*([A-Za-z][A-Za-z_\- ]*?)\s*\((.*)\)\s*$")
_NAMED = re.compile(r"^\s*([A-Za-z_]\w*)\s*=\s*(.+?)\s*$", re.ASCII)
# A number in ASCII digits: float() alone would also read '١٠' (Arabic-Indic) or '1_0'.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

# When no study reports a sample size and the measure has no known UISD, σ_U is estimated as if
# every study had this many participants: a stated, visible assumption rather than a silent one.
ASSUMED_N_WHEN_UNKNOWN = 100.0


def _bad(text: str, reason: str) -> ConfigError:
    return ConfigError(f"prior {text!r}: {reason}; allowed: {_ALLOWED_TEXT}; {_EXAMPLE}")


def _fmt(value: float) -> str:
    """Shortest text that parses back to exactly ``value`` (``10`` rather than ``10.0``)."""
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


# A prior's parameters must give a density that double precision can evaluate: scales, rates and
# shapes from 1e-100 to 1e100 (halfnormal(1e-320) underflows to a zero scale, its density to
# infinity, and PyMC's compiled model crashes), locations and bounds of magnitude at most 1e100.
PARAMETER_MAGNITUDE = (1e-100, 1e100)


def _problem(family: str, values: tuple[float, ...] | None) -> str | None:
    """Why ``family(values)`` is not a valid prior, or None when it is."""
    if family not in FAMILIES:
        return f"unknown family {family!r}"
    if values is None:
        return "parameters must be numbers"
    names = FAMILIES[family][0]
    if len(values) != len(names):
        return f"{family} takes {len(names)} parameter(s) ({', '.join(names)})"
    for name, value in zip(names, values, strict=True):
        if not math.isfinite(value):
            return f"{name} must be a finite number"
        if name in _POSITIVE[family] and value <= 0:
            return f"{name} must be > 0, got {_fmt(value)}"
        low, high = PARAMETER_MAGNITUDE
        if name in _POSITIVE[family] and not low <= value <= high:
            return f"{name} must be from {low:g} to {high:g}, got {value!r}"
        if abs(value) > high:
            return f"{name} must be of magnitude at most {high:g}, got {value!r}"
    if family == "uniform" and not values[0] < values[1]:
        return "uniform needs lower < upper"
    return None


def _unusable(prior: Prior) -> str | None:
    """Why the prior cannot be used in double precision, or None.

    E.g. ``lognormal(1000, 1)``, whose median overflows. A density that is infinite at a boundary
    of the support (beta or gamma shapes below 1) is a proper prior and is accepted.
    """
    with np.errstate(all="ignore"):
        median = float(prior.ppf(0.5))
        density = float(prior.logpdf(median)) if math.isfinite(median) else math.nan
    if not math.isfinite(median) or math.isnan(density):
        return "it cannot be evaluated in double precision (its median or density overflows)"
    return None


@dataclass(frozen=True)
class Prior:
    """A prior distribution: ``family`` (see :data:`FAMILIES`) and its ``params`` in order.

    Parameters
    ----------
    family : str
        A key of :data:`FAMILIES` (the canonical name: :func:`parse_prior` accepts other
        spellings).
    params : tuple of float
        The parameters in the order of :data:`FAMILIES` (PyMC's parameterisation); stored as
        floats.

    Raises
    ------
    ConfigError
        If the family is unknown, the number of parameters is wrong or a parameter is out of range.
    """

    family: str
    params: tuple[float, ...]

    def __post_init__(self) -> None:
        try:
            values = tuple(float(p) for p in self.params)
        except (TypeError, ValueError):
            values = None
        reason = _problem(self.family, values)
        if reason:
            raise _bad(f"{self.family}{tuple(self.params)!r}", reason)
        object.__setattr__(self, "params", values)
        reason = _unusable(self)
        if reason:
            raise _bad(str(self), reason)

    def __str__(self) -> str:
        return f"{self.family}({', '.join(_fmt(p) for p in self.params)})"

    # -- description -------------------------------------------------------------------------

    @property
    def kwargs(self) -> dict[str, float]:
        """Parameters by name (PyMC's names), e.g. ``{"mu": 0.0, "sigma": 10.0}``."""
        return dict(zip(FAMILIES[self.family][0], self.params, strict=True))

    @property
    def pymc_name(self) -> str:
        """Name of the PyMC distribution class, e.g. ``"HalfNormal"``."""
        return FAMILIES[self.family][1]

    @property
    def bounds(self) -> tuple[float, float]:
        """Lower and upper end of the support (``-inf``/``inf`` when unbounded)."""
        if self.family in ("normal", "student_t"):
            return (-math.inf, math.inf)
        if self.family == "uniform":
            return (self.params[0], self.params[1])
        if self.family == "beta":
            return (0.0, 1.0)
        return (0.0, math.inf)

    @property
    def support(self) -> str:
        """``"real"``, ``"positive"`` (non-negative) or ``"unit"`` (the interval [0, 1])."""
        if self.family == "beta":
            return "unit"
        return "positive" if self.bounds[0] >= 0 else "real"

    # -- numerics ----------------------------------------------------------------------------

    @cached_property
    def _dist(self) -> Distribution:
        # Built once per prior; scipy.special formulas, not scipy.stats (see metak.distributions).
        return distribution(self.family, self.params)

    def logpdf(self, x: ArrayLike) -> np.ndarray:
        """Log density at ``x`` (``-inf`` outside the support)."""
        return np.asarray(self._dist.logpdf(np.asarray(x, dtype=float)), dtype=float)

    def cdf(self, x: ArrayLike) -> np.ndarray:
        """Cumulative distribution function at ``x``."""
        return np.asarray(self._dist.cdf(np.asarray(x, dtype=float)), dtype=float)

    def ppf(self, q: ArrayLike) -> np.ndarray:
        """Quantile function at probabilities ``q``."""
        return np.asarray(self._dist.ppf(np.asarray(q, dtype=float)), dtype=float)

    def rvs(self, size: int | tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        """Random draws (by inverse CDF, so every family uses ``rng`` the same way).

        Parameters
        ----------
        size : int or tuple of int
            Shape of the array of draws.
        rng : numpy.random.Generator
            Source of the uniform draws (one per value).

        Returns
        -------
        numpy.ndarray
            Draws of shape ``size``.
        """
        return self.ppf(rng.uniform(size=size))

    @property
    def mean(self) -> float | None:
        """Prior mean, or None when it is infinite or undefined (e.g. halfcauchy)."""
        value = float(self._dist.mean())
        return value if math.isfinite(value) else None

    @property
    def sd(self) -> float | None:
        """Prior standard deviation, or None when it is infinite or undefined."""
        value = float(self._dist.std())
        return value if math.isfinite(value) else None


def parse_prior(text: str) -> Prior:
    """Parse prior text such as ``"normal(0, 10)"`` or ``"halfnormal(sigma=0.5)"``.

    Parameters may be given in order or by name; family names ignore case, ``_`` and ``-``.

    Parameters
    ----------
    text : str
        ``family(p1, p2)`` or ``family(name=value, ...)``; numbers in ASCII digits.

    Returns
    -------
    Prior
        The checked prior; ``str()`` of it parses back to an equal one.

    Raises
    ------
    ConfigError
        One line naming the text, what is wrong, the allowed families and an example.
    """
    if not isinstance(text, str):
        raise _bad(str(text), "a prior must be text")
    match = _CALL.match(text)
    if not match:
        raise _bad(text, "expected family(parameters)")
    key = re.sub(r"[_\- ]", "", match.group(1).lower())
    if key not in _ALIASES:
        raise _bad(text, f"unknown family {match.group(1).strip()!r}")
    family = _ALIASES[key]
    names = FAMILIES[family][0]
    inner = match.group(2).strip()
    items = [item.strip() for item in inner.split(",")] if inner else []
    if any(not item for item in items):
        raise _bad(text, "empty parameter")
    positional: list[float] = []
    named: dict[str, float] = {}
    for item in items:
        named_match = _NAMED.match(item)
        name, value_text = (
            (named_match.group(1), named_match.group(2)) if named_match else (None, item)
        )
        if not _NUMBER.fullmatch(value_text):
            raise _bad(text, f"parameter {item!r} is not a number (ASCII digits 0-9)")
        value = float(value_text)
        if name is None:
            if named:
                raise _bad(text, "positional parameters must come before named ones")
            positional.append(value)
        elif name not in names:
            raise _bad(text, f"{family} has no parameter {name!r} (it takes {', '.join(names)})")
        else:
            named[name] = value
    if len(positional) + len(named) != len(names):
        raise _bad(text, f"{family} takes {len(names)} parameter(s) ({', '.join(names)})")
    values = list(positional)
    for name in names[len(positional) :]:
        if name not in named:
            raise _bad(text, f"missing parameter {name!r}")
        values.append(named.pop(name))
    if named:
        raise _bad(text, f"parameter {next(iter(named))!r} given twice")
    reason = _problem(family, tuple(values))
    if reason:
        raise _bad(text, reason)
    return Prior(family, tuple(values))


@dataclass(frozen=True)
class UnitInformationSD:
    """An estimate of the unit information SD σ_U and how it was obtained."""

    value: float
    method: str  # "sample_size" | "measure" | "assumed_n"
    note: str  # one line, for the report

    def __float__(self) -> float:
        return self.value


# σ_U for standardised measures, per *total* sample size: var(SMD) ≈ 1/n1 + 1/n2 = 4/N for two
# equal arms, so σ_U = 2. (RoBMA tabulates sqrt(2), which is per arm; metak's n is the total.)
_KNOWN_UISD = {"SMD": 2.0}


def unit_information_sd(
    vi: ArrayLike, n_total: ArrayLike | None = None, measure: str | None = None
) -> UnitInformationSD:
    """Estimate the unit information SD from within-study variances and total sample sizes.

    σ_U = sqrt(Σ n_i / Σ (1/v_i)) over studies with a known sample size: Röver et al. (2021,
    Res Synth Methods 12:448, eq. 6), as in R bayesmeta's ``uisd()`` and RoBMA's
    ``estimate_unit_information_sd()``.

    Parameters
    ----------
    vi : array_like
        Within-study variances (squared standard errors), > 0.
    n_total : array_like, optional
        Total sample size of each study; NaN where unknown.
    measure : str, optional
        Effect measure; ``"SMD"`` has a known σ_U of 2 (per total sample size), used when no
        study reports n.

    Returns
    -------
    UnitInformationSD
        The value, ``method`` (``"sample_size"``, ``"measure"`` or ``"assumed_n"``) and a one-line
        ``note``. When no sample size is known and the measure has no known σ_U, σ_U is computed
        as if every study had :data:`ASSUMED_N_WHEN_UNKNOWN` participants, and the note says so.

    Raises
    ------
    ValueError
        When ``vi`` is empty or holds a variance that is not finite and > 0, or ``n_total`` has
        another length (programming errors: effect sizes are checked before).
    """
    vi = np.asarray(vi, dtype=float).ravel()
    if vi.size == 0 or not np.all(np.isfinite(vi) & (vi > 0)):
        raise ValueError("unit_information_sd needs at least one finite, positive variance")
    n = np.full(vi.shape, np.nan) if n_total is None else np.asarray(n_total, dtype=float).ravel()
    if n.shape != vi.shape:
        raise ValueError(f"n_total has {n.size} values for {vi.size} variances")
    known = np.isfinite(n) & (n > 0)
    if known.any():
        value = math.sqrt(n[known].sum() / (1.0 / vi[known]).sum())
        note = (
            f"unit information SD {value:.4g} from sample sizes and standard errors "
            "(Röver et al. 2021, eq. 6)"
        )
        if not known.all():
            note += (
                f"; {int((~known).sum())} of {vi.size} studies without a sample size were left out"
            )
        return UnitInformationSD(value, "sample_size", note)
    if measure is not None and measure.upper() in _KNOWN_UISD:
        value = _KNOWN_UISD[measure.upper()]
        return UnitInformationSD(
            value,
            "measure",
            f"unit information SD {value:g} for {measure.upper()} (no sample sizes)",
        )
    value = math.sqrt(ASSUMED_N_WHEN_UNKNOWN * vi.size / (1.0 / vi).sum())
    note = (
        f"no sample sizes: unit information SD {value:.4g} assumes {ASSUMED_N_WHEN_UNKNOWN:g} "
        "participants per study; give n to scale the default priors properly"
    )
    return UnitInformationSD(value, "assumed_n", note)


def default_priors(
    unit_sd: float, moderator_sds: Mapping[str, float] | None = None
) -> dict[str, Prior]:
    """The default priors for an outcome with unit information SD ``unit_sd``.

    See the module docstring for the choices and their sources.

    Parameters
    ----------
    unit_sd : float
        The outcome's unit information SD σ_U (:func:`unit_information_sd`), in the unit of the
        effect sizes; > 0.
    moderator_sds : mapping of str to float, optional
        Standard deviation of each moderator across studies, in the moderator's unit. Entries
        that are not finite and > 0 are skipped (those moderators get the ``slope`` prior).

    Returns
    -------
    dict of str to Prior
        Keys ``mu``, ``intercept``, ``slope``, ``tau`` and ``nu``, plus one slope prior per
        moderator in ``moderator_sds``, scaled so that a one-SD change in the moderator has the
        prior of the overall effect.

    Raises
    ------
    ValueError
        When ``unit_sd`` is not a finite number > 0.
    """
    unit_sd = float(unit_sd)
    if not (math.isfinite(unit_sd) and unit_sd > 0):
        raise ValueError(f"unit_sd must be a positive number, got {unit_sd!r}")
    effect = Prior("normal", (0.0, 4.0 * unit_sd))
    priors = {
        "mu": effect,
        "intercept": effect,
        "slope": effect,
        "tau": Prior("halfnormal", (0.5 * unit_sd,)),
        "nu": Prior("gamma", (2.0, 0.1)),
    }
    for name, sd in (moderator_sds or {}).items():
        sd = float(sd)
        if math.isfinite(sd) and sd > 0:
            priors[name] = Prior("normal", (0.0, 4.0 * unit_sd / sd))
    return priors
