"""The robustness checks end to end: files, columns, claims, report, switches and messages.

Runs on the bcg reference records (exact analyses: milliseconds), with a claims file, through
the same ``run_analyses`` and ``write_results`` as ``python -m metak fit``.
"""

from __future__ import annotations

import csv

import pandas as pd
import pytest

import metak
from metak.config import parse_config
from metak.derive import compute_effects
from metak.errors import ConfigError
from metak.fitting.orchestrator import run_analyses
from metak.output.integrity import verify_results
from metak.report import render_report
from metak.robustness.averaging import AVERAGING_COLUMNS
from metak.robustness.bayes_factors import BAYES_FACTOR_COLUMNS
from metak.robustness.psis import COMPARE_COLUMNS, LOO_COLUMNS
from metak.robustness.sensitivity import PSENSE_COLUMNS, SENSITIVITY_COLUMNS
from metak.robustness.tables import CLAIM_COLUMNS, LEAVE_ONE_OUT_COLUMNS, ROBUSTNESS_COLUMNS
from metak.spec import AnalysisSpec, RobustnessSpec
from tests.bcg_records import CONFIG_TEMPLATE, write_contrast_records
from tests.conftest import REFERENCE

FILES = {
    "robustness.csv": ROBUSTNESS_COLUMNS,
    "bayes_factors.csv": BAYES_FACTOR_COLUMNS,
    "model_averaging.csv": AVERAGING_COLUMNS,
    "leave_one_out.csv": LEAVE_ONE_OUT_COLUMNS,
    "loo.csv": LOO_COLUMNS,
    "loo_compare.csv": COMPARE_COLUMNS,
    "prior_sensitivity.csv": SENSITIVITY_COLUMNS,
    "psense.csv": PSENSE_COLUMNS,
}
CONFIG = CONFIG_TEMPLATE.format(
    name="bcg", outcome="logRR", moderator="ablat", tau="halfnormal(1.0)"
)


