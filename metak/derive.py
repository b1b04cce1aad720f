"""Turn validated study records into effect sizes: one row per study × outcome × comparison.

:func:`compute_effects` does not raise for a study it cannot use; it returns the reason in
:attr:`EffectsResult.unusable` instead. It raises :class:`~metak.errors.InputError` (exit 2)
only for numbers that break the arithmetic: an effect size, its variance, CI or conversion
variance that is not finite, a variance that underflows to 0 (below the smallest normal float,
where 1/vi overflows), or any overflow or division by zero on the way (an SD of ``1e200``, an SE
of ``1e-200``). Validation cannot see these: they depend on how the rows combine. The rules, in
the order they are tried:

1. **Which measure.** The outcome's ``measure`` in ``outcomes.csv`` (MD by default), or
   ``measure_override`` (MD, SMD or ROM) for every outcome.
2. **Comparisons.** Each treatment ``arm_label`` (from arms.csv and contrasts.csv) is compared
   with the study's control arm. A study with one treatment arm has one comparison, whatever its
   label. With several treatment arms sharing one control, the control's n is split evenly across
   the comparisons built from arm rows (Cochrane Handbook v6.4, 23.3.4), and the derivation says
   so; contrast rows keep their reported SE.
3. **A reported contrast is preferred** over arm rows: it is what the paper reported and is often
   covariate-adjusted. It is used when its measure is the analysis measure, is ``GEN`` (already on
   the analysis scale), or converts exactly (``RM`` -> ``ROM`` on the log scale). Among several
   usable contrasts for one comparison, an adjusted one is preferred, then the first in the file.
   Its SE comes from ``se`` (for ``RM`` by the delta method, se/estimate), else from the CI, else
   from the p-value; CIs and p-values use Student's t with ``n_treatment + n_control - 2`` df when
   both sizes are given, the normal distribution otherwise (Cochrane Handbook 6.5.2.3).
   ``order = c-t`` is turned round. Other measures (``logRR`` ...) are not comparable with an
   arm-level measure and are reported unusable unless arm rows give the effect.
4. **Otherwise arm rows**, each arm summarised as mean, SD and n. A mean with ``se``/``sem`` gives
   ``sd = se * sqrt(n)``; a median with quartiles and/or range is converted (Luo 2018 mean, Wan
   2014 / Shi 2020 SD, :mod:`metak.effects.medians`) and flagged ``converted``. When an arm has
   several rows for one timepoint, the latest ``time_months`` is used for follow-up and change,
   the earliest for baseline.

   - **MD**: change scores when both arms have them, each arm's either reported (``change`` row) or
     derived from baseline and follow-up with the outcome's ``prepost_r`` (default 0.5; Cochrane
     Handbook 6.5.2.8); else follow-up values (flagged: baseline assumed balanced by
     randomisation).
   - **SMD**: follow-up values first, then change scores, because SMDs of final values and of
     changes are not the same quantity (Cochrane Handbook 10.5.2) and final values are the
     common case.
   - **ROM**: follow-up means only (a ratio of mean changes is not defined).

   Whole-sample (``arm = all``) baseline rows never give an effect.

Columns of :attr:`EffectsResult.effects` (``EFFECT_COLUMNS``): ``yi`` and ``vi`` are the effect
and its *sampling* variance; ``vi_conversion`` is the extra variance of median conversions
(0 when none), to be added to ``vi`` by the model; ``se``, ``ci_low`` and ``ci_high`` (95%,
normal) are from ``vi`` alone. ``prepost_r`` is the assumed correlation where change scores were
derived (NaN otherwise) and ``dvi_dr`` the exact slope of ``vi`` in that correlation for MD
(``vi(r) = vi + (r - prepost_r) * dvi_dr``; NaN where not applicable). ``rows`` points at the
file lines used, e.g. ``"arms.csv:12,13; contrasts.csv:4"``.

**Linear time.** Each study × outcome runs the rules above as plain sequential code that
requests its arithmetic (:mod:`metak.batching`): the arithmetic of all studies runs in one numpy
call per operation, and the tables are read as Python lists, not per-row pandas objects. A
study's numbers, and the error its numbers raise, are those it would have on its own.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import special

from metak.batching import Call, collector_paused, run_all
from metak.effects import basic, change, conversions, medians, within_arm
from metak.errors import ConfigError, InputError, Problem
from metak.schema import ANALYSIS_MEASURES, ARM_LEVELS, LOG_OF_RATIO, WITHIN_ARM_MEASURES

if TYPE_CHECKING:
    from metak.records import StudyRecords

__all__ = [
    "EFFECT_COLUMNS",
    "MEASURES",
    "UNUSABLE_COLUMNS",
    "EffectsResult",
    "compute_arm_effects",
    "compute_effects",
]

MEASURES = ("MD", "SMD", "ROM")
EFFECT_COLUMNS = (
    "study_id",
    "outcome",
    "comparison",
    "arm_label",
    "measure",
    "direction",
    "yi",
    "vi",
    "se",
    "ci_low",
    "ci_high",
    "n_treatment",
    "n_control",
    "derivation",
    "converted",
    "vi_conversion",
    "prepost_r",
    "dvi_dr",
    "adjusted",
    "secondary",
    "source",
    "rows",
)
UNUSABLE_COLUMNS = ("study_id", "outcome", "reason")

_DEFAULT_MEASURE = "MD"
_DEFAULT_R = 0.5
_DEFAULT_LEVEL = 0.95
_Z95 = float(special.ndtri(0.975))
# Contrast measures already on the scale of each analysis measure (GEN = generic, as given).
_SAME_SCALE = {measure: (measure, "GEN") for measure in ANALYSIS_MEASURES}
# Natural-scale ratios that convert exactly (by taking logs) to an analysis measure.
_LOG_OF = {log: natural for natural, log in LOG_OF_RATIO.items()}
# Overflow, division by zero and invalid operations while computing an effect size mean an
# absurd input value (an SD of 1e200): raised, not warned, and reported with the rows. Underflow
# stays silent; it matters only where it leaves the variance 0, which _check_effect sees.
_FLOAT_ERRORS = {"over": "raise", "divide": "raise", "invalid": "raise", "under": "ignore"}
# Below the smallest normal float a variance has lost its precision and 1/vi overflows.
_SMALLEST_VARIANCE = float(np.finfo(float).tiny)
# The number columns an effect size is computed from, per file: where to look for the culprit.
_NUMBER_COLUMNS = {
    "arms.csv": ("mean", "sd", "se", "sem", "median", "q1", "q3", "min", "max", "n"),
    "contrasts.csv": ("estimate", "se", "ci_low", "ci_high", "p_value", "n_treatment", "n_control"),
}
# Study x outcome pairs computed together: big enough that a numpy call per operation costs
# little per row, small enough that the suspended computations stay a few megabytes.
_PAIRS_PER_BATCH = 4096


def _median_parts(conversion: medians.MedianConversion) -> tuple:
    return conversion.mean, conversion.sd, conversion.var_extra


# The arithmetic the rules request (metak.batching), each elementwise on arrays.
_OPERATIONS = {
    "sd_from_se": lambda se, n: (conversions.sd_from_se(se, n),),
    "S1": lambda n, m, a, b: _median_parts(medians.from_median_range(n, m, a, b)),
    "S2": lambda n, m, q1, q3: _median_parts(medians.from_median_iqr(n, m, q1, q3)),
    "S3": lambda n, m, q1, q3, a, b: _median_parts(medians.from_five_numbers(n, m, q1, q3, a, b)),
    "change": lambda mb, sb, mf, sf, r, n: (
        *change.change_from_baseline(mb, sb, mf, sf, r),
        change.arm_change_dvar_dr(sb, sf, n),
    ),
    "MD": basic.mean_difference,
    "SMD": basic.hedges_g,
    "ROM": basic.log_ratio_of_means,
    "hedges_correction": lambda df: (basic.hedges_correction(df),),
    "se_from_ci": lambda lo, hi, level, df: (conversions.se_from_ci(lo, hi, level, df),),
    "se_from_ci_ratio": lambda lo, hi, level, df: (
        conversions.se_from_ci_ratio(lo, hi, level, df),
    ),
    "se_from_p": lambda yi, p, df: (conversions.se_from_p(yi, p, df),),
    "MN": within_arm.raw_mean,
    "MC": within_arm.mean_change,
    "MC_reported": within_arm.mean_change_reported,
}

# A rule's generator: yields arithmetic requests, returns its result.
_Steps = Generator[Call, tuple, object]


@dataclass(frozen=True)
class EffectsResult:
    """Effect sizes and the study × outcome pairs that gave none.

    Attributes
    ----------
    effects : pandas.DataFrame
        One row per study × outcome × comparison, columns ``EFFECT_COLUMNS``.
    unusable : pandas.DataFrame
        Columns ``study_id, outcome, reason``: why a pair (or one comparison of it) has no effect.
    """

    effects: pd.DataFrame
    unusable: pd.DataFrame


@dataclass(frozen=True)
class _Outcome:
    measure: str
    direction: str
    prepost_r: float


@dataclass(frozen=True)
class _Summary:
    """One arm at one timepoint (or a derived change): mean, SD, n and where they came from."""

    mean: float
    sd: float
    n: float
    var_extra: float  # conversion variance of the mean (medians), 0 if none
    notes: tuple[str, ...]  # conversions in plain words, e.g. "follow-up SD from SE"
    lines: tuple[int, ...]
    rows: tuple  # the rows used, as (_Table, position) (for source / secondary)
    converted: bool = False
    derived_r: bool = False  # change derived from baseline + follow-up with an assumed r
    dvar_dr: float = 0.0  # slope of this arm's variance of the mean in r (before any n split)
    baseline_sd: float = math.nan
    followup_sd: float = math.nan


@dataclass(frozen=True)
class _Effect:
    yi: float
    vi: float
    derivation: str
    lines: dict  # file name -> line numbers
    rows: tuple
    n_treatment: float
    n_control: float
    converted: bool = False
    vi_conversion: float = 0.0
    prepost_r: float = math.nan
    dvi_dr: float = math.nan
    adjusted: bool = False


def _to_float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _text_of(value) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    value = str(value)
    return value if value else None


def _num(row, column) -> float:
    return _to_float(row.get(column) if hasattr(row, "get") else None)


def _text(row, column) -> str | None:
    return _text_of(row.get(column))


def _fmt(x: float) -> str:
    return f"{x:g}"


class _Table:
    """A records table read as Python lists, one per column, each built on first use.

    Rows are positions; ``num`` and ``text`` read a cell as a number (NaN when missing or not a
    number) or as text (None when missing or empty), also for a column the table lacks.
    """

    def __init__(self, frame: pd.DataFrame, file: str):
        self.frame = frame
        self.file = file
        self.has_labels = "arm_label" in frame
        self._raw: dict[str, list] = {}
        self._num: dict[str, list[float]] = {}
        self._text: dict[str, list] = {}
        self._coerced: dict[str, list[float]] = {}
        self._isna: dict[str, list[bool]] = {}
        self._lines: list | None = None

    def raw(self, column: str) -> list:
        try:
            return self._raw[column]
        except KeyError:
            values = self._raw[column] = self.frame[column].tolist()
            return values

    def num(self, column: str) -> list[float]:
        try:
            return self._num[column]
        except KeyError:
            pass
        if column not in self.frame:
            values = [math.nan] * len(self.frame)
        elif self.frame[column].dtype == np.float64:
            values = self.frame[column].tolist()
        else:
            values = [_to_float(value) for value in self.frame[column].tolist()]
        self._num[column] = values
        return values

    def coerced(self, column: str) -> list[float]:
        """The column through ``pandas.to_numeric(errors="coerce")``."""
        try:
            return self._coerced[column]
        except KeyError:
            numbers = pd.to_numeric(self.frame[column], errors="coerce").astype(float)
            values = self._coerced[column] = numbers.tolist()
            return values

    def text(self, column: str) -> list:
        try:
            return self._text[column]
        except KeyError:
            pass
        if column not in self.frame:
            values = [None] * len(self.frame)
        else:
            values = [_text_of(value) for value in self.frame[column].tolist()]
        self._text[column] = values
        return values

    def isna(self, column: str) -> list[bool]:
        try:
            return self._isna[column]
        except KeyError:
            values = self._isna[column] = self.frame[column].isna().tolist()
            return values

    def line(self, i: int) -> int:
        if self._lines is None:
            self._lines = self.frame["line"].tolist()
        return int(self._lines[i])


def _outcome_info(records) -> dict[str, _Outcome]:
    info = {}
    for _, row in records.outcomes.iterrows():
        measure = _text(row, "measure") or _DEFAULT_MEASURE
        r = _num(row, "prepost_r")
        info[str(row["outcome"])] = _Outcome(
            measure=measure,
            direction=_text(row, "direction") or "unspecified",
            prepost_r=r if math.isfinite(r) else _DEFAULT_R,
        )
    return info


def _study_secondary(records) -> dict[str, bool]:
    """Study id -> whether studies.csv marks the study as taken from a secondary source."""
    if records.studies.empty:
        return {}
    studies = _Table(records.studies, "studies.csv")
    ids = [str(value) for value in studies.raw("study_id")]
    return dict(zip(ids, (t == "yes" for t in studies.text("secondary")), strict=True))


# --------------------------------------------------------------------------- contrasts


def _contrast_effect(table: _Table, i: int, measure: str) -> _Steps:
    """A contrast row on the analysis scale, or the reason it cannot be used."""
    given = table.text("measure")[i]
    line = table.line(i)
    if given in _SAME_SCALE[measure]:
        natural = False
    elif _LOG_OF.get(measure) == given:
        natural = True
    else:
        return None, (
            f"contrasts.csv:{line} reports {given}, which is not the analysis measure {measure} "
            "and does not convert to it exactly"
        )
    n_t, n_c = table.num("n_treatment")[i], table.num("n_control")[i]
    df = n_t + n_c - 2 if math.isfinite(n_t) and math.isfinite(n_c) else math.nan
    dist = f"t, df = {_fmt(df)}" if math.isfinite(df) else "normal"
    level = table.num("ci_level")[i]
    level = level if math.isfinite(level) else _DEFAULT_LEVEL
    estimate = table.num("estimate")[i]
    se_given, low, high, p = (table.num(c)[i] for c in ("se", "ci_low", "ci_high", "p_value"))
    yi = math.log(estimate) if natural and estimate > 0 else (math.nan if natural else estimate)
    how = f"contrast: {given}"
    if natural:
        how += f" converted to {measure} = log({given})"
    if math.isfinite(se_given):
        se = se_given / estimate if natural else se_given
        how += ", SE by the delta method (SE / ratio)" if natural else ", SE as reported"
    elif math.isfinite(low) and math.isfinite(high):
        (se,) = yield Call("se_from_ci_ratio" if natural else "se_from_ci", (low, high, level, df))
        how += f", SE from {_fmt(100 * level)}% CI ({dist})"
    elif math.isfinite(p):
        (se,) = yield Call("se_from_p", (yi, p, df))
        how += f", SE from p = {_fmt(p)} ({dist})"
    else:
        se = math.nan
    # An SE of 0 from a p-value means a zero estimate: no SE to be had. From a positive SE or a
    # CI it is underflow, a bad number that _check_effect reports.
    from_p = not math.isfinite(se_given) and not (math.isfinite(low) and math.isfinite(high))
    if not (math.isfinite(yi) and math.isfinite(se) and (se > 0 or se == 0 and not from_p)):
        return None, (
            f"contrasts.csv:{line} ({given}) gives no usable standard error "
            "(p-value of 1, zero estimate, or non-positive ratio)"
        )
    if table.text("order")[i] == "c-t":
        yi = -yi
        how += "; reported as control vs treatment, turned round"
    adjusted = table.text("adjusted")[i] == "yes"
    if adjusted:
        how += "; covariate-adjusted"
    effect = _Effect(
        yi=yi,
        vi=se * se,  # not se**2: that raises OverflowError; inf is reported by _check_effect
        derivation=how,
        lines={"contrasts.csv": (line,)},
        rows=((table, i),),
        n_treatment=n_t,
        n_control=n_c,
        adjusted=adjusted,
    )
    return effect, None


# --------------------------------------------------------------------------- arms

_TIME_WORDS = {"baseline": "baseline", "followup": "follow-up", "change": "change"}
_SCENARIO_WORDS = {"S1": "median/range", "S2": "median/IQR", "S3": "median/IQR/range"}


def _arm_summary(table: _Table, i: int, arm_word: str) -> _Steps:
    """Mean, SD and n of one arms.csv row, converting SE or quantiles; None if not possible."""
    n = table.num("n")[i]
    if not math.isfinite(n):
        return None
    when = _TIME_WORDS[str(table.raw("timepoint")[i])]
    line = table.line(i)
    mean, sd = table.num("mean")[i], table.num("sd")[i]
    se = table.num("se")[i]
    se = se if math.isfinite(se) else table.num("sem")[i]
    if math.isfinite(mean):
        if math.isfinite(sd):
            return _Summary(mean, sd, n, 0.0, (), (line,), ((table, i),))
        if math.isfinite(se):
            note = f"{arm_word} {when} SD from SE (SD = SE·√n)"
            (sd,) = yield Call("sd_from_se", (se, n))
            return _Summary(mean, sd, n, 0.0, (note,), (line,), ((table, i),))
        return None
    median = table.num("median")[i]
    if not math.isfinite(median):
        return None
    q1, q3 = table.num("q1")[i], table.num("q3")[i]
    low, high = table.num("min")[i], table.num("max")[i]
    # The scenario as medians.mean_sd_from_median picks it: both quartiles and/or both extremes.
    has_iqr = math.isfinite(q1) and math.isfinite(q3)
    has_range = math.isfinite(low) and math.isfinite(high)
    if has_iqr and has_range:
        scenario, args = "S3", (n, median, q1, q3, low, high)
    elif has_iqr:
        scenario, args = "S2", (n, median, q1, q3)
    elif has_range:
        scenario, args = "S1", (n, median, low, high)
    else:
        return None
    mean, sd, var_extra = yield Call(scenario, args)
    note = (
        f"{arm_word} {when} mean/SD from {_SCENARIO_WORDS[scenario]} ({medians.METHODS[scenario]})"
    )
    return _Summary(mean, sd, n, var_extra, (note,), (line,), ((table, i),), converted=True)


def _pick(table: _Table, rows: list[int], timepoint: str, arm_word: str) -> _Steps:
    """The usable summary of one timepoint: latest (follow-up, change) or earliest (baseline)."""
    kinds = table.raw("timepoint")
    chosen = [i for i in rows if kinds[i] == timepoint]
    if not chosen:
        return None
    times = table.coerced("time_months")
    # A stable sort, as pandas' sort_values(kind="stable") in either direction: rows with equal
    # times keep their file order.
    if timepoint == "baseline":
        order = sorted(chosen, key=lambda i: math.inf if math.isnan(times[i]) else times[i])
    else:
        order = sorted(chosen, key=lambda i: 1.0 if math.isnan(times[i]) else -times[i])
    for i in order:
        summary = yield from _arm_summary(table, i, arm_word)
        if summary is not None:
            return summary
    return None


def _change(table: _Table, rows: list[int], arm_word: str, r: float) -> _Steps:
    """Reported change, else change derived from baseline and follow-up with correlation r."""
    reported = yield from _pick(table, rows, "change", arm_word)
    if reported is not None:
        return reported
    base = yield from _pick(table, rows, "baseline", arm_word)
    follow = yield from _pick(table, rows, "followup", arm_word)
    if base is None or follow is None:
        return None
    n = min(base.n, follow.n)  # the analysed (follow-up) sample; never more than at baseline
    # The change, then the slope of its variance in r (Cochrane Handbook 6.5.2.8).
    mean, sd, dvar_dr = yield Call("change", (base.mean, base.sd, follow.mean, follow.sd, r, n))
    return _Summary(
        mean,
        sd,
        n,
        base.var_extra + follow.var_extra,
        base.notes + follow.notes,
        base.lines + follow.lines,
        base.rows + follow.rows,
        converted=base.converted or follow.converted,
        derived_r=True,
        dvar_dr=dvar_dr,
        baseline_sd=base.sd,
        followup_sd=follow.sd,
    )


def _arms_effect(table: _Table, t_rows, c_rows, measure, r, n_split) -> _Steps:
    if not t_rows and not c_rows:
        return None, "no treatment or control arm rows to compute it from"
    if not t_rows:
        return None, "no treatment arm rows"
    if not c_rows:
        return None, "no control arm rows (single-arm data give no between-group effect)"
    if measure not in MEASURES:
        return None, f"arm summaries give MD, SMD or ROM, not the outcome's measure {measure}"
    attempts = {
        "MD": ("change", "followup"),
        "SMD": ("followup", "change"),
        "ROM": ("followup",),
    }[measure]
    found = None
    for kind in attempts:
        if kind == "change":
            t = yield from _change(table, t_rows, "treatment", r)
            c = yield from _change(table, c_rows, "control", r)
        else:
            t = yield from _pick(table, t_rows, "followup", "treatment")
            c = yield from _pick(table, c_rows, "followup", "control")
        if t is not None and c is not None:
            found = (kind, t, c)
            break
    if found is None:
        kinds = table.raw("timepoint")
        times = sorted({kinds[i] for i in t_rows} | {kinds[i] for i in c_rows})
        if measure == "ROM":
            need = "follow-up means of both arms (a ratio of mean changes is not defined)"
        else:
            need = "change scores, or baseline and follow-up, or follow-up values of both arms"
        given = ", ".join(times)
        return None, f"{measure} from arms needs {need}; usable timepoints given: {given}"
    kind, t, c = found
    nc = c.n / n_split
    yi, vi = yield Call(measure, (t.mean, t.sd, t.n, c.mean, c.sd, nc))
    if not (math.isfinite(yi) and math.isfinite(vi)):
        return None, (
            f"{measure} needs positive means (treatment {_fmt(t.mean)}, control {_fmt(c.mean)})"
            if measure == "ROM"
            else f"{measure} could not be computed from the arm summaries"
        )

    # Splitting the control n multiplies its sampling variance by n_split; its conversion
    # variance is scaled the same way so the shared control is not counted more than once.
    vc_t, vc_c = t.var_extra, c.var_extra * n_split
    if measure == "MD":
        vi_conv = vc_t + vc_c
    elif measure == "SMD":
        df = t.n + nc - 2
        s2 = ((t.n - 1) * t.sd**2 + (nc - 1) * c.sd**2) / df
        (correction,) = yield Call("hedges_correction", (df,))
        vi_conv = correction**2 * (vc_t + vc_c) / s2
    else:
        vi_conv = vc_t / t.mean**2 + vc_c / c.mean**2

    derived = t.derived_r or c.derived_r
    prepost_r = r if kind == "change" and derived else math.nan
    dvi_dr = math.nan
    if measure == "MD" and kind == "change" and derived:
        # Each derived arm's variance of the mean is linear in r; the control's n is the split n.
        dvi_dr = (t.dvar_dr if t.derived_r else 0.0) + (c.dvar_dr * n_split if c.derived_r else 0.0)

    if kind == "change":
        if t.derived_r and c.derived_r:
            words = f"arms: change = follow-up − baseline, r = {_fmt(r)} assumed"
        elif derived:
            which = "treatment" if t.derived_r else "control"
            words = (
                f"arms: change scores ({which} change = follow-up − baseline, "
                f"r = {_fmt(r)} assumed; other arm as reported)"
            )
        else:
            words = "arms: change from baseline as reported"
    else:
        words = "arms: follow-up values, baseline assumed balanced by randomisation"
    notes = list(t.notes + c.notes)
    if n_split > 1:
        notes.append(
            f"control n {_fmt(c.n)} split evenly across {n_split} comparisons "
            "(Cochrane Handbook 23.3.4)"
        )
    derivation = "; ".join([f"{words} ({measure})", *notes])
    effect = _Effect(
        yi=yi,
        vi=vi,
        derivation=derivation,
        lines={"arms.csv": tuple(sorted(t.lines + c.lines))},
        rows=t.rows + c.rows,
        n_treatment=t.n,
        n_control=nc,
        converted=t.converted or c.converted,
        vi_conversion=float(vi_conv),
        prepost_r=prepost_r,
        dvi_dr=dvi_dr,
    )
    return effect, None


# --------------------------------------------------------------------------- numeric faults


class _NumericFault(Exception):
    """An effect size whose arithmetic broke down: what happened, and the rows it came from."""

    def __init__(self, what: str, sources: tuple):
        super().__init__(what)
        self.what = what
        self.sources = sources  # (_Table, position) of the rows


def _check_effect(effect: _Effect) -> None:
    """Raise :class:`_NumericFault` unless every number the models use from ``effect`` is usable."""
    if not math.isfinite(effect.yi):
        raise _NumericFault("the effect size is not a finite number", effect.rows)
    if math.isnan(effect.vi):
        raise _NumericFault("the effect size's variance is not a number", effect.rows)
    if effect.vi == math.inf:
        raise _NumericFault("the effect size's variance overflows", effect.rows)
    if not effect.vi >= _SMALLEST_VARIANCE:
        raise _NumericFault("the effect size's variance underflows to 0", effect.rows)
    half_width = _Z95 * math.sqrt(effect.vi)
    if not (math.isfinite(effect.yi - half_width) and math.isfinite(effect.yi + half_width)):
        raise _NumericFault("the effect size's confidence interval overflows", effect.rows)
    derived = math.isfinite(effect.prepost_r)
    if not math.isfinite(effect.vi_conversion) or (derived and not math.isfinite(effect.dvi_dr)):
        raise _NumericFault("the effect size's conversion variance is not finite", effect.rows)


def _arithmetic_words(err: ArithmeticError) -> str:
    """What went wrong, from numpy's 'overflow encountered in ...' or Python's own error."""
    text = str(err).lower()
    if isinstance(err, ZeroDivisionError) or "divide" in text:
        return "computing the effect size divides by zero"
    if isinstance(err, OverflowError) or "overflow" in text:
        return "computing the effect size overflows"
    return "computing the effect size gives an undefined value (e.g. infinity minus infinity)"


def _cell_text(x: float) -> str:
    """A float as a user would have written it: '120' not '120.0', '1e200' not '1e+200'."""
    if x.is_integer() and abs(x) < 1e16:
        return str(int(x))
    return repr(x).replace("e+", "e")


def _extreme_cell(rows: list) -> tuple | None:
    """``(file, line, column, value)`` of the number farthest from 1 in order of magnitude.

    A variance that overflows or underflows comes from a value many orders of magnitude off
    (an SD of 1e-200), so that cell is the one to check.
    """
    best, best_key = None, -1.0
    for table, i in rows:
        for column in _NUMBER_COLUMNS[table.file]:
            value = table.num(column)[i]
            if math.isfinite(value) and value != 0:
                key = abs(math.log10(abs(value)))
                if key > best_key:
                    best, best_key = (table.file, table.line(i), column, value), key
    return best


def _numeric_problem(directory, fault: _NumericFault, measure: str, study_id, outcome) -> Problem:
    """One line naming the cell most likely at fault and the effect it broke."""
    rows = list(fault.sources)
    lines: dict[str, list[int]] = {}
    for table, i in rows:
        lines.setdefault(table.file, []).append(table.line(i))
    context = f"{measure} of {study_id} / {outcome} from {_rows_text(lines)}"
    fix = "check the value against the source; a value this extreme is a typo or a wrong unit"
    cell = _extreme_cell(rows)
    if cell is None:  # no number to point at (not expected: every route reads numbers)
        return Problem(directory, f"{fault.what} ({context})", fix=fix)
    file, line, column, value = cell
    return Problem(
        Path(directory) / file,
        f"{fault.what} ({context})",
        row=line,
        column=column,
        value=_cell_text(value),
        fix=fix,
    )


# --------------------------------------------------------------------------- assembly


def _rows_text(lines: dict) -> str:
    return "; ".join(
        f"{name}:{','.join(str(x) for x in sorted(set(numbers)))}"
        for name, numbers in lines.items()
        if numbers
    )


def _labels(table: _Table, rows: list[int]) -> list:
    if not table.has_labels:
        return []
    values = table.raw("arm_label")
    seen = []
    for i in rows:
        value = values[i]
        missing = value is None or (isinstance(value, float) and math.isnan(value))
        label = None if missing else str(value)
        if label not in seen:
            seen.append(label)
    return seen


def _with_label(table: _Table, rows: list[int], label) -> list[int]:
    if label is None:
        missing = table.isna("arm_label")
        return [i for i in rows if missing[i]]
    values = table.raw("arm_label")
    return [i for i in rows if values[i] == label]


class _Pair:
    """One study × outcome: its rows in arms.csv and contrasts.csv, and how to analyse it."""

    __slots__ = ("arm_rows", "contrast_rows", "info", "measure", "outcome", "study_id")

    def __init__(self, study_id, outcome, arm_rows, contrast_rows, info, measure):
        self.study_id, self.outcome = study_id, outcome
        self.arm_rows, self.contrast_rows = arm_rows, contrast_rows
        self.info, self.measure = info, measure


def _pair_effects(arms: _Table, contrasts: _Table, pair: _Pair, secondary: dict) -> _Steps:
    """Effects (list of dicts) and reasons (list of str) for one study × outcome."""
    study_id, outcome, info, measure = pair.study_id, pair.outcome, pair.info, pair.measure
    effects, reasons = [], []
    arm_of = arms.raw("arm") if pair.arm_rows else []
    treat = [i for i in pair.arm_rows if arm_of[i] == "treatment"]
    ctrl = [i for i in pair.arm_rows if arm_of[i] == "control"]
    contrast_rows = pair.contrast_rows
    if not treat and not ctrl and not contrast_rows:
        if any(arm_of[i] == "all" for i in pair.arm_rows):
            return [], ["only whole-sample (arm = all) baseline values; no between-group data"]
        return [], ["no treatment or control rows"]

    arm_labels, contrast_labels = _labels(arms, treat), _labels(contrasts, contrast_rows)
    named = [x for x in dict.fromkeys(arm_labels + contrast_labels) if x is not None]
    single = len(arm_labels) <= 1 and len(contrast_labels) <= 1 and len(named) <= 1
    if single:
        comparisons = [named[0] if named else None]
    else:
        labelled = [x for x in contrast_labels if x is not None]
        comparisons = list(dict.fromkeys(arm_labels + labelled))
        for i in _with_label(contrasts, contrast_rows, None):
            reasons.append(
                f"contrasts.csv:{contrasts.line(i)} has no arm_label but the study has several "
                "treatment arms; fix: give the arm_label it compares"
            )

    control_labels = _labels(arms, ctrl)
    several_controls = len(control_labels) > 1
    n_split = len(comparisons)
    study_secondary = secondary.get(study_id, False)

    for label in comparisons:
        name = f"{label} vs control" if label is not None else "treatment vs control"
        prefix = f"{name}: " if len(comparisons) > 1 else ""
        if single:
            t_rows, c_rows = treat, ctrl
            candidates = contrast_rows
        else:
            t_rows = _with_label(arms, treat, label)
            c_rows = ctrl
            candidates = _with_label(contrasts, contrast_rows, label)

        usable, why = [], []
        for i in candidates:
            effect, reason = yield from _contrast_effect(contrasts, i, measure)
            if effect is not None:
                _check_effect(effect)  # every usable row, not only the one chosen
                usable.append(effect)
            else:
                why.append(reason)
        effect = None
        if usable:
            ranked = sorted(enumerate(usable), key=lambda pair: (not pair[1].adjusted, pair[0]))
            effect = ranked[0][1]
            if len(usable) > 1:
                unused = f"{len(usable) - 1} other usable contrast row(s) not used"
                effect = replace(effect, derivation=f"{effect.derivation}; {unused}")
            if not math.isfinite(effect.n_treatment) or not math.isfinite(effect.n_control):
                effect = _fill_sizes(effect, arms, t_rows, c_rows, n_split)
        elif several_controls:
            why.append(
                "several control arms (labels "
                + ", ".join(str(x) for x in control_labels)
                + "); metak compares each treatment arm with one control"
            )
        else:
            effect, reason = yield from _arms_effect(
                arms, t_rows, c_rows, measure, info.prepost_r, n_split
            )
            if effect is not None:
                _check_effect(effect)
            if reason is not None:
                why.append(reason)
        if effect is None:
            reasons.append(prefix + "; ".join(why))
            continue
        effects.append(
            _effect_row(study_id, outcome, name, label, measure, info, effect, study_secondary)
        )
    return effects, reasons


def _effect_row(study_id, outcome, name, label, measure, info, effect, study_secondary) -> dict:
    """One row of the effects table (columns ``EFFECT_COLUMNS``)."""
    used = effect.rows
    secondary = study_secondary or any(t.text("secondary")[i] == "yes" for t, i in used)
    sources = [s for s in dict.fromkeys(t.text("source")[i] for t, i in used) if s]
    se = math.sqrt(effect.vi)
    return {
        "study_id": study_id,
        "outcome": outcome,
        "comparison": name,
        "arm_label": label,
        "measure": measure,
        "direction": info.direction,
        "yi": effect.yi,
        "vi": effect.vi,
        "se": se,
        "ci_low": effect.yi - _Z95 * se,
        "ci_high": effect.yi + _Z95 * se,
        "n_treatment": effect.n_treatment,
        "n_control": effect.n_control,
        "derivation": effect.derivation,
        "converted": effect.converted,
        "vi_conversion": effect.vi_conversion,
        "prepost_r": effect.prepost_r,
        "dvi_dr": effect.dvi_dr,
        "adjusted": effect.adjusted,
        "secondary": secondary,
        "source": "; ".join(sources) if sources else None,
        "rows": _rows_text(effect.lines),
    }


def _fill_sizes(effect: _Effect, arms: _Table, t_rows, c_rows, n_split) -> _Effect:
    """Group sizes for a contrast that does not give them, from the arms' follow-up/change rows."""

    def size(rows):
        if not rows:
            return math.nan
        kinds, sizes = arms.raw("timepoint"), arms.coerced("n")
        later = [sizes[i] for i in rows if kinds[i] in ("followup", "change")]
        values = [n for n in later if not math.isnan(n)]
        return float(values[0]) if values else math.nan

    n_t = effect.n_treatment if math.isfinite(effect.n_treatment) else size(t_rows)
    n_c = effect.n_control if math.isfinite(effect.n_control) else size(c_rows) / n_split
    return replace(effect, n_treatment=n_t, n_control=n_c)


