"""The two claim kinds that need more than a pooled between-group effect, on planted data.

- **Reversal** ("X reverses calcification"): judged from the pooled mean change *within the
  treated arms* (``arm = "treatment"``, measure MC). Two planted worlds share the same
  between-group benefit; in one the treated arms fall (reversal), in the other they rise more
  slowly than the controls (slowing only). The between-group analysis cannot tell them apart;
  the arm-level one must.
- **Single trial** ("in trial S the effect was ..."): judged from that trial's shrunken effect
  ``theta[S]``, with its raw estimate and CI beside the verdict. The planted trial points the
  other way from the pooled effect, so a verdict read from ``mu`` would be the opposite one.

Every fit here takes the exact path (reported change scores, no assumed correlation): no MCMC.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

import metak
from metak.claims import judge_claims, parse_statement

# Planted arm-level worlds: k trials, n per arm, SD of the individual changes.
K, N, SD_CHANGE = 10, 60, 20.0
TAU_ARM = 2.0  # between-trial SD of the true arm means
# The posterior mean of the pooled treated-arm change lies within this many posterior SDs of
# the planted mean: with seeded data it is a fixed number; 3.5 SDs would be crossed by chance
# less than once in 2,000 seeds, and a wrong measure (e.g. the between-group MD, 15 units
# away, about 10 posterior SDs) fails it by far.
RECOVERY_SDS = 3.5


def _write(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


CLAIMS_HEADER = ["claim_id", "claim", "analysis", "statement"]
ANALYSES = """
[[analysis]]
name = "calc"
outcome = "calc"

[[analysis]]
name = "calc_treated"
outcome = "calc"
arm = "treatment"
measure = "MC"
"""


def _arm_world(directory: Path, treated_change: float, control_change: float, seed: int) -> Path:
    """Trials reporting each arm's mean change (SD, n); the planted arm means are given."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True)
    rows = []
    for i in range(K):
        for arm, planted in (("treatment", treated_change), ("control", control_change)):
            true_mean = planted + TAU_ARM * rng.standard_normal()
            observed = true_mean + SD_CHANGE / np.sqrt(N) * rng.standard_normal()
            rows.append([f"T{i:02d}", "calc", arm, "change", N, f"{observed:.6f}", SD_CHANGE, "AU"])
    _write(
        directory / "arms.csv",
        ["study_id", "outcome", "arm", "timepoint", "n", "mean", "sd", "unit"],
        rows,
    )
    _write(directory / "studies.csv", ["study_id"], [[f"T{i:02d}"] for i in range(K)])
    _write(
        directory / "outcomes.csv",
        ["outcome", "direction"],
        [["calc", "lower_is_better"]],
    )
    _write(
        directory / "claims.csv",
        CLAIMS_HEADER,
        [
            ["R1", "the supplement reverses calcification", "calc_treated", "mu < 0"],
            ["S1", "the supplement slows calcification", "calc", "mu < 0"],
        ],
    )
    (directory / "analyses.toml").write_text(ANALYSES, encoding="utf-8")
    return directory


def _fit(directory: Path):
    records = metak.load_studies(directory, provenance="off")
    return metak.fit(records, config=directory / "analyses.toml", seed=3)


@pytest.mark.parametrize(
    ("world", "treated", "control", "reversal"),
    [("reversal", -5.0, 10.0, "supported"), ("slowing only", 5.0, 20.0, "contradicted")],
)
def test_reversal_claim_is_judged_from_the_change_within_treated_arms(
    tmp_path, world, treated, control, reversal
):
    result = _fit(_arm_world(tmp_path / world.replace(" ", "_"), treated, control, seed=17))
    verdicts = dict(zip(result.claims["claim_id"], result.claims["verdict"], strict=True))
    # Both worlds have the same between-group benefit (-15): "slows" is supported in both ...
    assert verdicts["S1"] == "supported"
    # ... and only the arm-level quantity says whether calcification fell.
    assert verdicts["R1"] == reversal
    assert result.analyses["calc_treated"].method == "exact"
    pooled = result.summary.set_index(["analysis", "parameter"]).loc[("calc_treated", "mu")]
    assert abs(pooled["mean"] - treated) < RECOVERY_SDS * pooled["sd"]
    row = result.claims.set_index("claim_id").loc["R1"]
    assert row["parameter"] == "mu" and row["analysis"] == "calc_treated"
    assert np.isnan(row["study_yi"])  # not a single-trial claim: no raw estimate beside it


