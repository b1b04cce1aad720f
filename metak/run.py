"""The ``fit`` command as a library call: inputs -> fit -> results directory, safely.

Also the public notebook API lives on top of these pieces (see :mod:`metak`).
"""

from __future__ import annotations

import platform
import sys
import time
from dataclasses import replace
from importlib import metadata
from pathlib import Path

from metak.errors import EXIT_FIT_FAILED, EXIT_OK
from metak.spec import Settings

__all__ = [
    "run_fit_command",
    "resolve_config",
    "judge_result_claims",
    "DEFAULT_CONFIG_NAME",
    "CLAIMS_NAME",
]

DEFAULT_CONFIG_NAME = "analyses.toml"
CLAIMS_NAME = "claims.csv"
_VERSIONED = (
    "metak",
    "numpy",
    "scipy",
    "pandas",
    "xarray",
    "netCDF4",
    "h5netcdf",
    "pymc",
    "pytensor",
    "nutpie",
    "arviz",
    "arviz-base",
    "arviz-stats",
    "arviz-plots",
    "matplotlib",
)


def resolve_config(studies_dir: Path, config_path: Path | None, outcomes):
    """The analyses to run: ``--config``, else ``<studies>/analyses.toml``, else RE per outcome."""
    from metak.config import default_specs, load_config

    if config_path is None and (Path(studies_dir) / DEFAULT_CONFIG_NAME).is_file():
        config_path = Path(studies_dir) / DEFAULT_CONFIG_NAME
    if config_path is None:
        return default_specs(outcomes), Settings(), None
    specs, settings = load_config(config_path)
    return specs, settings, Path(config_path)


def judge_result_claims(fit_result, claims_path: Path | None):
    """Verdicts for the claims file (if any) against this fit's analyses."""
    from metak.claims import judge_claims, load_claims

    if claims_path is None or not Path(claims_path).is_file():
        return None
    claims = load_claims(claims_path)

    def draws_for(analysis, parameter):
        result = fit_result.analyses.get(analysis)
        return None if result is None else result.draws(parameter)

    def unusable(analysis):
        result = fit_result.analyses[analysis]
        if not result.spec.claims:
            return f"analysis {analysis!r} is excluded from claim verdicts (claims = false)"
        if not result.converged:
            return f"analysis {analysis!r} failed the MCMC diagnostics gate"
        return None

    return judge_claims(claims, draws_for, unusable)


def _versions() -> dict:
    versions = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _input_files(studies_dir: Path, config: Path | None) -> dict:
    from metak.output.files import sha256_of

    files = sorted(p for p in Path(studies_dir).glob("*.csv") if p.is_file())
    if config is not None:
        files.append(Path(config))
    elif (Path(studies_dir) / DEFAULT_CONFIG_NAME).is_file():
        files.append(Path(studies_dir) / DEFAULT_CONFIG_NAME)
    return {str(path): sha256_of(path) for path in files}


def run_fit_command(
    *,
    studies_dir: Path,
    provenance: str,
    config_path: Path | None,
    out_dir: Path,
    seed: int,
    only=None,
    draws=None,
    tune=None,
    chains=None,
    jobs=None,
    method=None,
    quiet: bool = False,
    argv=None,
) -> int:
    """Run the whole fit command; return the exit code (0 ok, 3 a fit failed diagnostics)."""
    from metak.derive import compute_effects
    from metak.errors import ConfigError
    from metak.fitting import fit_analyses
    from metak.output.files import results_transaction
    from metak.output.guard import check_out_dir
    from metak.output.writer import write_results
    from metak.records import load_records

    started = time.perf_counter()

    def check_out() -> None:
        check_out_dir(out_dir, inputs=(studies_dir, config_path))

    check_out()  # refuse a wrong --out now, not after minutes of fitting

    def say(message: str) -> None:
        if not quiet:
            print(message, file=sys.stderr, flush=True)

    records = load_records(studies_dir, provenance=provenance)
    for warning in records.warnings:
        say(f"warning: {warning}")
    effects = compute_effects(records)
    specs, settings, used_config = resolve_config(
        studies_dir, config_path, list(records.outcomes["outcome"])
    )
    if only:
        names = {spec.name for spec in specs}
        missing = [name for name in only if name not in names]
        if missing:
            raise ConfigError(
                f"--analysis {missing[0]!r} is not in the analysis file; "
                f"fix: use one of {', '.join(sorted(names))}"
            )
        specs = [spec for spec in specs if spec.name in only]
    if jobs is not None and jobs < 1:
        raise ConfigError(f"--jobs must be a whole number >= 1, got {jobs}; fix: e.g. --jobs 2")
    overrides = {
        key: value
        for key, value in (("draws", draws), ("tune", tune), ("chains", chains), ("jobs", jobs))
        if value is not None
    }
    settings = replace(settings, seed=seed, **overrides)
    say(
        f"metak fit: {len(specs)} analyses on {records.directory} "
        f"({len(effects.effects)} effect sizes)"
    )
    loaded = time.perf_counter()
    fit_result = fit_analyses(
        records, effects, specs, settings, method_override=method, progress=None if quiet else say
    )
    fitted = time.perf_counter()
    claims = judge_result_claims(fit_result, Path(studies_dir) / CLAIMS_NAME)
    fit_result = replace(fit_result, claims=claims)
    manifest = {
        "command": list(argv) if argv is not None else None,
        "studies": str(Path(studies_dir).resolve()),
        "provenance": provenance,
        "config": str(used_config) if used_config else "default: random effects per outcome",
        "config_text": used_config.read_text(encoding="utf-8") if used_config else None,
        "settings": {
            "seed": settings.seed,
            "draws": settings.draws,
            "tune": settings.tune,
            "chains": settings.chains,
            "target_accept": settings.target_accept,
            "jobs": settings.jobs,
            "method_override": method,
        },
        "versions": _versions(),
        "inputs_sha256": _input_files(studies_dir, used_config),
        "timings_seconds": {
            "load_and_effects": loaded - started,
            "fit": fitted - loaded,
            "per_analysis": {name: result.seconds for name, result in fit_result.analyses.items()},
            "per_analysis_phases": {
                name: result.phase_seconds
                for name, result in fit_result.analyses.items()
                if result.phase_seconds
            },
        },
        "diagnostics": {
            name: {"method": r.method, "converged": r.converged, "messages": list(r.messages)}
            for name, r in fit_result.analyses.items()
        },
    }
    with results_transaction(out_dir, recheck=check_out) as staging:
        write_results(fit_result, staging, manifest)
        from metak.report import build_report

        # The posterior trees just written are still in memory: no need to read them back.
        build_report(staging, trees={name: r.datatree for name, r in fit_result.analyses.items()})
    say(f"wrote {out_dir} ({time.perf_counter() - started:.1f} s)")
    failed = [name for name, result in fit_result.analyses.items() if not result.converged]
    if failed:
        print(
            f"error: {len(failed)} analysis(es) failed the MCMC diagnostics gate after a retry: "
            f"{', '.join(failed)}; they are flagged converged=False in summary.csv. "
            "Fix: rerun with more --draws/--tune, or simplify the model",
            file=sys.stderr,
        )
        return EXIT_FIT_FAILED
    return EXIT_OK
