"""The self-contained HTML report, rebuilt from a results directory alone.

See README.md, "What results/ holds".

``build_report(results_dir)`` writes ``results_dir/report.html``: inline CSS, inline SVG figures,
no script and no external URL, so the file can be mailed or archived and opened offline.

It opens with the answers (one block per question of the analysis file, or per analysis:
:mod:`metak.report.answers`), then the details: the analyses and their data, forest plots, prior
vs posterior, meta-regression, sampler diagnostics, the summary table and the claims.

The report only shows results as ``fit`` wrote them: the folder must be a metak results directory
and every file its manifest lists must still have the SHA-256 recorded there
(:mod:`metak.output.integrity`). With ``allow_modified`` it is built anyway and says at the top
which files differ.
"""

from __future__ import annotations

import contextlib
import json
from importlib import metadata
from pathlib import Path

from metak.output.files import write_text_atomic
from metak.output.guard import check_out_dir
from metak.output.integrity import Verification, verify_results
from metak.report.answers import answers_section
from metak.report.background import start_diagnostics
from metak.report.html import esc, page
from metak.report.inputs import ResultsError, load_inputs, open_posterior
from metak.report.robustness import robustness_section
from metak.report.sections import (
    analyses_section,
    figured_analyses,
    forest_section,
    posterior_section,
    regression_section,
)
from metak.report.tables import (
    banner,
    claims_section,
    claims_summary,
    diagnostics_blocks,
    diagnostics_section,
    modified_banner,
    summary_section,
)

__all__ = ["build_report", "render_report", "ResultsError"]

_TOC = [
    ("answers", "Answers"),
    ("analyses", "Analyses & data"),
    ("forest", "Forest plots"),
    ("posterior", "Prior & posterior"),
    ("metaregression", "Meta-regression"),
    ("robustness", "Robustness"),
    ("diagnostics", "Diagnostics"),
    ("summary", "Summary"),
    ("claims", "Claims"),
]


@contextlib.contextmanager
def _blame_modified_files(verification: Verification):
    """Turn a failure while reading files known to be modified into one line naming them.

    Only with ``--allow-modified``: the files then differ from what ``fit`` wrote, so a value the
    report cannot use is theirs, not a bug. Verified files that fail stay a traceback (a bug).
    """
    try:
        yield
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as err:
        if not verification.problems:
            raise
        names = ", ".join(problem.path for problem in verification.problems[:3])
        detail = " ".join(f"{type(err).__name__}: {err}".split())
        raise ResultsError(
            f"error: {verification.directory}: the report cannot be built from the modified "
            f"results ({names}): {detail}; fix: run `python -m metak fit` again"
        ) from err


def render_report(
    results_dir: Path,
    trees: dict | None = None,
    *,
    allow_modified: bool = False,
    figures: list | None = None,
    jobs: int | None = None,
) -> str:
    """The report as HTML text (see :func:`build_report`).

    ``figures``, when given, receives every figure drawn
    (:class:`~metak.report.render.RenderedFigure`: the SVG and what each of its axes shows).
    ``jobs``: processes it may use (:mod:`metak.report.background`).
    """
    figures = [] if figures is None else figures
    results_dir = Path(results_dir)
    check_out_dir(results_dir, command="report")
    verification = verify_results(results_dir)
    if verification.problems and not allow_modified:
        raise ResultsError(verification.refusal())
    with _blame_modified_files(verification):
        inputs = load_inputs(results_dir)
        mcmc = [info.name for info in figured_analyses(inputs) if info.method != "exact"]
        background = start_diagnostics(results_dir, mcmc, jobs)
        try:
            trees = dict(trees or {})
            for name in inputs.analyses:
                if name not in trees:
                    trees[name] = open_posterior(inputs.posterior_path(name), name)
            parts = [
                answers_section(inputs, trees),
                analyses_section(inputs),
                forest_section(inputs, figures),
                posterior_section(inputs, trees, figures),
                regression_section(inputs, trees, figures),
                robustness_section(inputs, figures),
            ]
            drawn = {}
            if background is not None:
                # The parent's share of the diagnostics blocks, while the child draws its own.
                ours = [name for name in mcmc if name not in background.names]
                drawn = diagnostics_blocks(inputs, ours, trees) | background.collect()
            parts.append(diagnostics_section(inputs, trees, figures, drawn))
            parts += [summary_section(inputs), claims_section(inputs)]
        finally:
            if background is not None:
                background.stop()
        body = "\n".join(parts)
    n = len(inputs.analyses)
    subtitle = (
        f"Bayesian meta-analysis report — {n} analys{'is' if n == 1 else 'es'}; "
        f"{claims_summary(inputs.claims)}"
    )
    banners = modified_banner(verification.problems) + banner(inputs)
    return page("metak report", esc(subtitle), _TOC, banners, body, _footer(inputs.directory))


def build_report(
    results_dir: Path,
    trees: dict | None = None,
    *,
    allow_modified: bool = False,
    figures: list | None = None,
    jobs: int | None = None,
) -> Path:
    """Write ``results_dir/report.html`` from the files in ``results_dir`` and return its path.

    ``trees`` may give posterior ``DataTree`` objects already in memory, by analysis name,
    holding what ``posterior/<name>.nc`` holds (``metak fit`` passes the ones it just wrote,
    which saves reading them back); the others are read from the files.

    Parameters
    ----------
    results_dir : Path
        A results directory written by ``metak fit``.
    trees : dict, optional
        Posterior trees by analysis name (see above).
    allow_modified : bool
        Build the report even when files differ from what ``fit`` wrote (changed, missing,
        added); the report then lists them in a banner at the top.
    figures : list, optional
        Receives every figure drawn (:class:`~metak.report.render.RenderedFigure`), e.g. to
        check what each axis shows.
    jobs : int, optional
        Processes the report may use: with 2 or more (the default on a machine with 2 or more
        cores) the sampler diagnostics are drawn in a second process meanwhile
        (:mod:`metak.report.background`); the page is the same either way.

    Returns
    -------
    Path
        ``results_dir/report.html``.

    Raises
    ------
    ResultsError
        When ``results_dir`` is not a metak results directory; when a file listed in its
        manifest is missing, changed or unreadable, or a file metak did not write was added
        (unless ``allow_modified``); when a file the report needs is missing or malformed
        (always).
    """
    results_dir = Path(results_dir)
    text = render_report(
        results_dir, trees, allow_modified=allow_modified, figures=figures, jobs=jobs
    )
    target = results_dir / "report.html"
    # Write beside and rename, so a reader never sees half a report.
    write_text_atomic(target, text)
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
