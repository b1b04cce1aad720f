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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import special

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
    rows: tuple  # the pandas rows used (for source / secondary)
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


def _num(row, column) -> float:
    value = row.get(column) if hasattr(row, "get") else None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value


def _text(row, column) -> str | None:
    value = row.get(column)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    value = str(value)
    return value if value else None


def _fmt(x: float) -> str:
    return f"{x:g}"


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


# --------------------------------------------------------------------------- contrasts


def _contrast_effect(row, measure: str) -> tuple[_Effect | None, str | None]:
    """A contrast row on the analysis scale, or the reason it cannot be used."""
    given = _text(row, "measure")
    line = int(row["line"])
    if given in _SAME_SCALE[measure]:
        natural = False
    elif _LOG_OF.get(measure) == given:
        natural = True
    else:
        return None, (
            f"contrasts.csv:{line} reports {given}, which is not the analysis measure {measure} "
            "and does not convert to it exactly"
        )
    n_t, n_c = _num(row, "n_treatment"), _num(row, "n_control")
    df = n_t + n_c - 2 if math.isfinite(n_t) and math.isfinite(n_c) else math.nan
    dist = f"t, df = {_fmt(df)}" if math.isfinite(df) else "normal"
    level = _num(row, "ci_level")
    level = level if math.isfinite(level) else _DEFAULT_LEVEL
    estimate = _num(row, "estimate")
    se_given, low, high, p = (_num(row, c) for c in ("se", "ci_low", "ci_high", "p_value"))
    yi = math.log(estimate) if natural and estimate > 0 else (math.nan if natural else estimate)
    how = f"contrast: {given}"
    if natural:
        how += f" converted to {measure} = log({given})"
    if math.isfinite(se_given):
        se = se_given / estimate if natural else se_given
        how += ", SE by the delta method (SE / ratio)" if natural else ", SE as reported"
    elif math.isfinite(low) and math.isfinite(high):
        if natural:
            se = float(conversions.se_from_ci_ratio(low, high, level, df))
        else:
            se = float(conversions.se_from_ci(low, high, level, df))
        how += f", SE from {_fmt(100 * level)}% CI ({dist})"
    elif math.isfinite(p):
        se = float(conversions.se_from_p(yi, p, df))
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
    if _text(row, "order") == "c-t":
        yi = -yi
        how += "; reported as control vs treatment, turned round"
    adjusted = _text(row, "adjusted") == "yes"
    if adjusted:
        how += "; covariate-adjusted"
    effect = _Effect(
        yi=yi,
        vi=se * se,  # not se**2: that raises OverflowError; inf is reported by _check_effect
        derivation=how,
        lines={"contrasts.csv": (line,)},
        rows=(row,),
        n_treatment=n_t,
        n_control=n_c,
        adjusted=adjusted,
    )
    return effect, None


# --------------------------------------------------------------------------- arms

_TIME_WORDS = {"baseline": "baseline", "followup": "follow-up", "change": "change"}


def _arm_summary(row, arm_word: str) -> _Summary | None:
    """Mean, SD and n of one arms.csv row, converting SE or quantiles; None if not possible."""
    n = _num(row, "n")
    if not math.isfinite(n):
        return None
    when = _TIME_WORDS[str(row["timepoint"])]
    line = int(row["line"])
    mean, sd = _num(row, "mean"), _num(row, "sd")
    se = _num(row, "se")
    se = se if math.isfinite(se) else _num(row, "sem")
    if math.isfinite(mean):
        if math.isfinite(sd):
            return _Summary(mean, sd, n, 0.0, (), (line,), (row,))
        if math.isfinite(se):
            note = f"{arm_word} {when} SD from SE (SD = SE·√n)"
            sd = float(conversions.sd_from_se(se, n))
            return _Summary(mean, sd, n, 0.0, (note,), (line,), (row,))
        return None
    median = _num(row, "median")
    if not math.isfinite(median):
        return None
    conv = medians.mean_sd_from_median(
        n, median, _num(row, "q1"), _num(row, "q3"), _num(row, "min"), _num(row, "max")
    )
    if conv is None:
        return None
    given = {"S1": "median/range", "S2": "median/IQR", "S3": "median/IQR/range"}[conv.scenario]
    note = f"{arm_word} {when} mean/SD from {given} ({conv.method})"
    return _Summary(
        float(conv.mean),
        float(conv.sd),
        n,
        float(conv.var_extra),
        (note,),
        (line,),
        (row,),
        converted=True,
    )


