"""Fit one chunk of reviews: the task a Dask worker runs (:func:`fit_chunk`).

Every review of the chunk gets every analysis of the analysis file, seeded from the batch seed
and its ``review_id`` (:mod:`metak.batch.seeds`; the analysis at position ``i`` of the file gets
``seed + i``, as in ``fit``). Exact analyses give their exact summary rows (no draws unless the
posterior files are wanted); MCMC analyses run through the same engine as ``fit``, on models
compiled once per structure in the worker (:mod:`metak.fitting.mcmc.compiled`).

Nothing a review does stops the chunk: bad input, an analysis its rows cannot support, a sampler
failure — each becomes the review's status line. The result depends only on the task (never on
the worker, or on what the worker fitted before), so Dask may run a chunk again elsewhere when a
worker dies and the batch is still the same.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import pandas as pd

from metak.batch.review_data import NoRowsError, review_analysis_data
from metak.batch.reviews import Reviews, first_problems
from metak.batch.seeds import review_seed
from metak.batch.table import REVIEW_ID
from metak.errors import MetakError
from metak.fitting.exact_engine import exact_summary
from metak.fitting.method import choose_method
from metak.fitting.summaries import SUMMARY_COLUMNS
from metak.robustness.assess import assess_robustness
from metak.robustness.package import fit_on_exact_path
from metak.spec import AnalysisSpec, Settings

__all__ = [
    "ChunkTask",
    "ChunkResult",
    "fit_chunk",
    "STATUS_COLUMNS",
    "SUMMARY_PARQUET_COLUMNS",
    "STATUSES",
]

SUMMARY_PARQUET_COLUMNS = [REVIEW_ID, *SUMMARY_COLUMNS]
STATUS_COLUMNS = [REVIEW_ID, "status", "rows", "analyses_fitted", "message"]
# From worst to best: a review's status is the worst of its analyses'.
STATUSES = ("error", "bad_input", "diagnostics_failed", "ok")


@dataclass(frozen=True)
class ChunkTask:
    """The reviews of one chunk and everything needed to fit them anywhere.

    ``reviews`` holds only this chunk's reviews (their rows and problems).
    """

    index: int
    reviews: Reviews
    specs: tuple[AnalysisSpec, ...]
    settings: Settings
    method: str | None = None
    posterior: bool = False


@dataclass(frozen=True)
class ChunkResult:
    """What a chunk produced.

    Summary rows, one status row per review, where the time went, (on request) the posterior
    ``DataTree`` of every fit by ``(review_id, analysis)``, and the robustness checks' tables
    (``robustness``, ``bayes_factors``, ...; rows with ``review_id``).
    """

    index: int
    summary: pd.DataFrame
    status: pd.DataFrame
    timings: dict[str, float]
    posteriors: dict = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # robustness, by file stem


@dataclass
class _ChunkOutput:
    """What the reviews of a chunk add up to besides their summary rows."""

    timings: dict[str, float]
    posteriors: dict = field(default_factory=dict)
    tables: dict[str, list[pd.DataFrame]] = field(default_factory=dict)


class _Review:
    """One review's outcome: summary frames, status, messages."""

    def __init__(self, review_id: str, rows: int) -> None:
        self.review_id = review_id
        self.rows = rows
        self.status = "ok"
        self.messages: list[str] = []
        self.frames: list[pd.DataFrame] = []

    def worse(self, status: str, message: str) -> None:
        if STATUSES.index(status) < STATUSES.index(self.status):
            self.status = status
        self.messages.append(message)

    def row(self) -> dict:
        return {
            REVIEW_ID: self.review_id,
            "status": self.status,
            "rows": self.rows,
            "analyses_fitted": len(self.frames),
            "message": "; ".join(self.messages),
        }


def _fit(spec, data, method, settings, seed, posterior, timings):
    """``(summary, result or None)`` of one analysis of one review.

    ``posterior``: the posterior files are wanted. A result is kept for them and for the
    robustness checks; an exact analysis with neither gives its summary rows only, and one
    checked without posterior files gets no draws (the checks draw their own from the exact
    posterior). An MCMC analysis draws its prior only for the files or the checks.
    """
    keep = posterior or spec.robustness.enabled
    if method == "exact" and not keep and not data.has_uncertain_r:
        start = time.perf_counter()
        summary, _, _ = exact_summary(spec, data)
        timings["exact"] += time.perf_counter() - start
        return summary, None
    if method == "exact":  # r integrated when uncertain: its summary comes with the draws
        start = time.perf_counter()
        result = fit_on_exact_path(spec, data, settings, seed, posterior=posterior)
        timings["exact"] += time.perf_counter() - start
        return result.summary, result
    # PyMC is imported on the worker when the first MCMC analysis comes, not before.
    from metak.fitting.mcmc.engine import fit_mcmc_analysis

    result = fit_mcmc_analysis(spec, data, settings, seed, in_worker=True, prior_draws=keep)
    for phase, seconds in result.mcmc.phase_seconds.items():
        timings[phase] = timings.get(phase, 0.0) + seconds
    timings["mcmc_fits"] += 1
    timings["compilations"] += 0 if result.mcmc.model_reused else 1
    return result.summary, result


