"""PET and PEESE: the derived analyses against the exact meta-regression on the same data.

The analyses ``<name>_pet`` / ``<name>_peese`` must be exactly the meta-regression a user would
fit by adding the standard error (or the variance) as a moderator column with the bias slope's
prior and no centring; with too few studies they must still be fitted, warn, and stay out of
the verdict; with the pre-post correlation integrated out, their summary must be the exact
mixture's and their stored draws must agree with it.
"""

from __future__ import annotations

import csv
import math

import numpy as np
import pandas as pd
import pytest

import metak
from metak.derive import compute_effects
from metak.fitting.orchestrator import run_analyses
from metak.priors import parse_prior
from metak.robustness.assess import assess_robustness
from metak.robustness.problem import Fits, Variant, problem_for
from metak.spec import AnalysisSpec, RobustnessSpec, Settings
from tests.bcg_records import write_contrast_records
from tests.conftest import REFERENCE
from tests.robustness_helpers import write_change_records

# Both sides are the same exact computation on the same numbers (the regressor column is written
# with repr() and read back): they may differ only in the last bits of the regressor.
SAME_MODEL = 1e-9
PARAMETERS = ["intercept", "tau", "tau2", "I2", "theta_new"]


def _bcg_with_regressors(tmp_path):
    directory = write_contrast_records(
        REFERENCE, "bcg_logRR", tmp_path / "bcg", "logRR", "logRR", "ablat"
    )
    data = pd.read_csv(REFERENCE / "bcg_logRR.csv")
    se = np.sqrt(data["vi"].to_numpy(float))
    studies = pd.read_csv(directory / "studies.csv")
    # The regressors exactly as the contrasts give them: se (PET) and se^2 (PEESE).
    studies["se_col"] = [repr(float(s)) for s in se]
    studies["v_col"] = [repr(float(s) ** 2) for s in se]
    studies.to_csv(directory / "studies.csv", index=False, quoting=csv.QUOTE_MINIMAL)
    return metak.load_studies(directory, provenance="off")


PRIORS = {
    "intercept": "normal(0, 10)",
    "mu": "normal(0, 10)",
    "tau": "halfnormal(1.0)",
    "bias_slope": "normal(0, 1)",
    "bias_slope_peese": "normal(0, 5)",
}


@pytest.mark.parametrize("moderators", [(), ("ablat",)])
@pytest.mark.parametrize(
    ("kind", "column", "slope"), [("pet", "se_col", "sei"), ("peese", "v_col", "sei2")]
)
def test_bias_analysis_is_the_exact_meta_regression_on_the_se(
    tmp_path, moderators, kind, column, slope
):
    records = _bcg_with_regressors(tmp_path)
    effects = compute_effects(records)
    model = "meta_regression" if moderators else "random_effects"
    priors = {
        k: parse_prior(v) for k, v in PRIORS.items() if k != ("mu" if moderators else "intercept")
    }
    if moderators:
        priors["ablat"] = parse_prior("normal(0, 10)")
    base = AnalysisSpec(
        name="bcg",
        outcome="logRR",
        model=model,
        moderators=moderators,
        priors=priors,
        robustness=RobustnessSpec(
            bayes_factors=False, averaging=False, leave_one_out=False, prior_sensitivity=False
        ),
    )
    bias_prior = PRIORS["bias_slope" if kind == "pet" else "bias_slope_peese"]
    by_hand = AnalysisSpec(
        name="by_hand",
        outcome="logRR",
        model="meta_regression",
        moderators=(*moderators, column),
        center={column: "none"},
        priors={
            "intercept": parse_prior(PRIORS["intercept"]),
            "tau": parse_prior(PRIORS["tau"]),
            column: parse_prior(bias_prior),
            **({"ablat": parse_prior("normal(0, 10)")} if moderators else {}),
        },
        robustness=RobustnessSpec.off(),
    )
    result = run_analyses(records, [base, by_hand], Settings(), effects=effects)
    assert list(result.analyses) == ["bcg", "bcg_pet", "bcg_peese", "by_hand"]
    derived = result.analyses[f"bcg_{kind}"].summary.set_index("parameter")
    expected = result.analyses["by_hand"].summary.set_index("parameter")
    for parameter in [*PARAMETERS, *moderators]:
        for column_name in ("mean", "sd", "q2.5", "q50", "q97.5"):
            assert derived.loc[parameter, column_name] == pytest.approx(
                expected.loc[parameter, column_name], rel=SAME_MODEL, abs=SAME_MODEL
            ), (parameter, column_name)
    assert derived.loc[slope, "mean"] == pytest.approx(expected.loc[column, "mean"], rel=SAME_MODEL)
    fitted = result.analyses[f"bcg_{kind}"]
    assert fitted.method == "exact" and fitted.spec.claims is False
    assert fitted.datatree.attrs["metak_analysis"] == f"bcg_{kind}"
    # And the robustness row's PET/PEESE effect is that intercept.
    row = result.robustness.robustness.set_index("analysis").loc["bcg"]
    assert row[f"{kind}_mean"] == pytest.approx(derived.loc["intercept", "mean"], rel=1e-6)