def _pick(rows: pd.DataFrame, timepoint: str, arm_word: str) -> _Summary | None:
    """The usable summary of one timepoint: latest (follow-up, change) or earliest (baseline)."""
    chosen = rows[rows["timepoint"] == timepoint]
    if chosen.empty:
        return None
    times = pd.to_numeric(chosen["time_months"], errors="coerce")
    key = times.fillna(-1.0) if timepoint != "baseline" else times.fillna(np.inf)
    order = key.sort_values(ascending=(timepoint == "baseline"), kind="stable").index
    for index in order:
        summary = _arm_summary(chosen.loc[index], arm_word)
        if summary is not None:
            return summary
    return None


def _change(rows: pd.DataFrame, arm_word: str, r: float) -> _Summary | None:
    """Reported change, else change derived from baseline and follow-up with correlation r."""
    reported = _pick(rows, "change", arm_word)
    if reported is not None:
        return reported
    base, follow = _pick(rows, "baseline", arm_word), _pick(rows, "followup", arm_word)
    if base is None or follow is None:
        return None
    mean, sd = change.change_from_baseline(base.mean, base.sd, follow.mean, follow.sd, r)
    n = min(base.n, follow.n)  # the analysed (follow-up) sample; never more than at baseline
    return _Summary(
        float(mean),
        float(sd),
        n,
        base.var_extra + follow.var_extra,
        base.notes + follow.notes,
        base.lines + follow.lines,
        base.rows + follow.rows,
        converted=base.converted or follow.converted,
        derived_r=True,
        dvar_dr=float(change.arm_change_dvar_dr(base.sd, follow.sd, n)),
        baseline_sd=base.sd,
        followup_sd=follow.sd,
    )


def _arms_effect(t_rows, c_rows, measure, r, n_split) -> tuple[_Effect | None, str | None]:
    if t_rows.empty and c_rows.empty:
        return None, "no treatment or control arm rows to compute it from"
    if t_rows.empty:
        return None, "no treatment arm rows"
    if c_rows.empty:
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
            t, c = _change(t_rows, "treatment", r), _change(c_rows, "control", r)
        else:
            t, c = _pick(t_rows, "followup", "treatment"), _pick(c_rows, "followup", "control")
        if t is not None and c is not None:
            found = (kind, t, c)
            break
    if found is None:
        times = sorted(set(t_rows["timepoint"]) | set(c_rows["timepoint"]))
        if measure == "ROM":
            need = "follow-up means of both arms (a ratio of mean changes is not defined)"
        else:
            need = "change scores, or baseline and follow-up, or follow-up values of both arms"
        given = ", ".join(times)
        return None, f"{measure} from arms needs {need}; usable timepoints given: {given}"
    kind, t, c = found
    nc = c.n / n_split
    if measure == "MD":
        yi, vi = basic.mean_difference(t.mean, t.sd, t.n, c.mean, c.sd, nc)
    elif measure == "SMD":
        yi, vi = basic.hedges_g(t.mean, t.sd, t.n, c.mean, c.sd, nc)
    else:
        yi, vi = basic.log_ratio_of_means(t.mean, t.sd, t.n, c.mean, c.sd, nc)
    yi, vi = float(yi), float(vi)
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
        vi_conv = float(basic.hedges_correction(df)) ** 2 * (vc_t + vc_c) / s2
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
        self.sources = sources  # arms / contrasts rows (Series) or row tables (DataFrames)


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


