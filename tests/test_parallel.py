"""Parallel MCMC analyses on Dask worker processes: the same answers as one after the other,
workers that end with their parent, and a plain script without a ``__main__`` guard that works."""

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
result = metak.fit({records!r}, config=specs, seed=5, draws=100, tune=100, jobs=2)
print(result.summary[["analysis", "parameter", "mean"]].to_csv(index=False), end="")
print("fitted")
"""


def test_script_without_main_guard_just_works(tmp_path, reference_dir):
    """A plain script calling metak.fit at top level, without an ``if __name__ == "__main__":``
    guard, fits on worker processes: the workers are fresh interpreters that never re-run the
    script (multiprocessing's spawn would, and call metak.fit again in every worker). Its
    results are those of the guarded script, and no worker is left behind."""
    records = write_contrast_records(
        reference_dir, "bcg_logRR", tmp_path / "r", "logRR", "logRR", "ablat"
    )
    outputs = {}
    for name, text in (
        ("plain", UNGUARDED_SCRIPT.format(records=str(records))),
        ("guarded", 'if __name__ == "__main__":\n' + _indented(UNGUARDED_SCRIPT, records)),
    ):
        script = tmp_path / f"{name}.py"
        script.write_text(text)
        done = subprocess.run(
            [sys.executable, str(script)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
        )
        assert done.returncode == 0, done.stderr
        outputs[name] = done.stdout
    assert outputs["plain"] == outputs["guarded"]
    lines = outputs["plain"].splitlines()
    assert lines[-1] == "fitted"
    rows = {tuple(line.split(",")[:2]) for line in lines[1:-1]}
    assert {("re", "mu"), ("robust", "mu"), ("robust", "nu")} <= rows


def _indented(script: str, records: Path) -> str:
    return "\n".join("    " + line for line in script.format(records=str(records)).splitlines())


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
