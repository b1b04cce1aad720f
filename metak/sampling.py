"""Run NUTS (nutpie through PyMC 6) and collect every DataTree group an analysis stores."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pymc as pm
import xarray as xr

__all__ = ["sample_posterior", "sample_prior", "log_likelihood"]


def _quiet_pymc():
    # PyMC logs "NUTS[nutpie]: [...]" and sampling times at INFO; metak prints its own progress.
    for name in ("pymc", "pymc.sampling.mcmc", "pymc.stats.convergence"):
        logging.getLogger(name).setLevel(logging.ERROR)


def sample_posterior(model, *, draws, tune, chains, seed, target_accept, progressbar=False):
    """Posterior draws as an ``xarray.DataTree`` with ``posterior`` and ``sample_stats``."""
    _quiet_pymc()
    with model, warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        warnings.simplefilter("ignore", category=FutureWarning)
        tree = pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            cores=min(chains, 2),
            random_seed=seed,
            progressbar=progressbar,
            compute_convergence_checks=False,
            nuts={"target_accept": target_accept},
        )
    return tree


def sample_prior(model, *, draws, seed, var_names):
    """Prior draws of the reported variables, as a Dataset with dims (chain=1, draw)."""
    _quiet_pymc()
    with model, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prior = pm.sample_prior_predictive(draws=draws, random_seed=seed, var_names=list(var_names))
    group = prior["prior"] if "prior" in prior else prior
    return group.to_dataset() if hasattr(group, "to_dataset") else group


def log_likelihood(model, tree, observed: str) -> xr.Dataset:
    """Pointwise log-likelihood of the effect sizes, dims (chain, draw, study)."""
    with model, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = pm.compute_log_likelihood(
            tree, var_names=[observed], model=model, extend_inferencedata=False, progressbar=False
        )
    group = out["log_likelihood"] if "log_likelihood" in out else out
    dataset = group.to_dataset() if hasattr(group, "to_dataset") else group
    return dataset[[observed]] if observed in dataset else dataset


def divergences(tree) -> int:
    stats = tree["sample_stats"]
    if "diverging" not in stats:
        return 0
    return int(np.asarray(stats["diverging"]).sum())
