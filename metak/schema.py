"""The CSV schema of a study-records directory: files, columns, types and allowed values.

This module is the only place that knows the schema (documented for users in README.md,
section "Study records: the CSV schema"). It is plain data: :class:`Column` and
:class:`FileSpec` instances plus the enumerations and unit factors, and what a number cell may
hold (:data:`NUMBER_PATTERN`, :func:`foreign_digits`). :mod:`metak.records` reads and checks
files against it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Column",
    "FileSpec",
    "STUDIES",
    "OUTCOMES",
    "ARMS",
    "CONTRASTS",
    "FILES",
    "COMPANION_FILES",
    "ARM_VALUES",
    "TIMEPOINTS",
    "ARM_MEASURES",
    "WITHIN_ARM_MEASURES",
    "ARM_LEVELS",
    "ANALYSIS_MEASURES",
    "LOG_OF_RATIO",
    "CONTRAST_MEASURES",
    "RATIO_MEASURES",
    "DIRECTIONS",
    "IMPLICIT_DIRECTION",
    "DEFAULT_MEASURE",
    "DEFAULT_PREPOST_R",
    "DEFAULT_CI_LEVEL",
    "DOSE_UNIT_UG_PER_DAY",
    "DURATION_UNIT_MONTHS",
    "DERIVED_STUDY_COLUMNS",
    "NUMERIC_STUDY_MODERATORS",
    "RESERVED_COLUMNS",
    "PROVENANCE_COLUMNS",
    "NUMBER_PATTERN",
    "ascii_number",
    "foreign_digits",
]

# A number as the files (and claim statements) write it. ASCII digits only: Python's \\d and
# float() also read Arabic-Indic, Devanagari or fullwidth digits, which no paper's table holds
# and which a reader of the file could not check against the source.
NUMBER_PATTERN = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_NUMBER = re.compile(NUMBER_PATTERN)

TEXT = "text"
NUMBER = "number"
INTEGER = "integer"
ENUM = "enum"

YES_NO = ("yes", "no")
DESIGNS = ("RCT", "single-arm", "non-randomised")
BLINDING = ("double", "single", "open")
FORMS = ("K1", "MK-4", "MK-7", "menadiol", "other")
CONTROLS = ("placebo", "standard care", "active", "none")
BASELINE_STATS = ("mean", "median")
FAMILIES = ("calcification", "stiffness", "biomarker", "other")
DIRECTIONS = ("lower_is_better", "higher_is_better")
ARM_VALUES = ("treatment", "control", "all")
TIMEPOINTS = ("baseline", "followup", "change")
ARM_MEASURES = ("MD", "SMD", "ROM")
# Measures of one arm on its own (metafor's MC: raw mean change, MN: raw mean), pooled by
# analyses that name an arm (``arm = "treatment"``); never a between-group effect.
WITHIN_ARM_MEASURES = ("MC", "MN")
# The arms such an analysis can pool.
ARM_LEVELS = ("treatment", "control")
# Ratios on the natural scale; metak converts them to the log scale (RM -> ROM, RR -> logRR, ...).
RATIO_MEASURES = ("RM", "RR", "OR", "HR")
CONTRAST_MEASURES = ("MD", "SMD", "ROM", "logRR", "logOR", "logHR", "GEN", *RATIO_MEASURES)
# Measures an outcome can be analysed on: the arm-level ones, plus contrast-only log ratios and
# GEN (a generic effect already on the analysis scale, e.g. a user's precomputed yi).
ANALYSIS_MEASURES = (*ARM_MEASURES, "logRR", "logOR", "logHR", "GEN")
# The log-scale analysis measure each natural-scale ratio converts to.
LOG_OF_RATIO = {"RM": "ROM", "RR": "logRR", "OR": "logOR", "HR": "logHR"}
ORDERS = ("t-c", "c-t")

# Direction given to outcomes that outcomes.csv does not declare (or when it is absent).
IMPLICIT_DIRECTION = "unspecified"
DEFAULT_MEASURE = "MD"
DEFAULT_PREPOST_R = 0.5
DEFAULT_CI_LEVEL = 0.95
DEFAULT_ORDER = "t-c"
DEFAULT_INCLUDE = "yes"

# Multiply a dose in this unit by the factor to get micrograms per day.
DOSE_UNIT_UG_PER_DAY = {
    "ug/day": 1.0,
    "mg/day": 1000.0,
    "ug/week": 1.0 / 7.0,
    "mg/week": 1000.0 / 7.0,
    "ug 3x/week": 3.0 / 7.0,
    "mg 3x/week": 3000.0 / 7.0,
}
# Multiply a duration in this unit by the factor to get months (a month is 365.25 / 12 days).
DURATION_UNIT_MONTHS = {
    "weeks": 7.0 / (365.25 / 12.0),
    "months": 1.0,
    "years": 12.0,
}


@dataclass(frozen=True)
class Column:
    """One CSV column: its type, whether it must be present, and the values it may hold.

    ``low``/``high`` bound numeric values (``low_open``/``high_open`` make the bound strict).
    ``quote_exempt`` numbers are metadata that need not appear in the row's provenance quote.
    """

    name: str
    kind: str = TEXT
    header_required: bool = False
    cell_required: bool = False
    allowed: tuple[str, ...] = ()
    low: float | None = None
    low_open: bool = False
    high: float | None = None
    high_open: bool = False
    quote_exempt: bool = False
    default: str | float | None = None

    @property
    def numeric(self) -> bool:
        """True for number and integer columns."""
        return self.kind in (NUMBER, INTEGER)

    @property
    def quote_checked(self) -> bool:
        """True when every value of this column must be found in the row's quote."""
        return self.numeric and not self.quote_exempt

    def range_text(self) -> str:
        """The allowed numeric range in words, e.g. ``'> 0'`` or ``'between 0 and 1'``."""
        if self.low is not None and self.high is not None:
            left = "(" if self.low_open else "["
            right = ")" if self.high_open else "]"
            return f"in {left}{_fmt(self.low)}, {_fmt(self.high)}{right}"
        if self.low is not None:
            return f"{'>' if self.low_open else '≥'} {_fmt(self.low)}"
        if self.high is not None:
            return f"{'<' if self.high_open else '≤'} {_fmt(self.high)}"
        return "any number"

    def in_range(self, value: float) -> bool:
        """Whether ``value`` lies within the column's bounds."""
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            return False
        return True


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