def _pair_positions(table: pd.DataFrame) -> dict:
    """``{(study_id, outcome): [row positions]}`` of a records table, in file order."""
    positions: dict = {}
    studies = table["study_id"].astype(str).tolist()
    outcomes = table["outcome"].astype(str).tolist()
    for index, key in enumerate(zip(studies, outcomes, strict=True)):
        positions.setdefault(key, []).append(index)
    return positions


def _run_pairs(pairs: list[_Pair], start, directory, sources) -> tuple[list, list]:
    """Run ``start(pair)`` for every pair in batches; effect rows, unusable rows, or raise.

    ``sources(pair)`` lists the rows a pair's arithmetic error is blamed on.
    """
    effect_rows, unusable_rows, problems = [], [], []
    with np.errstate(**_FLOAT_ERRORS), collector_paused():
        for first in range(0, len(pairs), _PAIRS_PER_BATCH):
            batch = pairs[first : first + _PAIRS_PER_BATCH]
            outcomes = run_all(
                [start(pair) for pair in batch], _OPERATIONS, (_NumericFault, ArithmeticError)
            )
            for pair, outcome in zip(batch, outcomes, strict=True):
                if isinstance(outcome, ArithmeticError):
                    # numpy FloatingPointError, Python OverflowError, ...
                    outcome = _NumericFault(_arithmetic_words(outcome), sources(pair))
                if isinstance(outcome, _NumericFault):
                    problems.append(
                        _numeric_problem(
                            directory, outcome, pair.measure, pair.study_id, pair.outcome
                        )
                    )
                    continue
                found, reasons = outcome
                effect_rows.extend(found)
                unusable_rows.extend(
                    {"study_id": pair.study_id, "outcome": pair.outcome, "reason": reason}
                    for reason in reasons
                )
    if problems:
        raise InputError(problems)
    return effect_rows, unusable_rows


