"""The rows of ``summary.csv``: one per analysis x parameter, from draws or exact summaries.

Raw floats only: rounding happens when tables are written for reading (summary.md, report).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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
    q: Sequence[float] | np.ndarray,
    method: str,
    converged: bool,
    r_hat: float = np.nan,
    ess_bulk: float = np.nan,
    ess_tail: float = np.nan,
) -> dict[str, object]:
    """One summary row as a dict with the documented columns (:data:`SUMMARY_COLUMNS`).

    Parameters
    ----------
    analysis, parameter : str
        The analysis' name and the parameter's.
    mean, sd : float
        Posterior mean and standard deviation.
    q : sequence of 3 floats or numpy.ndarray
        The 2.5, 50 and 97.5 % posterior quantiles.
    method : {"exact", "mcmc"}
        The engine.
    converged : bool
        Whether the analysis passed its diagnostics gate.
    r_hat, ess_bulk, ess_tail : float, optional
        MCMC diagnostics; NaN for exact fits.

    Returns
    -------
    dict
        Numbers as floats, ``converged`` as bool.
    """
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
) -> dict[str, object]:
    """A summary row that holds a probability: ``mean`` is the probability, the rest empty.

    Parameters
    ----------
    analysis, parameter : str
        The analysis' name and the row's parameter name (e.g.
        ``p_more_deficient_more_benefit``).
    probability : float
        The posterior probability, in [0, 1].
    method : {"exact", "mcmc"}
        The engine.
    converged : bool
        Whether the analysis passed its diagnostics gate.

    Returns
    -------
    dict
        As :func:`summary_row`, with NaN for ``sd``, the quantiles and the diagnostics.
    """
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
    analysis: str,
    named_draws: Mapping[str, xr.DataArray],
    method: str,
    converged: bool,
    diagnostics: bool,
) -> pd.DataFrame:
    """Summarise draws given as ``{parameter: DataArray(chain, draw)}``.

    Parameters
    ----------
    analysis : str
        The analysis' name.
    named_draws : mapping of str to xarray.DataArray
        Draws of each summary parameter with dims ``(chain, draw)``
        (:func:`metak.fitting.parameters.summary_parameters`).
    method : {"exact", "mcmc"}
        The engine.
    converged : bool
        Whether the analysis passed its diagnostics gate.
    diagnostics : bool
        Compute R-hat and bulk/tail ESS with arviz-stats (rank-normalised split R-hat, Vehtari et
        al. 2021); for a parameter whose draws are all equal they stay NaN.

    Returns
    -------
    pandas.DataFrame
        One row per parameter, columns :data:`SUMMARY_COLUMNS`.
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
