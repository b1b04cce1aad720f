"""Run NUTS (nutpie) on a PyMC model and collect every DataTree group an analysis stores.

The model is compiled once (:func:`compile_model`) and sampled as often as the diagnostics gate
needs: a retry reuses the compiled model instead of compiling it again, as ``pm.sample`` would.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
import pymc as pm
import xarray as xr

if TYPE_CHECKING:
    from nutpie.compile_pymc import CompiledPyMCModel as CompiledModel

__all__ = ["compile_model", "sample_posterior", "sample_prior", "log_likelihood", "divergences"]


def compile_model(model: pm.Model) -> CompiledModel:
    """The model compiled for nutpie (numba backend), ready to be sampled any number of times."""
    import nutpie

    return nutpie.compile_pymc_model(model, backend="numba")


def sample_posterior(
    compiled: CompiledModel,
    *,
    draws: int,
    tune: int,
    chains: int,
    seed: int,
    target_accept: float,
    progressbar: bool = False,
    on_chains: Callable[[list], None] | None = None,
    threads: int = 2,
) -> xr.DataTree:
    """Posterior draws as an ``xarray.DataTree`` with ``posterior`` and ``sample_stats``.

    ``progressbar`` shows nutpie's own bar; ``on_chains`` is called periodically with every
    chain's progress (nutpie's ``progress_callback``). ``threads`` chains run at once (each
    chain has its own seed, so the draws do not depend on it).
    """
    import nutpie

    sampler = nutpie.sample(
        compiled,
        draws=draws,
        tune=tune,
        chains=chains,
        cores=max(1, min(chains, threads)),
        seed=int(seed),
        save_warmup=False,
        progress_bar=progressbar,
        progress_callback=on_chains,
        target_accept=target_accept,
        blocking=False,
    )
    # nutpie's blocking sample() turns Ctrl-C (and SIGTERM, which the CLI maps to it) into an
    # early return with the draws so far, and the run would go on to write them as results. An
    # interrupted run must stop instead: cancel the sampler and let the interrupt propagate.
    try:
        return sampler.wait()
    except KeyboardInterrupt:
        sampler.cancel()
        raise


@contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    """Raise one logger's level for the duration of a call, and restore it."""
    logger = logging.getLogger(name)
    previous = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(previous)


def sample_prior(model: pm.Model, *, draws: int, seed: int, var_names: list[str]) -> xr.Dataset:
    """Prior draws of the reported variables, as a Dataset with dims (chain=1, draw)."""
    # PyMC logs "Sampling: [...]" at INFO for every prior draw; metak prints its own progress.
    with model, _quiet_logger("pymc.sampling.forward"), warnings.catch_warnings():
        # The likelihood is a Potential (padded rows weigh 0): prior draws must ignore it, which
        # is exactly what PyMC warns that it does.
        warnings.filterwarnings("ignore", message="The effect of Potentials", category=UserWarning)
        # Python mode, not numba: compiling the forward sampler costs 4-14 s per model with an
        # empty cache and saves only ~0.5 s of drawing once cached (measured on the 2-core
        # reference machine); the prior group is for plots, a few thousand draws.
        prior = pm.sample_prior_predictive(
            draws=draws,
            random_seed=seed,
            var_names=list(var_names),
            compile_kwargs={"mode": "FAST_COMPILE"},
        )
    group = prior["prior"] if "prior" in prior else prior
    return group.to_dataset() if hasattr(group, "to_dataset") else group


def log_likelihood(tree: xr.DataTree, loglik_var: str, observed: str) -> xr.Dataset:
    """The pointwise log-likelihood the model computed with every draw, as a group.

    The ``log_likelihood`` group (see :func:`metak.models.common.pointwise_loglik`).
    """
    values = tree["posterior"].to_dataset()[loglik_var]
    return xr.Dataset({observed: values})


def divergences(tree: xr.DataTree) -> int:
    """Number of divergent transitions in the draws kept."""
    stats = tree["sample_stats"]
    if "diverging" not in stats:
        return 0
    return int(np.asarray(stats["diverging"]).sum())