def compute_effects(records: StudyRecords, measure_override: str | None = None) -> EffectsResult:
    """Effect sizes of every study × outcome × comparison in ``records`` (see module docstring).

    Parameters
    ----------
    records : metak.records.StudyRecords
        Validated records (``studies``, ``arms``, ``contrasts``, ``outcomes`` tables).
    measure_override : {"MD", "SMD", "ROM"} or None
        Use this measure for every outcome instead of the one in ``outcomes.csv``.

    Returns
    -------
    EffectsResult
        ``effects`` (columns ``EFFECT_COLUMNS``) and ``unusable`` (``study_id, outcome, reason``).

    Raises
    ------
    metak.errors.ConfigError
        If ``measure_override`` is not one of ``MEASURES``.
    metak.errors.InputError
        One line per study × outcome whose numbers break the arithmetic (module docstring),
        naming the cell most orders of magnitude off.
    """
    if measure_override is not None and measure_override not in MEASURES:
        raise ConfigError(
            f"measure {measure_override!r} is not an arm-level measure; fix: use one of "
            + ", ".join(MEASURES)
        )
    info = _outcome_info(records)
    arms = _Table(records.arms, "arms.csv")
    contrasts = _Table(records.contrasts, "contrasts.csv")
    secondary = _study_secondary(records)
    # Row positions of each study x outcome, found once (filtering the whole table per pair is
    # quadratic: minutes for 10,000 studies).
    arm_rows, contrast_rows = _pair_positions(records.arms), _pair_positions(records.contrasts)
    pairs = []
    for key in dict.fromkeys([*arm_rows, *contrast_rows]):
        outcome_info = info.get(key[1], _Outcome(_DEFAULT_MEASURE, "unspecified", _DEFAULT_R))
        measure = measure_override or outcome_info.measure
        pairs.append(
            _Pair(*key, arm_rows.get(key, []), contrast_rows.get(key, []), outcome_info, measure)
        )
    effect_rows, unusable_rows = _run_pairs(
        pairs,
        lambda pair: _pair_effects(arms, contrasts, pair, secondary),
        records.directory,
        lambda pair: (
            tuple((arms, i) for i in pair.arm_rows)
            + tuple((contrasts, i) for i in pair.contrast_rows)
        ),
    )
    return _result(effect_rows, unusable_rows)


