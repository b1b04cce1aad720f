"""The whole batch: check everything, fit the chunks not done yet on Dask, write the files.

:func:`run_batch` is the one entry point (``python -m metak batch`` calls it). Before any work it
checks the output folder, reads and checks the table (bad reviews are set aside, not fatal), the
analyses and settings; then it splits the reviews into chunks (fixed by the table and the chunk
size, so a resumed batch has the same chunks), hands the chunks that are not done to the cluster
(:class:`metak.fitting.cluster.Cluster`: embedded, or ``--scheduler``), checkpoints each as it
finishes, and finally rebuilds the output files from the checkpoints.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from metak.batch.checkpoint import CheckpointStore, check_batch_out
from metak.batch.effect_sizes import read_effect_sizes
from metak.batch.outputs import assemble, write_posteriors
from metak.batch.progress import ReviewProgress
from metak.batch.review_data import check_batch_specs
from metak.batch.reviews import Reviews
from metak.batch.table import read_table
from metak.batch.work import ChunkTask, fit_chunk
from metak.config import default_specs, load_config
from metak.errors import ConfigError
from metak.fitting.cluster import Cluster, describe, worker_versions
from metak.output.files import sha256_of
from metak.output.manifest import package_versions
from metak.spec import METHODS, AnalysisSpec, Settings

__all__ = [
    "run_batch",
    "BatchOutcome",
    "EXACT_CHUNK",
    "CHECKED_CHUNK",
    "MCMC_CHUNK",
    "chunk_size_for",
]

# Reviews per chunk (a chunk is one Dask task and one checkpoint): about a second of work per
# chunk at ~5-10 ms per exact review; a few seconds with the robustness checks (~0.2 s per
# review) and at ~0.3-1 s per MCMC review once its model is compiled.
EXACT_CHUNK = 200
CHECKED_CHUNK = 20
MCMC_CHUNK = 4
_MARKER = {"metak_batch": {"format": 1}}


@dataclass(frozen=True)
class BatchOutcome:
    """What a batch did: reviews by status, summary rows, where the time went."""

    out: Path
    reviews: dict[str, int]
    rows: int
    chunks: int
    chunks_run: int
    seconds: float
    timings: dict[str, float]


def chunk_size_for(specs: Sequence[AnalysisSpec], method: str | None) -> int:
    """The default chunk size: smaller when analyses may need MCMC or run robustness checks."""
    mcmc = method == "mcmc" or any(
        spec.method == "mcmc" or spec.model == "robust" for spec in specs
    )
    if mcmc and method != "exact":
        return MCMC_CHUNK
    return CHECKED_CHUNK if any(spec.robustness.enabled for spec in specs) else EXACT_CHUNK


def _read_reviews(table_path: Path) -> Reviews:
    table = read_table(table_path)
    if "yi" in table.columns:
        return read_effect_sizes(table)
    from metak.batch.records_input import read_records_table

    return read_records_table(table)


def _analyses(config: Path | None, reviews: Reviews) -> tuple[list[AnalysisSpec], Settings, str]:
    if config is None:
        return default_specs(reviews.outcomes), Settings(), "the default analyses"
    loaded = load_config(Path(config))  # its [[question]]s are for fit's report: not used here
    return list(loaded.analyses), loaded.settings, str(config)


def _fingerprint(table, config, settings, method, chunk_size, posterior) -> dict:
    return {
        "table_sha256": sha256_of(table),
        "analysis_file_sha256": sha256_of(config) if config is not None else None,
        "settings": {
            "draws": settings.draws,
            "tune": settings.tune,
            "chains": settings.chains,
            "seed": settings.seed,
            "target_accept": settings.target_accept,
        },
        "method": method,
        "chunk_size": chunk_size,
        "posterior_files": posterior,
        "versions": worker_versions(),
    }


def run_batch(
    table: Path,
    out: Path,
    *,
    config: Path | None = None,
    overrides: dict | None = None,
    method: str | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    chunk_size: int | None = None,
    posterior: bool = False,
    say: Callable[[str], None] | None = None,
    progress: bool = True,
    argv: Sequence[str] = (),
) -> BatchOutcome:
    """Fit every analysis of ``config`` to every review of ``table``; write ``out``.

    Parameters
    ----------
    table : Path
        The long table (CSV or Parquet; README, "Batches of reviews").
    out : Path
        The output folder: new, empty, or this batch's (then it resumes).
    config : Path, optional
        Analysis file (as for ``fit``); default one random-effects analysis per outcome.
    overrides : dict, optional
        ``seed``, ``draws``, ``tune``, ``chains``, ``jobs`` over the file's ``[settings]``.
    method : {"auto", "exact", "mcmc"}, optional
        Override every analysis' method.
    scheduler : str, optional
        Address of an existing Dask scheduler; default an embedded local cluster.
    workers : int, optional
        Worker processes of the embedded cluster (default ``jobs``, else one per core).
    chunk_size : int, optional
        Reviews per chunk (default :func:`chunk_size_for`).
    posterior : bool
        Also write ``posterior/<review>/<analysis>.nc``.
    say : callable, optional
        Receives one-line progress messages.
    progress : bool
        Show the progress bar over reviews (on standard error).
    argv : sequence of str
        The command line, for ``manifest.json``.

    Returns
    -------
    BatchOutcome

    Raises
    ------
    metak.errors.MetakError
        Bad options, analysis file, ``--out`` or table (the table as a whole; a bad review is
        only reported), or an unreachable cluster.
    """
    started = time.perf_counter()
    say = say or (lambda message: None)
    table, out = Path(table), Path(out)
    if method is not None and method not in METHODS:
        raise ConfigError(f"error: --method {method!r}: fix: use one of {', '.join(METHODS)}")
    check_batch_out(out, inputs=[table, config])
    reviews = _read_reviews(table)
    specs, settings, config_name = _analyses(config, reviews)
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    settings = replace(settings, **given)
    check_batch_specs(specs, reviews, config_name)
    # No analyses only when no review passed its checks (the default analyses come from the good
    # reviews' outcomes): the batch then writes status.csv with every review's problem.
    size = chunk_size or chunk_size_for(specs, method)
    order = reviews.order
    chunks = [order[i : i + size] for i in range(0, len(order), size)]
    fingerprint = _fingerprint(table, config, settings, method, size, posterior)
    store = CheckpointStore.open(out, fingerprint)
    try:
        todo = [index for index in range(len(chunks)) if not store.done(index)]
        done_reviews = sum(len(chunks[i]) for i in range(len(chunks)) if i not in set(todo))
        bad = len(reviews.problems)
        cluster = Cluster(workers=workers or settings.jobs, scheduler=scheduler)
        say(
            f"metak batch: {len(order):,} reviews ({bad:,} with bad input) x {len(specs)} "
            f"analys{'is' if len(specs) == 1 else 'es'}, {len(chunks):,} chunk"
            f"{'' if len(chunks) == 1 else 's'} of {size}"
            + (f", {len(chunks) - len(todo):,} done earlier" if len(todo) < len(chunks) else "")
        )
        for warning in reviews.warnings:
            say(f"warning: {warning}")
        bar = ReviewProgress(len(order), done_reviews, stream=sys.stderr if progress else None)
        if todo:
            with cluster:
                say(f"    fitting on {describe(cluster)}")
                run = uuid.uuid4().hex[:8]
                tasks = (
                    (
                        f"metak-batch-{run}-{index}",
                        (
                            ChunkTask(
                                index=index,
                                reviews=reviews.subset(chunks[index]),
                                specs=tuple(specs),
                                settings=settings,
                                method=method,
                                posterior=posterior,
                            ),
                        ),
                        -index,  # earlier chunks first
                    )
                    for index in todo
                )
                for _, result in cluster.run(fit_chunk, tasks):
                    write_posteriors(out, result.posteriors)
                    store.save(
                        result.index,
                        result.summary,
                        result.status,
                        {"timings": result.timings},
                        result.tables,
                    )
                    bar.advance(len(chunks[result.index]))
        bar.close()
        manifest = {
            **_MARKER,
            "command": list(argv),
            "table": {"path": str(table), "kind": reviews.kind, "sha256": sha256_of(table)},
            "analysis_file": None if config is None else str(config),
            "analyses": [spec.name for spec in specs],
            "settings": fingerprint["settings"],
            "method": method,
            "chunk_size": size,
            "chunks": len(chunks),
            "posterior_files": posterior,
            "cluster": scheduler or f"embedded ({cluster.workers} worker processes)",
            "versions": package_versions(),
            "warnings": list(reviews.warnings),
            "wall_seconds_this_run": time.perf_counter() - started,
        }
        written = assemble(store, len(chunks), manifest)
    finally:
        store.release()
    return BatchOutcome(
        out=out,
        reviews=written["reviews"],
        rows=written["rows"],
        chunks=len(chunks),
        chunks_run=len(todo),
        seconds=time.perf_counter() - started,
        timings=written["timings"],
    )
