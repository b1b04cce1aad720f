"""The joint model's LKJ prior, built from canonical partial correlations, is the LKJ
distribution: checked against its closed-form marginals and against PyMC's own LKJCorr."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats


@pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS")
@pytest.mark.parametrize(("n", "eta"), [(3, 2.0), (4, 1.0)])
def test_partial_correlation_construction_is_lkj(n, eta):
    import pymc as pm

    from metak.models.joint import lkj_cholesky

    with pm.Model():
        chol = lkj_cholesky("partial", n, eta)
        ours = pm.draw(chol @ chol.T, draws=8000, random_seed=1, mode="FAST_COMPILE")
    with pm.Model():
        chol = pm.LKJCorr("c", n=n, eta=eta)
        theirs = pm.draw(chol @ chol.T, draws=8000, random_seed=2, mode="FAST_COMPILE")
    np.testing.assert_allclose(np.diagonal(ours, axis1=1, axis2=2), 1.0)
    assert np.all(np.linalg.eigvalsh(ours) > 0)
    # Every off-diagonal correlation of LKJ(eta) in dimension n is Beta(b, b) on (-1, 1) with
    # b = eta - 1 + n / 2 (Lewandowski, Kurowicka & Joe 2009).
    b = eta - 1 + n / 2
    for i, j in zip(*np.triu_indices(n, 1), strict=True):
        r = ours[:, i, j]
        assert stats.kstest((r + 1) / 2, stats.beta(b, b).cdf).pvalue > 1e-3, (i, j)
        assert stats.ks_2samp(r, theirs[:, i, j]).pvalue > 1e-3, (i, j)
    # The joint distribution too, through the determinant.
    assert stats.ks_2samp(np.linalg.det(ours), np.linalg.det(theirs)).pvalue > 1e-3