def test_two_studies_are_fitted_with_a_warning_and_left_out_of_the_verdict(tmp_path):
    data = pd.read_csv(REFERENCE / "bcg_logRR.csv").iloc[[0, 3]]
    directory = tmp_path / "two"
    write_contrast_records(REFERENCE, "bcg_logRR", directory, "logRR", "logRR", "ablat")
    contrasts = pd.read_csv(directory / "contrasts.csv")
    contrasts[contrasts["study_id"].astype(str).isin(data["study"].astype(str))].to_csv(
        directory / "contrasts.csv", index=False
    )
    records = metak.load_studies(directory, provenance="off")
    spec = AnalysisSpec(name="two", outcome="logRR")
    result = run_analyses(records, [spec], Settings(), effects=compute_effects(records))
    for kind in ("pet", "peese"):
        derived = result.analyses[f"two_{kind}"]
        assert any("cannot separate the bias slope" in w for w in derived.warnings)
        assert np.isfinite(derived.summary["mean"]).all()
    row = result.robustness.robustness.iloc[0]
    assert "PET (k = 2: not identified)" in row["detail"]
    assert row["label"] in ("partly assessed", "not robust")
    notes = result.robustness.bayes_factors.set_index("hypothesis")["note"]
    assert "mostly compares priors" in notes["bias_pet"]


def test_with_the_correlation_integrated_the_summary_is_the_exact_mixture(tmp_path):
    records = metak.load_studies(write_change_records(tmp_path / "change"), provenance="off")
    spec = AnalysisSpec(name="chg", outcome="score", robustness=RobustnessSpec(averaging=False))
    result = run_analyses(
        records, [spec], Settings(draws=200, tune=200), effects=compute_effects(records)
    )
    base = result.analyses["chg"]
    problem, _ = problem_for(base)
    assert problem.method == "exact_r"  # r integrated exactly, by the checks ...
    # ... and by the analysis itself: its rows are the same mixture's.
    assert base.method == "exact" and base.mcmc is None
    own = Fits(problem)().coef("mu")
    rows = base.summary.set_index("parameter")
    assert rows.loc["mu", "mean"] == pytest.approx(own.mean, rel=1e-12)
    assert rows.loc["mu", "q2.5"] == pytest.approx(own.quantile(0.025), rel=1e-9)
    assert 0 < rows.loc["r_prepost", "sd"] < 0.2  # the beta(6, 4) prior's SD is 0.15
    pet = result.analyses["chg_pet"]
    summary = pet.summary.set_index("parameter")
    mixture = Fits(problem)(Variant(bias="pet")).coef("mu")
    assert summary.loc["intercept", "mean"] == pytest.approx(mixture.mean, rel=1e-12)
    assert summary.loc["intercept", "q97.5"] == pytest.approx(mixture.quantile(0.975), rel=1e-9)
    draws = pet.draws("intercept")
    # The stored draws are independent: their mean is within 5 Monte Carlo SEs of the exact mean.
    assert abs(draws.mean() - mixture.mean) < 5 * mixture.sd / math.sqrt(draws.size)
    row = result.robustness.robustness.set_index("analysis").loc["chg"]
    assert row["method"] == "exact_r"
    assert row["pet_mean"] == pytest.approx(mixture.mean, rel=1e-9)


def test_without_posterior_files_the_checks_keep_every_number_and_draw_nothing(tmp_path):
    # metak batch without posterior files asks the checks for no derived trees: every table and
    # every summary row must be the same as with them (all are exact), only the trees missing.
    records = _bcg_with_regressors(tmp_path)
    spec = AnalysisSpec(name="bcg", outcome="logRR", priors={"tau": parse_prior("halfnormal(1)")})
    fitted = run_analyses(records, [spec], Settings(), effects=compute_effects(records))
    base = {"bcg": fitted.analyses["bcg"]}
    with_trees = assess_robustness(base, None, Settings())
    without = assess_robustness(base, None, Settings(), posterior=False)
    assert list(without.analyses) == list(with_trees.analyses) == ["bcg", "bcg_pet", "bcg_peese"]
    for name in ("bcg_pet", "bcg_peese"):
        assert with_trees.analyses[name].datatree is not None
        assert without.analyses[name].datatree is None
        assert without.analyses[name].draws("intercept") is None
        pd.testing.assert_frame_equal(
            without.analyses[name].summary, with_trees.analyses[name].summary
        )
    for file, table in with_trees.tables.files().items():
        pd.testing.assert_frame_equal(without.tables.files()[file], table, obj=file)
