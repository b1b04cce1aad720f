"""A results directory for report tests, produced the way ``metak fit`` produces one.

Small synthetic study records (contrasts with group sizes, outcomes with units and directions,
baselines of the deficiency marker for some studies) are fitted by the real orchestrator
(:func:`metak.fitting.orchestrator.run_analyses`) and written by the real writer
(:func:`metak.output.writer.write_results`, which seals the manifest), so the report reads
exactly the layout ``fit`` writes. The records are synthetic; nothing here is a statistical
reference. Analyses:

- ``cac_re``: random effects, exact, lower is better (Agatston units); one study is named
  ``<script>alert(1)</script>`` to prove the report escapes data;
- ``bmd_re``: random effects, exact, higher is better, standardised mean differences;
- ``pwv_dose``: meta-regression on ``dose_ug_day``, exact (m/s);
- ``cac_def``: the deficiency-moderated effect on CAC by MCMC, with two of five baselines
  imputed and a slope prior the data barely move; its complete-case twin
  ``cac_def_complete_case`` (three studies) is exact;
- ``joint``: dp-ucMGP (pmol/L) and PWV (m/s) jointly, with the biomarker link, by MCMC.

``converged=False`` adds ``pwv_short``, an MCMC fit given far too few draws, which fails the
diagnostics gate for real (its gate messages are the sampler's own).

Fitting takes about half a minute (MCMC compilation is cached by PyTensor on disk); the fit
results are kept for the test session and written anew for every directory asked for.
"""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from functools import cache
from pathlib import Path

import numpy as np

from metak.config import parse_config
from metak.fitting.orchestrator import run_analyses
from metak.fitting.result import FitResult
from metak.output.writer import write_results
from metak.records import load_records

__all__ = [
    "SCRIPT_STUDY",
    "ANALYSES",
    "QUESTIONS",
    "CLAIMS",
    "fit_fixture",
    "make_results",
    "built_report",
    "seal",
    "divergences",
]

SCRIPT_STUDY = "<script>alert(1)</script>"
SEED = 20240607

OUTCOMES = [
    ["cac", "coronary artery calcium score", "Agatston units", "lower_is_better", "MD"],
    ["bmd", "bone mineral density, lumbar spine", "g/cm2", "higher_is_better", "SMD"],
    ["pwv", "carotid-femoral pulse wave velocity", "m/s", "lower_is_better", "MD"],
    ["dpucmgp", "dp-ucMGP (vitamin K deficiency marker)", "pmol/L", "lower_is_better", "MD"],
]

CAC_STUDIES = [
    # study, population, baseline dp-ucMGP (pmol/L; "" = not reported), effect, SE, n per group
    ("Brandenburg 2017", "general", "380", -12.0, 9.5, 60),
    ("Shea 2009", "general", "", -25.0, 12.6, 190),
    (SCRIPT_STUDY, "CKD", "910", 8.0, 20.0, 40),
    ("Zwakenberg 2019", "CKD", "", -40.0, 15.8, 30),
    ("Kurnatowska 2016 & co", "dialysis", "2300", -9.0, 7.7, 45),
]
BMD_STUDIES = [
    ("Knapen 2013", 0.25, 0.14, 120),
    ("Emaus 2010", 0.05, 0.12, 150),
    ("Ronn 2016", 0.12, 0.17, 70),
    ("Booth 2008", -0.02, 0.2, 200),
]
PWV_STUDIES = [
    # study, population, baseline dp-ucMGP, dose (ug/day), effect (m/s), SE, n per group
    ("Knapen 2015", "general", "420", 180, -0.36, 0.17, 110),
    ("Fulton 2016", "general", "", 100, -0.12, 0.24, 40),
    ("Mansour 2017", "CKD", "1150", 360, -0.55, 0.21, 50),
    ("Vossen 2020", "CKD", "", 360, -0.41, 0.26, 35),
    ("Bartstra 2020", "general", "520", 360, -0.48, 0.19, 60),
    ("Lees 2021", "dialysis", "2600", 180, -0.2, 0.3, 45),
]
# dp-ucMGP change (pmol/L) of the PWV studies, for the joint analysis.
DPUCMGP_EFFECTS = [-210.0, -95.0, -480.0, -390.0, -330.0, -640.0]
DPUCMGP_SE = [40.0, 55.0, 90.0, 85.0, 60.0, 150.0]

ANALYSES = """
[settings]
draws = 1000
tune = 1000
chains = 2
seed = {seed}
jobs = 1
target_accept = 0.95

[[analysis]]
name = "cac_re"
outcome = "cac"
model = "random_effects"

[[analysis]]
name = "bmd_re"
outcome = "bmd"
model = "random_effects"

[[analysis]]
name = "pwv_dose"
outcome = "pwv"
model = "meta_regression"
moderators = ["dose_ug_day"]

[[analysis]]
name = "cac_def"
outcome = "cac"
model = "meta_regression"
deficiency = {{ reference = 500, levels = [300, 700] }}
[analysis.priors]
# Narrow against what five trials can say about the slope: its answer must read "the data cannot
# tell" (prior-to-posterior contraction well below the report's threshold).
log_baseline_dpucmgp = "normal(0, 10)"

[[analysis]]
name = "joint"
model = "joint"
outcomes = ["dpucmgp", "pwv"]
link_biomarker = "dpucmgp"

[[question]]
text = "Does vitamin K slow coronary calcification?"
analysis = "cac_re"
parameter = "mu"

[[question]]
text = "Does baseline vitamin K status change the effect on coronary calcification?"
analysis = "cac_def"
parameter = "log_baseline_dpucmgp"

[[question]]
text = "Does vitamin K lower dp-ucMGP?"
analysis = "joint"
parameter = "mu[dpucmgp]"

[[question]]
text = "Does vitamin K improve bone density?"
analysis = "bmd_re"
parameter = "mu"
"""
QUESTIONS = 4

