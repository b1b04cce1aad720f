"""The rows of ``summary.csv``: one per analysis x parameter, from draws or exact summaries.

Raw floats only: rounding happens when tables are written for reading (summary.md, report).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

__all__ = [
    "SUMMARY_COLUMNS",
    "SUMMARY_NUMERIC_COLUMNS",
    "QUANTILES",
    "summary_row",
    "probability_row",
    "summarize_draws",
]

SUMMARY_COLUMNS = [
    "analysis",
    "parameter",
    "mean",
    "sd",
    "q2.5",
    "q50",
    "q97.5",
    "r_hat",
    "ess_bulk",
    "ess_tail",
    "method",
    "converged",
]
SUMMARY_NUMERIC_COLUMNS = ["mean", "sd", "q2.5", "q50", "q97.5", "r_hat", "ess_bulk", "ess_tail"]
QUANTILES = (0.025, 0.5, 0.975)


def summary_row(
    analysis: str,
    parameter: str,
    *,
    mean: float,
    sd: float,
    q: tuple[float, float, float],
    method: str,
    converged: bool,
    r_hat: float = np.nan,
    ess_bulk: float = np.nan,
    ess_tail: float = np.nan,
) -> dict:
    """One summary row as a dict with the documented columns (``q``: 2.5/50/97.5 % quantiles)."""
    return {
        "analysis": analysis,
        "parameter": parameter,
        "mean": float(mean),
        "sd": float(sd),
        "q2.5": float(q[0]),
        "q50": float(q[1]),
        "q97.5": float(q[2]),
        "r_hat": float(r_hat),
        "ess_bulk": float(ess_bulk),
        "ess_tail": float(ess_tail),
        "method": method,
        "converged": bool(converged),
    }


def probability_row(
    analysis: str, parameter: str, probability: float, method: str, converged: bool
) -> dict:
    """A summary row that holds a probability: ``mean`` is the probability, the rest empty."""
    return summary_row(
        analysis,
        parameter,
        mean=probability,
        sd=np.nan,
        q=(np.nan,) * 3,
        method=method,
        converged=converged,
    )


def summarize_draws(
    analysis: str, named_draws: dict, method: str, converged: bool, diagnostics: bool
) -> pd.DataFrame:
    """Summarise draws given as ``{parameter: DataArray(chain, draw)}``.

    With ``diagnostics`` (MCMC), R-hat and bulk/tail ESS come from arviz-stats (rank-normalised
    split R-hat, Vehtari et al. 2021).
    """
    rows = []
    for parameter, draws in named_draws.items():
        values = np.asarray(draws, dtype=float)
        flat = values.reshape(-1)
        r_hat = ess_bulk = ess_tail = np.nan
        if diagnostics and values.ndim == 2 and np.ptp(flat) > 0:
            from arviz_stats import ess, rhat

            array = xr.DataArray(values, dims=("chain", "draw"))
            r_hat = float(rhat(array))
            ess_bulk = float(ess(array, method="bulk"))
            ess_tail = float(ess(array, method="tail"))
        rows.append(
            summary_row(
                analysis,
                parameter,
                mean=flat.mean(),
                sd=flat.std(ddof=1) if flat.size > 1 else 0.0,
                q=np.quantile(flat, QUANTILES),
                method=method,
                converged=converged,
                r_hat=r_hat,
                ess_bulk=ess_bulk,
                ess_tail=ess_tail,
            )
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
