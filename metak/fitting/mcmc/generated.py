"""Generated quantities drawn after sampling, from the posterior (or prior) draws.

The shrunken study effects: ``theta_i`` given everything else is normal with a mean and SD the
model computes with every draw (``theta_mean``, ``theta_sd``; see :mod:`metak.models.univariate`),
so one standard normal draw per study and draw gives an exact posterior draw. Sampling those
normals with NUTS instead cost k of its dimensions: 10,000 extra dimensions for a
meta-regression of 10,000 studies.

The predictive effect in a new study, ``theta_new = mu + tau * z`` with ``z ~ N(0, 1)`` (or
Student-t with ``nu`` degrees of freedom in the robust model), depends on the data only through
``mu``, ``tau`` and ``nu``. Drawing ``z`` here, independently for every draw, is exact and keeps
it out of the sampler: as a free parameter a Student-t ``z`` with small ``nu`` has tails that NUTS
explores slowly (bulk ESS 31-45 of 2,000 draws on a planted outlier data set, while ``tau`` had
166), which failed the diagnostics gate for no reason that concerns the fit itself.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["with_theta_new", "with_theta"]


def with_theta_new(draws: xr.Dataset, rng: np.random.Generator) -> xr.Dataset:
    """``draws`` with ``theta_new`` added (needs ``mu`` and ``tau``; ``nu`` makes z Student-t)."""
    mu, tau = draws["mu"], draws["tau"]
    if "nu" in draws:
        z = rng.standard_t(np.asarray(draws["nu"].values, dtype=float))
    else:
        z = rng.standard_normal(mu.shape)
    return draws.assign(theta_new=mu + tau * xr.DataArray(z, dims=mu.dims, coords=mu.coords))


def with_theta(draws: xr.Dataset, rng: np.random.Generator) -> xr.Dataset:
    """``draws`` with ``theta = theta_mean + theta_sd * e`` added and the two moments removed."""
    mean, sd = draws["theta_mean"], draws["theta_sd"]
    noise = xr.DataArray(rng.standard_normal(mean.shape), dims=mean.dims, coords=mean.coords)
    return draws.assign(theta=mean + sd * noise).drop_vars(["theta_mean", "theta_sd"])