def _result(effect_rows: list, unusable_rows: list) -> EffectsResult:
    effects = pd.DataFrame(effect_rows, columns=list(EFFECT_COLUMNS))
    for column in ("converted", "adjusted", "secondary"):
        effects[column] = effects[column].astype(bool)
    unusable = pd.DataFrame(unusable_rows, columns=list(UNUSABLE_COLUMNS))
    return EffectsResult(effects=effects.reset_index(drop=True), unusable=unusable)


# --------------------------------------------------------------------------- within one arm


def _within_arm_effect(table: _Table, rows, arm: str, measure: str, r: float) -> _Steps:
    """MC or MN of one arm from its rows, or the reason it cannot be computed."""
    n_of = {"n_treatment": math.nan, "n_control": math.nan}
    column = "n_treatment" if arm == "treatment" else "n_control"
    if measure == "MN":
        follow = yield from _pick(table, rows, "followup", arm)
        if follow is None:
            return None, f"MN needs a follow-up mean (with its spread) of the {arm} arm"
        yi, vi = yield Call("MN", (follow.mean, follow.sd, follow.n))
        summary, words, derived = follow, "arm: follow-up mean (MN)", None
    else:
        summary = yield from _change(table, rows, arm, r)
        if summary is None:
            kinds = table.raw("timepoint")
            return None, (
                f"MC needs a change row, or baseline and follow-up rows, of the {arm} arm "
                f"(timepoints given: {', '.join(sorted({kinds[i] for i in rows}))})"
            )
        if summary.derived_r:
            # The SD of the change was derived with r by _change; recompute the effect from the
            # two occasions so that MC is metafor's formula, not a second copy of it.
            base = yield from _pick(table, rows, "baseline", arm)
            follow = yield from _pick(table, rows, "followup", arm)
            yi, vi = yield Call("MC", (follow.mean, follow.sd, base.mean, base.sd, summary.n, r))
            words = f"arm: change = follow-up − baseline, r = {_fmt(r)} assumed (MC)"
            derived = float(summary.dvar_dr)
        else:
            yi, vi = yield Call("MC_reported", (summary.mean, summary.sd, summary.n))
            words, derived = "arm: change from baseline as reported (MC)", None
    n_of[column] = summary.n
    effect = _Effect(
        yi=float(yi),
        vi=float(vi),
        derivation="; ".join([words, *summary.notes]),
        lines={"arms.csv": tuple(sorted(summary.lines))},
        rows=summary.rows,
        n_treatment=n_of["n_treatment"],
        n_control=n_of["n_control"],
        converted=summary.converted,
        vi_conversion=float(summary.var_extra),
        prepost_r=r if derived is not None else math.nan,
        dvi_dr=derived if derived is not None else math.nan,
    )
    return effect, None


