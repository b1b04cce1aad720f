"""Read a results directory (README.md, "What results/ holds") into typed pieces for the report.

The report is rebuilt from the saved files alone, so this reader is the report's only contact with
the fit: it tolerates optional keys missing from ``analyses.json`` (older runs, analyses without
moderators) and raises :class:`ResultsError` naming the file when a required file is absent or
cannot be what ``fit`` wrote (empty, a column missing or not numeric, not JSON, a posterior file
holding another analysis), so that hand-edited results end in one line, never a traceback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from metak.errors import ResultsError

__all__ = [
    "ResultsError",
    "AnalysisInfo",
    "ReportInputs",
    "load_inputs",
    "open_posterior",
    "flat_draws",
]

DEFAULT_INTERVENTION = "vitamin K"
DEFAULT_COMPARATOR = "control"


# Columns the report reads without asking (README.md, "summary.csv columns" and
# "study_effects.csv columns"), and those that must hold numbers when present.
SUMMARY_REQUIRED = (
    "analysis",
    "parameter",
    "mean",
    "sd",
    "q2.5",
    "q50",
    "q97.5",
    "method",
    "converged",
)
SUMMARY_NUMERIC = ("mean", "sd", "q2.5", "q50", "q97.5", "r_hat", "ess_bulk", "ess_tail")
STUDIES_REQUIRED = ("analysis", "study_id", "yi", "ci_low", "ci_high", "weight_pct")
STUDIES_NUMERIC = (
    "yi",
    "vi",
    "ci_low",
    "ci_high",
    "weight_pct",
    "theta_mean",
    "theta_q2.5",
    "theta_q97.5",
)
# The attribute ``fit`` puts on each posterior file: the analysis it belongs to.
ANALYSIS_ATTR = "metak_analysis"
_REFIT = "fix: run `python -m metak fit` to write the results again"


@dataclass(frozen=True)
class AnalysisInfo:
    """What ``analyses.json`` says about one analysis (missing keys get neutral defaults)."""

    name: str
    description: str
    model: str
    outcome: str
    measure: str
    direction: str  # lower_is_better | higher_is_better | unspecified
    k: int | None
    method: str
    converged: bool
    priors: dict = field(default_factory=dict)
    moderators: tuple[str, ...] = ()
    reference_levels: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)
    messages: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    outcome_description: str = ""
    unit: str = ""
    intervention: str = DEFAULT_INTERVENTION
    comparator: str = DEFAULT_COMPARATOR

    @property
    def is_regression(self) -> bool:
        return self.model == "meta_regression" or bool(self.moderators)


@dataclass(frozen=True)
class ReportInputs:
    """Everything the report reads, except the posterior files (opened one at a time)."""

    directory: Path
    summary: pd.DataFrame
    studies: pd.DataFrame
    claims: pd.DataFrame
    analyses: dict  # name -> AnalysisInfo, in file order

    def posterior_path(self, name: str) -> Path:
        if not name or name in (".", "..") or any(c in name for c in "/\\\0"):
            raise ResultsError(
                f"error: {self.directory / 'analyses.json'}: analysis name {name!r} is not a "
                f"plain name, so it names no posterior file; {_REFIT}"
            )
        return self.directory / "posterior" / f"{name}.nc"


def _require(path: Path) -> Path:
    if not path.is_file():
        raise ResultsError(
            f"{path}: missing; fix: run `python -m metak fit` to create the results directory"
        )
    return path


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _require_columns(path: Path, frame: pd.DataFrame, columns: tuple) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        have = ", ".join(map(str, frame.columns[:8])) + (", …" if len(frame.columns) > 8 else "")
        raise ResultsError(
            f"error: {path}: no column {missing[0]!r} (the header has: {have}); {_REFIT}"
        )


def _read_csv(
    path: Path, required: bool = True, columns: tuple = (), numeric: tuple = ()
) -> pd.DataFrame:
    """A results CSV, checked to have ``columns`` and numbers in the ``numeric`` ones."""
    if not required and not path.is_file():
        return pd.DataFrame()
    try:
        frame = pd.read_csv(_require(path), keep_default_na=True)
    except pd.errors.EmptyDataError:
        raise ResultsError(f"error: {path}: empty, not even a header line; {_REFIT}") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as err:
        raise ResultsError(
            f"error: {path}: not readable as CSV ({_one_line(err)}); {_REFIT}"
        ) from None
    _require_columns(path, frame, columns)
    for column in numeric:
        if column not in frame.columns:
            continue
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = frame[column].notna() & values.isna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ResultsError(
                f"error: {path}:{row + 2}: column {column!r} holds "
                f"{str(frame[column].iloc[row])!r}, not a number; {_REFIT}"
            )
        frame[column] = values
    return frame


def _as_tuple(value) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, dict):  # e.g. {"messages": [...]}
        value = value.get("messages", list(value.values()))
    return tuple(str(item) for item in value)


def _entries(raw) -> list[dict]:
    """``analyses.json`` as a list of dicts: accepts {name: {...}}, {"analyses": ...} or [...]."""
    if isinstance(raw, dict) and isinstance(raw.get("analyses"), dict | list):
        raw = raw["analyses"]
    if isinstance(raw, dict):
        return [{"name": name, **entry} for name, entry in raw.items() if isinstance(entry, dict)]
    return [entry for entry in raw if isinstance(entry, dict)]


def _info(entry: dict, summary: pd.DataFrame) -> AnalysisInfo:
    spec = entry.get("spec") or {}
    name = str(entry.get("name") or spec.get("name"))

    def pick(key, default=None):
        value = entry.get(key, spec.get(key))
        return default if value is None else value

    rows = summary[summary["analysis"] == name] if "analysis" in summary else summary.iloc[:0]
    method = pick("method") or (str(rows["method"].iloc[0]) if len(rows) else "unknown")
    converged = pick("converged")
    if converged is None:
        converged = bool(rows["converged"].astype(str).eq("True").all()) if len(rows) else True
    outcomes = pick("outcomes") or ()
    outcome = pick("outcome") or ", ".join(map(str, outcomes))
    return AnalysisInfo(
        name=name,
        description=str(pick("description", "")),
        model=str(pick("model", "")),
        outcome=str(outcome),
        measure=str(pick("measure", "")),
        direction=str(pick("direction", pick("direction_of_benefit", "unspecified"))),
        k=pick("k"),
        method=str(method),
        converged=bool(converged),
        priors={str(key): str(value) for key, value in (pick("priors") or {}).items()},
        moderators=_as_tuple(pick("moderators")),
        reference_levels=dict(pick("reference_levels", pick("centers", {})) or {}),
        counts=dict(pick("counts", {}) or {}),
        messages=_as_tuple(pick("diagnostics", pick("messages"))),
        warnings=_as_tuple(pick("warnings")),
        outcome_description=str(pick("outcome_description", "")),
        unit=str(pick("unit", "")),
        intervention=str(pick("intervention", DEFAULT_INTERVENTION)),
        comparator=str(pick("comparator", DEFAULT_COMPARATOR)),
    )


def load_inputs(directory: Path) -> ReportInputs:
    """Read ``summary.csv``, ``study_effects.csv``, ``claims.csv`` and ``analyses.json``."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ResultsError(
            f"{directory}: not a directory; fix: pass the results directory of `metak fit`"
        )
    summary = _read_csv(directory / "summary.csv", True, SUMMARY_REQUIRED, SUMMARY_NUMERIC)
    studies = _read_csv(directory / "study_effects.csv", True, STUDIES_REQUIRED, STUDIES_NUMERIC)
    if "theta_mean" in studies.columns:  # the forest plot then draws the shrunken intervals
        _require_columns(directory / "study_effects.csv", studies, ("theta_q2.5", "theta_q97.5"))
    claims = _read_csv(directory / "claims.csv", required=False)
    path = _require(directory / "analyses.json")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ResultsError(
            f"error: {path}: not valid JSON ({_one_line(err)}); fix: re-run `python -m metak fit`"
        ) from None
    if not isinstance(raw, dict | list):
        raise ResultsError(
            f"error: {path}: holds a {type(raw).__name__}, not the analyses (an object or a "
            f"list); {_REFIT}"
        )
    infos = [_info(entry, summary) for entry in _entries(raw)]
    names = [info.name for info in infos]
    # Analyses present in summary.csv but not described in analyses.json still get a section.
    for name in dict.fromkeys(summary.get("analysis", pd.Series(dtype=str)).astype(str)):
        if name not in names:
            infos.append(_info({"name": name}, summary))
    return ReportInputs(directory, summary, studies, claims, {info.name: info for info in infos})


