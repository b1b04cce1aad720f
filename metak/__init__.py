"""metak: Bayesian meta-analysis of continuous outcomes, with the vitamin K evidence bundled.

The public API mirrors the command line::

    import metak

    records = metak.load_studies("studies")            # validated study records
    effects = metak.compute_effects(records).effects   # one effect size per study comparison
    result = metak.fit(records, config="studies/analyses.toml", seed=1)
    result.summary                                     # pandas DataFrame (summary.csv)
    result.datatree("re_cac")                          # xarray.DataTree (posterior file)
    metak.write_results(result, "results")             # the same files as `python -m metak fit`

Heavy dependencies (PyMC) load only when an analysis needs MCMC.
"""

from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "load_studies",
    "compute_effects",
    "load_analyses",
    "fit",
    "write_results",
]


def load_studies(directory=None, provenance: str = "auto"):
    """Read and validate a study-records directory (default: the bundled ``studies/``).

    Raises :class:`metak.errors.InputError` listing every problem found.
    """
    from metak.records import bundled_studies_dir, load_records

    directory = bundled_studies_dir() if directory is None else Path(directory)
    if directory.resolve() == bundled_studies_dir().resolve():
        provenance = "strict"
    return load_records(directory, provenance=provenance)


def compute_effects(records, measure: str | None = None):
    """Effect sizes (``EffectsResult.effects``) and the rows that gave none (``.unusable``)."""
    from metak.derive import compute_effects as _compute

    return _compute(records, measure_override=measure)


def load_analyses(path):
    """Read an analysis file (TOML): returns ``(list[AnalysisSpec], Settings)``."""
    from metak.config import load_config

    return load_config(Path(path))


def fit(
    records=None,
    config=None,
    *,
    seed: int = 20261122,
    draws=None,
    tune=None,
    chains=None,
    jobs=None,
    method=None,
    analyses=None,
    progress=False,
):
    """Fit the analyses of ``config`` (a TOML path, or a list of specs) to ``records``.

    ``records`` may be a :class:`~metak.records.StudyRecords` or a directory. Without ``config``
    the directory's ``analyses.toml`` is used, else one random-effects analysis per outcome.
    Returns a :class:`~metak.fitting.FitResult` with ``summary``, ``study_effects``, ``claims`` and
    ``datatree(name)``.
    """
    from dataclasses import replace

    from metak.fitting import fit_analyses
    from metak.records import StudyRecords
    from metak.run import CLAIMS_NAME, judge_result_claims, resolve_config
    from metak.spec import Settings

    if not isinstance(records, StudyRecords):
        records = load_studies(records)
    effects = compute_effects(records)
    outcomes = list(records.outcomes["outcome"])
    if isinstance(config, (list, tuple)):
        specs, settings = list(config), Settings()
    else:
        specs, settings, _ = resolve_config(
            records.directory, None if config is None else Path(config), outcomes
        )
    if analyses is not None:
        specs = [spec for spec in specs if spec.name in set(analyses)]
    given = (("draws", draws), ("tune", tune), ("chains", chains), ("jobs", jobs))
    overrides = {k: v for k, v in given if v is not None}
    settings = replace(settings, seed=seed, **overrides)
    say = print if progress else None
    result = fit_analyses(records, effects, specs, settings, method_override=method, progress=say)
    claims = judge_result_claims(result, Path(records.directory) / CLAIMS_NAME)
    return replace(result, claims=claims)


def write_results(result, out_dir, manifest: dict | None = None):
    """Write a fit's result files (and report) into ``out_dir``, replacing it whole.

    ``out_dir`` follows the rule of ``fit --out`` (README.md, "What results/ holds"): it must
    not exist, be empty, or be a metak results directory; otherwise
    :class:`metak.errors.ConfigError` says why and nothing is written.
    """
    from metak.output.files import results_transaction
    from metak.output.guard import check_out_dir
    from metak.output.writer import write_results as _write
    from metak.report import build_report

    def check_out() -> None:
        check_out_dir(Path(out_dir), option="out_dir")

    check_out()
    with results_transaction(Path(out_dir), recheck=check_out) as staging:
        _write(result, staging, manifest or {"command": "metak.write_results (Python API)"})
        build_report(staging)
    return Path(out_dir)