def _source_rows(sources: tuple) -> list:
    rows = []
    for source in sources:
        if isinstance(source, pd.DataFrame):
            rows.extend(row for _, row in source.iterrows())
        else:
            rows.append(source)
    return rows


def _row_file(row) -> str:
    return "contrasts.csv" if "estimate" in row.index else "arms.csv"


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
    for row in rows:
        file = _row_file(row)
        for column in _NUMBER_COLUMNS[file]:
            value = _num(row, column)
            if math.isfinite(value) and value != 0:
                key = abs(math.log10(abs(value)))
                if key > best_key:
                    best, best_key = (file, int(row["line"]), column, value), key
    return best


def _numeric_problem(directory, fault: _NumericFault, measure: str, study_id, outcome) -> Problem:
    """One line naming the cell most likely at fault and the effect it broke."""
    rows = _source_rows(fault.sources)
    lines: dict[str, list[int]] = {}
    for row in rows:
        lines.setdefault(_row_file(row), []).append(int(row["line"]))
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


def _labels(frame: pd.DataFrame) -> list:
    seen = []
    for value in frame["arm_label"] if "arm_label" in frame else []:
        missing = value is None or (isinstance(value, float) and math.isnan(value))
        label = None if missing else str(value)
        if label not in seen:
            seen.append(label)
    return seen


def _with_label(frame: pd.DataFrame, label) -> pd.DataFrame:
    column = frame["arm_label"]
    if label is None:
        return frame[column.isna()]
    return frame[column == label]


def _pair_effects(study_id, outcome, arms, contrasts, info: _Outcome, measure, studies):
    """Effects (list of dicts) and reasons (list of str) for one study × outcome."""
    effects, reasons = [], []
    treat = arms[arms["arm"] == "treatment"]
    ctrl = arms[arms["arm"] == "control"]
    if treat.empty and ctrl.empty and contrasts.empty:
        if (arms["arm"] == "all").any():
            return [], ["only whole-sample (arm = all) baseline values; no between-group data"]
        return [], ["no treatment or control rows"]

    arm_labels, contrast_labels = _labels(treat), _labels(contrasts)
    named = [x for x in dict.fromkeys(arm_labels + contrast_labels) if x is not None]
    single = len(arm_labels) <= 1 and len(contrast_labels) <= 1 and len(named) <= 1
    if single:
        comparisons = [named[0] if named else None]
    else:
        labelled = [x for x in contrast_labels if x is not None]
        comparisons = list(dict.fromkeys(arm_labels + labelled))
        for _, row in contrasts[contrasts["arm_label"].isna()].iterrows():
            reasons.append(
                f"contrasts.csv:{int(row['line'])} has no arm_label but the study has several "
                "treatment arms; fix: give the arm_label it compares"
            )

    control_labels = _labels(ctrl)
    several_controls = len(control_labels) > 1
    n_split = len(comparisons)
    study = studies.get(study_id)
    study_secondary = study is not None and _text(study, "secondary") == "yes"

    for label in comparisons:
        name = f"{label} vs control" if label is not None else "treatment vs control"
        prefix = f"{name}: " if len(comparisons) > 1 else ""
        if single:
            t_rows, c_rows = treat, ctrl
            candidates = contrasts
        else:
            t_rows = _with_label(treat, label)
            c_rows = ctrl
            candidates = _with_label(contrasts, label)

        usable, why = [], []
        for _, row in candidates.iterrows():
            effect, reason = _contrast_effect(row, measure)
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
                effect = _replace_derivation(effect, f"{effect.derivation}; {unused}")
            if not math.isfinite(effect.n_treatment) or not math.isfinite(effect.n_control):
                effect = _fill_sizes(effect, t_rows, c_rows, n_split)
        elif several_controls:
            why.append(
                "several control arms (labels "
                + ", ".join(str(x) for x in control_labels)
                + "); metak compares each treatment arm with one control"
            )
        else:
            effect, reason = _arms_effect(t_rows, c_rows, measure, info.prepost_r, n_split)
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
    secondary = study_secondary or any(_text(row, "secondary") == "yes" for row in used)
    sources = [s for s in dict.fromkeys(_text(row, "source") for row in used) if s]
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


