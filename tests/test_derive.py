"""compute_effects: each derivation path, multi-arm splitting, unusable reasons, r linearity.

Records are built by hand with the canonical columns of README.md, "Study records: the CSV
schema" (``_records``), so these tests do not depend on CSV reading; one test at the end goes
through ``load_records``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from metak.derive import EFFECT_COLUMNS, UNUSABLE_COLUMNS, EffectsResult, compute_effects
from metak.effects import (
    change_from_baseline,
    from_median_iqr,
    hedges_g,
    log_ratio_of_means,
    md_change_dvi_dr,
    mean_difference,
)
from metak.errors import ConfigError, InputError

# Effects are the same closed forms evaluated the same way; only float rounding separates them.
EXACT = 1e-10
Z95 = stats.norm.ppf(0.975)

ARMS_COLUMNS = (
    "study_id outcome arm arm_label timepoint time_months n mean sd se sem median q1 q3 min max "
    "unit source quote secondary notes"
).split()
CONTRASTS_COLUMNS = (
    "study_id outcome arm_label measure estimate order se ci_low ci_high ci_level p_value "
    "n_treatment n_control adjusted source quote secondary notes"
).split()
OUTCOMES_COLUMNS = "outcome family description unit direction measure prepost_r".split()
NUMERIC = {
    "time_months", "n", "mean", "sd", "se", "sem", "median", "q1", "q3", "min", "max",
    "estimate", "ci_low", "ci_high", "ci_level", "p_value", "n_treatment", "n_control",
    "prepost_r", "line",
}  # fmt: skip


def _table(rows, columns):
    frame = pd.DataFrame([{c: row.get(c) for c in columns} for row in rows], columns=columns)
    frame["line"] = np.arange(2, len(rows) + 2, dtype=float)
    for column in frame.columns:
        if column in NUMERIC:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
        else:
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


def _records(arms=(), contrasts=(), outcomes=None, studies=None):
    try:
        from metak.records import StudyRecords
    except ImportError:  # records.py is written concurrently; same fields per architecture.md

        @dataclass(frozen=True)
        class StudyRecords:
            directory: Path
            studies: pd.DataFrame
            arms: pd.DataFrame
            contrasts: pd.DataFrame
            outcomes: pd.DataFrame
            moderators: dict
            warnings: tuple

    arms_t = _table(list(arms), ARMS_COLUMNS)
    contrasts_t = _table(list(contrasts), CONTRASTS_COLUMNS)
    if outcomes is None:
        names = dict.fromkeys(list(arms_t["outcome"]) + list(contrasts_t["outcome"]))
        outcomes = [{"outcome": o, "direction": "lower_is_better"} for o in names]
    outcomes = [{"measure": "MD", "prepost_r": 0.5, **o} for o in outcomes]
    if studies is None:
        ids = dict.fromkeys(list(arms_t["study_id"]) + list(contrasts_t["study_id"]))
        studies = [{"study_id": s} for s in ids]
    studies_t = pd.DataFrame(studies)
    studies_t["line"] = np.arange(2, len(studies) + 2, dtype=float)
    return StudyRecords(
        directory=Path("."),
        studies=studies_t,
        arms=arms_t,
        contrasts=contrasts_t,
        outcomes=_table(outcomes, OUTCOMES_COLUMNS),
        moderators={},
        warnings=(),
    )


def _arm(arm, timepoint, n, mean=None, sd=None, study="S1", outcome="y", **extra):
    return {"study_id": study, "outcome": outcome, "arm": arm, "timepoint": timepoint, "n": n,
            "mean": mean, "sd": sd, "unit": "u", "source": "PMID:1", **extra}  # fmt: skip


def _contrast(measure, estimate, study="S1", outcome="y", **extra):
    return {"study_id": study, "outcome": outcome, "measure": measure, "estimate": estimate,
            "source": "PMID:2", **extra}  # fmt: skip


def _one(result: EffectsResult) -> pd.Series:
    assert len(result.effects) == 1, result.unusable
    return result.effects.iloc[0]


# ---------------------------------------------------------------- shape


def test_columns_and_empty_tables():
    result = compute_effects(_records())
    assert tuple(result.effects.columns) == EFFECT_COLUMNS
    assert tuple(result.unusable.columns) == UNUSABLE_COLUMNS
    assert result.effects.empty and result.unusable.empty


def test_bad_override_is_a_config_error():
    with pytest.raises(ConfigError, match="MD, SMD, ROM"):
        compute_effects(_records(), measure_override="OR")


# ---------------------------------------------------------------- contrasts


def test_contrast_md_se_from_ci_normal():
    row = _one(
        compute_effects(_records(contrasts=[_contrast("MD", -0.51, ci_low=-0.9, ci_high=-0.12)]))
    )
    se = 0.78 / (2 * Z95)
    assert row["yi"] == pytest.approx(-0.51, rel=EXACT)
    assert row["vi"] == pytest.approx(se**2, rel=EXACT)
    assert row["se"] == pytest.approx(se, rel=EXACT)
    assert row["ci_low"] == pytest.approx(-0.51 - Z95 * se, rel=EXACT)
    assert row["derivation"] == "contrast: MD, SE from 95% CI (normal)"
    assert row["rows"] == "contrasts.csv:2"
    assert not row["converted"] and row["vi_conversion"] == 0
    assert math.isnan(row["prepost_r"]) and math.isnan(row["dvi_dr"])


def test_contrast_ci_uses_t_with_group_sizes_and_level():
    c = _contrast("MD", 2.0, ci_low=0.5, ci_high=3.5, ci_level=0.9, n_treatment=20, n_control=22)
    row = _one(compute_effects(_records(contrasts=[c])))
    se = 3.0 / (2 * stats.t.ppf(0.95, 40))
    assert row["se"] == pytest.approx(se, rel=EXACT)
    assert "90% CI (t, df = 40)" in row["derivation"]
    assert row["n_treatment"] == 20 and row["n_control"] == 22


def test_contrast_se_from_p_value():
    c = _contrast("MD", -1.2, p_value=0.03, n_treatment=15, n_control=15)
    row = _one(compute_effects(_records(contrasts=[c])))
    assert row["se"] == pytest.approx(1.2 / stats.t.isf(0.015, 28), rel=EXACT)
    assert "SE from p = 0.03 (t, df = 28)" in row["derivation"]


def test_ratio_of_means_converted_to_log_scale():
    c = _contrast("RM", 0.8, ci_low=0.64, ci_high=1.0)
    row = _one(
        compute_effects(
            _records(
                contrasts=[c],
                outcomes=[{"outcome": "y", "measure": "ROM", "direction": "lower_is_better"}],
            )
        )
    )
    assert row["measure"] == "ROM"
    assert row["yi"] == pytest.approx(math.log(0.8), rel=EXACT)
    assert row["se"] == pytest.approx((math.log(1.0) - math.log(0.64)) / (2 * Z95), rel=EXACT)
    c = _contrast("RM", 0.8, se=0.08)
    row = _one(compute_effects(_records(contrasts=[c]), measure_override="ROM"))
    assert row["se"] == pytest.approx(0.1, rel=EXACT)  # delta method: 0.08 / 0.8
    assert "delta method" in row["derivation"]


def test_order_control_minus_treatment_is_turned_round():
    for measure, estimate, expected in (("MD", 2.0, -2.0), ("RM", 2.0, -math.log(2.0))):
        c = _contrast(measure, estimate, se=0.5, order="c-t")
        override = "ROM" if measure == "RM" else None
        row = _one(compute_effects(_records(contrasts=[c]), measure_override=override))
        assert row["yi"] == pytest.approx(expected, rel=EXACT)
        assert "turned round" in row["derivation"]


def test_contrast_preferred_over_arms_and_adjusted_preferred():
    arms = [_arm("treatment", "followup", 30, 5.0, 2.0), _arm("control", "followup", 30, 6.0, 2.0)]
    contrasts = [
        _contrast("MD", -0.8, se=0.4),
        _contrast("MD", -0.9, se=0.3, adjusted="yes"),
    ]
    row = _one(compute_effects(_records(arms, contrasts)))
    assert row["yi"] == pytest.approx(-0.9, rel=EXACT)
    assert row["adjusted"]
    assert "1 other usable contrast row(s) not used" in row["derivation"]
    assert row["rows"] == "contrasts.csv:3"
    # Group sizes the contrast does not give are taken from the arms.
    assert row["n_treatment"] == 30 and row["n_control"] == 30


def test_other_measure_contrast_falls_back_to_arms_or_is_unusable():
    arms = [_arm("treatment", "followup", 30, 5.0, 2.0), _arm("control", "followup", 30, 6.0, 2.0)]
    row = _one(compute_effects(_records(arms, [_contrast("logHR", -0.2, se=0.1)])))
    assert row["derivation"].startswith("arms: follow-up values")
    result = compute_effects(_records(contrasts=[_contrast("logHR", -0.2, se=0.1)]))
    assert result.effects.empty
    (reason,) = result.unusable["reason"]
    assert "contrasts.csv:2 reports logHR" in reason and "analysis measure MD" in reason


def test_override_makes_md_contrast_unusable_and_uses_arms():
    arms = [_arm("treatment", "followup", 30, 5.0, 2.0), _arm("control", "followup", 25, 6.0, 2.5)]
    row = _one(
        compute_effects(_records(arms, [_contrast("MD", -1.0, se=0.5)]), measure_override="SMD")
    )
    yi, vi = hedges_g(5.0, 2.0, 30, 6.0, 2.5, 25)
    assert row["measure"] == "SMD"
    assert row["yi"] == pytest.approx(float(yi), rel=EXACT)
    assert row["vi"] == pytest.approx(float(vi), rel=EXACT)


# ---------------------------------------------------------------- arms


def test_reported_change_scores():
    arms = [_arm("treatment", "change", 120, -0.36, 1.2), _arm("control", "change", 124, 0.15, 1.3)]
    row = _one(compute_effects(_records(arms)))
    yi, vi = mean_difference(-0.36, 1.2, 120, 0.15, 1.3, 124)
    assert (row["yi"], row["vi"]) == pytest.approx((float(yi), float(vi)), rel=EXACT)
    assert row["derivation"] == "arms: change from baseline as reported (MD)"
    assert math.isnan(row["dvi_dr"]) and math.isnan(row["prepost_r"])
    assert row["rows"] == "arms.csv:2,3"


def _prepost_arms(sb_t=3.0, sf_t=3.5, sb_c=2.8, sf_c=3.1, n_t=40, n_c=38):
    return [
        _arm("treatment", "baseline", n_t, 10.0, sb_t),
        _arm("treatment", "followup", n_t, 8.0, sf_t),
        _arm("control", "baseline", n_c, 10.2, sb_c),
        _arm("control", "followup", n_c, 9.9, sf_c),
    ]


def _prepost_vi(r, sb_t=3.0, sf_t=3.5, sb_c=2.8, sf_c=3.1, n_t=40, n_c=38):
    _, sd_t = change_from_baseline(10.0, sb_t, 8.0, sf_t, r)
    _, sd_c = change_from_baseline(10.2, sb_c, 9.9, sf_c, r)
    return mean_difference(-2.0, sd_t, n_t, -0.3, sd_c, n_c)


def test_change_from_baseline_and_followup_with_outcome_r():
    outcomes = [{"outcome": "y", "direction": "lower_is_better", "prepost_r": 0.6}]
    row = _one(compute_effects(_records(_prepost_arms(), outcomes=outcomes)))
    yi, vi = _prepost_vi(0.6)
    assert row["yi"] == pytest.approx(float(yi), rel=EXACT)
    assert row["vi"] == pytest.approx(float(vi), rel=EXACT)
    assert row["prepost_r"] == 0.6
    assert row["dvi_dr"] == pytest.approx(
        float(md_change_dvi_dr(3.0, 3.5, 40, 2.8, 3.1, 38)), rel=EXACT
    )
    assert row["derivation"] == "arms: change = follow-up − baseline, r = 0.6 assumed (MD)"


@given(
    sds=st.lists(st.floats(0.2, 20), min_size=4, max_size=4),
    n_t=st.integers(2, 300),
    n_c=st.integers(2, 300),
    r0=st.floats(-0.9, 0.9),
    r1=st.floats(-0.9, 0.9),
)
@settings(max_examples=25, deadline=None)
def test_dvi_dr_gives_vi_at_any_r(sds, n_t, n_c, r0, r1):
    """Deriving at r1 gives vi(r0) + (r1 - r0) * dvi_dr: the MD variance is linear in r."""
    kwargs = dict(zip(("sb_t", "sf_t", "sb_c", "sf_c"), sds, strict=True), n_t=n_t, n_c=n_c)

    def derive(r):
        outcomes = [{"outcome": "y", "direction": "lower_is_better", "prepost_r": r}]
        return _one(compute_effects(_records(_prepost_arms(**kwargs), outcomes=outcomes)))

    at_r0, at_r1 = derive(r0), derive(r1)
    predicted = at_r0["vi"] + (r1 - r0) * at_r0["dvi_dr"]
    assert at_r1["vi"] == pytest.approx(predicted, rel=1e-9, abs=1e-12)
    assert at_r0["dvi_dr"] == pytest.approx(at_r1["dvi_dr"], rel=EXACT)


def test_followup_only_is_flagged():
    arms = [_arm("treatment", "followup", 30, 5.0, 2.0), _arm("control", "followup", 30, 6.0, 2.0)]
    row = _one(compute_effects(_records(arms)))
    assert row["derivation"] == (
        "arms: follow-up values, baseline assumed balanced by randomisation (MD)"
    )


def test_sd_from_se_and_latest_followup():
    arms = [
        _arm("treatment", "followup", 25, 4.0, None, se=0.4, time_months=6),
        _arm("treatment", "followup", 25, 3.0, None, se=0.5, time_months=12),
        _arm("control", "followup", 25, 5.0, 2.5, time_months=12),
    ]
    row = _one(compute_effects(_records(arms)))
    yi, vi = mean_difference(3.0, 0.5 * 5, 25, 5.0, 2.5, 25)
    assert (row["yi"], row["vi"]) == pytest.approx((float(yi), float(vi)), rel=EXACT)
    assert "treatment follow-up SD from SE" in row["derivation"]
    assert row["rows"] == "arms.csv:3,4"


def test_median_iqr_arm_is_converted_with_extra_variance():
    arms = [
        _arm("treatment", "followup", 30, median=400, q1=310, q3=520),
        _arm("control", "followup", 30, 600.0, 150.0),
    ]
    row = _one(compute_effects(_records(arms)))
    conv = from_median_iqr(30, 400, 310, 520)
    yi, vi = mean_difference(float(conv.mean), float(conv.sd), 30, 600.0, 150.0, 30)
    assert row["yi"] == pytest.approx(float(yi), rel=EXACT)
    assert row["vi"] == pytest.approx(float(vi), rel=EXACT)
    assert row["converted"]
    assert row["vi_conversion"] == pytest.approx(float(conv.var_extra), rel=EXACT)
    assert (
        "treatment follow-up mean/SD from median/IQR (mean: Luo 2018 (S2); SD: Wan 2014 (S2))"
        in row["derivation"]
    )


def test_smd_prefers_followup_and_rom_needs_positive_means():
    arms = _prepost_arms()
    row = _one(compute_effects(_records(arms), measure_override="SMD"))
    yi, _ = hedges_g(8.0, 3.5, 40, 9.9, 3.1, 38)
    assert row["yi"] == pytest.approx(float(yi), rel=EXACT)
    row = _one(compute_effects(_records(arms), measure_override="ROM"))
    yi, vi = log_ratio_of_means(8.0, 3.5, 40, 9.9, 3.1, 38)
    assert (row["yi"], row["vi"]) == pytest.approx((float(yi), float(vi)), rel=EXACT)
    negative = [
        _arm("treatment", "followup", 30, -1.0, 2.0),
        _arm("control", "followup", 30, 6.0, 2.0),
    ]
    result = compute_effects(_records(negative), measure_override="ROM")
    assert result.effects.empty
    assert "ROM needs positive means (treatment -1, control 6)" in result.unusable["reason"][0]


def test_multi_arm_splits_control_n():
    arms = [
        _arm("treatment", "followup", 30, 5.0, 2.0, arm_label="low dose"),
        _arm("treatment", "followup", 32, 4.5, 2.2, arm_label="high dose"),
        _arm("control", "followup", 60, 6.0, 2.4),
    ]
    result = compute_effects(_records(arms))
    assert list(result.effects["comparison"]) == ["low dose vs control", "high dose vs control"]
    assert list(result.effects["n_control"]) == [30.0, 30.0]
    _, vi = mean_difference(4.5, 2.2, 32, 6.0, 2.4, 30)
    assert result.effects["vi"].iloc[1] == pytest.approx(float(vi), rel=EXACT)
    assert all("split evenly across 2 comparisons" in d for d in result.effects["derivation"])


def test_multi_arm_contrast_without_label_is_reported():
    arms = [
        _arm("treatment", "followup", 30, 5.0, 2.0, arm_label="A"),
        _arm("treatment", "followup", 30, 4.0, 2.0, arm_label="B"),
        _arm("control", "followup", 30, 6.0, 2.0),
    ]
    result = compute_effects(_records(arms, [_contrast("MD", -1.0, se=0.5)]))
    assert len(result.effects) == 2
    assert (
        "has no arm_label but the study has several treatment arms" in result.unusable["reason"][0]
    )


# ---------------------------------------------------------------- unusable


def test_whole_sample_baseline_gives_no_effect():
    result = compute_effects(_records([_arm("all", "baseline", None, 560.0)]))
    assert result.effects.empty
    assert list(result.unusable.iloc[0]) == [
        "S1", "y", "only whole-sample (arm = all) baseline values; no between-group data",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("arms", "fragment"),
    [
        ([_arm("treatment", "followup", 30, 5.0, 2.0)], "no control arm rows"),
        ([_arm("treatment", "baseline", 30, 5.0, 2.0), _arm("control", "baseline", 30, 5.0, 2.0)],
         "usable timepoints given: baseline"),
    ],
)  # fmt: skip
def test_unusable_reasons(arms, fragment):
    result = compute_effects(_records(arms))
    assert result.effects.empty
    assert fragment in result.unusable["reason"][0]


def test_secondary_and_source():
    arms = [
        _arm("treatment", "followup", 30, 5.0, 2.0, secondary="yes", source="doi:10.1/x"),
        _arm("control", "followup", 30, 6.0, 2.0, source="doi:10.1/x"),
    ]
    row = _one(compute_effects(_records(arms)))
    assert row["secondary"] and row["source"] == "doi:10.1/x"


# ---------------------------------------------------------------- numbers that break the arithmetic

FIX_VALUE = (
    "fix: check the value against the source; a value this extreme is a typo or a wrong unit"
)
TINY, HUGE = 1e-200, 1e200


def _pair(measure="MD", timepoint="followup", **values):
    """Treatment and control arm rows; ``values`` like ``sd=(t, c)`` override the defaults."""
    columns = {"n": (30, 30), "mean": (5.0, 6.0), "sd": (2.0, 2.0), **values}
    return [
        _arm(arm, timepoint, **{name: pair[i] for name, pair in columns.items()})
        for i, arm in enumerate(("treatment", "control"))
    ]


def _median_pair(**values):
    columns = {"median": (5.0, 6.0), "q1": (4.0, 5.0), "q3": (6.0, 7.0), **values}
    return [
        _arm(arm, "followup", 30, **{name: pair[i] for name, pair in columns.items()})
        for i, arm in enumerate(("treatment", "control"))
    ]


def _derived_change_pair(baseline_sd):
    return [
        _arm("treatment", "baseline", 30, 9.0, baseline_sd),
        _arm("treatment", "followup", 30, 8.0, 2.0),
        _arm("control", "baseline", 30, 9.0, 2.0),
        _arm("control", "followup", 30, 9.5, 2.0),
    ]


# (name, arms, contrasts, measure, expected problem line). Every route of the module docstring.
NUMERIC_FAULTS = [
    ("contrast_se_underflows", [], [_contrast("MD", -0.5, se=TINY)], None,
     "contrasts.csv:2, column se, value '1e-200': the effect size's variance underflows to 0 "
     f"(MD of S1 / y from contrasts.csv:2); {FIX_VALUE}"),
    ("contrast_se_overflows", [], [_contrast("MD", -0.5, se=HUGE)], None,
     "contrasts.csv:2, column se, value '1e200': the effect size's variance overflows "
     f"(MD of S1 / y from contrasts.csv:2); {FIX_VALUE}"),
    ("contrast_ci_overflows", [], [_contrast("MD", 0.0, ci_low=-1e308, ci_high=1e308)], None,
     "contrasts.csv:2, column ci_low, value '-1e308': computing the effect size overflows "
     f"(MD of S1 / y from contrasts.csv:2); {FIX_VALUE}"),
    ("contrast_ratio_se_underflows", [], [_contrast("RM", 1e150, se=1e-200)], "ROM",
     "contrasts.csv:2, column se, value '1e-200': the effect size's variance underflows to 0 "
     f"(ROM of S1 / y from contrasts.csv:2); {FIX_VALUE}"),
    ("md_both_sds_underflow", _pair(sd=(TINY, TINY)), [], None,
     "arms.csv:2, column sd, value '1e-200': the effect size's variance underflows to 0 "
     f"(MD of S1 / y from arms.csv:2,3); {FIX_VALUE}"),
    ("md_sd_overflows", _pair(sd=(HUGE, 2.0)), [], None,
     "arms.csv:2, column sd, value '1e200': computing the effect size overflows "
     f"(MD of S1 / y from arms.csv:2,3); {FIX_VALUE}"),
    ("md_means_overflow", _pair(mean=(1.7e308, -1.7e308)), [], None,
     "arms.csv:2, column mean, value '1.7e308': computing the effect size overflows "
     f"(MD of S1 / y from arms.csv:2,3); {FIX_VALUE}"),
    ("md_sem_underflows", _pair(sd=(None, None), sem=(TINY, TINY)), [], None,
     "arms.csv:2, column sem, value '1e-200': the effect size's variance underflows to 0 "
     f"(MD of S1 / y from arms.csv:2,3); {FIX_VALUE}"),
    ("smd_sds_underflow", _pair(sd=(TINY, TINY)), [], "SMD",
     "arms.csv:2, column sd, value '1e-200': computing the effect size divides by zero "
     f"(SMD of S1 / y from arms.csv:2,3); {FIX_VALUE}"),
    ("rom_mean_underflows", _pair(mean=(TINY, 6.0)), [], "ROM",
     "arms.csv:2, column mean, value '1e-200': computing the effect size divides by zero "
     f"(ROM of S1 / y from arms.csv:2,3); {FIX_VALUE}"),
    ("median_conversion_overflows", _median_pair(q3=(1e300, 7.0)), [], None,
     "arms.csv:2, column q3, value '1e300': computing the effect size overflows "
     f"(MD of S1 / y from arms.csv:2,3); {FIX_VALUE}"),
    ("reported_change_sds_underflow", _pair(timepoint="change", sd=(TINY, TINY)), [], None,
     "arms.csv:2, column sd, value '1e-200': the effect size's variance underflows to 0 "
     f"(MD of S1 / y from arms.csv:2,3); {FIX_VALUE}"),
    ("derived_change_overflows", _derived_change_pair(HUGE), [], None,
     "arms.csv:2, column sd, value '1e200': computing the effect size overflows "
     f"(MD of S1 / y from arms.csv:2,3,4,5); {FIX_VALUE}"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "arms", "contrasts", "measure", "expected"),
    NUMERIC_FAULTS,
    ids=[case[0] for case in NUMERIC_FAULTS],
)
def test_numbers_that_break_the_arithmetic_name_the_cell(name, arms, contrasts, measure, expected):
    # Warnings are errors in this suite: a numpy RuntimeWarning on the way fails the test too.
    with pytest.raises(InputError) as info:
        compute_effects(_records(arms, contrasts), measure_override=measure)
    assert [str(problem) for problem in info.value.problems] == [expected]


def test_every_broken_pair_is_reported_and_good_values_near_the_edge_pass():
    arms = [
        *_pair(sd=(TINY, TINY)),
        *(dict(row, study_id="S2") for row in _pair(sd=(1e-150, 1e-150))),  # vi = 7e-302: fine
        *(dict(row, study_id="S3") for row in _pair(sd=(HUGE, 2.0))),
    ]
    with pytest.raises(InputError) as info:
        compute_effects(_records(arms))
    assert [(p.row, p.column, p.value) for p in info.value.problems] == [
        (2, "sd", "1e-200"),
        (6, "sd", "1e200"),
    ]
    row = _one(compute_effects(_records([dict(r, study_id="S2") for r in _pair(sd=(1e-150,) * 2)])))
    assert row["vi"] == pytest.approx(2 * 1e-300 / 30, rel=EXACT)


def test_unused_contrast_with_a_broken_se_is_reported():
    contrasts = [_contrast("MD", -0.9, se=0.3, adjusted="yes"), _contrast("MD", -0.8, se=TINY)]
    with pytest.raises(InputError, match="contrasts.csv:3, column se, value '1e-200'"):
        compute_effects(_records(contrasts=contrasts))


# ---------------------------------------------------------------- through the reader


def test_records_base_fixture():
    from metak.records import load_records

    records = load_records(Path(__file__).parent / "data" / "records_base", provenance="off")
    result = compute_effects(records)
    alpha = result.effects.set_index("study_id").loc["Alpha2015"]
    assert alpha["derivation"].startswith("contrast: MD")  # preferred over the change rows
    beta = result.effects.set_index("study_id").loc["Beta2019"]
    assert beta["converted"] and beta["vi_conversion"] > 0
    assert list(result.unusable["study_id"]) == ["Alpha2015"]  # dpucmgp: arm = all baseline only