def _fit_review(task: ChunkTask, review: _Review, rows: pd.DataFrame, out: _ChunkOutput) -> None:
    seed = review_seed(task.settings.seed, review.review_id)
    fitted: dict[str, tuple[pd.DataFrame, object]] = {}
    for position, spec in enumerate(task.specs):
        if task.method:
            spec = replace(spec, method=task.method)
        try:
            data = review_analysis_data(rows, spec, task.reviews)
            method = choose_method(spec, data)
        except NoRowsError as err:
            review.messages.append(str(err))
            continue
        except MetakError as err:
            review.worse("bad_input", str(err))
            continue
        try:
            summary, result = _fit(
                spec, data, method, task.settings, seed + position, task.posterior, out.timings
            )
        except Exception as err:  # noqa: BLE001 - one review's failure never stops the batch
            review.worse("error", f"analysis {spec.name!r}: {type(err).__name__}: {err}")
            continue
        if result is not None and not result.converged:
            review.worse(
                "diagnostics_failed",
                f"analysis {spec.name!r} failed the MCMC diagnostics gate after a retry",
            )
        fitted[spec.name] = (summary, result)
    results = {name: result for name, (_, result) in fitted.items() if result is not None}
    derived: dict[str, list] = {}
    if any(result.spec.robustness.enabled for result in results.values()):
        checked = _robustness(task, review, results, out)
        base = None
        for name, result in checked.items():
            if name in fitted:
                base = name
            else:  # a check's derived analysis (<name>_pet, ...) right after its analysis
                derived.setdefault(base, []).append(result)
    for name, (summary, _) in fitted.items():
        review.frames.append(summary)
        review.frames.extend(result.summary for result in derived.get(name, []))
    if task.posterior:
        extra = [result for results_of in derived.values() for result in results_of]
        for result in [*results.values(), *extra]:
            out.posteriors[(review.review_id, result.spec.name)] = result.datatree


def _robustness(task: ChunkTask, review: _Review, results: dict, out: _ChunkOutput) -> dict:
    """Run the robustness checks of a review's analyses as ``fit`` runs them.

    Their tables are added to the chunk's, with the review's id. Returns the analyses with the
    derived ones.
    """
    start = time.perf_counter()
    try:
        # Without posterior files the checks' own analyses need their summary rows only.
        checked = assess_robustness(results, None, task.settings, posterior=task.posterior)
    except Exception as err:  # noqa: BLE001 - one review's failure never stops the batch
        review.worse("error", f"robustness checks: {type(err).__name__}: {err}")
        return results
    finally:
        out.timings["robustness"] = out.timings.get("robustness", 0.0) + (
            time.perf_counter() - start
        )
    for name, table in checked.tables.files().items():
        if len(table):
            out.tables.setdefault(name.removesuffix(".csv"), []).append(
                table.assign(**{REVIEW_ID: review.review_id})
            )
    return checked.analyses


def fit_chunk(task: ChunkTask) -> ChunkResult:
    """Fit every analysis to every review of ``task``; never raises for a review's sake.

    Parameters
    ----------
    task : ChunkTask
        The chunk.

    Returns
    -------
    ChunkResult
    """
    start = time.perf_counter()
    out = _ChunkOutput(timings={"exact": 0.0, "mcmc_fits": 0.0, "compilations": 0.0})
    slices = task.reviews.slices()
    all_rows = task.reviews.rows
    outcomes, frames, owners = [], [], []
    for review_id in task.reviews.order:
        review = _Review(review_id, task.reviews.input_rows.get(review_id, 0))
        outcomes.append(review)
        if review_id in task.reviews.problems:
            review.worse("bad_input", first_problems(task.reviews.problems[review_id]))
            continue
        begin, stop = slices[review_id]
        _fit_review(task, review, all_rows.iloc[begin:stop], out)
        frames.extend(review.frames)
        owners.extend([review_id] * sum(len(frame) for frame in review.frames))
    if frames:
        summary = pd.concat(frames, ignore_index=True)
        summary.insert(0, REVIEW_ID, owners)
    else:
        summary = pd.DataFrame(columns=SUMMARY_PARQUET_COLUMNS)
    status = pd.DataFrame([review.row() for review in outcomes], columns=STATUS_COLUMNS)
    out.timings["chunk_seconds"] = time.perf_counter() - start
    tables = {
        name: _with_review_first(pd.concat(parts, ignore_index=True))
        for name, parts in out.tables.items()
    }
    return ChunkResult(task.index, summary, status, out.timings, out.posteriors, tables)


def _with_review_first(table: pd.DataFrame) -> pd.DataFrame:
    return table[[REVIEW_ID, *[c for c in table.columns if c != REVIEW_ID]]]