def _replace_derivation(effect: _Effect, derivation: str) -> _Effect:
    return replace(effect, derivation=derivation)


def _fill_sizes(effect: _Effect, t_rows, c_rows, n_split) -> _Effect:
    """Group sizes for a contrast that does not give them, from the arms' follow-up/change rows."""

    def size(rows):
        if rows.empty:  # contrast-only study: nothing to look up (and pandas ops cost ~1 ms)
            return math.nan
        later = rows[rows["timepoint"].isin(("followup", "change"))]
        values = pd.to_numeric(later["n"], errors="coerce").dropna()
        return float(values.iloc[0]) if len(values) else math.nan

    n_t = effect.n_treatment if math.isfinite(effect.n_treatment) else size(t_rows)
    n_c = effect.n_control if math.isfinite(effect.n_control) else size(c_rows) / n_split
    return replace(effect, n_treatment=n_t, n_control=n_c)


def _pair_positions(table: pd.DataFrame) -> dict:
    """``{(study_id, outcome): [row positions]}`` of a records table, in file order."""
    positions: dict = {}
    for index, key in enumerate(
        zip(table["study_id"].astype(str), table["outcome"].astype(str), strict=True)
    ):
        positions.setdefault(key, []).append(index)
    return positions


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
    arms, contrasts = records.arms, records.contrasts
    studies = {str(row["study_id"]): pd.Series(row) for row in records.studies.to_dict("records")}
    pairs = list(
        dict.fromkeys(
            (str(s), str(o))
            for table in (arms, contrasts)
            for s, o in zip(table["study_id"], table["outcome"], strict=True)
        )
    )
    # Row positions of each study x outcome, found once (filtering the whole table per pair is
    # quadratic: minutes for 10,000 studies).
    arm_rows, contrast_rows = _pair_positions(arms), _pair_positions(contrasts)
    effect_rows, unusable_rows, problems = [], [], []
    for study_id, outcome in pairs:
        outcome_info = info.get(outcome, _Outcome(_DEFAULT_MEASURE, "unspecified", _DEFAULT_R))
        measure = measure_override or outcome_info.measure
        pair_arms = arms.iloc[arm_rows.get((study_id, outcome), [])]
        pair_contrasts = contrasts.iloc[contrast_rows.get((study_id, outcome), [])]
        try:
            with np.errstate(**_FLOAT_ERRORS):
                found, reasons = _pair_effects(
                    study_id, outcome, pair_arms, pair_contrasts, outcome_info, measure, studies
                )
        except _NumericFault as fault:
            problems.append(_numeric_problem(records.directory, fault, measure, study_id, outcome))
            continue
        except ArithmeticError as err:  # numpy FloatingPointError, Python OverflowError, ...
            fault = _NumericFault(_arithmetic_words(err), (pair_arms, pair_contrasts))
            problems.append(_numeric_problem(records.directory, fault, measure, study_id, outcome))
            continue
        effect_rows.extend(found)
        unusable_rows.extend(
            {"study_id": study_id, "outcome": outcome, "reason": reason} for reason in reasons
        )
    if problems:
        raise InputError(problems)
    return _result(effect_rows, unusable_rows)


def _result(effect_rows: list, unusable_rows: list) -> EffectsResult:
    effects = pd.DataFrame(effect_rows, columns=list(EFFECT_COLUMNS))
    for column in ("converted", "adjusted", "secondary"):
        effects[column] = effects[column].astype(bool)
    unusable = pd.DataFrame(unusable_rows, columns=list(UNUSABLE_COLUMNS))
    return EffectsResult(effects=effects.reset_index(drop=True), unusable=unusable)


# --------------------------------------------------------------------------- within one arm


