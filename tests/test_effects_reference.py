"""MD, SMD and ROM against R metafor 3.8-1 (``escalc``) on two shipped data sets.

The reference files in ``/work/shared/reference`` were produced by
``escalc(measure=M, m1i, sd1i, n1i, m2i, sd2i, n2i, data=dat.normand1999)`` (and ``dat.curtis1998``)
for M in MD, SMD, ROM; see that directory's README.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from metak.effects import hedges_g, log_ratio_of_means, mean_difference
from tests.conftest import REFERENCE  # noqa: E402  (verbatim copy of ../shared/reference)

# metafor wrote the values with 15 significant digits; the formulas are identical, so agreement is
# limited only by that rounding and floating-point evaluation order (~1e-14). 1e-8 relative leaves
# room for neither a different formula nor a different correction factor.
REL_TOL = 1e-8

FUNCTIONS = {"MD": mean_difference, "SMD": hedges_g, "ROM": log_ratio_of_means}


def _load(name: str) -> dict[str, np.ndarray]:
    with open(REFERENCE / name, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    columns = ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i")
    columns += tuple(f"{kind}_{m}" for m in FUNCTIONS for kind in ("yi", "vi"))
    return {c: np.array([float(row[c]) for row in rows]) for c in columns}


@pytest.fixture(scope="module", params=["escalc_normand1999.csv", "escalc_curtis1998.csv"])
def reference(request):
    data = _load(request.param)
    assert len(data["m1i"]) > 0
    return data


@pytest.mark.parametrize("measure", list(FUNCTIONS))
def test_matches_metafor(reference, measure):
    d = reference
    yi, vi = FUNCTIONS[measure](d["m1i"], d["sd1i"], d["n1i"], d["m2i"], d["sd2i"], d["n2i"])
    np.testing.assert_allclose(yi, d[f"yi_{measure}"], rtol=REL_TOL, atol=0)
    np.testing.assert_allclose(vi, d[f"vi_{measure}"], rtol=REL_TOL, atol=0)


@pytest.mark.parametrize("measure", list(FUNCTIONS))
def test_scalar_inputs_match_vector(reference, measure):
    d = reference
    yi, vi = FUNCTIONS[measure](d["m1i"], d["sd1i"], d["n1i"], d["m2i"], d["sd2i"], d["n2i"])
    y0, v0 = FUNCTIONS[measure](
        *(float(d[c][0]) for c in ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i"))
    )
    assert np.ndim(y0) == 0
    assert float(y0) == pytest.approx(yi[0], rel=REL_TOL)
    assert float(v0) == pytest.approx(vi[0], rel=REL_TOL)


def test_rom_non_positive_mean_gives_nan():
    yi, vi = log_ratio_of_means([1.0, -1.0, 2.0], 1.0, 10, [2.0, 2.0, 0.0], 1.0, 10)
    assert np.isfinite(yi[0]) and np.isfinite(vi[0])
    assert np.isnan(yi[1:]).all() and np.isnan(vi[1:]).all()


def test_hedges_correction_approximation():
    """The exact correction is close to Hedges' approximation 1 - 3/(4m - 1) (Hedges 1981)."""
    from metak.effects import hedges_correction

    m = np.arange(4, 200)
    # The approximation error shrinks like m^-3; it is largest at m = 4 (2.1e-3), hence 3e-3.
    np.testing.assert_allclose(hedges_correction(m), 1 - 3 / (4 * m - 1), atol=3e-3)
    assert np.isnan(hedges_correction(1.0))
