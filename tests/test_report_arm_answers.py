"""An analysis of one arm (a change within the treated or the control group) is answered as a
change within that arm — never as "vitamin K vs control" — and counts that arm's participants."""

from __future__ import annotations

import pandas as pd
import pytest

from metak.report.answers import _probability_words, _quantity, participants
from metak.report.inputs import AnalysisInfo, OutcomeInfo, QuestionInfo


def _info(arm: str | None, direction: str = "lower_is_better") -> AnalysisInfo:
    return AnalysisInfo(
        name="cac_arm",
        description="",
        model="random_effects",
        outcome="cac",
        outcomes=("cac",),
        measure="MC" if arm else "MD",
        direction=direction,
        k=2,
        n_studies=2,
        method="exact",
        converged=True,
        outcome_meta={"cac": OutcomeInfo("calcium score", "AU", direction)},
        intervention="vitamin K",
        comparator="placebo",
        arm=arm,
    )


@pytest.mark.parametrize(
    ("arm", "group"), [("treatment", "vitamin K"), ("control", "placebo")], ids=["treated", "ctrl"]
)
def test_a_change_within_one_arm_is_not_called_a_comparison(arm, group):
    info = _info(arm)
    expected = f"Within the {arm} arm ({group}), pooled mean change in calcium score"
    assert _quantity(info, "mu") == expected
    assert "vs" not in _quantity(info, "mu")
    question = QuestionInfo("Does calcification fall?", "cac_arm", "mu")
    assert _probability_words(info, question, "mu") == "probability of a fall within the arm"
    rising = _info(arm, direction="higher_is_better")
    assert _probability_words(rising, question, "mu") == "probability of a rise within the arm"


def test_a_comparison_is_still_one():
    info = _info(None)
    assert _quantity(info, "mu") == "Vitamin K vs placebo, pooled difference in calcium score"
    question = QuestionInfo("Does it slow?", "cac_arm", "mu")
    assert _probability_words(info, question, "mu") == (
        "probability of benefit (a lower value with vitamin K)"
    )


ROWS = pd.DataFrame(
    {
        "study_id": ["A", "B", "C"],
        "outcome": ["cac", "cac", "cac"],
        "n_treatment": [85.0, 200.0, float("nan")],
        "n_control": [float("nan"), float("nan"), float("nan")],
    }
)


def test_participants_of_one_arm_are_that_arms_group_sizes():
    assert participants(ROWS, "treatment") == (3, 285, 1)
    control = ROWS.rename(columns={"n_treatment": "n_control", "n_control": "n_treatment"})
    assert participants(control, "control") == (3, 285, 1)
    # Between-group analyses need both groups' sizes: these rows have no control n.
    assert participants(ROWS) == (3, 0, 3)