@dataclass(frozen=True)
class FileSpec:
    """One file of a study-records directory.

    ``extra_columns_are_moderators``: unknown columns are study-level moderators instead of errors.
    ``duplicate_key``: columns whose combination must be unique (empty: not checked here).
    """

    name: str
    columns: tuple[Column, ...]
    extra_columns_are_moderators: bool = False
    duplicate_key: tuple[str, ...] = ()
    example_header: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        """Known column names, in canonical order."""
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        """The :class:`Column` called ``name`` (``KeyError`` if unknown: a programming error)."""
        return _COLUMN_INDEX[self.name][name]


def _text(name: str, **kw: Any) -> Column:
    return Column(name, TEXT, **kw)


def _enum(name: str, allowed: Iterable[str], **kw: Any) -> Column:
    return Column(name, ENUM, allowed=tuple(allowed), **kw)


def _number(name: str, **kw: Any) -> Column:
    return Column(name, NUMBER, **kw)


def _integer(name: str, **kw: Any) -> Column:
    return Column(name, INTEGER, **kw)


def _required_text(name: str) -> Column:
    return Column(name, TEXT, header_required=True, cell_required=True)


_PROVENANCE = (
    _text("source"),
    _text("quote"),
    _enum("secondary", YES_NO),
    _text("notes"),
)
PROVENANCE_COLUMNS = ("source", "quote")

STUDIES = FileSpec(
    "studies.csv",
    (
        _required_text("study_id"),
        _text("citation"),
        _integer("year", low=1900, high=2100, quote_exempt=True),
        _enum("design", DESIGNS),
        _enum("blinding", BLINDING),
        _text("population"),
        _enum("form", FORMS),
        _number("dose", low=0, low_open=True),
        _enum("dose_unit", DOSE_UNIT_UG_PER_DAY),
        _number("duration", low=0, low_open=True),
        _enum("duration_unit", DURATION_UNIT_MONTHS),
        _enum("control", CONTROLS),
        _text("co_interventions"),
        _integer("n_randomised", low=2),
        _number("baseline_dpucmgp", low=0, low_open=True),
        _enum("baseline_dpucmgp_stat", BASELINE_STATS),
        _number("dpucmgp_inclusion_min", low=0, low_open=True),
        _enum("include", YES_NO, default=DEFAULT_INCLUDE),
        _text("exclusion_reason"),
        *_PROVENANCE,
    ),
    extra_columns_are_moderators=True,
    duplicate_key=("study_id",),
    example_header="study_id,citation,year,design,dose,dose_unit,duration,duration_unit",
)

OUTCOMES = FileSpec(
    "outcomes.csv",
    (
        _required_text("outcome"),
        _enum("family", FAMILIES),
        _text("description"),
        _text("unit"),
        _enum("direction", DIRECTIONS, header_required=True, cell_required=True),
        _enum("measure", ANALYSIS_MEASURES, default=DEFAULT_MEASURE),
        # A correlation; +-1 would make a change-score variance degenerate.
        _number(
            "prepost_r", low=-1, low_open=True, high=1, high_open=True, default=DEFAULT_PREPOST_R
        ),
    ),
    duplicate_key=("outcome",),
    example_header="outcome,family,unit,direction,measure",
)

