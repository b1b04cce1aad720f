"""metak.numeric.logsumexp against scipy's (the reference it stands in for): the same bits."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from metak.numeric import logsumexp


@pytest.mark.parametrize(
    ("shape", "axis"), [((1,), None), ((12,), None), ((5, 7), 0), ((5, 7), 1), ((3, 4, 5), 1)]
)
@pytest.mark.parametrize("b", [None, 1 / 7])
def test_equals_scipy_on_wide_ranges(shape, axis, b):
    rng = np.random.default_rng(3)
    values = rng.normal(size=shape) * 300.0  # exp() alone would overflow
    values.flat[0] = values.flat[1] if values.size > 1 else values.flat[0]  # a tied maximum too
    got = logsumexp(values, axis=axis, b=b)
    assert np.array_equal(got, special.logsumexp(values, axis=axis, b=b))
    if axis is None:
        assert isinstance(got, float)
    else:
        assert got.shape == tuple(n for i, n in enumerate(shape) if i != axis)


def test_infinite_terms_as_scipy():
    minus = np.array([[-np.inf, 1.0], [-np.inf, 2.0]])
    assert np.array_equal(logsumexp(minus, axis=0), special.logsumexp(minus, axis=0))
    assert logsumexp(np.array([-np.inf, -np.inf])) == -np.inf
    assert logsumexp(np.array([np.inf, 1.0])) == np.inf
    assert logsumexp(np.array([-np.inf, 0.0])) == 0.0
