"""Write a whole results directory: result files and report, swapped into place atomically."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from metak.fitting.result import FitResult
from metak.output.files import results_transaction
from metak.output.guard import check_out_dir
from metak.output.writer import write_results
from metak.report import build_report

__all__ = ["write_results_directory"]


def write_results_directory(
    result: FitResult,
    out_dir: Path,
    manifest: dict[str, Any],
    *,
    inputs: Iterable[Path | None] = (),
    option: str = "--out",
    jobs: int | None = None,
) -> Path:
    """Write every result file and ``report.html`` into ``out_dir``, replacing it whole.

    ``out_dir`` must obey the ``--out`` rule (:func:`metak.output.guard.check_out_dir`), checked
    again under the lock just before the swap. Everything is written into a staging directory
    beside ``out_dir`` and moved into place only when complete
    (:func:`metak.output.files.results_transaction`).

    Parameters
    ----------
    result : FitResult
        The fit.
    out_dir : Path
        The results directory.
    manifest : dict
        The content of ``manifest.json`` (:func:`metak.output.manifest.build_manifest`).
    inputs : iterable of Path
        The studies folder and analysis file: ``out_dir`` may never be or hold them.
    option : str
        How ``out_dir`` is named in messages (``--out`` or the API's ``out_dir``).
    jobs : int, optional
        Processes the report may use (``fit --jobs``; :func:`metak.report.build_report`).

    Returns
    -------
    Path
        ``out_dir``.
    """
    out_dir = Path(out_dir)
    inputs = tuple(inputs)

    def check_out() -> None:
        check_out_dir(out_dir, inputs=inputs, option=option)

    check_out()
    with results_transaction(out_dir, recheck=check_out) as staging:
        write_results(result, staging, manifest)
        # The posterior trees are in memory: the report need not read them back from the files.
        trees = {name: r.datatree for name, r in result.analyses.items()}
        build_report(staging, trees=trees, jobs=jobs)
    return out_dir