def _arm_pair_effects(table: _Table, pair: _Pair, arm: str, secondary: dict) -> _Steps:
    """Within-arm effects (list of dicts) and reasons (list of str) for one study × outcome."""
    measure, info = pair.measure, pair.info
    if not pair.arm_rows:
        return [], [f"only a between-group contrast, no arm rows: no within-arm {measure}"]
    arm_of = table.raw("arm")
    chosen = [i for i in pair.arm_rows if arm_of[i] == arm]
    if not chosen:
        return [], [f"no {arm} arm rows"]
    study_secondary = secondary.get(pair.study_id, False)
    labels = _labels(table, chosen)
    groups = [(labels[0] if labels else None, chosen)] if len(labels) <= 1 else None
    if groups is None:  # several arms of this kind: one row each, told apart by arm_label
        groups = [(label, _with_label(table, chosen, label)) for label in labels]
    effects, reasons = [], []
    for label, arm_rows in groups:
        name = f"{arm} arm" + (f" ({label})" if label is not None else "")
        r = info.prepost_r
        effect, reason = yield from _within_arm_effect(table, arm_rows, arm, measure, r)
        if effect is None:
            reasons.append(f"{name}: {reason}" if len(groups) > 1 else reason)
            continue
        _check_effect(effect)
        effects.append(
            _effect_row(
                pair.study_id, pair.outcome, name, label, measure, info, effect, study_secondary
            )
        )
    return effects, reasons


