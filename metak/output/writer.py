"""Write a :class:`~metak.fitting.result.FitResult` as the documented files of ``results/``.

See docs in README.md ("What results/ holds"). Everything is written into a staging directory by
:func:`write_results`; the caller moves it into place (see :mod:`metak.output.files`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from metak.claims import VERDICT_COLUMNS
from metak.fitting.deficiency import analysis_record as deficiency_record
from metak.fitting.deficiency import moderator_counts
from metak.fitting.result import AnalysisResult, FitResult
from metak.output.files import write_csv_atomic, write_netcdf, write_text_atomic
from metak.output.guard import ResultPaths
from metak.output.integrity import seal_manifest
from metak.robustness.tables import CLAIM_COLUMNS

__all__ = ["write_results", "summary_markdown", "RESULTS_README"]

RESULTS_README = "RESULTS_README.md"


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _clean(obj):
    """Replace non-finite floats by None so the JSON is standard."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def write_json(obj: object, path: Path) -> None:
    """Write ``obj`` as indented JSON, atomically (numpy values as plain numbers, NaN as null)."""
    text = json.dumps(_clean(obj), indent=2, default=_json_default, sort_keys=False) + "\n"
    write_text_atomic(path, text)


def _fmt(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return ""
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value).replace("|", "\\|")


def summary_markdown(summary: pd.DataFrame) -> str:
    """The summary table as Markdown, rounded to 4 significant digits for reading."""
    columns = list(summary.columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in summary.itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(value) for value in row) + " |")
    return "# metak summary\n\nRaw numbers are in summary.csv.\n\n" + "\n".join(lines) + "\n"


def _analysis_record(result: AnalysisResult) -> dict:
    """One entry of analyses.json (the report reads these keys; README documents them)."""
    spec = result.spec
    data = result.data
    outcomes = list(spec.outcomes) or [spec.outcome]
    meta = [data.outcome_meta.get(o, {}) for o in outcomes]
    record = {
        "name": spec.name,
        "description": spec.describe(),
        "spec": {
            "model": spec.model,
            "outcome": spec.outcome,
            "outcomes": list(spec.outcomes),
            "link_biomarker": spec.link_biomarker,
            "measure": ", ".join(sorted(set(data.effects["measure"].astype(str)))),
            "moderators": list(data.moderator_names),
            "priors": result.priors,
            "reference_levels": dict(zip(data.moderator_names, data.centers, strict=True)),
            "arm": spec.arm,
        },
        "direction": data.direction,
        "outcome_description": "; ".join(m["description"] for m in meta if m.get("description")),
        "unit": ", ".join(dict.fromkeys(m["unit"] for m in meta if m.get("unit"))),
        # Per outcome (several for joint models, whose outcomes each keep their own unit).
        "outcome_meta": {
            outcome: {
                "description": str(m.get("description") or ""),
                "unit": str(m.get("unit") or ""),
                "direction": data.directions.get(outcome, "unspecified"),
            }
            for outcome, m in zip(outcomes, meta, strict=True)
        },
        "k": data.k,
        "n_studies": data.n_studies,
        "counts": moderator_counts(data),
        "method": result.method,
        "converged": result.converged,
        "diagnostics": list(result.messages),
        "warnings": list(result.warnings),
        "excluded": data.excluded,
        "notes": list(data.notes),
        "seconds": result.seconds,
        "exact": asdict(result.exact) if result.exact is not None else None,
        "mcmc": asdict(result.mcmc) if result.mcmc is not None else None,
        "check_of": result.check_of,
    }
    deficiency = deficiency_record(spec)
    if deficiency is not None:
        record["deficiency"] = deficiency
    return record


def write_results(fit_result: FitResult, staging: Path, manifest: dict) -> None:
    """Write every result file into ``staging`` (which becomes ``results/``).

    Every path is checked to stay inside ``staging`` (:class:`~metak.output.guard.ResultPaths`);
    ``manifest.json`` gets the results marker and the SHA-256 of every file written here
    (:func:`~metak.output.integrity.seal_manifest`).
    """
    out = ResultPaths(staging)
    summary = fit_result.summary
    write_csv_atomic(summary, out.file("summary.csv"))
    write_text_atomic(out.file("summary.md"), summary_markdown(summary))
    write_csv_atomic(fit_result.study_effects, out.file("study_effects.csv"))
    write_csv_atomic(fit_result.effects, out.file("effects.csv"))
    write_csv_atomic(fit_result.unusable, out.file("unusable.csv"))
    if fit_result.claims is not None:
        write_csv_atomic(fit_result.claims, out.file("claims.csv"))
    else:
        write_csv_atomic(
            pd.DataFrame(columns=[*VERDICT_COLUMNS, *CLAIM_COLUMNS]),
            out.file("claims.csv"),
        )
    if fit_result.robustness is not None:
        # The robustness checks' tables (README, "How far the answer can be trusted").
        for filename, table in fit_result.robustness.files().items():
            write_csv_atomic(table, out.file(filename))
    analyses = [_analysis_record(result) for result in fit_result.analyses.values()]
    questions = [asdict(question) for question in fit_result.questions]
    write_json({"analyses": analyses, "questions": questions}, out.file("analyses.json"))
    for name, result in fit_result.analyses.items():
        # The tree carries metak_analysis = name: the report notices files swapped between
        # analyses.
        write_netcdf(result.datatree, out.posterior(name))
    readme = resources.files("metak.output").joinpath(RESULTS_README).read_text(encoding="utf-8")
    write_text_atomic(out.file("README.md"), readme)
    write_json(seal_manifest(manifest, staging, out.written), out.file("manifest.json"))
