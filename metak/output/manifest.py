"""``manifest.json``: how a results directory was made (command, inputs, settings, versions).

Enough to reproduce a run: the command line, the analysis file's text, the SHA-256 of every
input file, the seed and settings, the versions of every package that touches a number, and
where the time went.
"""

from __future__ import annotations

import platform
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

from metak.config import DEFAULT_CONFIG_NAME
from metak.fitting.result import FitResult
from metak.output.files import sha256_of
from metak.spec import Settings

__all__ = ["build_manifest", "package_versions"]

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


def package_versions() -> dict[str, str | None]:
    """Python's and every numerically relevant package's version (None when not installed)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _input_files(studies_dir: Path, config: Path | None) -> dict[str, str]:
    files = sorted(p for p in Path(studies_dir).glob("*.csv") if p.is_file())
    if config is not None:
        files.append(Path(config))
    elif (Path(studies_dir) / DEFAULT_CONFIG_NAME).is_file():
        files.append(Path(studies_dir) / DEFAULT_CONFIG_NAME)
    return {str(path): sha256_of(path) for path in files}


def build_manifest(
    result: FitResult,
    *,
    argv: list[str] | None,
    studies_dir: Path,
    provenance: str,
    config_path: Path | None,
    settings: Settings,
    method: str | None,
    timings: dict[str, float],
) -> dict[str, Any]:
    """The content of ``manifest.json`` for a fit (see README, "What results/ holds").

    Parameters
    ----------
    result : FitResult
        The fit.
    argv : list of str or None
        The command line.
    studies_dir : Path
        The study-records directory.
    provenance : {"auto", "strict", "off"}
        The provenance mode used.
    config_path : Path or None
        The analysis file used (None: one random-effects analysis per outcome).
    settings : Settings
        The settings in force.
    method : str or None
        The ``--method`` override.
    timings : dict of str to float
        Seconds spent per phase of the run (loading inputs, fitting).

    Returns
    -------
    dict
        JSON-serialisable; :func:`metak.output.integrity.seal_manifest` adds the marker and the
        file hashes when the results are written.
    """
    return {
        "command": list(argv) if argv is not None else None,
        "studies": str(Path(studies_dir).resolve()),
        "provenance": provenance,
        "config": str(config_path) if config_path else "default: random effects per outcome",
        "config_text": Path(config_path).read_text(encoding="utf-8") if config_path else None,
        "settings": {**asdict(settings), "method_override": method},
        "versions": package_versions(),
        "inputs_sha256": _input_files(studies_dir, config_path),
        "timings_seconds": {
            **timings,
            "per_analysis": {name: r.seconds for name, r in result.analyses.items()},
            "per_analysis_phases": {
                name: r.mcmc.phase_seconds
                for name, r in result.analyses.items()
                if r.mcmc is not None and r.mcmc.phase_seconds
            },
        },
        "diagnostics": {
            name: {"method": r.method, "converged": r.converged, "messages": list(r.messages)}
            for name, r in result.analyses.items()
        },
    }