def _single_trial_world(directory: Path) -> Path:
    """Six trials around +1; trial 'Odd (dose B)' precisely at -1 (a study with two comparisons)."""
    directory.mkdir(parents=True)
    rows = [
        [f"P{i}", "y", "", "MD", value, 0.1] for i, value in enumerate([0.9, 1.1, 1.0, 1.2, 0.8])
    ]
    rows += [["Odd", "y", "dose A", "MD", 0.95, 0.1], ["Odd", "y", "dose B", "MD", -1.0, 0.05]]
    _write(
        directory / "contrasts.csv",
        ["study_id", "outcome", "arm_label", "measure", "estimate", "se"],
        rows,
    )
    _write(
        directory / "studies.csv",
        ["study_id"],
        [[sid] for sid in dict.fromkeys(r[0] for r in rows)],
    )
    _write(
        directory / "claims.csv",
        CLAIMS_HEADER,
        [
            ["T1", "in Odd, dose B lowered y", "re", "theta[Odd (dose B vs control)] < 0"],
            ["T2", "y is lowered overall", "re", "mu < 0"],
            ["T3", "in a trial not in the records", "re", "theta[Nowhere] < 0"],
        ],
    )
    (directory / "analyses.toml").write_text(
        '[[analysis]]\nname = "re"\noutcome = "y"\n', encoding="utf-8"
    )
    return directory


def test_single_trial_claim_is_judged_from_that_trials_theta(tmp_path):
    result = _fit(_single_trial_world(tmp_path / "single"))
    claims = result.claims.set_index("claim_id")
    analysis = result.analyses["re"]
    label = "Odd (dose B vs control)"
    assert label in analysis.data.row_label
    # The probability is the share of that study's own posterior draws below 0, read here
    # straight from the posterior file's theta (dim study), independently of the claims code.
    theta = analysis.datatree["posterior"]["theta"].sel(study=label).to_numpy().ravel()
    assert claims.loc["T1", "probability"] == pytest.approx(float(np.mean(theta < 0)), abs=0)
    assert claims.loc["T1", "verdict"] == "supported"
    assert claims.loc["T2", "verdict"] == "contradicted"  # the pooled effect points the other way
    # The raw estimate beside the verdict is the study table's row.
    table = analysis.study_table.set_index("label").loc[label]
    assert claims.loc["T1", "study_yi"] == -1.0
    assert claims.loc["T1", "study_ci_low"] == table["ci_low"]
    assert claims.loc["T1", "study_ci_high"] == table["ci_high"]
    assert "the study's own estimate is -1 (95% CI" in claims.loc["T1", "explanation"]
    assert claims.loc["T3", "verdict"] == "not assessable"
    assert "'theta[Nowhere]' is not in these results" in claims.loc["T3", "explanation"]


@pytest.mark.parametrize(
    ("text", "parameter"),
    [
        ("theta[VitaK-CAC] < 0", "theta[VitaK-CAC]"),
        (
            "theta[Fulton2016 (MK-7 100 vs control)] in [-0.5, 0.5]",
            "theta[Fulton2016 (MK-7 100 vs control)]",
        ),
        ("theta[Knapen2015 [pwv_cf]] >= -1", "theta[Knapen2015 [pwv_cf]]"),
    ],
)
def test_theta_statements_name_any_row_label(text, parameter):
    assert parse_statement(text).parameter == parameter


def test_verdict_table_columns_without_an_observed_callback():
    import pandas as pd

    claims = pd.DataFrame(
        [{"claim_id": "C1", "claim": "c", "analysis": "a", "statement": "theta[S] > 0"}]
    )
    table = judge_claims(claims, lambda analysis, parameter: np.array([1.0, -1.0, 2.0, 3.0]))
    assert table.loc[0, "probability"] == 0.75
    assert table.loc[0, "parameter"] == "theta[S]"
    assert np.isnan(table.loc[0, "study_yi"])


@pytest.mark.parametrize(
    ("parameter", "label"),
    [
        ("theta[VitaK-CAC]", "VitaK-CAC"),
        ("theta[Knapen2015 [pwv_cf]]", "Knapen2015 [pwv_cf]"),
        ("theta[]", None),
        ("theta_new", None),
        ("mu", None),
    ],
)
def test_study_label_of_a_parameter(parameter, label):
    from metak.fitting.parameters import study_label

    assert study_label(parameter) == label