@pytest.fixture(scope="module")
def bcg_records(tmp_path_factory):
    directory = write_contrast_records(
        REFERENCE, "bcg_logRR", tmp_path_factory.mktemp("bcg"), "logRR", "logRR", "ablat"
    )
    with open(directory / "claims.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["claim_id", "claim", "analysis", "statement"])
        writer.writerow(["C1", "BCG lowers the risk of TB", "bcg_re", "mu < 0"])
        writer.writerow(["C2", "the effect is large", "bcg_re", "mu < -2"])
        writer.writerow(["C3", "latitude matters", "bcg_mr", "ablat < 0"])
        writer.writerow(["C4", "about heterogeneity", "bcg_re", "tau > 0.1"])
        writer.writerow(["C5", "no statement", "", ""])
    return metak.load_studies(directory, provenance="off")


@pytest.fixture(scope="module")
def written(bcg_records, tmp_path_factory):
    specs, settings = parse_config(CONFIG)
    result = run_analyses(bcg_records, specs, settings, effects=compute_effects(bcg_records))
    out = tmp_path_factory.mktemp("results") / "results"
    metak.write_results(result, out)
    return result, out


def test_every_robustness_file_is_written_with_its_documented_columns(written):
    result, out = written
    for name, columns in FILES.items():
        table = pd.read_csv(out / name)
        assert list(table.columns) == columns, name
    assert not verify_results(out).problems  # the manifest seals the new files too
    robust = pd.read_csv(out / "robustness.csv").set_index("analysis")
    assert list(robust.index) == ["bcg_re", "bcg_mr"]
    assert robust.loc["bcg_re", "parameter"] == "mu"
    assert robust.loc["bcg_mr", "parameter"] == "intercept"
    assert set(robust["label"]) <= {"robust", "not robust", "partly assessed", "not assessable"}
    # No outcomes.csv: no direction of benefit, so the verdict speaks of the sign (P > 0.999).
    assert robust.loc["bcg_re", "verdict"] == "negative"
    summary = pd.read_csv(out / "summary.csv")
    assert {"bcg_re_pet", "bcg_re_peese", "bcg_mr_pet", "bcg_mr_peese"} <= set(summary["analysis"])
    for name in ("bcg_re_pet", "bcg_mr_peese"):
        assert (out / "posterior" / f"{name}.nc").is_file()
    loo = pd.read_csv(out / "leave_one_out.csv")
    assert set(loo["analysis"]) == {"bcg_re", "bcg_mr"} and len(loo) == 26
    compare = pd.read_csv(out / "loo_compare.csv")
    assert set(compare["analysis"]) == {"bcg_re", "bcg_mr"}  # same effect sizes, one group
    bfs = pd.read_csv(out / "bayes_factors.csv")
    exact = bfs[(bfs["analysis"] == "bcg_mr") & (bfs["method"] == "exact")]
    assert set(exact["hypothesis"]) == {
        "effect",
        "heterogeneity",
        "moderators",
        "bias_pet",
        "bias_peese",
    }
    assert (bfs["method"] == "averaged").sum() == 6


def test_claims_get_a_robustness_label(written):
    _, out = written
    claims = pd.read_csv(out / "claims.csv").set_index("claim_id")
    assert CLAIM_COLUMNS == list(claims.columns[-2:])
    assert claims.loc["C1", "robustness"] in ("robust", "partly assessed")
    assert claims.loc["C2", "verdict"] == "contradicted"
    assert claims.loc["C3", "robustness"] != "not assessable"
    assert claims.loc["C4", "robustness"] == "not assessable"  # tau: not a coefficient
    assert "not tau" in claims.loc["C4", "robustness_detail"]
    assert claims.loc["C5", "robustness"] == "not assessable"


def test_the_report_has_the_robustness_section(written):
    _, out = written
    html = render_report(out)
    assert 'id="robustness"' in html and 'href="#robustness"' in html
    assert "funnel plot" in html and "with each study left out" in html
    assert "Bayes factors" in html and "Other priors" in html
    assert "Leave-one-out comparison" in html


def test_switches_turn_checks_off(bcg_records):
    effects = compute_effects(bcg_records)
    off = AnalysisSpec(name="bcg_re", outcome="logRR", robustness=False)
    partial = AnalysisSpec(
        name="p", outcome="logRR", robustness={"bias": False, "averaging": False}
    )
    result = run_analyses(bcg_records, [off, partial], parse_config(CONFIG)[1], effects=effects)
    assert list(result.analyses) == ["bcg_re", "p"]  # no PET/PEESE analyses
    robust = result.robustness.robustness.set_index("analysis")
    assert robust.loc["bcg_re", "label"] == "not assessable"
    assert robust.loc["bcg_re", "detail"] == "robustness = false for this analysis"
    assert "bias: switched off" in robust.loc["p", "detail"]
    assert result.robustness.model_averaging.empty
    claims = result.claims.set_index("claim_id")
    assert claims.loc["C1", "robustness"] == "not assessable"


@pytest.mark.parametrize(
    ("value", "toml", "fragment"),
    [
        ({"leave_one_out": "yes"}, "robustness = {leave_one_out = 'yes'}", "leave_one_out must be"),
        (
            {"bias": True, "funnel": True},
            "robustness = {bias = true, funnel = true}",
            "unknown key",
        ),
        ("all", "robustness = 'all'", "robustness must be true, false or a table"),
    ],
)
def test_robustness_key_gives_the_same_message_from_python_and_the_file(value, toml, fragment):
    with pytest.raises(ConfigError) as from_api:
        AnalysisSpec(name="re", outcome="y", robustness=value)
    with pytest.raises(ConfigError) as from_file:
        parse_config(f"[[analysis]]\nname = 're'\noutcome = 'y'\n{toml}\n", "cfg.toml")
    assert fragment in str(from_api.value)
    assert str(from_file.value) == f"cfg.toml: {from_api.value}"
    assert "\n" not in str(from_file.value)


def test_bias_slope_priors_must_be_normal():
    text = (
        "[[analysis]]\nname = 're'\noutcome = 'y'\n[analysis.priors]\n"
        "bias_slope = 'halfcauchy(1)'\n"
    )
    with pytest.raises(ConfigError, match=r"bias_slope: halfcauchy\(1\) is not a normal prior"):
        parse_config(text, "cfg.toml")
    (spec,), _ = parse_config(text.replace("halfcauchy(1)", "normal(0, 2)"), "cfg.toml")
    assert str(spec.priors["bias_slope"]) == "normal(0, 2)"
    assert spec.robustness == RobustnessSpec()


def test_a_users_analysis_is_never_replaced_by_a_check(bcg_records):
    # The user already has an analysis named like the PET check of another one.
    base = AnalysisSpec(name="x", outcome="logRR")
    theirs = AnalysisSpec(name="x_pet", outcome="logRR", robustness=False)
    result = run_analyses(
        bcg_records, [base, theirs], parse_config(CONFIG)[1], effects=compute_effects(bcg_records)
    )
    assert list(result.analyses) == ["x", "x_peese", "x_pet"]
    assert result.analyses["x_pet"].spec.model == "random_effects"  # theirs, untouched
    assert any("x_pet not written" in w for w in result.analyses["x"].warnings)


def test_selection_model_is_integrated_as_a_bias_check(bcg_records, monkeypatch):
    # The selection model is built elsewhere (metak.fitting.mcmc.selection); a stand-in with its
    # interface — here the exact random-effects fit under the name <name>_selection — shows
    # where its analysis, check and columns go.
    import sys
    import types
    from dataclasses import replace

    from metak.fitting.exact_engine import fit_exact_analysis

    calls = []

    def fit_selection_analysis(spec, data, settings, seed, progress=None):
        calls.append(spec.name)
        twin = replace(spec, name=f"{spec.name}_selection", claims=False)
        return fit_exact_analysis(twin, replace(data, spec=twin), settings, seed)

    stand_in = types.ModuleType("metak.fitting.mcmc.selection")
    stand_in.fit_selection_analysis = fit_selection_analysis
    monkeypatch.setitem(sys.modules, "metak.fitting.mcmc.selection", stand_in)
    spec = AnalysisSpec(name="s", outcome="logRR", robustness={"selection": True})
    result = run_analyses(
        bcg_records, [spec], parse_config(CONFIG)[1], effects=compute_effects(bcg_records)
    )
    assert calls == ["s"]
    assert list(result.analyses) == ["s", "s_pet", "s_peese", "s_selection"]
    row = result.robustness.robustness.iloc[0]
    assert row["selection_mean"] == pytest.approx(row["mean"], rel=1e-2)  # the same model here
    assert row["selection_verdict"] == row["verdict"]
    # BCG's effect survives every check; the bias checks are PET, PEESE and the selection model.
    assert row["label"] == "robust"
    assert "3 bias-adjusted" in row["detail"]


def test_without_the_selection_model_the_check_says_so(bcg_records, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "metak.fitting.mcmc.selection", None)  # import fails
    spec = AnalysisSpec(name="s", outcome="logRR", robustness={"selection": True})
    result = run_analyses(
        bcg_records, [spec], parse_config(CONFIG)[1], effects=compute_effects(bcg_records)
    )
    assert "s_selection" not in result.analyses
    row = result.robustness.robustness.iloc[0]
    assert row["label"] == "partly assessed"
    assert "not part of this build" in row["detail"]
