"""The public Python API (re-exported as ``metak.load_studies``, ``metak.fit``, ...).

It mirrors the command line and goes through the same orchestrator
(:func:`metak.fitting.orchestrator.run_analyses`) and the same checks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from metak.config import AnalysisFile, load_config, resolve_analyses
from metak.derive import EffectsResult
from metak.derive import compute_effects as _compute_effects
from metak.errors import ConfigError
from metak.fitting.orchestrator import run_analyses
from metak.fitting.result import FitResult
from metak.records import StudyRecords, bundled_studies_dir, is_bundled, load_records
from metak.spec import AnalysisSpec, QuestionSpec, Settings

__all__ = [
    "load_studies",
    "compute_effects",
    "load_analyses",
    "fit",
    "write_results",
    "AnalysisSpec",
    "QuestionSpec",
    "Settings",
]

# What `fit` accepts as ``config``: an analysis file, specs, or what load_analyses returns.
_Config = (
    str
    | Path
    | AnalysisSpec
    | Sequence[AnalysisSpec]
    | tuple[Sequence[AnalysisSpec], Settings]
    | AnalysisFile
    | None
)


def load_studies(directory: str | Path | None = None, provenance: str = "auto") -> StudyRecords:
    """Read and validate a study-records directory (default: the bundled ``studies/``).

    The bundled directory is always checked with strict provenance.

    Parameters
    ----------
    directory : str, Path or None
        The directory holding ``studies.csv`` and the other record files; None for the bundled
        ``studies/``.
    provenance : {"auto", "strict", "off"}
        Whether every number must be found in its row's verbatim quote: ``auto`` checks files
        that have ``source``/``quote`` columns (README.md, "Provenance").

    Returns
    -------
    StudyRecords
        The validated tables.

    Raises
    ------
    metak.errors.InputError
        Listing every problem found, one line each.
    """
    directory = bundled_studies_dir() if directory is None else Path(directory)
    if is_bundled(directory):
        provenance = "strict"
    return load_records(directory, provenance=provenance)


def compute_effects(records: StudyRecords, measure: str | None = None) -> EffectsResult:
    """Effect sizes (``EffectsResult.effects``) and the rows that gave none (``.unusable``).

    Parameters
    ----------
    records : StudyRecords
        Validated records (:func:`load_studies`).
    measure : {"MD", "SMD", "ROM"}, optional
        Use this measure for every outcome instead of the one in ``outcomes.csv``.

    Returns
    -------
    EffectsResult

    Raises
    ------
    metak.errors.ConfigError
        For an unknown ``measure``.
    metak.errors.InputError
        For numbers that break the arithmetic (one line naming the cell).
    """
    return _compute_effects(records, measure_override=measure)


def load_analyses(path: str | Path) -> AnalysisFile:
    """Read an analysis file (TOML): its ``analyses``, ``settings`` and ``questions``.

    Raises
    ------
    metak.errors.ConfigError
        For a file that cannot be read or a bad analysis, setting or question (one line naming
        it).
    """
    return load_config(Path(path))


def _analyses(records: StudyRecords, config: _Config) -> AnalysisFile:
    if config is None or isinstance(config, (str, Path)):
        outcomes = list(records.outcomes["outcome"])
        path = None if config is None else Path(config)
        return resolve_analyses(records.directory, path, outcomes)
    if isinstance(config, AnalysisFile):
        return config
    if isinstance(config, AnalysisSpec):
        return AnalysisFile((config,), Settings())
    if (
        isinstance(config, tuple)
        and len(config) == 2
        and isinstance(config[1], Settings)
        and isinstance(config[0], (list, tuple))
    ):
        return AnalysisFile(tuple(config[0]), config[1])  # (specs, Settings)
    if isinstance(config, (list, tuple)):
        return AnalysisFile(tuple(config), Settings())
    raise ConfigError(
        f"config must be an analysis-file path, a list of AnalysisSpec or what load_analyses "
        f"returns, got {type(config).__name__}"
    )


def fit(
    records: StudyRecords | str | Path | None = None,
    config: _Config = None,
    *,
    seed: int | None = None,
    draws: int | None = None,
    tune: int | None = None,
    chains: int | None = None,
    jobs: int | None = None,
    method: str | None = None,
    analyses: Sequence[str] | None = None,
    questions: Sequence[QuestionSpec] | None = None,
    progress: bool | Callable[[str], None] = False,
) -> FitResult:
    """Fit the analyses of ``config`` to ``records``; the Python face of ``python -m metak fit``.

    Parameters
    ----------
    records : StudyRecords, str, Path or None
        Validated records, or a study-records directory (None: the bundled ``studies/``).
    config : path, AnalysisSpec, list of AnalysisSpec, AnalysisFile, (specs, Settings) or None
        An analysis file, specs built in Python, or what :func:`load_analyses` returns. Without
        it the directory's ``analyses.toml`` is used, else one random-effects analysis per outcome.
    seed, draws, tune, chains, jobs : int, optional
        Override the settings of the analysis file (checked as the command line's options are).
    method : {"auto", "exact", "mcmc"}, optional
        Override every analysis' method.
    analyses : sequence of str, optional
        Fit only these analyses.
    questions : sequence of QuestionSpec, optional
        The questions the report answers first (default: the analysis file's ``[[question]]``
        tables; without any, the report asks one per analysis).
    progress : bool or callable
        Print progress lines (True) or pass them to a callable.

    Returns
    -------
    FitResult
        ``summary``, ``study_effects``, ``claims`` and ``datatree(name)``.

    Raises
    ------
    metak.errors.ConfigError
        Bad analyses, options or names (the same messages as the analysis file and command line).
    metak.errors.InputError
        Bad study records.
    """
    if not isinstance(records, StudyRecords):
        records = load_studies(records)
    chosen = _analyses(records, config)
    given = {"seed": seed, "draws": draws, "tune": tune, "chains": chains, "jobs": jobs}
    settings = replace(
        chosen.settings, **{key: value for key, value in given.items() if value is not None}
    )
    say = print if progress is True else (progress or None)
    return run_analyses(
        records,
        chosen.analyses,
        settings,
        only=analyses,
        method=method,
        progress=say,
        questions=chosen.questions if questions is None else questions,
    )


def write_results(
    result: FitResult, out_dir: str | Path, manifest: dict[str, Any] | None = None
) -> Path:
    """Write a fit's result files (and report) into ``out_dir``, replacing it whole.

    Parameters
    ----------
    result : FitResult
        What :func:`fit` returned.
    out_dir : str or Path
        The results directory. It follows the rule of ``fit --out`` (README.md, "What results/
        holds"): it must not exist, be empty, or be a metak results directory.
    manifest : dict, optional
        What ``manifest.json`` records besides the file hashes (JSON-serialisable); by default
        only that the Python API wrote it.

    Returns
    -------
    Path
        ``out_dir``.

    Raises
    ------
    metak.errors.ConfigError
        When ``out_dir`` may not be replaced (saying why); nothing is written.
    metak.errors.OutputError
        When a file cannot be written (disk full, no permission); the previous results stay.
    """
    from metak.output.results_dir import write_results_directory  # the report's matplotlib

    manifest = manifest or {"command": "metak.write_results (Python API)"}
    return write_results_directory(result, Path(out_dir), manifest, option="out_dir")
