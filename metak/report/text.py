"""Plain-words text for the report: number formatting, direction of benefit, measure names.

Returns plain (unescaped) strings; escaping is the page assembler's job (:mod:`metak.report.html`).
"""

from __future__ import annotations

import math
import re

from numpy.typing import ArrayLike

__all__ = [
    "MEASURE_NAMES",
    "PRIOR_DIGITS",
    "fmt",
    "significant",
    "rounded_prior",
    "decimals_for",
    "direction_words",
    "favours_labels",
    "measure_label",
    "interval",
    "sentence",
]

MEASURE_NAMES = {
    "MD": "mean difference",
    "SMD": "standardised mean difference (Hedges' g)",
    "ROM": "log ratio of means",
}
_MINUS = "\u2212"
# Priors are shown with at most this many significant digits ("normal(0, 911.3)", not
# "normal(0, 911.2641118089409)"); analyses.json keeps them at full precision.
PRIOR_DIGITS = 4
_NUMBER = re.compile(r"(?<![A-Za-z_])[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?")


def decimals_for(values: ArrayLike) -> int:
    """Decimals that show ~3 significant digits for the typical magnitude of ``values``."""
    finite = [abs(float(v)) for v in values if v is not None and math.isfinite(float(v)) and v != 0]
    if not finite:
        return 2
    typical = sorted(finite)[len(finite) // 2]
    return int(min(4, max(0, 2 - math.floor(math.log10(typical)))))


def fmt(value: float | None, decimals: int = 2) -> str:
    """A number rounded for reading, with a true minus sign; empty for missing values."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    if not math.isfinite(number):
        return ""
    text = f"{number:.{decimals}f}"
    if float(text) == 0:  # no "-0.00"
        text = text.lstrip("-")
    return text.replace("-", _MINUS)


def significant(value: float, digits: int = PRIOR_DIGITS) -> str:
    """A number with at most ``digits`` significant digits, true minus sign ("911.3", "1e+04")."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    if not math.isfinite(number):
        return ""
    return f"{number:.{digits}g}".replace("-", _MINUS)


def rounded_prior(text: str) -> str:
    """Prior text with every number rounded for reading: ``normal(0, 911.3)``."""
    return _NUMBER.sub(lambda match: significant(match.group(0)), str(text))


def interval(mid: float, low: float, high: float, decimals: int) -> str:
    """``"mid [low, high]"``."""
    return f"{fmt(mid, decimals)} [{fmt(low, decimals)}, {fmt(high, decimals)}]"


def direction_words(direction: str, intervention: str) -> str:
    """E.g. "lower is better: a negative effect favours vitamin K"."""
    if direction == "lower_is_better":
        return f"lower is better: a negative effect favours {intervention}"
    if direction == "higher_is_better":
        return f"higher is better: a positive effect favours {intervention}"
    return "direction of benefit not specified: verdicts speak only of the sign of the effect"


def favours_labels(direction: str, intervention: str, comparator: str) -> tuple[str, str]:
    """Labels for the left (negative) and right (positive) side of an effect axis."""
    if direction == "lower_is_better":
        return f"Favours {intervention}", f"Favours {comparator}"
    if direction == "higher_is_better":
        return f"Favours {comparator}", f"Favours {intervention}"
    return "Negative effect", "Positive effect"


def measure_label(measure: str, unit: str = "") -> str:
    """Axis label for an effect, e.g. "Mean difference (m/s)"."""
    name = MEASURE_NAMES.get(measure, measure or "effect")
    name = name[:1].upper() + name[1:]
    return f"{name} ({unit})" if unit and measure == "MD" else name


def sentence(text: str) -> str:
    """Capitalise the first letter only ("vitamin K" must keep its capital K)."""
    return text[:1].upper() + text[1:]
