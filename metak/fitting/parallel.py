"""Fit several MCMC analyses at once, on the worker processes of a Dask cluster (``--jobs``).

Why processes: much of an MCMC analysis's wall time on a small data set is compiling its model
(PyTensor graph rewriting and numba, single-threaded), not sampling; two analyses compiling side
by side use both cores of the reference machine. Threads would not help (the compilers hold the
GIL), and nutpie already runs the chains of one analysis in parallel threads.

The workers are those of :class:`metak.fitting.cluster.Cluster` (the engine ``metak batch`` uses
too): fresh interpreters started as ``python -m metak.fitting.dask_worker`` that end with this
process, so a plain script calling :func:`metak.fit` needs no ``if __name__ == "__main__":``
guard. Each worker pays PyMC's import once and keeps its compiled models for the analyses after
(:mod:`metak.fitting.mcmc.compiled`); this process never imports PyMC for them. Every analysis
has its own seed, fixed before any work is handed out, so results do not depend on how many
workers there are or which one ran what.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from metak.fitting.cluster import Cluster, default_workers

if TYPE_CHECKING:
    from metak.fitting.result import AnalysisResult
    from metak.spec import Settings

__all__ = ["default_jobs", "run_mcmc_jobs", "print_progress"]

# Relative cost guesses for starting the longest analyses first (joint models compile the
# largest graphs and sample the slowest; imputation adds a sub-model). Measured with empty
# caches on the 2-core reference machine (bundled analyses, compilation alone): joint ~30 s,
# robust ~21 s (k latent precisions), imputed meta-regression 15-19 s.
_COST = {"joint": 3.0, "robust": 2.5}


def default_jobs(n_analyses: int) -> int:
    """One worker per core, at most one per analysis."""
    return default_workers(n_analyses)


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


def run_mcmc_jobs(
    jobs: list,
    settings: Settings,
    workers: int,
    on_done: Callable[[object, AnalysisResult], None] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Fit ``jobs`` — ``(key, spec, data, seed)`` tuples — and return ``{key: AnalysisResult}``.

    ``workers`` <= 1 fits them one after the other in this process, ``progress`` receiving the
    sampler's progress lines; workers print theirs to standard error when ``progress`` is given.
    ``on_done(key, result)`` is called as each finishes (in completion order). An exception in a
    worker is re-raised here after the others are cancelled.
    """
    results = {}
    if workers <= 1 or len(jobs) <= 1:
        for key, spec, data, seed in jobs:
            results[key] = _timed_fit(spec, data, settings, seed, progress)
            if on_done:
                on_done(key, results[key])
        return results
    report = print_progress if progress is not None else None
    run = uuid.uuid4().hex[:8]  # task keys unique per run (a cluster remembers finished keys)
    tasks = {f"metak-fit-{run}-{index}": job for index, job in enumerate(jobs)}
    # Leaving the with-block stops the workers, also on an error or an interrupt (SIGTERM,
    # Ctrl-C): no orphaned sampler keeps a core busy after the command has ended.
    with Cluster(workers=workers) as cluster:
        work = (
            (task, (spec, data, settings, seed, report, True), _cost(job))
            for task, job in tasks.items()
            for _, spec, data, seed in [job]
        )
        for task, result in cluster.run(_timed_fit, work, one_per_thread=True):
            key = tasks[task][0]
            results[key] = result
            if on_done:
                on_done(key, result)
    return results
