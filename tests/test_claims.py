"""Claim statements and verdict thresholds; reading a claims file."""

import os

import numpy as np
import pandas as pd
import pytest

from metak import input_files
from metak.claims import (
    CONTRADICTED_AT,
    SUPPORTED_AT,
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
