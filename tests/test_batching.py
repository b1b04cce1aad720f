"""Batched arithmetic (metak.batching) gives every row the numbers it gets on its own.

The effect sizes of all studies are computed in batches (one numpy call per operation); the
numbers metak reports were always those of one study at a time. Each operation derive requests
is checked here against row-by-row evaluation, bit for bit, and the driver against plain
sequential execution, errors included.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metak.batching import Call, run_all
from metak.derive import _FLOAT_ERRORS, _OPERATIONS
from metak.effects.arithmetic import squared

ROWS = 300

# Arguments of each operation, as the rules of metak.derive pass them (n whole and >= 2, SDs and
# SEs > 0, levels in (0, 1), df NaN or positive, correlations in (-1, 1)).
_KINDS = {
    "sd_from_se": ("pos", "n"),
    "S1": ("n", "any", "low", "high"),
    "S2": ("n", "any", "low", "high"),
    "S3": ("n", "any", "q1", "q3", "low", "high"),
    "change": ("any", "pos", "any", "pos", "r", "n"),
    "MD": ("any", "pos", "n", "any", "pos", "n"),
    "SMD": ("any", "pos", "n", "any", "pos", "split_n"),
    "ROM": ("any", "pos", "n", "any", "pos", "n"),
    "hedges_correction": ("df",),
    "se_from_ci": ("any", "high", "level", "df"),
    "se_from_ci_ratio": ("pos", "high", "level", "df"),
    "se_from_p": ("any", "p", "df"),
    "MN": ("any", "pos", "n"),
    "MC": ("any", "pos", "any", "pos", "n", "r"),
    "MC_reported": ("any", "pos", "n"),
}


def _arguments(op: str, rng: np.random.Generator) -> list[tuple[float, ...]]:
    columns = []
    base = rng.normal(0, 20, ROWS)
    for kind in _KINDS[op]:
        if kind == "n":
            column = rng.integers(2, 600, ROWS).astype(float)
        elif kind == "split_n":
            column = rng.integers(2, 600, ROWS) / rng.integers(1, 4, ROWS)
        elif kind == "pos":
            column = np.exp(rng.uniform(-6, 6, ROWS))
        elif kind == "any":
            column = base if op.startswith("S") else rng.normal(0, 20, ROWS)
        elif kind in ("low", "q1"):
            column = base - np.exp(rng.uniform(-4, 4, ROWS)) * (3 if kind == "low" else 1)
        elif kind in ("high", "q3"):
            column = np.abs(base) + np.exp(rng.uniform(-4, 4, ROWS)) * (3 if kind == "high" else 1)
        elif kind == "r":
            column = rng.uniform(-0.95, 0.95, ROWS)
        elif kind == "level":
            column = rng.choice([0.8, 0.9, 0.95, 0.99], ROWS)
        elif kind == "df":
            column = np.where(rng.uniform(size=ROWS) < 0.3, np.nan, rng.integers(1, 400, ROWS))
        else:  # p-values, including the tiny ones whose quantiles need full precision
            column = np.exp(rng.uniform(np.log(1e-12), 0, ROWS))
        columns.append(column.astype(float).tolist())
    return list(zip(*columns, strict=True))


def _bits(x: float) -> tuple:
    return (math.isnan(x), 0.0 if math.isnan(x) else x, math.copysign(1.0, x))


@pytest.mark.parametrize("op", sorted(_OPERATIONS))
def test_operation_gives_each_row_its_own_numbers(op):
    """One call on 300 rows == 300 calls on one number each, bit for bit (as derive computed
    effect sizes before batching: one study at a time, with Python floats)."""
    rows = _arguments(op, np.random.default_rng(sorted(_OPERATIONS).index(op)))
    columns = [np.array(column) for column in zip(*rows, strict=True)]
    with np.errstate(**_FLOAT_ERRORS):
        outputs = [np.asarray(o, dtype=float).tolist() for o in _OPERATIONS[op](*columns)]
        for row, batch in zip(rows, zip(*outputs, strict=True), strict=True):
            alone = tuple(float(x) for x in _OPERATIONS[op](*row))
            assert [_bits(x) for x in batch] == [_bits(x) for x in alone], (op, row)


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False, width=64))
def test_squared_is_a_single_numbers_power(x):
    """numpy squares arrays exactly but a single number with C's pow; squared() follows the
    single number for arrays too (they differ in the last bit for ~0.1% of values)."""
    with np.errstate(over="ignore"):
        expected = np.float64(x) ** 2
        assert squared(np.array([x, x]))[1] == expected
        assert squared(x) == expected


def test_squared_differs_from_exact_squaring_where_pow_does():
    """The case that made squared() necessary: pow(x, 2) is one ulp above x * x here."""
    x = -0.15371526776763267
    assert np.float64(x) ** 2 != x * x
    assert squared(np.array([x]))[0] == np.float64(x) ** 2


def _job(values):
    """Sequential code requesting arithmetic: divides 1 by each value in turn, sums the results."""
    total = 0.0
    for value in values:
        (quotient,) = yield Call("reciprocal", (value,))
        total += quotient
    return total


_RECIPROCAL = {"reciprocal": lambda x: (1.0 / x,)}


def test_run_all_returns_what_each_job_returns_alone():
    jobs = [[1.0, 2.0], [4.0], [], [0.5, 0.25, 8.0]]
    outcomes = run_all([_job(v) for v in jobs], _RECIPROCAL, (ArithmeticError,))
    assert outcomes == [sum(1.0 / x for x in v) for v in jobs]


def test_a_failing_row_fails_its_own_job_only_with_its_own_error():
    """Division by zero in one job's second request: that job ends with numpy's divide error,
    raised inside it at that request; the other jobs in the same batch finish normally."""
    with np.errstate(divide="raise"):
        outcomes = run_all(
            [_job([1.0, 0.0, 2.0]), _job([4.0, 5.0]), _job([0.0])],
            _RECIPROCAL,
            (ArithmeticError,),
        )
    assert isinstance(outcomes[0], FloatingPointError) and "divide" in str(outcomes[0])
    assert outcomes[1] == 1 / 4 + 1 / 5
    assert isinstance(outcomes[2], FloatingPointError)


def test_errors_not_caught_end_the_run():
    def broken():
        yield Call("reciprocal", (1.0,))
        raise KeyError("bug")

    with pytest.raises(KeyError):
        run_all([broken()], _RECIPROCAL, (ArithmeticError,))


def test_non_finite_batch_results_are_recomputed_alone():
    """A row whose batch result is not finite is evaluated again on its own, so numpy's error
    settings act on it as they would alone (here: an overflow the batch call did not raise)."""
    calls = []

    def exp_once(x):
        calls.append(len(x))
        with np.errstate(over="ignore" if len(x) > 1 else "raise"):
            return (np.exp(x),)

    def job(value):
        (result,) = yield Call("exp", (value,))
        return result

    outcomes = run_all([job(1.0), job(1000.0)], {"exp": exp_once}, (ArithmeticError,))
    assert outcomes[0] == math.exp(1.0)
    assert isinstance(outcomes[1], FloatingPointError)
    assert calls == [2, 1]
