"""Within-arm measures (MC, MN): the formulas against R metafor, the records -> effects path, and
the analysis key ``arm``.

The reference values in ``tests/data/metafor_arm_level`` were computed by R metafor 3.8-1's
``escalc(measure="MC" | "MN", ...)`` with the script kept beside them (``make_reference.R``).
"""

from __future__ import annotations

import csv
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from metak.config import parse_config
from metak.derive import EFFECT_COLUMNS, compute_arm_effects
from metak.effects import (
    arm_change_dvar_dr,
    from_median_iqr,
    mean_change,
    mean_change_reported,
    raw_mean,
)
from metak.errors import ConfigError, InputError
from metak.fitting.data import build_analysis_data
from metak.fitting.method import choose_method
from metak.priors import parse_prior
from metak.spec import AnalysisSpec, DeficiencySpec
from tests.conftest import REPO
from tests.test_derive import _arm, _records

METAFOR = REPO / "tests" / "data" / "metafor_arm_level" / "escalc_MC_MN.csv"
# metafor wrote 15 significant digits and the formulas are the same; 1e-8 relative leaves room
# for rounding only, not for a different formula.
REL_TOL = 1e-8
# The same closed form evaluated by metak twice (two routes): only float rounding separates them.
EXACT = 1e-10


def _metafor() -> dict[str, np.ndarray]:
    with open(METAFOR, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 111
    return {key: np.array([float(row[key]) for row in rows]) for key in rows[0] if key != "source"}


# ---------------------------------------------------------------- formulas against metafor


def test_mean_change_matches_metafor():
    d = _metafor()
    yi, vi = mean_change(
        d["m_followup"], d["sd_followup"], d["m_baseline"], d["sd_baseline"], d["ni"], d["ri"]
    )
    np.testing.assert_allclose(yi, d["yi_MC"], rtol=REL_TOL, atol=0)
    np.testing.assert_allclose(vi, d["vi_MC"], rtol=REL_TOL, atol=0)


def test_reported_mean_change_matches_metafor():
    d = _metafor()
    yi, vi = mean_change_reported(d["m_followup"], d["sd_followup"], d["ni"])
    np.testing.assert_allclose(yi, d["yi_MC_reported"], rtol=REL_TOL, atol=0)
    np.testing.assert_allclose(vi, d["vi_MC_reported"], rtol=REL_TOL, atol=0)


def test_raw_mean_matches_metafor():
    d = _metafor()
    yi, vi = raw_mean(d["m_followup"], d["sd_followup"], d["ni"])
    np.testing.assert_allclose(yi, d["yi_MN"], rtol=REL_TOL, atol=0)
    np.testing.assert_allclose(vi, d["vi_MN"], rtol=REL_TOL, atol=0)


def test_mean_change_variance_is_linear_in_r_with_the_documented_slope():
    d = _metafor()
    args = (d["m_followup"], d["sd_followup"], d["m_baseline"], d["sd_baseline"], d["ni"])
    _, v0 = mean_change(*args, 0.2)
    _, v1 = mean_change(*args, 0.9)
    slope = arm_change_dvar_dr(d["sd_baseline"], d["sd_followup"], d["ni"])
    np.testing.assert_allclose(v1, v0 + 0.7 * slope, rtol=EXACT)


# ---------------------------------------------------------------- records -> within-arm effects


def test_reported_change_of_each_arm():
    records = _records(
        arms=[
            _arm("treatment", "change", 40, mean=-3.0, sd=8.0),
            _arm("control", "change", 38, mean=6.0, sd=9.0),
        ]
    )
    treated = compute_arm_effects(records, "treatment", "MC").effects
    control = compute_arm_effects(records, "control", "MC").effects
    assert tuple(treated.columns) == EFFECT_COLUMNS
    row = treated.iloc[0]
    assert (row["yi"], row["measure"], row["comparison"]) == (-3.0, "MC", "treatment arm")
    assert row["vi"] == pytest.approx(64.0 / 40, rel=EXACT)
    assert row["n_treatment"] == 40 and math.isnan(row["n_control"])
    assert math.isnan(row["prepost_r"]) and math.isnan(row["dvi_dr"])
    assert "as reported" in row["derivation"]
    crow = control.iloc[0]
    assert crow["yi"] == 6.0 and crow["vi"] == pytest.approx(81.0 / 38, rel=EXACT)
    assert crow["n_control"] == 38 and math.isnan(crow["n_treatment"])


def test_change_derived_from_baseline_and_follow_up_carries_r_as_the_md_does():
    arms = [
        _arm("treatment", "baseline", 50, mean=100.0, sd=30.0),
        _arm("treatment", "followup", 48, mean=90.0, sd=35.0),
        _arm("control", "baseline", 50, mean=101.0, sd=31.0),
        _arm("control", "followup", 50, mean=112.0, sd=33.0),
    ]
    by_r = {}
    for r in (0.3, 0.7):
        records = _records(arms=arms, outcomes=[{"outcome": "y", "prepost_r": r}])
        by_r[r] = compute_arm_effects(records, "treatment", "MC").effects.iloc[0]
    low, high = by_r[0.3], by_r[0.7]
    yi, vi = mean_change(90.0, 35.0, 100.0, 30.0, 48, 0.3)  # n: measured at both times
    assert low["yi"] == pytest.approx(float(yi), rel=EXACT)
    assert low["vi"] == pytest.approx(float(vi), rel=EXACT)
    assert low["prepost_r"] == 0.3
    assert low["dvi_dr"] == pytest.approx(-2 * 30.0 * 35.0 / 48, rel=EXACT)
    # vi(r) = vi(r0) + (r - r0) dvi/dr exactly: the model's uncertain r applies unchanged.
    assert high["vi"] == pytest.approx(low["vi"] + 0.4 * low["dvi_dr"], rel=EXACT)


def test_medians_keep_their_conversion_variance():
    arms = [
        _arm("treatment", "baseline", 85, median=135, q1=89, q3=226),
        _arm("treatment", "followup", 85, median=184, q1=122, q3=298),
    ]
    row = compute_arm_effects(_records(arms=arms), "treatment", "MC").effects.iloc[0]
    base, follow = from_median_iqr(85, 135, 89, 226), from_median_iqr(85, 184, 122, 298)
    assert row["converted"]
    assert row["yi"] == pytest.approx(float(follow.mean - base.mean), rel=EXACT)
    assert row["vi_conversion"] == pytest.approx(
        float(base.var_extra + follow.var_extra), rel=EXACT
    )
    assert row["vi_conversion"] > 0


def test_raw_mean_uses_the_follow_up_value():
    arms = [
        _arm("control", "baseline", 30, mean=9.0, sd=2.0),
        _arm("control", "followup", 29, mean=9.5, se=0.4),
    ]
    row = compute_arm_effects(_records(arms=arms), "control", "MN").effects.iloc[0]
    assert row["yi"] == 9.5
    # SD from SE (SD = SE·sqrt(n)), so vi = SD^2 / n = SE^2.
    assert row["vi"] == pytest.approx(0.16, rel=EXACT)
    assert "SD from SE" in row["derivation"]


def test_several_treatment_arms_give_one_row_each_and_the_control_one():
    arms = [
        _arm("treatment", "change", 20, mean=-1.0, sd=2.0, arm_label="low"),
        _arm("treatment", "change", 21, mean=-2.0, sd=2.0, arm_label="high"),
        _arm("control", "change", 22, mean=1.0, sd=2.0),
    ]
    records = _records(arms=arms)
    treated = compute_arm_effects(records, "treatment", "MC").effects
    assert list(treated["comparison"]) == ["treatment arm (low)", "treatment arm (high)"]
    assert list(treated["yi"]) == [-1.0, -2.0]
    control = compute_arm_effects(records, "control", "MC").effects
    # The control arm is pooled once: its n is not split as in the between-group comparisons.
    assert len(control) == 1 and control.iloc[0]["n_control"] == 22


def test_pairs_without_such_an_arm_are_listed_with_the_reason():
    arms = [_arm("treatment", "baseline", 20, mean=1.0, sd=1.0)]
    records = _records(arms=arms, contrasts=[{"study_id": "S2", "outcome": "y", "measure": "MD",
                                              "estimate": -1.0, "se": 0.5}])  # fmt: skip
    result = compute_arm_effects(records, "treatment", "MC")
    assert result.effects.empty
    reasons = dict(zip(result.unusable["study_id"], result.unusable["reason"], strict=True))
    assert "timepoints given: baseline" in reasons["S1"]
    assert reasons["S2"] == "only a between-group contrast, no arm rows: no within-arm MC"
    control = compute_arm_effects(records, "control", "MN").unusable
    assert control.iloc[0]["reason"] == "no control arm rows"


@pytest.mark.parametrize(
    ("arm", "measure", "message"),
    [("treated", "MC", "arm 'treated' is not allowed"), ("control", "MD", "measure 'MD' is not")],
)
def test_bad_arm_or_measure_is_a_config_error(arm, measure, message):
    with pytest.raises(ConfigError, match=message):
        compute_arm_effects(_records(), arm, measure)


def test_numbers_that_break_the_arithmetic_name_the_cell():
    arms = [_arm("treatment", "change", 20, mean=1.0, sd=1e-200)]
    with pytest.raises(InputError) as info:
        compute_arm_effects(_records(arms=arms), "treatment", "MC")
    text = str(info.value)
    assert "column sd" in text and "underflows to 0" in text and "MC of S1 / y" in text


# ---------------------------------------------------------------- the analysis key `arm`


def _spec_from_toml(body: str) -> AnalysisSpec:
    parsed = parse_config(f'[[analysis]]\nname = "a"\noutcome = "y"\n{body}\n', "analyses.toml")
    return parsed.analyses[0]


def test_arm_defaults_to_the_mean_change_the_same_from_toml_and_python():
    assert _spec_from_toml('arm = "treatment"').measure == "MC"
    assert AnalysisSpec(name="a", outcome="y", arm="treatment").measure == "MC"
    assert AnalysisSpec(name="a", outcome="y", arm="control", measure="MN").measure == "MN"


@pytest.mark.parametrize(
    ("body", "kwargs", "message"),
    [
        (
            'arm = "treated"',
            {"arm": "treated"},
            "analysis 'a': arm 'treated' is not allowed; fix: use 'treatment' or 'control'",
        ),
        (
            'arm = "control"\nmeasure = "MD"',
            {"arm": "control", "measure": "MD"},
            "analysis 'a': measure 'MD' compares arms; an analysis of one arm takes MC or MN",
        ),
        (
            'measure = "MC"',
            {"measure": "MC"},
            "analysis 'a': measure 'MC' describes one arm, but no arm is named; "
            'fix: add arm = "treatment" or "control"',
        ),
        (
            'arm = "treatment"\nmodel = "meta_regression"\ndeficiency = true',
            {"arm": "treatment", "model": "meta_regression", "deficiency": DeficiencySpec()},
            "analysis 'a': arm = 'treatment' cannot be combined with deficiency",
        ),
    ],
)
def test_arm_rules_are_one_line_and_the_same_from_toml_and_python(body, kwargs, message):
    with pytest.raises(ConfigError) as from_toml:
        _spec_from_toml(body)
    with pytest.raises(ConfigError) as from_python:
        AnalysisSpec(name="a", outcome="y", **kwargs)
    for err in (from_toml, from_python):
        text = str(err.value)
        assert "\n" not in text
        assert message in text
    assert (
        str(from_toml.value).split("analysis 'a'")[-1]
        == str(from_python.value).split("analysis 'a'")[-1]
    )


def test_an_arm_analysis_keeps_conversion_variance_and_uncertain_r():
    arms = [
        _arm("treatment", "baseline", 85, median=135, q1=89, q3=226),
        _arm("treatment", "followup", 85, median=184, q1=122, q3=298),
        _arm("control", "change", 80, mean=50.0, sd=60.0),
        _arm("treatment", "change", 200, mean=27.0, sd=84.0, study="S2"),
        _arm("control", "change", 188, mean=37.0, sd=96.0, study="S2"),
    ]
    records = _records(arms=arms)
    spec = AnalysisSpec(name="treated", outcome="y", arm="treatment")
    data = build_analysis_data(pd.DataFrame(columns=EFFECT_COLUMNS), records, spec)
    assert data.row_label == ("S1", "S2")
    assert data.v_conversion[0] > 0 and data.v_conversion[1] == 0
    assert np.isfinite(data.dvi_dr[0]) and np.isnan(data.dvi_dr[1])
    # r is a parameter; the exact path integrates it (beta(6, 4) lies within [-1, 1]) ...
    assert data.has_uncertain_r and choose_method(spec, data) == "exact"
    # ... unless MCMC is asked for, or r's prior reaches beyond [-1, 1].
    assert choose_method(replace(spec, method="mcmc"), data) == "mcmc"
    wide = replace(spec, priors={**spec.priors, "r": parse_prior("normal(0.6, 1)")})
    assert choose_method(wide, data) == "mcmc"
    fixed = AnalysisSpec(name="fixed", outcome="y", arm="treatment", prepost_r_uncertain=False)
    fixed_data = build_analysis_data(pd.DataFrame(columns=EFFECT_COLUMNS), records, fixed)
    assert choose_method(fixed, fixed_data) == "exact"
