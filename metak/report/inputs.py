"""Read a results directory (README.md, "What results/ holds") into typed pieces for the report.

The report is rebuilt from the saved files alone, so this reader is the report's only contact with
the fit. It accepts exactly what ``fit`` writes — ``analyses.json`` is ``{"analyses": [...],
"questions": [...]}`` with the documented keys — and raises :class:`ResultsError` naming the file
when a required file is absent or cannot be what ``fit`` wrote (empty, a column missing or not
numeric, not JSON, another shape, a posterior file holding another analysis), so that hand-edited
results end in one line, never a traceback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import pandas as pd

from metak.errors import ResultsError

if TYPE_CHECKING:
    import xarray as xr

__all__ = [
    "ResultsError",
    "OutcomeInfo",
    "DeficiencyInfo",
    "AnalysisInfo",
    "QuestionInfo",
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
STUDIES_REQUIRED = (
    "analysis",
    "study_id",
    "label",
    "outcome",
    "yi",
    "ci_low",
    "ci_high",
    "theta_mean",
    "theta_q2.5",
    "theta_q97.5",
    "weight_pct",
    "n_treatment",
    "n_control",
)
STUDIES_NUMERIC = (
    "yi",
    "vi",
    "ci_low",
    "ci_high",
    "weight_pct",
    "theta_mean",
    "theta_q2.5",
    "theta_q97.5",
    "n_treatment",
    "n_control",
    "baseline_dpucmgp_pmol_l",
)
# The attribute ``fit`` puts on each posterior file: the analysis it belongs to.
ANALYSIS_ATTR = "metak_analysis"
_REFIT = "fix: run `python -m metak fit` to write the results again"


@dataclass(frozen=True)
class OutcomeInfo:
    """One outcome of an analysis, as ``outcomes.csv`` declared it."""

    KEYS: ClassVar[tuple[str, ...]] = ("description", "unit", "direction")

    description: str
    unit: str
    direction: str  # lower_is_better | higher_is_better | unspecified


@dataclass(frozen=True)
class DeficiencyInfo:
    """The deficiency moderator of an analysis: reference and levels in pmol/L."""

    reference: float
    levels: tuple[float, ...]
    imputed: bool
    marker_outcome: str

    @classmethod
    def from_record(cls, record: dict) -> DeficiencyInfo:
        """From the ``deficiency`` entry of ``analyses.json``."""
        return cls(
            float(record["reference_pmol_per_l"]),
            tuple(float(level) for level in record["levels_pmol_per_l"]),
            bool(record["imputed"]),
            str(record["marker_outcome"]),
        )


@dataclass(frozen=True)
class AnalysisInfo:
    """What ``analyses.json`` says about one analysis."""

    name: str
    description: str
    model: str
    outcome: str  # the outcome, or the joint model's outcomes joined by ", "
    outcomes: tuple[str, ...]  # one entry, or the joint model's outcomes
    measure: str
    direction: str  # lower_is_better | higher_is_better | unspecified
    k: int
    n_studies: int
    method: str
    converged: bool
    priors: dict = field(default_factory=dict)
    moderators: tuple[str, ...] = ()
    reference_levels: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)
    messages: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    outcome_description: str = ""
    unit: str = ""
    outcome_meta: dict = field(default_factory=dict)  # outcome -> OutcomeInfo
    deficiency: DeficiencyInfo | None = None
    link_biomarker: str | None = None  # joint models: the outcome whose effects predict the others
    intervention: str = DEFAULT_INTERVENTION
    comparator: str = DEFAULT_COMPARATOR
    check_of: str | None = None  # a robustness check's analysis: the analysis it checks
    arm: str | None = None  # an analysis of one arm: the arm it pools (treatment / control)

    @property
    def is_regression(self) -> bool:
        """True for meta-regressions (moderator slopes)."""
        return self.model == "meta_regression" or bool(self.moderators)

    def outcome_info(self, outcome: str | None = None) -> OutcomeInfo:
        """The description, unit and direction of ``outcome`` (default: the analysis' own)."""
        outcome = self.outcomes[0] if outcome is None else outcome
        found = self.outcome_meta.get(outcome)
        if found is not None:
            return found
        return OutcomeInfo(self.outcome_description, self.unit, self.direction)


@dataclass(frozen=True)
class QuestionInfo:
    """A question of the analysis file (``[[question]]``), or one the report asks by default."""

    text: str
    analysis: str
    parameter: str
    benefit: str | None = None  # "lower" | "higher": overrides the outcome's direction


@dataclass(frozen=True)
class ReportInputs:
    """Everything the report reads, except the posterior files (opened one at a time)."""

    directory: Path
    summary: pd.DataFrame
    studies: pd.DataFrame
    claims: pd.DataFrame
    analyses: dict  # name -> AnalysisInfo, in file order
    questions: tuple[QuestionInfo, ...] = ()  # as declared; empty: one per analysis

    def posterior_path(self, name: str) -> Path:
        """``posterior/<name>.nc``, refusing a name that is not a plain file name."""
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


# The one shape of analyses.json (README.md, "What results/ holds"): the keys every entry has.
ENTRY_KEYS = (
    "name",
    "description",
    "spec",
    "direction",
    "outcome_description",
    "unit",
    "outcome_meta",
    "k",
    "n_studies",
    "counts",
    "method",
    "converged",
    "diagnostics",
    "warnings",
    "check_of",
)
SPEC_KEYS = (
    "model",
    "outcome",
    "outcomes",
    "link_biomarker",
    "measure",
    "moderators",
    "priors",
    "reference_levels",
    "arm",
)
QUESTION_KEYS = ("text", "analysis", "parameter", "benefit")


def _shape_error(path: Path, what: str) -> ResultsError:
    return ResultsError(
        f"error: {path}: {what}, not the analyses as `metak fit` writes them "
        f'({{"analyses": [...], "questions": [...]}}); {_REFIT}'
    )


def _keys(path: Path, where: str, entry: object, keys: tuple[str, ...]) -> dict:
    if not isinstance(entry, dict):
        raise _shape_error(path, f"{where} is a {type(entry).__name__}")
    missing = [key for key in keys if key not in entry]
    if missing:
        raise _shape_error(path, f"{where} has no key {missing[0]!r}")
    return entry


def _outcome_info(path: Path, where: str, raw: object) -> dict[str, OutcomeInfo]:
    if not isinstance(raw, dict):
        raise _shape_error(path, f"{where}.outcome_meta is a {type(raw).__name__}")
    out = {}
    for outcome, meta in raw.items():
        meta = _keys(path, f"{where}.outcome_meta.{outcome}", meta, OutcomeInfo.KEYS)
        out[str(outcome)] = OutcomeInfo(
            str(meta["description"] or ""), str(meta["unit"] or ""), str(meta["direction"])
        )
    return out


def _info(path: Path, index: int, entry: object) -> AnalysisInfo:
    where = f"analyses[{index}]"
    entry = _keys(path, where, entry, ENTRY_KEYS)
    spec = _keys(path, f"{where}.spec", entry["spec"], SPEC_KEYS)
    outcomes = tuple(str(o) for o in (spec["outcomes"] or ()))
    deficiency = entry.get("deficiency")
    return AnalysisInfo(
        name=str(entry["name"]),
        description=str(entry["description"]),
        model=str(spec["model"]),
        outcome=str(spec["outcome"]) if spec["outcome"] else ", ".join(outcomes),
        outcomes=outcomes or (str(spec["outcome"]),),
        measure=str(spec["measure"] or ""),
        direction=str(entry["direction"]),
        k=int(entry["k"]),
        n_studies=int(entry["n_studies"]),
        method=str(entry["method"]),
        converged=bool(entry["converged"]),
        priors={str(key): str(value) for key, value in (spec["priors"] or {}).items()},
        moderators=tuple(str(m) for m in spec["moderators"] or ()),
        reference_levels=dict(spec["reference_levels"] or {}),
        counts=dict(entry["counts"] or {}),
        messages=tuple(str(m) for m in entry["diagnostics"] or ()),
        warnings=tuple(str(w) for w in entry["warnings"] or ()),
        notes=tuple(str(n) for n in entry.get("notes") or ()),
        outcome_description=str(entry["outcome_description"] or ""),
        unit=str(entry["unit"] or ""),
        outcome_meta=_outcome_info(path, where, entry["outcome_meta"]),
        deficiency=DeficiencyInfo.from_record(deficiency) if deficiency else None,
        link_biomarker=str(spec["link_biomarker"]) if spec["link_biomarker"] else None,
        check_of=str(entry["check_of"]) if entry["check_of"] else None,
        arm=str(spec["arm"]) if spec["arm"] else None,
    )


def _questions(path: Path, raw: object, names: list[str]) -> tuple[QuestionInfo, ...]:
    if not isinstance(raw, list):
        raise _shape_error(path, f'"questions" is a {type(raw).__name__}')
    questions = []
    for index, entry in enumerate(raw):
        entry = _keys(path, f"questions[{index}]", entry, QUESTION_KEYS)
        if str(entry["analysis"]) not in names:
            raise _shape_error(
                path, f"questions[{index}] asks about analysis {entry['analysis']!r}, not in it"
            )
        benefit = entry["benefit"]
        questions.append(
            QuestionInfo(
                str(entry["text"]),
                str(entry["analysis"]),
                str(entry["parameter"]),
                None if benefit is None else str(benefit),
            )
        )
    return tuple(questions)


def load_inputs(directory: Path) -> ReportInputs:
    """Read ``summary.csv``, ``study_effects.csv``, ``claims.csv`` and ``analyses.json``.

    ``analyses.json`` must have the one shape ``fit`` writes: an object with the list
    ``analyses`` (every entry with the documented keys) and the list ``questions``.

    Raises
    ------
    ResultsError
        One line naming the file and what is wrong with it.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ResultsError(
            f"{directory}: not a directory; fix: pass the results directory of `metak fit`"
        )
    summary = _read_csv(directory / "summary.csv", True, SUMMARY_REQUIRED, SUMMARY_NUMERIC)
    studies = _read_csv(directory / "study_effects.csv", True, STUDIES_REQUIRED, STUDIES_NUMERIC)
    claims = _read_csv(directory / "claims.csv", required=False)
    path = _require(directory / "analyses.json")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ResultsError(
            f"error: {path}: not valid JSON ({_one_line(err)}); fix: re-run `python -m metak fit`"
        ) from None
    if not isinstance(raw, dict):
        raise _shape_error(path, f"holds a {type(raw).__name__}")
    unknown = sorted(set(raw) - {"analyses", "questions"})
    missing = [key for key in ("analyses", "questions") if key not in raw]
    if unknown or missing:
        what = f"has the key {unknown[0]!r}" if unknown else f"has no key {missing[0]!r}"
        raise _shape_error(path, what)
    if not isinstance(raw["analyses"], list):
        raise _shape_error(path, f'"analyses" is a {type(raw["analyses"]).__name__}')
    infos = [_info(path, i, entry) for i, entry in enumerate(raw["analyses"])]
    names = [info.name for info in infos]
    if len(set(names)) < len(names):
        raise _shape_error(path, "names an analysis twice")
    for table, frame in (("summary.csv", summary), ("study_effects.csv", studies)):
        stray = sorted(set(frame["analysis"].astype(str)) - set(names))
        if stray:
            raise ResultsError(
                f"error: {directory / table}: analysis {stray[0]!r} is not described in "
                f"analyses.json; {_REFIT}"
            )
    questions = _questions(path, raw["questions"], names)
    analyses = {info.name: info for info in infos}
    return ReportInputs(directory, summary, studies, claims, analyses, questions)


def open_posterior(path: Path, analysis: str | None = None) -> xr.DataTree | None:
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


def flat_draws(tree: xr.DataTree, group: str, var: str) -> np.ndarray | None:
    """Draws of ``var`` in ``group`` with chain and draw flattened to the first axis."""
    if tree is None or group not in tree.children or var not in tree[group].dataset:
        return None
    array = tree[group].dataset[var]
    dims = [dim for dim in ("chain", "draw") if dim in array.dims]
    other = [dim for dim in array.dims if dim not in dims]
    values = array.transpose(*dims, *other).values
    return values.reshape((-1, *values.shape[len(dims) :]))