def _within_arm_effect(rows, arm: str, measure: str, r: float) -> tuple[_Effect | None, str | None]:
    """MC or MN of one arm from its rows, or the reason it cannot be computed."""
    n_of = {"n_treatment": math.nan, "n_control": math.nan}
    column = "n_treatment" if arm == "treatment" else "n_control"
    if measure == "MN":
        follow = _pick(rows, "followup", arm)
        if follow is None:
            return None, f"MN needs a follow-up mean (with its spread) of the {arm} arm"
        yi, vi = within_arm.raw_mean(follow.mean, follow.sd, follow.n)
        summary, words, derived = follow, "arm: follow-up mean (MN)", None
    else:
        summary = _change(rows, arm, r)
        if summary is None:
            return None, (
                f"MC needs a change row, or baseline and follow-up rows, of the {arm} arm "
                f"(timepoints given: {', '.join(sorted(set(rows['timepoint'])))})"
            )
        if summary.derived_r:
            # The SD of the change was derived with r by _change; recompute the effect from the
            # two occasions so that MC is metafor's formula, not a second copy of it.
            base, follow = _pick(rows, "baseline", arm), _pick(rows, "followup", arm)
            yi, vi = within_arm.mean_change(
                follow.mean, follow.sd, base.mean, base.sd, summary.n, r
            )
            words = f"arm: change = follow-up − baseline, r = {_fmt(r)} assumed (MC)"
            derived = float(summary.dvar_dr)
        else:
            yi, vi = within_arm.mean_change_reported(summary.mean, summary.sd, summary.n)
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


def _arm_pair_effects(study_id, outcome, rows, arm, measure, info: _Outcome, studies):
    """Within-arm effects (list of dicts) and reasons (list of str) for one study × outcome."""
    if rows.empty:
        return [], [f"only a between-group contrast, no arm rows: no within-arm {measure}"]
    chosen = rows[rows["arm"] == arm]
    if chosen.empty:
        return [], [f"no {arm} arm rows"]
    study = studies.get(study_id)
    study_secondary = study is not None and _text(study, "secondary") == "yes"
    labels = _labels(chosen)
    groups = [(labels[0] if labels else None, chosen)] if len(labels) <= 1 else None
    if groups is None:  # several arms of this kind: one row each, told apart by arm_label
        groups = [(label, _with_label(chosen, label)) for label in labels]
    effects, reasons = [], []
    for label, arm_rows in groups:
        name = f"{arm} arm" + (f" ({label})" if label is not None else "")
        effect, reason = _within_arm_effect(arm_rows, arm, measure, info.prepost_r)
        if effect is None:
            reasons.append(f"{name}: {reason}" if len(groups) > 1 else reason)
            continue
        _check_effect(effect)
        effects.append(
            _effect_row(study_id, outcome, name, label, measure, info, effect, study_secondary)
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
    arms, contrasts = records.arms, records.contrasts
    studies = {str(row["study_id"]): pd.Series(row) for row in records.studies.to_dict("records")}
    arm_rows = _pair_positions(arms)
    pairs = list(dict.fromkeys([*arm_rows, *_pair_positions(contrasts)]))
    effect_rows, unusable_rows, problems = [], [], []
    for study_id, outcome in pairs:
        outcome_info = info.get(outcome, _Outcome(_DEFAULT_MEASURE, "unspecified", _DEFAULT_R))
        pair_arms = arms.iloc[arm_rows.get((study_id, outcome), [])]
        try:
            with np.errstate(**_FLOAT_ERRORS):
                found, reasons = _arm_pair_effects(
                    study_id, outcome, pair_arms, arm, measure, outcome_info, studies
                )
        except _NumericFault as fault:
            problems.append(_numeric_problem(records.directory, fault, measure, study_id, outcome))
            continue
        except ArithmeticError as err:
            fault = _NumericFault(_arithmetic_words(err), (pair_arms,))
            problems.append(_numeric_problem(records.directory, fault, measure, study_id, outcome))
            continue
        effect_rows.extend(found)
        unusable_rows.extend(
            {"study_id": study_id, "outcome": outcome, "reason": reason} for reason in reasons
        )
    if problems:
        raise InputError(problems)
    return _result(effect_rows, unusable_rows)