# Claims judged by the real verdict code (the verdicts are whatever the fit gives).
CLAIMS = [
    [
        "C1",
        "Vitamin K slows coronary calcification",
        "Supplement maker <b>Acme</b>",
        "press release 2021",
        "cac_re",
        "mu < 0",
    ],
    [
        "C2",
        "Higher doses lower arterial stiffness more",
        "Review author",
        "doi:10.1000/xyz",
        "pwv_dose",
        "dose_ug_day < 0",
    ],
    [
        "C3",
        "Vitamin K reduces bone density",
        "Blog",
        "https://example.org/post",
        "bmd_re",
        "mu < 0",
    ],
    ["C4", "Vitamin K prevents fractures", "Forum", "", "", ""],
]

SHORT = """
[settings]
draws = 30
tune = 30
chains = 2
seed = {seed}
jobs = 1

[[analysis]]
name = "pwv_short"
outcome = "pwv"
model = "random_effects"
method = "mcmc"
"""


def _write(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def write_records(directory: Path) -> Path:
    """Write the synthetic study records into ``directory`` and return it."""
    directory.mkdir(parents=True, exist_ok=True)
    _write(
        directory / "outcomes.csv",
        ["outcome", "description", "unit", "direction", "measure"],
        OUTCOMES,
    )
    studies, contrasts = [], []

    def study(sid, population="", baseline="", dose=""):
        studies.append(
            [
                sid,
                population,
                baseline,
                "mean" if baseline else "",
                dose,
                "ug/day" if dose != "" else "",
            ]
        )

    for sid, population, baseline, y, se, n in CAC_STUDIES:
        study(sid, population, baseline)
        contrasts.append([sid, "cac", "MD", y, se, n, n])
    for sid, y, se, n in BMD_STUDIES:
        study(sid)
        contrasts.append([sid, "bmd", "SMD", y, se, n, n])
    for (sid, population, baseline, dose, y, se, n), marker, marker_se in zip(
        PWV_STUDIES, DPUCMGP_EFFECTS, DPUCMGP_SE, strict=True
    ):
        study(sid, population, baseline, dose)
        contrasts.append([sid, "pwv", "MD", y, se, n, n])
        contrasts.append([sid, "dpucmgp", "MD", marker, marker_se, n, n])
    _write(
        directory / "studies.csv",
        [
            "study_id",
            "population",
            "baseline_dpucmgp",
            "baseline_dpucmgp_stat",
            "dose",
            "dose_unit",
        ],
        studies,
    )
    _write(
        directory / "claims.csv",
        ["claim_id", "claim", "claimant", "source", "analysis", "statement"],
        CLAIMS,
    )
    _write(
        directory / "contrasts.csv",
        ["study_id", "outcome", "measure", "estimate", "se", "n_treatment", "n_control"],
        [[repr(c) if isinstance(c, float) else c for c in row] for row in contrasts],
    )
    return directory


def _fit(directory: Path, text: str) -> FitResult:
    records = load_records(write_records(directory), provenance="off")
    parsed = parse_config(text.format(seed=SEED))
    return run_analyses(records, parsed.analyses, parsed.settings, questions=parsed.questions)


@cache
def fit_fixture(converged: bool = True) -> FitResult:
    """The fixture's fit (cached for the session); ``converged=False`` adds ``pwv_short``."""
    import tempfile

    if not converged:
        result = fit_fixture(True)
        with tempfile.TemporaryDirectory(prefix="metak-report-fixture-") as tmp:
            short = _fit(Path(tmp) / "records", SHORT)
        return replace(result, analyses={**result.analyses, **short.analyses})
    with tempfile.TemporaryDirectory(prefix="metak-report-fixture-") as tmp:
        return _fit(Path(tmp) / "records", ANALYSES)


def make_results(directory: Path, *, converged: bool = True) -> Path:
    """Write the fixture's results into ``directory / "results"`` (no report) and return it."""
    results = Path(directory) / "results"
    results.mkdir(parents=True)
    manifest = {"command": "tests.report_fixture", "seed": SEED}
    write_results(fit_fixture(converged), results, manifest)
    return results


@cache
def built_report() -> tuple[Path, str, tuple]:
    """The not-converged fixture's results with report.html built once for the session:
    ``(results directory, the page's text, the figures drawn)``. Tests must not change it."""
    import atexit
    import shutil
    import tempfile

    from metak.report import build_report

    root = Path(tempfile.mkdtemp(prefix="metak-report-page-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    results = make_results(root, converged=False)
    figures: list = []
    path = build_report(results, figures=figures)
    return results, path.read_text(encoding="utf-8"), tuple(figures)


def seal(results: Path) -> Path:
    """Seal ``manifest.json`` again after a test edited the files on purpose (as ``fit`` seals
    it: the marker and the SHA-256 of every file but the manifest and the report)."""
    from metak.output.integrity import MANIFEST, REPORT, seal_manifest

    path = Path(results) / MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    names = [
        p.relative_to(results).as_posix()
        for p in sorted(Path(results).rglob("*"))
        if p.is_file() and p.name not in (MANIFEST, REPORT)
    ]
    path.write_text(json.dumps(seal_manifest(manifest, results, names), indent=2), "utf-8")
    return Path(results)


def divergences(tree) -> int:
    """The divergent transitions recorded in a posterior tree (0 without sample_stats)."""
    if "sample_stats" not in tree.children:
        return 0
    return int(np.asarray(tree["sample_stats"].dataset["diverging"]).sum())
