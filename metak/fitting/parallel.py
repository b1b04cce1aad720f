"""Fit several MCMC analyses at once, each in a worker process.

Why processes: most of an MCMC analysis's wall time on a small data set is compiling its model
(PyTensor graph rewriting and numba, single-threaded), not sampling; two analyses compiling side
by side use both cores of the reference machine. Threads would not help (the compilers hold the
GIL), and nutpie already runs the chains of one analysis in parallel threads.

Workers are started with "spawn" (a fresh interpreter), never "fork": the parent may hold
threads (BLAS, a notebook's event loop) that a forked child would inherit in an unknown state.
Each worker pays PyMC's import once and then fits the analyses it is given; the parent process
never imports PyMC for them. Every analysis has its own seed, fixed before any work is handed
out, so results do not depend on how many workers there are or which one ran what.

A spawned worker first re-runs the script that started the parent (as ``__mp_main__``). A script
without an ``if __name__ == "__main__":`` guard would call :func:`metak.fit` again in every worker
as it starts, and the pool would restart failing workers for ever. :func:`refuse_in_bootstrap`
detects that re-run (the orchestrator calls it first), leaves a marker file and ends the worker
quietly; the parent sees the marker and stops with one line saying what to add to the script.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from metak.errors import MetakError

__all__ = [
    "default_jobs",
    "run_mcmc_jobs",
    "refuse_in_bootstrap",
    "WorkerBootstrapError",
    "print_progress",
]

# Relative cost guesses for scheduling the longest analyses first (joint models compile the
# largest graphs and sample the slowest; imputation adds a sub-model).
_COST = {"joint": 3.0, "robust": 1.5}
_POLL_SECONDS = 0.05
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
# Path of the marker a worker leaves when it finds itself re-running the user's script.
_BOOTSTRAP_MARKER_ENV = "METAK_WORKER_BOOTSTRAP_MARKER"
_BOOTSTRAP_EXIT = 70  # EX_SOFTWARE: the worker ends quietly with this code


class WorkerBootstrapError(MetakError):
    """Worker processes re-ran a script that has no ``if __name__ == "__main__":`` guard."""


def refuse_in_bootstrap() -> None:
    """End this process quietly if it is a metak worker re-running the user's unguarded script.

    Called at the start of every fit. In the parent (or any ordinary process) it does nothing.
    """
    marker = os.environ.get(_BOOTSTRAP_MARKER_ENV)
    # A spawned worker runs the parent's script as module "__mp_main__" while it starts (the
    # parent itself never has that module); the marker variable exists only in a pool's workers.
    if marker and "__mp_main__" in sys.modules:
        Path(marker).touch()
        os._exit(_BOOTSTRAP_EXIT)  # not SystemExit: nothing of the user's script may run on


def default_jobs(n_analyses: int) -> int:
    """One worker per core, at most one per analysis."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, n_analyses))


def _cost(job) -> float:
    spec, data = job[1], job[2]
    return _COST.get(spec.model, 1.0) + (1.0 if data.needs_imputation else 0.0)


def print_progress(message: str) -> None:
    """Progress lines of a worker process: straight to the terminal the parent writes to."""
    print(message, file=sys.stderr, flush=True)


def _timed_fit(spec, data, settings, seed, progress=None, in_worker=False):
    """One MCMC analysis, its wall time recorded in ``seconds`` (runs in a worker or here)."""
    # PyMC is imported in the worker, not in the parent (which may need no MCMC at all).
    from metak.fitting.mcmc.engine import fit_mcmc_analysis

    start = time.perf_counter()
    result = fit_mcmc_analysis(spec, data, settings, seed, progress=progress, in_worker=in_worker)
    return replace(result, seconds=time.perf_counter() - start)


def run_mcmc_jobs(jobs: list, settings, workers: int, on_done=None, progress=None) -> dict:
    """Fit ``jobs`` — ``(key, spec, data, seed)`` tuples — and return ``{key: AnalysisResult}``.

    ``workers`` <= 1 fits them one after the other in this process, ``progress`` receiving the
    sampler's progress lines; workers print theirs to standard error when ``progress`` is given.
    ``on_done(key, result)`` is called as each finishes (in completion order). An exception in a
    worker is re-raised here after the others are stopped.
    """
    results = {}
    if workers <= 1 or len(jobs) <= 1:
        for key, spec, data, seed in jobs:
            results[key] = _timed_fit(spec, data, settings, seed, progress)
            if on_done:
                on_done(key, results[key])
        return results
    ordered = sorted(jobs, key=_cost, reverse=True)
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="metak-workers-") as scratch:
        marker = Path(scratch) / "bootstrap-rerun"
        os.environ[_BOOTSTRAP_MARKER_ENV] = str(marker)  # inherited by the spawned workers
        try:
            report = progress is not None
            _run_pool(context, ordered, settings, workers, marker, results, on_done, report)
        finally:
            os.environ.pop(_BOOTSTRAP_MARKER_ENV, None)
    return results


def _run_pool(context, ordered, settings, workers, marker, results, on_done, report) -> None:
    # Leaving the with-block terminates the workers, also on an error or an interrupt (SIGTERM,
    # Ctrl-C): no orphaned sampler keeps a core busy after the command has ended.
    with context.Pool(processes=workers, initializer=_die_with_parent) as pool:
        pending = {
            key: pool.apply_async(
                _timed_fit, (spec, data, settings, seed, print_progress if report else None, True)
            )
            for key, spec, data, seed in ordered
        }
        while pending:
            if marker.exists():
                raise WorkerBootstrapError(
                    "the MCMC worker processes re-ran your script when they started (it calls "
                    "metak.fit at top level); fix: put that code under "
                    '`if __name__ == "__main__":`, or pass jobs=1 to fit in this process'
                )
            finished = [key for key, handle in pending.items() if handle.ready()]
            if not finished:
                time.sleep(_POLL_SECONDS)
                continue
            for key in finished:
                results[key] = pending.pop(key).get()  # re-raises a worker's exception
                if on_done:
                    on_done(key, results[key])


def _die_with_parent() -> None:
    """Linux: have the kernel send SIGTERM to this worker if the parent dies (even by SIGKILL).

    The parent may already have died while this worker was starting (importing modules takes a
    second or more): the signal is only sent for deaths after the call, so the worker checks
    afterwards that its parent is still the one that started it, and ends if not.
    """
    parent = multiprocessing.parent_process()
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: workers end when their task queue closes
        return
    if parent is not None and os.getppid() != parent.pid:
        os._exit(1)
