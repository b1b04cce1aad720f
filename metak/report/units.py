"""The unit of every number the report shows: effects, slopes, heterogeneity, link coefficients.

An effect on the mean-difference scale is in the outcome's unit (``outcomes.csv``, carried into
``analyses.json``); standardised and log-scale measures have no outcome unit and are named by
what they are. Plain strings; escaping is the page assembler's job.
"""

from __future__ import annotations

from metak.report.inputs import AnalysisInfo

__all__ = [
    "DEFICIENCY_MODERATOR",
    "PROBABILITY_PARAMETER",
    "MEASURE_UNITS",
    "split_parameter",
    "parameter_outcome",
    "effect_unit",
    "parameter_unit",
    "with_unit",
]

# Summary parameter names of the deficiency analyses (README.md, "summary.csv columns").
DEFICIENCY_MODERATOR = "log_baseline_dpucmgp"
PROBABILITY_PARAMETER = "p_more_deficient_more_benefit"

# Measures whose effects are not in the outcome's unit.
MEASURE_UNITS = {
    "SMD": "SD units",
    "ROM": "log ratio of means",
    "logRR": "log risk ratio",
    "logOR": "log odds ratio",
    "logHR": "log hazard ratio",
}
_EFFECT_LIKE = ("mu", "intercept", "tau", "theta_new")
_NO_UNIT = ("I2", "nu", "r_prepost", "corr", PROBABILITY_PARAMETER)


def split_parameter(parameter: str) -> tuple[str, str | None]:
    """``"mu[pwv_cf]"`` -> ``("mu", "pwv_cf")``; ``"tau"`` -> ``("tau", None)``."""
    if parameter.endswith("]") and "[" in parameter:
        base, inner = parameter[:-1].split("[", 1)
        return base, inner
    return parameter, None


def parameter_outcome(info: AnalysisInfo, parameter: str) -> str | None:
    """The outcome a parameter is about, or None for one between outcomes (``corr[...]``).

    A joint model's ``mu[o]``, ``tau[o]``, ``gamma_link[o]`` are about ``o``; every parameter of
    another model is about the analysis' outcome.
    """
    base, inner = split_parameter(parameter)
    if info.model != "joint":
        return info.outcomes[0]
    if base in ("mu", "tau", "gamma_link") and inner in info.outcomes:
        return inner
    return None


def effect_unit(info: AnalysisInfo, outcome: str | None = None) -> str:
    """The unit of an effect on ``outcome`` (default: the analysis' outcome) in this analysis."""
    measures = [m.strip() for m in info.measure.split(",") if m.strip()]
    if len(measures) == 1 and measures[0] in MEASURE_UNITS:
        return MEASURE_UNITS[measures[0]]
    return info.outcome_info(outcome).unit


def parameter_unit(info: AnalysisInfo, parameter: str) -> str:
    """The unit of a summary parameter of ``info``.

    E.g. ``"m/s"``, ``"(Agatston units)²"``, ``"m/s per pmol/L"``; ``"%"`` for I²; empty for
    unitless quantities (correlations, probabilities, degrees of freedom).
    """
    base, inner = split_parameter(parameter)
    outcome = parameter_outcome(info, parameter)
    if base in _NO_UNIT:
        return "%" if base == "I2" else ""
    unit = effect_unit(info, outcome)
    if base in _EFFECT_LIKE or base.startswith("effect_at_"):
        return unit
    if base == "tau2":
        return f"({unit})²" if " " in unit or "/" in unit else (f"{unit}²" if unit else "")
    if base == "gamma_link":
        marker = effect_unit(info, info.link_biomarker) if info.link_biomarker else ""
        return f"{unit} per {marker}" if unit and marker else unit
    if inner is not None:  # a categorical moderator's level: a difference of effects
        return unit
    if base == DEFICIENCY_MODERATOR:
        return f"{unit} per unit of log(baseline dp-ucMGP)" if unit else ""
    return f"{unit} per unit of {base}" if unit else ""


def with_unit(text: str, unit: str) -> str:
    """``"−23.6 Agatston units"``; ``"%"`` attaches without a space; no unit, no change."""
    if not unit:
        return text
    return f"{text}{unit}" if unit == "%" else f"{text} {unit}"
