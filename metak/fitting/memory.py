"""Refuse, before any work, draws that would not fit in memory.

A typo such as ``--draws 1000000000000`` would otherwise start allocating terabytes and end in a
``MemoryError`` traceback (or the kernel's OOM killer) minutes later. The estimate counts the
float64 arrays a fit keeps (posterior, prior, pointwise log-likelihood, replicated data, study
effects) and the temporaries of the same size made while building them; it is deliberately
generous, since its only job is to stop requests that cannot possibly succeed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from metak.errors import ConfigError
from metak.fitting.exact_engine import EXACT_CHAINS, EXACT_DRAWS_MIN

if TYPE_CHECKING:
    from metak.fitting.data import AnalysisData
    from metak.spec import Settings

__all__ = ["estimate_bytes", "available_bytes", "check_memory"]

_FLOAT = 8  # bytes
# Arrays of one value per draw and study row kept or built by an exact fit (theta, its noise,
# fitted values, shrinkage, total variance, log-likelihood, prior theta and noise), and by an
# MCMC fit (theta mean/sd/draws, log-likelihood, replicated data and its noise, prior theta).
_PER_ROW = {"exact": 10, "mcmc": 8}
# Per draw and coefficient or scalar parameter (posterior, prior, sampler statistics).
_PER_SCALAR = 4
_SCALARS = 16  # tau, theta_new, nu, r, sample stats, ... (an upper bound)
# An MCMC fit that fails its gate is retried with up to this many times the draws.
_RETRY_FACTOR = 4


def estimate_bytes(data: AnalysisData, method: str, settings: Settings) -> int:
    """Memory one analysis' draws need, in bytes (an upper-end estimate).

    Parameters
    ----------
    data : AnalysisData
        The analysis' data (its rows and moderators).
    method : {"exact", "mcmc"}
        The engine that will fit it (an MCMC fit may be retried with more draws).
    settings : Settings
        Draws and chains requested.

    Returns
    -------
    int
    """
    if method == "exact":
        wanted = max(EXACT_DRAWS_MIN, settings.draws * settings.chains)
        draws = EXACT_CHAINS * math.ceil(wanted / EXACT_CHAINS)
    else:
        draws = settings.draws * settings.chains * _RETRY_FACTOR
    coefficients = 1 + len(data.moderator_names)
    per_draw = _PER_ROW[method] * data.k + _PER_SCALAR * (coefficients + _SCALARS)
    return int(draws * per_draw * _FLOAT)


def available_bytes() -> int | None:
    """Memory available to new allocations (Linux ``MemAvailable``), or None when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def check_memory(analyses: Iterable[tuple[AnalysisData, str]], settings: Settings) -> None:
    """Refuse analyses whose draws together need more memory than is available.

    The results of every analysis are kept until they are written, so their needs add up. Does
    nothing when the available memory is unknown.

    Parameters
    ----------
    analyses : iterable of (AnalysisData, str)
        Each analysis' data and its method (``"exact"`` or ``"mcmc"``).
    settings : Settings
        Draws and chains requested.

    Raises
    ------
    metak.errors.ConfigError
        Saying how much is needed and available, and which options lower it.
    """
    available = available_bytes()
    if available is None:
        return
    needed = sum(estimate_bytes(data, method, settings) for data, method in analyses)
    if needed > available:
        raise ConfigError(
            f"settings: {settings.draws:,} draws x {settings.chains} chains need about "
            f"{_size(needed)} of memory for these analyses, {_size(available)} is available; "
            "fix: lower --draws or --chains, or fit fewer analyses at once (--analysis)"
        )
