"""A batch on a real Dask cluster (``dask scheduler`` and two ``dask worker`` processes on
127.0.0.1), one worker killed midway: every review once, the same files as the embedded cluster
gives. An interrupted batch restarted with the same arguments finishes with the same files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.batch_tables import synthetic_reviews
from tests.conftest import REPO

pytestmark = pytest.mark.slow

EXACT_REVIEWS = 12
MCMC_REVIEWS = 2  # one for each worker: both are busy with one when a worker is killed
CONFIG = """
[settings]
draws = 200
tune = 200

[[analysis]]
name = "re"
outcome = "effect"
model = "random_effects"

[[analysis]]
name = "mcmc"
outcome = "other"
model = "random_effects"
method = "mcmc"
robustness = false
"""
START_SECONDS = 120
RUN_SECONDS = 600


def _dask(*args) -> list[str]:
    return [str(Path(sys.executable).with_name("dask")), *map(str, args)]


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=str(REPO))


@pytest.fixture(scope="module")
def batch_inputs(tmp_path_factory) -> dict:
    """Tiny exact reviews first (outcome ``effect``), then a few MCMC ones (``other``)."""
    folder = tmp_path_factory.mktemp("batch")
    exact = synthetic_reviews(EXACT_REVIEWS, seed=3, k_range=(3, 6), prefix="e")
    mcmc = synthetic_reviews(MCMC_REVIEWS, seed=4, k_range=(6, 9), prefix="m")
    table = pd.concat(
        [exact.assign(outcome="effect"), mcmc.assign(outcome="other")], ignore_index=True
    ).drop(columns="x")
    table.to_csv(folder / "reviews.csv", index=False)
    (folder / "analyses.toml").write_text(CONFIG, encoding="utf-8")
    return {"table": folder / "reviews.csv", "config": folder / "analyses.toml"}


def _command(inputs: dict, out: Path, *extra) -> list[str]:
    return [
        sys.executable,
        "-m",
        "metak",
        "batch",
        str(inputs["table"]),
        "--config",
        str(inputs["config"]),
        "--out",
        str(out),
        "--chunk-size",
        "1",
        "--seed",
        "5",
        "--quiet",
        *map(str, extra),
    ]


def _run(command: list[str]) -> subprocess.CompletedProcess:
    done = subprocess.run(
        command, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=RUN_SECONDS
    )
    assert done.returncode in (0, 3), done.stderr  # 3: a starved MCMC fit failed its gate
    return done


def _done_chunks(out: Path) -> int:
    return len(list((out / "checkpoints").glob("chunk-*.json")))


def _wait_for_chunks(out: Path, process: subprocess.Popen, wanted: int) -> None:
    deadline = time.monotonic() + RUN_SECONDS
    while _done_chunks(out) < wanted:
        assert process.poll() is None, "the batch ended before it could be interrupted"
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.05)


def _files(out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.read_parquet(out / "summary.parquet"), pd.read_csv(out / "status.csv")


def _same_tables(out: Path, expected: Path) -> None:
    """The robustness checks' tables (of the exact analysis) are the same too."""
    names = sorted(path.name for path in expected.glob("*.parquet"))
    assert "robustness.parquet" in names
    assert names == sorted(path.name for path in out.glob("*.parquet"))
    for name in names:
        pd.testing.assert_frame_equal(pd.read_parquet(out / name), pd.read_parquet(expected / name))