def compute_arm_effects(records: StudyRecords, arm: str, measure: str = "MC") -> EffectsResult:
    """Within-arm effect sizes: the mean change (MC) or mean (MN) of every treatment or control arm.

    One row per study × outcome × arm of that kind (several treatment arms of one study give one
    row each, ``comparison`` naming the arm, e.g. ``"treatment arm (MK-7 360)"``). An arm
    summary is taken as in :func:`compute_effects` (SD from SE, mean and SD from medians with the
    conversion variance in ``vi_conversion``); for MC, a reported change is used as it is, else
    the change is derived from baseline and follow-up with the outcome's ``prepost_r``
    (``prepost_r`` and ``dvi_dr`` are then set, as for a derived mean difference, so models can
    treat the correlation as a parameter). ``n_treatment`` (or ``n_control``) holds the arm's n,
    the other is NaN. Formulas: :mod:`metak.effects.within_arm` (metafor's ``MC`` and ``MN``).

    Parameters
    ----------
    records : metak.records.StudyRecords
        Validated records.
    arm : {"treatment", "control"}
        Which arms.
    measure : {"MC", "MN"}
        Raw mean change or raw mean (at follow-up).

    Returns
    -------
    EffectsResult
        ``effects`` (columns ``EFFECT_COLUMNS``; ``measure`` is ``MC`` or ``MN``) and
        ``unusable`` (study × outcome pairs without such an arm, with the reason).

    Raises
    ------
    metak.errors.ConfigError
        If ``arm`` or ``measure`` is not one of those listed.
    metak.errors.InputError
        As :func:`compute_effects`, for numbers that break the arithmetic.
    """
    if arm not in ARM_LEVELS:
        raise ConfigError(f"arm {arm!r} is not allowed; fix: use one of {', '.join(ARM_LEVELS)}")
    if measure not in WITHIN_ARM_MEASURES:
        raise ConfigError(
            f"measure {measure!r} is not a within-arm measure; fix: use one of "
            + ", ".join(WITHIN_ARM_MEASURES)
        )
    info = _outcome_info(records)
    arms = _Table(records.arms, "arms.csv")
    secondary = _study_secondary(records)
    arm_rows = _pair_positions(records.arms)
    pairs = []
    for key in dict.fromkeys([*arm_rows, *_pair_positions(records.contrasts)]):
        outcome_info = info.get(key[1], _Outcome(_DEFAULT_MEASURE, "unspecified", _DEFAULT_R))
        pairs.append(_Pair(*key, arm_rows.get(key, []), [], outcome_info, measure))
    effect_rows, unusable_rows = _run_pairs(
        pairs,
        lambda pair: _arm_pair_effects(arms, pair, arm, secondary),
        records.directory,
        lambda pair: tuple((arms, i) for i in pair.arm_rows),
    )
    return _result(effect_rows, unusable_rows)
