"""Speed machinery that must not change any answer: the loop-copy nutpie compile, parallel
MCMC analyses in worker processes, and workers that end with their parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import metak
from metak.priors import parse_prior
from metak.spec import AnalysisSpec
from tests.bcg_records import write_contrast_records
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def _bcg_model(reference_dir):
    import pymc as pm

    data = pd.read_csv(reference_dir / "bcg_logRR.csv")
    with pm.Model() as model:
        mu = pm.Normal("mu", 0, 10)
        tau = pm.HalfNormal("tau", 1)
        pm.Normal("y", mu, pm.math.sqrt(data["vi"].to_numpy() + tau**2), observed=data["yi"].to_numpy())
        pm.Deterministic("tau2", tau**2)
    return model


def test_loop_copy_compile_gives_the_same_draws(reference_dir):
    """metak's C callbacks copy with a loop instead of ``out[...] = values``: the sampler must
    see the same log density and gradient, so the same seed gives the same draws."""
    import nutpie

    from metak.nutpie_compile import compile_for_nutpie

    model = _bcg_model(reference_dir)
    trees = [
        nutpie.sample(
            compile_for_nutpie(model, loop_copy=loop_copy),
            draws=200, tune=200, chains=2, cores=2, seed=4, progress_bar=False,
        )
        for loop_copy in (True, False)
    ]
    for name in ("mu", "tau", "tau2"):
        np.testing.assert_array_equal(trees[0].posterior[name].values, trees[1].posterior[name].values)


def _specs():
    priors = {"tau": parse_prior("halfnormal(1.0)")}
    re = AnalysisSpec(name="re", outcome="logRR", model="random_effects", method="mcmc",
                      priors=priors | {"mu": parse_prior("normal(0, 10)")})
    mr = AnalysisSpec(name="mr", outcome="logRR", model="meta_regression", moderators=("ablat",),
                      method="mcmc", priors=priors | {"intercept": parse_prior("normal(0, 10)"),
                                                      "slope": parse_prior("normal(0, 10)")})
    return [re, mr]


def test_worker_processes_do_not_change_results(tmp_path, reference_dir):
    records = write_contrast_records(reference_dir, "bcg_logRR", tmp_path / "r", "logRR", "logRR", "ablat")
    serial = metak.fit(records, config=_specs(), seed=9, draws=300, tune=300, jobs=1)
    parallel = metak.fit(records, config=_specs(), seed=9, draws=300, tune=300, jobs=2)
    pd.testing.assert_frame_equal(serial.summary, parallel.summary)
    assert list(parallel.analyses) == ["re", "mr"]  # file order, whatever finished first
    for name in ("re", "mr"):
        np.testing.assert_array_equal(
            serial.datatree(name)["posterior"]["tau"].values,
            parallel.datatree(name)["posterior"]["tau"].values,
        )


def _children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found |= {int(c) for c in (task / "children").read_text().split()}
        except OSError:
            pass
    return found


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_workers_end_when_the_parent_is_killed(tmp_path, reference_dir):
    records = write_contrast_records(reference_dir, "bcg_logRR", tmp_path / "r", "logRR", "logRR", "ablat")
    config = tmp_path / "a.toml"
    config.write_text(
        '[[analysis]]\nname = "re"\noutcome = "logRR"\nmodel = "random_effects"\nmethod = "mcmc"\n'
        '[[analysis]]\nname = "robust"\noutcome = "logRR"\nmodel = "robust"\n'
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "metak", "fit", "--studies", str(records), "--config", str(config),
         "--out", str(tmp_path / "out"), "--draws", "200000", "--tune", "2000", "--jobs", "2"],
        cwd=REPO, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )
    deadline = time.monotonic() + 120
    for line in process.stderr:
        if "worker processes" in line or time.monotonic() > deadline:
            break
    workers = set()
    while time.monotonic() < deadline and len(workers) < 2:
        time.sleep(0.5)
        # The pool's workers (spawned interpreters) and the resource tracker are children.
        workers = _children(process.pid)
    assert process.poll() is None and len(workers) >= 2, "no workers to watch"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    process.stderr.close()
    end = time.monotonic() + 30
    alive = set(workers)
    while alive and time.monotonic() < end:
        time.sleep(0.5)
        alive = {pid for pid in alive if _alive(pid)}
    assert not alive, f"worker processes outlived their parent: {sorted(alive)}"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    if state == "Z":  # a zombie has ended; only its exit status is left for init to collect
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
