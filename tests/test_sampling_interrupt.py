"""An interrupted sampler stops the run.

nutpie's blocking ``sample`` answers Ctrl-C by returning the draws so far; a run that went on
with them would write a short posterior as its results, exit 0, and replace the previous ones.
"""

from __future__ import annotations

import os
import signal
import threading

import pymc as pm
import pytest

from metak.fitting.mcmc.sampling import compile_model, sample_posterior


def test_ctrl_c_while_sampling_raises_instead_of_returning_partial_draws():
    with pm.Model() as model:
        pm.Normal("x", 0.0, 1.0)
    compiled = compile_model(model)
    # Far more draws than 1 s allows, so the interrupt arrives while the chains run.
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            sample_posterior(
                compiled, draws=50_000_000, tune=100, chains=2, seed=1, target_accept=0.8
            )
    finally:
        timer.cancel()
