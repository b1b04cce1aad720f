"""Write a whole results directory: result files and report, swapped into place atomically."""

from __future__ import annotations

from pathlib import Path

from metak.fitting.result import FitResult
from metak.output.files import results_transaction
from metak.output.writer import write_results
from metak.report import build_report

__all__ = ["write_results_directory"]


def write_results_directory(result: FitResult, out_dir: Path, manifest: dict) -> Path:
    """Write every result file and ``report.html`` into ``out_dir``, replacing it whole.

    Everything is written into a staging directory beside ``out_dir`` and moved into place only
    when complete (:func:`metak.output.files.results_transaction`).

    Parameters
    ----------
    result : FitResult
        The fit.
    out_dir : Path
        The results directory.
    manifest : dict
        The content of ``manifest.json`` (:func:`metak.output.manifest.build_manifest`).

    Returns
    -------
    Path
        ``out_dir``.
    """
    out_dir = Path(out_dir)
    with results_transaction(out_dir) as staging:
        write_results(result, staging, manifest)
        # The posterior trees are in memory: the report need not read them back from the files.
        build_report(staging, trees={name: r.datatree for name, r in result.analyses.items()})
    return out_dir
