"""The report's numbers in isolation: participants, units, rounded priors, and the
prior-to-posterior contraction against the closed form of a conjugate normal model (exact fits,
no MCMC)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from metak.fitting.orchestrator import run_analyses
from metak.output.writer import write_results
from metak.records import load_records
from metak.report.answers import CONTRACTION_MIN, answer_html, compute_answer, participants
from metak.report.inputs import (
    AnalysisInfo,
    DeficiencyInfo,
    OutcomeInfo,
    load_inputs,
    open_posterior,
)
from metak.report.text import rounded_prior
from metak.report.units import parameter_unit, split_parameter
from metak.spec import AnalysisSpec, QuestionSpec, Settings
from tests.synthetic import write_records

# The prior variance is estimated from the exact fit's prior draws (16,000): its relative
# standard error is sqrt(2 / 16000) = 1.1%, which moves the contraction by at most that times
# var_post / var_prior <= 1; five standard errors.
CONTRACTION_TOLERANCE = 0.056
# tau's prior: so concentrated at 0 that the model is the conjugate normal (tau <= 1e-5 while
# the within-study SEs are 1).
TAU_PRIOR = "halfnormal(1e-6)"


def test_rounded_prior():
    assert rounded_prior("normal(0, 911.2641118089409)") == "normal(0, 911.3)"
    assert rounded_prior("halfnormal(113.90801397611762)") == "halfnormal(113.9)"
    assert rounded_prior("lognormal(-1.2, 0.3)") == "lognormal(\u22121.2, 0.3)"
    assert rounded_prior("beta(6, 4)") == "beta(6, 4)"
    assert rounded_prior("normal(0, 0.07878889608791347)") == "normal(0, 0.07879)"
    assert rounded_prior("halfstudent_t(3, 2.5)") == "halfstudent_t(3, 2.5)"


def test_participants_count_a_shared_control_once():
    rows = pd.DataFrame(
        {
            # A: two doses against one control group; B: two outcomes (joint model), the larger
            # analysed sample counts; C: no group sizes recorded.
            "study_id": ["A", "A", "B", "B", "C"],
            "outcome": ["y", "y", "y", "z", "y"],
            "n_treatment": [30, 32, 40, 38, np.nan],
            "n_control": [31, 31, 40, 39, np.nan],
        }
    )
    assert participants(rows) == (3, (30 + 32 + 31) + (40 + 40), 1)


def _info(**changes) -> AnalysisInfo:
    base = {
        "name": "a",
        "description": "",
        "model": "random_effects",
        "outcome": "cac",
        "outcomes": ("cac",),
        "measure": "MD",
        "direction": "lower_is_better",
        "k": 3,
        "n_studies": 3,
        "method": "exact",
        "converged": True,
        "outcome_meta": {"cac": OutcomeInfo("CAC score", "Agatston units", "lower_is_better")},
    }
    return AnalysisInfo(**{**base, **changes})


def test_units_of_parameters():
    info = _info()
    assert parameter_unit(info, "mu") == "Agatston units"
    assert parameter_unit(info, "tau2") == "(Agatston units)²"
    assert parameter_unit(info, "I2") == "%"
    assert parameter_unit(_info(measure="SMD"), "mu") == "SD units"
    deficiency = _info(
        model="meta_regression",
        moderators=("log_baseline_dpucmgp",),
        deficiency=DeficiencyInfo(500.0, (300.0, 700.0), True, "dpucmgp"),
    )
    assert parameter_unit(deficiency, "effect_at_300") == "Agatston units"
    assert parameter_unit(deficiency, "p_more_deficient_more_benefit") == ""
    assert parameter_unit(deficiency, "log_baseline_dpucmgp") == (
        "Agatston units per unit of log(baseline dp-ucMGP)"
    )
    joint = _info(
        model="joint",
        outcome="dpucmgp, pwv",
        outcomes=("dpucmgp", "pwv"),
        link_biomarker="dpucmgp",
        outcome_meta={
            "dpucmgp": OutcomeInfo("dp-ucMGP", "pmol/L", "lower_is_better"),
            "pwv": OutcomeInfo("PWV", "m/s", "lower_is_better"),
        },
    )
    assert parameter_unit(joint, "mu[dpucmgp]") == "pmol/L"
    assert parameter_unit(joint, "tau[pwv]") == "m/s"
    assert parameter_unit(joint, "gamma_link[pwv]") == "m/s per pmol/L"
    assert parameter_unit(joint, "corr[dpucmgp,pwv]") == ""
    assert split_parameter("corr[dpucmgp,pwv]") == ("corr", "dpucmgp,pwv")


@pytest.mark.parametrize("prior_sd", [0.5, 10.0])
def test_contraction_is_the_conjugate_normal_closed_form(tmp_path, prior_sd):
    """With tau ~ 0 the pooled effect's posterior is normal with precision 1/s0² + sum(1/v_i),
    so the contraction is 1 - (1 / (1/s0² + sum 1/v)) / s0²."""
    se = np.array([1.0, 1.5, 2.0])
    y = np.array([-0.4, 0.3, -1.1])
    studies = [{"study_id": f"s{i}"} for i in range(len(y))]
    directory = write_records(
        tmp_path / "records", studies, [(f"s{i}", "y", y[i], se[i]) for i in range(len(y))], []
    )
    records = load_records(directory, provenance="off")
    spec = AnalysisSpec(
        name="re", outcome="y", priors={"mu": f"normal(0, {prior_sd})", "tau": TAU_PRIOR}
    )
    question = QuestionSpec("Does it work?", "re", "mu")
    result = run_analyses(records, [spec], Settings(), questions=[question])
    assert result.analyses["re"].method == "exact"
    results = tmp_path / "results"
    results.mkdir()
    write_results(result, results, {"command": "test"})
    inputs = load_inputs(results)
    tree = open_posterior(inputs.posterior_path("re"), "re")
    (asked,) = inputs.questions
    answer = compute_answer(inputs, tree, asked)
    posterior_var = 1.0 / (1.0 / prior_sd**2 + np.sum(1.0 / se**2))
    expected = 1.0 - posterior_var / prior_sd**2
    assert answer.contraction == pytest.approx(expected, abs=CONTRACTION_TOLERANCE)
    assert answer.data_cannot_tell == (expected < CONTRACTION_MIN)
    text = answer_html(answer, 1)
    assert ("The data cannot tell" in text) == (expected < CONTRACTION_MIN)
    assert f"{len(y)} trials, participants not recorded" in text  # contrasts without n
