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
"""

from __future__ import annotations

import multiprocessing
import os
import time

__all__ = ["default_jobs", "run_mcmc_jobs"]

# Relative cost guesses for scheduling the longest analyses first (joint models compile the
# largest graphs and sample the slowest; imputation adds a sub-model).
_COST = {"joint": 3.0, "robust": 1.5}
_POLL_SECONDS = 0.05
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def default_jobs(n_analyses: int) -> int:
    """One worker per core, at most one per analysis."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, n_analyses))


def _cost(job) -> float:
    spec, data = job[1], job[2]
    return _COST.get(spec.model, 1.0) + (1.0 if data.needs_imputation else 0.0)


def _timed_fit(spec, data, settings, seed, progress=None):
    """One MCMC analysis, its wall time recorded in ``seconds`` (runs in a worker or here)."""
    import time
    from dataclasses import replace

    from metak.mcmc_fit import fit_mcmc_analysis

    start = time.perf_counter()
    result = fit_mcmc_analysis(spec, data, settings, seed, progress=progress)
    return replace(result, seconds=time.perf_counter() - start)


def run_mcmc_jobs(jobs: list, settings, workers: int, on_done=None, progress=None) -> dict:
    """Fit ``jobs`` — ``(key, spec, data, seed)`` tuples — and return ``{key: AnalysisResult}``.

    ``workers`` <= 1 fits them one after the other in this process (``progress`` then receives
    the sampler's progress lines). ``on_done(key, result)`` is called as each finishes (in
    completion order). An exception in a worker is re-raised here after the others are stopped.
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
    # Leaving the with-block terminates the workers, also on an error or an interrupt (SIGTERM,
    # Ctrl-C): no orphaned sampler keeps a core busy after the command has ended.
    with context.Pool(processes=workers, initializer=_die_with_parent) as pool:
        pending = {
            key: pool.apply_async(_timed_fit, (spec, data, settings, seed))
            for key, spec, data, seed in ordered
        }
        while pending:
            finished = [key for key, handle in pending.items() if handle.ready()]
            if not finished:
                time.sleep(_POLL_SECONDS)
                continue
            for key in finished:
                results[key] = pending.pop(key).get()  # re-raises a worker's exception
                if on_done:
                    on_done(key, results[key])
    return results


def _die_with_parent() -> None:
    """Linux: have the kernel send SIGTERM to this worker if the parent dies (even by SIGKILL)."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: workers end when their task queue closes
        pass
