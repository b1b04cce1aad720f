"""Parallel MCMC analyses on Dask worker processes: the same answers as one after the other,
workers that end with their parent, and a plain script without a ``__main__`` guard that works."""

from __future__ import annotations

import io
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
from tests.bcg_records import write_contrast_records
from tests.conftest import REPO

pytestmark = pytest.mark.slow


# The analyses of the tests below, as a script would write them (the script runs this text too).
SPECS = """
from metak.priors import parse_prior
from metak.spec import AnalysisSpec

tau = {"tau": parse_prior("halfnormal(1.0)")}
specs = [
    AnalysisSpec(
        name="re",
        outcome="logRR",
        model="random_effects",
        method="mcmc",
        priors=tau | {"mu": parse_prior("normal(0, 10)")},
    ),
    AnalysisSpec(
        name="mr",
        outcome="logRR",
        model="meta_regression",
        moderators=("ablat",),
        method="mcmc",
        priors=tau
        | {"intercept": parse_prior("normal(0, 10)"), "slope": parse_prior("normal(0, 10)")},
    ),
]
"""

# A plain script: metak.fit at top level, no `if __name__ == "__main__":` guard, two MCMC
# analyses on two worker processes. It writes its summary and tau draws for the test to compare.
UNGUARDED_FIT = """
result = metak.fit({records!r}, config=specs, seed=9, draws=300, tune=300, jobs=2)
result.summary.to_csv({summary!r}, index=False, float_format="%.17g")
for name in ("re", "mr"):
    np.save({out!r} + "/tau_" + name + ".npy", result.datatree(name)["posterior"]["tau"].values)
print(",".join(result.analyses))
print("fitted")
"""


def _specs() -> list:
    namespace: dict = {}
    exec(SPECS, namespace)  # the very text the script runs
    return namespace["specs"]


def test_unguarded_script_fits_on_workers_with_the_results_of_one_process(tmp_path, reference_dir):
    """A plain script calling metak.fit(jobs=2) at top level, without a ``__main__`` guard, fits
    on Dask worker processes (fresh interpreters that never re-run the script, as
    multiprocessing's spawn would) and gets exactly what one process gets with jobs=1: the same
    summary and the same draws. A different seed gives other draws (the seed is used)."""
    records = write_contrast_records(
        reference_dir, "bcg_logRR", tmp_path / "r", "logRR", "logRR", "ablat"
    )
    script = tmp_path / "plain.py"
    summary_csv = tmp_path / "parallel.csv"
    fit = UNGUARDED_FIT.format(records=str(records), summary=str(summary_csv), out=str(tmp_path))
    script.write_text("import numpy as np\nimport metak\n" + SPECS + fit)
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "fitted"
    # File order, whatever finished first; each analysis followed by its bias checks' analyses.
    assert lines[-2] == "re,re_pet,re_peese,mr,mr_pet,mr_peese"

    serial = metak.fit(records, config=_specs(), seed=9, draws=300, tune=300, jobs=1)
    parallel = pd.read_csv(summary_csv, keep_default_na=False, na_values=[""])
    expected = pd.read_csv(
        io.StringIO(serial.summary.to_csv(index=False, float_format="%.17g")),
        keep_default_na=False,
        na_values=[""],
    )
    pd.testing.assert_frame_equal(parallel, expected)
    for name in ("re", "mr"):
        tau = serial.datatree(name)["posterior"]["tau"].values
        np.testing.assert_array_equal(np.load(tmp_path / f"tau_{name}.npy"), tau)
    # The compiled models are reused in this process: another seed costs only the sampling.
    other = metak.fit(records, config=_specs(), seed=10, draws=300, tune=300, jobs=1)
    assert not np.array_equal(
        other.datatree("re")["posterior"]["tau"].values,
        serial.datatree("re")["posterior"]["tau"].values,
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


def test_one_task_per_thread_starts_the_costliest_first():
    # fit's MCMC analyses: with one worker thread and one task handed out at a time, tasks start
    # in priority order whatever order they were given in (Dask alone would start the first
    # submitted first). time.time runs on the worker: the start order.
    from metak.fitting.cluster import Cluster

    priorities = [1.0, 3.0, 2.0, 5.0, 4.0, 3.0]
    tasks = [(f"priority-test-{i}", (), p) for i, p in enumerate(priorities)]
    with Cluster(workers=1) as cluster:
        started = dict(cluster.run(time.time, tasks, one_per_thread=True))
    order = sorted(started, key=started.get)
    # equal priorities keep their given order
    assert [int(key.rsplit("-", 1)[1]) for key in order] == [3, 4, 1, 5, 2, 0]
