"""The robustness label and the answer each check re-asks (verdict words, weighted summaries)."""

from __future__ import annotations

import numpy as np
import pytest

from metak.exact import NormalMixture
from metak.robustness.effect import (
    answer_from_draws,
    answer_from_mixture,
    verdict_of,
    weighted_quantiles,
)
from metak.robustness.verdicts import Check, label_for


def _checks(verdicts):
    return [Check(family, name, verdict, "P = 0.9") for family, name, verdict in verdicts]


ALL_PASS = [
    ("leave-one-out", "leaving out A", "benefit"),
    ("leave-one-out", "leaving out B", "benefit"),
    ("bias", "PET", "benefit"),
    ("prior", "tau scale x2", "benefit"),
]


def test_robust_when_every_family_ran_and_nothing_changes():
    label, detail = label_for("benefit", _checks(ALL_PASS), {})
    assert label == "robust"
    assert detail == "survives 2 leave-one-out, 1 bias-adjusted and 1 alternative-prior checks"


def test_not_robust_names_the_check_that_changes_the_verdict():
    checks = _checks([*ALL_PASS, ("leave-one-out", "leaving out C", "uncertain")])
    label, detail = label_for("benefit", checks, {"bias": "MCMC model"})
    assert label == "not robust"
    assert detail.startswith("changed by leaving out C (uncertain, P = 0.9)")
    assert "not checked: bias: MCMC model" in detail


def test_partly_assessed_when_a_family_is_missing_or_untrusted():
    label, detail = label_for("benefit", _checks(ALL_PASS[:2]), {"bias": "no exact likelihood"})
    assert label == "partly assessed"
    assert "prior: no check ran" in detail and "bias: no exact likelihood" in detail
    untrusted = [*_checks(ALL_PASS), Check("leave-one-out", "leaving out D", None, "Pareto k 0.9")]
    label, detail = label_for("benefit", untrusted, {})
    assert label == "partly assessed" and "leaving out D (Pareto k 0.9)" in detail


def test_no_verdict_is_not_assessable():
    assert label_for("not assessable", _checks(ALL_PASS), {})[0] == "not assessable"
    with pytest.raises(ValueError, match="family"):
        Check("loo", "x", None)


@pytest.mark.parametrize(
    ("p", "direction", "verdict"),
    [
        (0.95, "lower_is_better", "benefit"),
        (0.9499, "higher_is_better", "uncertain"),
        (0.05, "lower_is_better", "harm"),
        (0.99, "unspecified", "negative"),
        (0.01, "unspecified", "positive"),
        (float("nan"), "lower_is_better", "not assessable"),
    ],
)
def test_verdict_thresholds_are_those_of_claims(p, direction, verdict):
    assert verdict_of(p, direction) == verdict


def test_draw_answer_with_equal_weights_is_the_plain_summary():
    rng = np.random.default_rng(1)
    draws = rng.normal(-1.0, 2.0, 20_001)
    answer = answer_from_draws(draws, None, "lower_is_better")
    assert answer.mean == pytest.approx(draws.mean(), rel=1e-12)
    assert answer.sd == pytest.approx(draws.std(), rel=1e-12)
    assert answer.p_benefit == pytest.approx(np.mean(draws < 0), rel=1e-12)
    # Weighted quantiles interpolate between draws: within one draw spacing of numpy's.
    spacing = np.max(np.diff(np.sort(draws)[400:-400]))
    assert abs(answer.q025 - np.quantile(draws, 0.025)) < spacing


def test_integer_weights_equal_repeated_draws():
    values = np.array([3.0, -1.0, 2.0, 0.5])
    weights = np.array([1.0, 3.0, 2.0, 4.0])
    repeated = np.repeat(values, weights.astype(int))
    answer = answer_from_draws(values, weights, "higher_is_better")
    assert answer.mean == pytest.approx(repeated.mean())
    assert answer.p_benefit == pytest.approx(np.mean(repeated > 0))
    # Sorted: -1 (weight 3), 0.5 (4), 2 (2), 3 (1); the weight steps' midpoints sit at 0.15,
    # 0.5, 0.8, 0.95 of the total, so the median is 0.5 — the repeated draws' median too.
    assert weighted_quantiles(values, weights, [0.5])[0] == pytest.approx(0.5, rel=1e-12)
    assert np.median(repeated) == 0.5


def test_mixture_answer_of_one_normal_is_closed_form():
    mixture = NormalMixture(np.ones(1), np.array([0.4]), np.array([0.2]))
    answer = answer_from_mixture(mixture, "higher_is_better")
    assert answer.q975 == pytest.approx(0.4 + 1.959963984540054 * 0.2, rel=1e-9)
    assert answer.p_benefit == pytest.approx(0.9772498680518208, rel=1e-9)  # Phi(2)
    assert answer.verdict == "benefit"


def test_analyses_of_one_arm_speak_of_the_sign():
    from types import SimpleNamespace

    from metak.robustness.effect import answer_direction

    assert answer_direction(SimpleNamespace(arm="treatment"), "lower_is_better") == "unspecified"
    assert answer_direction(SimpleNamespace(arm=None), "lower_is_better") == "lower_is_better"
    assert verdict_of(
        0.01, answer_direction(SimpleNamespace(arm="control"), "lower_is_better")
    ) == ("positive")
