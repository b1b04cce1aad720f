"""Claim statements and verdict thresholds; reading a claims file."""

import os

import numpy as np
import pandas as pd
import pytest

from metak import input_files
from metak.claims import (
    CONTRADICTED_AT,
    SUPPORTED_AT,
    StatementError,
    judge_claims,
    load_claims,
    parse_statement,
    verdict_for,
)
from metak.errors import InputError


@pytest.mark.parametrize(
    ("text", "draws", "expected"),
    [
        ("mu < 0", [-1, -2, 1, -3], 0.75),
        ("mu <= -1", [-1, -2, 1, -3], 0.75),
        ("tau > 0.5", [0.1, 0.6, 0.7, 0.2], 0.5),
        ("effect_at_300 in [-1, 0]", [-0.5, -2, 0.1, -1], 0.5),
        ("x outside [-1, 1]", [-2, 0, 2, 0.5], 0.5),
    ],
)
def test_statement_probability(text, draws, expected):
    statement = parse_statement(text)
    assert np.mean(statement.holds(np.asarray(draws, dtype=float))) == expected


@pytest.mark.parametrize("text", ["mu << 0", "mu < abc", "in [1, 2]", "mu in [2, 1]"])
def test_bad_statements(text):
    with pytest.raises(ValueError):
        parse_statement(text)


@pytest.mark.parametrize(
    ("text", "numeral"),
    [
        ("mu < \u0660", "'\u0660' (ARABIC-INDIC DIGIT ZERO)"),
        ("tau in [\uff10, 1]", "'\uff10' (FULLWIDTH DIGIT ZERO)"),
        ("mu > 1\u00b2", "'\u00b2' (SUPERSCRIPT TWO)"),
        ("mu <= -\u0966.\u096b", "'\u0966' (DEVANAGARI DIGIT ZERO)"),
    ],
)
def test_numbers_in_other_digits_are_refused(text, numeral):
    # float() would read all but the superscript: statements take ASCII digits, as the records.
    with pytest.raises(StatementError) as info:
        parse_statement(text)
    assert str(info.value) == f"not a number: {numeral} is not one of the ASCII digits 0-9"
    assert info.value.fix == "write the numbers with the ASCII digits 0-9"


def test_load_claims_names_the_row_of_a_statement_in_other_digits(tmp_path):
    path = tmp_path / "claims.csv"
    path.write_text(
        "claim_id,claim,analysis,statement\nc1,helps,a,mu < 0\nc2,helps,a,mu < \u0660\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError) as info:
        load_claims(path)
    assert [str(problem) for problem in info.value.problems] == [
        f"{path}:3, column statement, value 'mu < \u0660': not a number: '\u0660' (ARABIC-INDIC "
        "DIGIT ZERO) is not one of the ASCII digits 0-9; fix: write the numbers with the ASCII "
        "digits 0-9"
    ]


def test_load_claims_reads_through_the_bounded_reader(tmp_path, monkeypatch):
    path = tmp_path / "claims.csv"
    path.write_text("claim_id,claim\nc1,helps\n", encoding="utf-8")
    assert list(load_claims(path)["claim_id"]) == ["c1"]
    monkeypatch.setattr(input_files, "CLAIMS_LIMIT", 10)
    with pytest.raises(InputError, match="over the 10 bytes limit for a claims file"):
        load_claims(path)
    os.mkfifo(tmp_path / "fifo.csv")  # refused before it is opened: no wait for a writer
    with pytest.raises(InputError, match="fifo.csv: a named pipe \\(FIFO\\), not a regular file"):
        load_claims(tmp_path / "fifo.csv")
    with pytest.raises(InputError, match="missing.csv: claims file not found; fix: check the path"):
        load_claims(tmp_path / "missing.csv")


def test_verdict_thresholds():
    assert verdict_for(SUPPORTED_AT) == "supported"
    assert verdict_for(CONTRADICTED_AT) == "contradicted"
    assert verdict_for(0.5) == "uncertain"
    assert verdict_for(float("nan")) == "not assessable"


def test_judge_claims_uses_draws_and_flags_missing():
    claims = pd.DataFrame(
        {
            "claim_id": ["c1", "c2", "c3"],
            "claim": ["helps", "unknown analysis", "no statement"],
            "analysis": ["a", "zzz", None],
            "statement": ["mu < 0", "mu < 0", None],
        }
    )
    rng = np.random.default_rng(1)
    draws = rng.normal(-1.0, 0.3, size=4000)  # P(mu < 0) ~ 0.9996

    def draws_for(analysis, parameter):
        return draws if (analysis, parameter) == ("a", "mu") else None

    verdicts = judge_claims(claims, draws_for).set_index("claim_id")
    assert verdicts.loc["c1", "verdict"] == "supported"
    assert verdicts.loc["c1", "probability"] > 0.99
    assert verdicts.loc["c2", "verdict"] == "not assessable"
    assert verdicts.loc["c3", "verdict"] == "not assessable"


def test_unusable_analysis_gives_not_assessable_with_probability_and_assessment_note():
    claims = pd.DataFrame(
        {
            "claim_id": ["ok", "bad"],
            "claim": ["helps", "helps too"],
            "analysis": ["a", "b"],
            "statement": ["mu < 0", "mu < 0"],
            "assessment": ["direction only", ""],
        }
    )
    draws = np.linspace(-2.0, 0.5, 1001)  # P(mu < 0) = 800/1001

    verdicts = judge_claims(
        claims,
        lambda analysis, parameter: draws,
        lambda analysis: (
            "analysis 'b' failed the MCMC diagnostics gate" if analysis == "b" else None
        ),
    ).set_index("claim_id")
    assert verdicts.loc["ok", "verdict"] == "uncertain"
    assert verdicts.loc["ok", "explanation"].endswith("(direction only)")
    assert verdicts.loc["bad", "verdict"] == "not assessable"
    assert verdicts.loc["bad", "probability"] == pytest.approx(800 / 1001)
    assert "diagnostics gate" in verdicts.loc["bad", "explanation"]
