"""The files of a batch's output folder, assembled from its chunk checkpoints.

``summary.parquet`` (one row per review x analysis x parameter: the ``summary.csv`` columns and
``review_id``), ``status.csv`` (one row per review), the robustness checks' tables
(``robustness.parquet``, ``bayes_factors.parquet``, ...: fit's ``<name>.csv`` with ``review_id``),
``manifest.json`` (how the batch was made, where its time went, the SHA-256 of every file) and,
on request, ``posterior/<review>/<analysis>.nc``.
They are rebuilt from the checkpoints at the end of every run, so a resumed batch writes the same
files as one that was never interrupted.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd

from metak.batch.checkpoint import CheckpointStore, write_json, write_parquet
from metak.batch.work import STATUS_COLUMNS, STATUSES, SUMMARY_PARQUET_COLUMNS
from metak.fitting.summaries import SUMMARY_NUMERIC_COLUMNS
from metak.output.files import sha256_of, write_csv_atomic, write_netcdf
from metak.output.guard import contained

__all__ = [
    "assemble",
    "write_posteriors",
    "review_folder",
    "SUMMARY_FILE",
    "STATUS_FILE",
    "MANIFEST_FILE",
    "POSTERIOR_DIR",
]

SUMMARY_FILE = "summary.parquet"
STATUS_FILE = "status.csv"
MANIFEST_FILE = "manifest.json"
POSTERIOR_DIR = "posterior"
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")


def review_folder(review_id: str) -> str:
    """The folder of a review's posterior files.

    The review id when that is a safe file name (letters, digits, ``_``, ``-``, ``.``; at most
    64), else the id with other characters replaced by ``_`` and a short hash of the id appended
    (two ids never share a folder).
    """
    if _SAFE.fullmatch(review_id) and review_id not in (".", ".."):
        return review_id
    slug = re.sub(r"[^A-Za-z0-9_.\-]", "_", review_id)[:48].strip(".") or "review"
    digest = hashlib.sha256(review_id.encode("utf-8")).hexdigest()[:8]
    return f"{slug}_{digest}"


def write_posteriors(out: Path, posteriors: dict) -> None:
    """Write ``{(review_id, analysis): DataTree}`` to ``posterior/<review>/<analysis>.nc``."""
    for (review_id, analysis), tree in posteriors.items():
        folder = contained(out, out / POSTERIOR_DIR / review_folder(review_id))
        folder.mkdir(parents=True, exist_ok=True)
        write_netcdf(tree, contained(out, folder / f"{analysis}.nc"))


def _typed_summary(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame[SUMMARY_PARQUET_COLUMNS].reset_index(drop=True)
    for column in SUMMARY_NUMERIC_COLUMNS:
        frame[column] = frame[column].astype(float)
    frame["converged"] = frame["converged"].astype(bool)
    for column in ("review_id", "analysis", "parameter", "method"):
        frame[column] = frame[column].astype(str)
    return frame


def assemble(store: CheckpointStore, chunks: int, manifest: dict) -> dict:
    """Write ``summary.parquet``, ``status.csv`` and ``manifest.json`` from the checkpoints.

    Returns
    -------
    dict
        Counts of reviews by status, and the timings summed over chunks.
    """
    out = store.out
    summaries, statuses, timings, tables = [], [], {}, {}
    for index in range(chunks):
        summary, status, info, chunk_tables = store.load(index)
        summaries.append(summary)
        statuses.append(status)
        for name, table in chunk_tables.items():
            tables.setdefault(name, []).append(table)
        for key, value in info.get("timings", {}).items():
            timings[key] = timings.get(key, 0.0) + float(value)
    summary = (
        _typed_summary(pd.concat(summaries, ignore_index=True))
        if summaries
        else pd.DataFrame(columns=SUMMARY_PARQUET_COLUMNS)
    )
    status = pd.concat(statuses, ignore_index=True)[STATUS_COLUMNS] if statuses else None
    write_parquet(summary, contained(out, out / SUMMARY_FILE))
    write_csv_atomic(status, contained(out, out / STATUS_FILE))
    counts = {name: int(np.sum(status["status"] == name)) for name in STATUSES}
    written = [SUMMARY_FILE, STATUS_FILE]
    for name in sorted(tables):
        # The robustness checks' tables, as fit's <name>.csv, with the review_id of each row.
        write_parquet(
            pd.concat(tables[name], ignore_index=True), contained(out, out / f"{name}.parquet")
        )
        written.append(f"{name}.parquet")
    files = {name: sha256_of(out / name) for name in written}
    write_json(
        {**manifest, "reviews": counts, "timings": timings, "files": files},
        contained(out, out / MANIFEST_FILE),
    )
    return {"reviews": counts, "timings": timings, "rows": len(summary)}