ARMS = FileSpec(
    "arms.csv",
    (
        _required_text("study_id"),
        _required_text("outcome"),
        _enum("arm", ARM_VALUES, header_required=True, cell_required=True),
        _text("arm_label"),
        _enum("timepoint", TIMEPOINTS, header_required=True, cell_required=True),
        _number("time_months", low=0, quote_exempt=True),
        # n may be empty only on arm = all baseline rows (checked in records.py).
        _integer("n", header_required=True, low=2),
        _number("mean"),
        _number("sd", low=0, low_open=True),
        _number("se", low=0, low_open=True),
        _number("sem", low=0, low_open=True),
        _number("median"),
        _number("q1"),
        _number("q3"),
        _number("min"),
        _number("max"),
        _required_text("unit"),
        *_PROVENANCE,
    ),
    duplicate_key=("study_id", "outcome", "arm", "arm_label", "timepoint", "time_months"),
    example_header="study_id,outcome,arm,timepoint,n,mean,sd,unit,source,quote",
)

CONTRASTS = FileSpec(
    "contrasts.csv",
    (
        _required_text("study_id"),
        _required_text("outcome"),
        _text("arm_label"),
        _enum("measure", CONTRAST_MEASURES, header_required=True, cell_required=True),
        _number("estimate", header_required=True, cell_required=True),
        _enum("order", ORDERS, default=DEFAULT_ORDER),
        _number("se", low=0, low_open=True),
        _number("ci_low"),
        _number("ci_high"),
        _number(
            "ci_level",
            low=0,
            low_open=True,
            high=1,
            high_open=True,
            quote_exempt=True,
            default=DEFAULT_CI_LEVEL,
        ),
        _number("p_value", low=0, low_open=True, high=1),
        _integer("n_treatment", low=2),
        _integer("n_control", low=2),
        _enum("adjusted", YES_NO),
        *_PROVENANCE,
    ),
    example_header="study_id,outcome,measure,estimate,se,source,quote",
)

FILES = (STUDIES, OUTCOMES, ARMS, CONTRASTS)
# Other files of a study-records directory, read by `fit` (run.CLAIMS_NAME,
# run.DEFAULT_CONFIG_NAME); validation only checks that they are regular files.
COMPANION_FILES = ("claims.csv", "analyses.toml")

_COLUMN_INDEX = {spec.name: {c.name: c for c in spec.columns} for spec in FILES}

# Study columns metak computes: name -> (value column, unit column, unit factors).
DERIVED_STUDY_COLUMNS = {
    "dose_ug_day": ("dose", "dose_unit", DOSE_UNIT_UG_PER_DAY),
    "duration_months": ("duration", "duration_unit", DURATION_UNIT_MONTHS),
}
# Known numeric study columns offered as moderators besides the free moderator columns.
NUMERIC_STUDY_MODERATORS = ("dose_ug_day", "duration_months", "baseline_dpucmgp", "year")
# Names a moderator column may not take: metak adds these to the tables itself.
RESERVED_COLUMNS = ("line", *DERIVED_STUDY_COLUMNS)


def ascii_number(text: str) -> str | None:
    """The number ``text`` writes with other scripts' decimal digits, in ASCII digits, or None.

    ``"٥٠"`` -> ``"50"``, ``"０．５"`` -> ``"0.5"``; None when ``text`` is no number even so, or
    holds a numeral that is not a decimal digit (``"120¹"``: a superscript is more likely a
    footnote mark than a digit).
    """
    if any(ch.isnumeric() and unicodedata.decimal(ch, None) is None for ch in text):
        return None
    folded = unicodedata.normalize("NFKC", text)  # fullwidth forms: '０', '．', '－'
    folded = "".join(ch if ch.isascii() else str(unicodedata.decimal(ch, ch)) for ch in folded)
    return folded if _NUMBER.fullmatch(folded) else None


def foreign_digits(text: str) -> tuple[str, str] | None:
    """Message and fix when ``text`` holds a numeral that is not an ASCII digit 0-9, else None.

    Parameters
    ----------
    text : str
        A cell or the number part of a statement, e.g. ``"٥٠"``, ``"０.５"``, ``"120¹"``.

    Returns
    -------
    (str, str) or None
        ``("not a number: '٥' (ARABIC-INDIC DIGIT FIVE) is not one of the ASCII digits 0-9",
        "write '50'")``; the fix names the number in ASCII digits when :func:`ascii_number`
        finds one.
    """
    numeral = next((ch for ch in text if ch.isnumeric() and not ch.isascii()), None)
    if numeral is None:
        return None
    name = unicodedata.name(numeral, f"U+{ord(numeral):04X}")
    message = f"not a number: {numeral!r} ({name}) is not one of the ASCII digits 0-9"
    equivalent = ascii_number(text)
    if equivalent is not None:
        return message, f"write {equivalent!r}"
    return message, "write the number with the ASCII digits 0-9 and '.' (a superscript is no digit)"