@pytest.fixture(scope="module")
def embedded(batch_inputs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("embedded") / "out"
    _run(_command(batch_inputs, out, "--jobs", "2"))
    return out


def test_the_embedded_batch_is_complete_and_compiles_once_per_worker(embedded):
    summary, status = _files(embedded)
    reviews = [f"e{i:05d}" for i in range(EXACT_REVIEWS)] + [
        f"m{i:05d}" for i in range(MCMC_REVIEWS)
    ]
    assert list(status["review_id"]) == reviews
    assert set(status.loc[status["review_id"].str.startswith("e"), "status"]) == {"ok"}
    mcmc = summary[summary["analysis"] == "mcmc"]
    assert sorted(set(mcmc["review_id"])) == reviews[EXACT_REVIEWS:]
    assert set(mcmc["method"]) == {"mcmc"}
    timings = json.loads((embedded / "manifest.json").read_text())["timings"]
    assert timings["mcmc_fits"] == MCMC_REVIEWS
    assert 1 <= timings["compilations"] <= 2  # at most once per worker (one structure)


@pytest.fixture
def dask_cluster(tmp_path):
    """``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1 (own process groups)."""
    scheduler_file = tmp_path / "scheduler.json"
    started = [
        subprocess.Popen(
            _dask(
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                scheduler_file,
            ),
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    ]
    try:
        deadline = time.monotonic() + START_SECONDS
        while not scheduler_file.exists() or not scheduler_file.read_text().strip():
            assert time.monotonic() < deadline, "dask scheduler did not start"
            time.sleep(0.1)
        time.sleep(0.2)  # the file is written in one go; give it a moment to be complete
        address = json.loads(scheduler_file.read_text())["address"]
        for name in ("w0", "w1"):
            started.append(
                subprocess.Popen(
                    _dask(
                        "worker",
                        address,
                        "--nthreads",
                        "1",
                        "--nworkers",
                        "1",
                        "--name",
                        name,
                        "--no-dashboard",
                    ),
                    env=_env(),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        yield address, started[1:]
    finally:
        for process in started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=60)


def test_a_scheduler_batch_survives_a_killed_worker_and_matches_the_embedded_one(
    batch_inputs, embedded, dask_cluster, tmp_path
):
    address, workers = dask_cluster
    out = tmp_path / "out"
    batch = subprocess.Popen(
        _command(batch_inputs, out, "--scheduler", address),
        cwd=REPO,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The exact reviews come first and are quick; once they are done, both workers are
        # compiling or sampling the MCMC reviews: kill one of them (nanny and worker) there.
        _wait_for_chunks(out, batch, EXACT_REVIEWS)
        assert _done_chunks(out) < EXACT_REVIEWS + MCMC_REVIEWS
        os.killpg(workers[0].pid, signal.SIGKILL)
        _, errors = batch.communicate(timeout=RUN_SECONDS)
    finally:
        if batch.poll() is None:
            batch.kill()
    assert batch.returncode in (0, 3), errors
    summary, status = _files(out)
    expected_summary, expected_status = _files(embedded)
    assert status["review_id"].is_unique
    assert not summary.duplicated(["review_id", "analysis", "parameter"]).any()
    pd.testing.assert_frame_equal(status, expected_status)
    pd.testing.assert_frame_equal(summary, expected_summary)
    _same_tables(out, embedded)


def test_an_interrupted_batch_resumes_to_the_same_files(batch_inputs, embedded, tmp_path):
    out = tmp_path / "out"
    command = _command(batch_inputs, out, "--jobs", "2")
    first = subprocess.Popen(
        command, cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_for_chunks(out, first, EXACT_REVIEWS)
        first.send_signal(signal.SIGKILL)  # no clean-up at all: workers die with it
        first.wait(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    done_before = _done_chunks(out)
    assert EXACT_REVIEWS <= done_before < EXACT_REVIEWS + MCMC_REVIEWS
    assert not (out / "summary.parquet").exists()
    resumed = _run([arg for arg in command if arg != "--quiet"])
    assert f"{done_before} done earlier" in resumed.stderr
    summary, status = _files(out)
    expected_summary, expected_status = _files(embedded)
    pd.testing.assert_frame_equal(status, expected_status)
    pd.testing.assert_frame_equal(summary, expected_summary)
    _same_tables(out, embedded)


def test_a_batch_resumes_only_with_the_same_arguments(batch_inputs, embedded):
    command = _command(batch_inputs, embedded, "--jobs", "2")
    command[command.index("--seed") + 1] = "6"
    done = subprocess.run(command, cwd=REPO, env=_env(), capture_output=True, text=True)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "settings differ" in lines[0] and "fix:" in lines[0]
