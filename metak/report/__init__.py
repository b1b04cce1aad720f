"""The self-contained HTML report, rebuilt from a results directory alone (README.md, "What results/ holds").

``build_report(results_dir)`` writes ``results_dir/report.html``: inline CSS, inline SVG figures,
no script and no external URL, so the file can be mailed or archived and opened offline.
"""

from __future__ import annotations

import json
import os
import tempfile
from importlib import metadata
from pathlib import Path

from metak.report.html import esc, page
from metak.report.inputs import ResultsError, load_inputs, open_posterior
from metak.report.sections import (
    forest_section,
    posterior_section,
    question_section,
    regression_section,
)
from metak.report.tables import banner, claims_section, diagnostics_section, summary_section

__all__ = ["build_report", "render_report", "ResultsError"]

_TOC = [
    ("question", "Question & data"),
    ("forest", "Forest plots"),
    ("posterior", "Posterior & prior"),
    ("metaregression", "Meta-regression"),
    ("diagnostics", "Diagnostics"),
    ("summary", "Summary"),
    ("claims", "Claims"),
]


def render_report(results_dir: Path, trees: dict | None = None) -> str:
    """The report as HTML text (see :func:`build_report`)."""
    inputs = load_inputs(Path(results_dir))
    trees = dict(trees or {})
    for name in inputs.analyses:
        if name not in trees:
            trees[name] = open_posterior(inputs.posterior_path(name))
    body = "\n".join(
        [
            question_section(inputs),
            forest_section(inputs),
            posterior_section(inputs, trees),
            regression_section(inputs, trees),
            diagnostics_section(inputs, trees),
            summary_section(inputs),
            claims_section(inputs),
        ]
    )
    n = len(inputs.analyses)
    subtitle = (
        f"Bayesian meta-analysis report — {n} analys{'is' if n == 1 else 'es'}, "
        f"{len(inputs.claims)} claim{'' if len(inputs.claims) == 1 else 's'} assessed"
    )
    return page(
        "metak report", esc(subtitle), _TOC, banner(inputs), body, _footer(inputs.directory)
    )


def build_report(results_dir: Path, trees: dict | None = None) -> Path:
    """Write ``results_dir/report.html`` from the files in ``results_dir`` and return its path.

    ``trees`` may give posterior ``DataTree`` objects already in memory, by analysis name,
    holding what ``posterior/<name>.nc`` holds (``metak fit`` passes the ones it just wrote,
    which saves reading them back); the others are read from the files.

    Raises
    ------
    ResultsError
        When a required results file (summary.csv, study_effects.csv, analyses.json) is missing.
    """
    results_dir = Path(results_dir)
    text = render_report(results_dir, trees)
    target = results_dir / "report.html"
    # Write beside and rename, so a reader never sees half a report.
    fd, tmp = tempfile.mkstemp(prefix=".report.html.", dir=results_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _footer(directory: Path) -> str:
    try:
        version = metadata.version("metak")
    except metadata.PackageNotFoundError:
        version = "(not installed)"
    text = (
        f"Built by metak {esc(version)} from summary.csv, study_effects.csv, claims.csv, "
        "analyses.json and posterior/*.nc. Self-contained: no scripts, fonts or images are "
        "loaded from anywhere."
    )
    manifest = directory / "manifest.json"
    try:
        seed = json.loads(manifest.read_text(encoding="utf-8")).get("seed")
    except (OSError, ValueError, AttributeError):
        seed = None
    if seed is not None:
        text += f" Random seed of the fit: {esc(seed)}."
    return f"<p>{text}</p>"
