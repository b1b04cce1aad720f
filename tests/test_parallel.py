"""Parallel MCMC analyses in worker processes: the same answers as one after the other, workers
that end with their parent, and a plain script without a ``__main__`` guard told what to add."""

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


def _specs():
    priors = {"tau": parse_prior("halfnormal(1.0)")}
    re = AnalysisSpec(
        name="re",
        outcome="logRR",
        model="random_effects",
        method="mcmc",
        priors=priors | {"mu": parse_prior("normal(0, 10)")},
    )
    mr = AnalysisSpec(
        name="mr",
        outcome="logRR",
        model="meta_regression",
        moderators=("ablat",),
        method="mcmc",
        priors=priors
        | {"intercept": parse_prior("normal(0, 10)"), "slope": parse_prior("normal(0, 10)")},
    )
    return [re, mr]


def test_worker_processes_do_not_change_results(tmp_path, reference_dir):
    records = write_contrast_records(
        reference_dir, "bcg_logRR", tmp_path / "r", "logRR", "logRR", "ablat"
    )
    serial = metak.fit(records, config=_specs(), seed=9, draws=300, tune=300, jobs=1)
    parallel = metak.fit(records, config=_specs(), seed=9, draws=300, tune=300, jobs=2)
    pd.testing.assert_frame_equal(serial.summary, parallel.summary)
    # File order, whatever finished first; each analysis followed by its bias checks' analyses.
    assert list(parallel.analyses) == ["re", "re_pet", "re_peese", "mr", "mr_pet", "mr_peese"]
    for name in ("re", "mr"):
        np.testing.assert_array_equal(
            serial.datatree(name)["posterior"]["tau"].values,
            parallel.datatree(name)["posterior"]["tau"].values,
        )


UNGUARDED_SCRIPT = """
import metak
from metak.spec import AnalysisSpec

specs = [
    AnalysisSpec(name="re", outcome="logRR", model="random_effects", method="mcmc"),
    AnalysisSpec(name="robust", outcome="logRR", model="robust"),
]
metak.fit({records!r}, config=specs, draws=100, tune=100, jobs=2)
print("fitted")
"""


def test_script_without_main_guard_is_told_what_to_add(tmp_path, reference_dir):
    """Spawned workers re-run the script that started them; without an
    ``if __name__ == "__main__":`` guard that would call metak.fit again in every worker, for
    ever. The run must stop with one line saying what to add, and leave no worker behind."""
    records = write_contrast_records(
        reference_dir, "bcg_logRR", tmp_path / "r", "logRR", "logRR", "ablat"
    )
    script = tmp_path / "analysis.py"
    script.write_text(UNGUARDED_SCRIPT.format(records=str(records)))
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 1, done.stderr
    assert "fitted" not in done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("metak.fitting.parallel.WorkerBootstrapError: the MCMC worker")
    assert 'if __name__ == "__main__":' in lines[-1]
    guarded = tmp_path / "guarded.py"
    body = "\n".join(
        "    " + line for line in UNGUARDED_SCRIPT.format(records=str(records)).splitlines()
    )
    guarded.write_text('if __name__ == "__main__":\n' + body + "\n")
    done = subprocess.run(
        [sys.executable, str(guarded)], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "fitted"


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
    records = write_contrast_records(
        reference_dir, "bcg_logRR", tmp_path / "r", "logRR", "logRR", "ablat"
    )
    config = tmp_path / "a.toml"
    config.write_text(
        '[[analysis]]\nname = "re"\noutcome = "logRR"\nmodel = "random_effects"\nmethod = "mcmc"\n'
        '[[analysis]]\nname = "robust"\noutcome = "logRR"\nmodel = "robust"\n'
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "metak",
            "fit",
            "--studies",
            str(records),
            "--config",
            str(config),
            "--out",
            str(tmp_path / "out"),
            "--draws",
            "200000",
            "--tune",
            "2000",
            "--jobs",
            "2",
        ],
        cwd=REPO,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
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