def open_posterior(path: Path, analysis: str | None = None):
    """The posterior ``DataTree`` loaded into memory (file closed), or None when absent.

    Parameters
    ----------
    path : Path
        ``posterior/<analysis>.nc``.
    analysis : str, optional
        The analysis the file must belong to: its ``metak_analysis`` attribute, which ``fit``
        writes, must name it (files written before that attribute existed carry none).

    Raises
    ------
    ResultsError
        When the file is not a readable netCDF file, or holds another analysis' posterior.
    """
    if not path.is_file():
        return None
    import xarray as xr

    try:
        with xr.open_datatree(path, engine="netcdf4") as tree:  # 4x faster than h5netcdf here
            tree = tree.load()
    except (OSError, ValueError, RuntimeError) as err:
        raise ResultsError(
            f"error: {path}: not a readable posterior file ({_one_line(err)}); {_REFIT}"
        ) from None
    owner = tree.attrs.get(ANALYSIS_ATTR)
    if analysis is not None and owner is not None and str(owner) != analysis:
        raise ResultsError(
            f"error: {path}: holds the posterior of analysis {str(owner)!r}, not {analysis!r} "
            f"(files swapped or renamed?); {_REFIT}"
        )
    return tree


def flat_draws(tree, group: str, var: str) -> np.ndarray | None:
    """Draws of ``var`` in ``group`` with chain and draw flattened to the first axis."""
    if tree is None or group not in tree.children or var not in tree[group].dataset:
        return None
    array = tree[group].dataset[var]
    dims = [dim for dim in ("chain", "draw") if dim in array.dims]
    other = [dim for dim in array.dims if dim not in dims]
    values = array.transpose(*dims, *other).values
    return values.reshape((-1, *values.shape[len(dims) :]))
