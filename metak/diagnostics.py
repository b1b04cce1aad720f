"""The MCMC diagnostics gate.

A fit passes when, for every scalar element of every reported posterior variable, the
rank-normalised split R-hat is ≤ 1.01 and the bulk and tail effective sample sizes are ≥ 400
(Vehtari et al. 2021, Bayesian Analysis 16:667 — the thresholds they recommend), and no
transition diverged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

__all__ = ["GateResult", "check_gate", "RHAT_MAX", "ESS_MIN"]

RHAT_MAX = 1.01
ESS_MIN = 400


@dataclass(frozen=True)
class GateResult:
    passed: bool
    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    divergences: int
    worst: str  # the variable element with the worst R-hat / ESS, for the message

    def describe(self) -> str:
        return (
            f"max R-hat {self.max_rhat:.4f}, min bulk ESS {self.min_ess_bulk:.0f}, "
            f"min tail ESS {self.min_ess_tail:.0f}, {self.divergences} divergences"
            + (f" (worst: {self.worst})" if self.worst else "")
        )


def _elements(posterior: xr.Dataset, var_names):
    for name in var_names:
        if name not in posterior:
            continue
        array = posterior[name]
        extra = [d for d in array.dims if d not in ("chain", "draw")]
        stacked = array.stack(element=extra) if extra else array.expand_dims(element=[0])
        for index in range(stacked.sizes["element"]):
            values = np.asarray(stacked.isel(element=index).transpose("chain", "draw"), dtype=float)
            label = name if not extra else f"{name}[{stacked['element'].values[index]}]"
            yield label, values


def check_gate(tree, var_names, divergences: int) -> GateResult:
    """Apply the gate to the reported variables of a posterior DataTree."""
    from arviz_stats import ess, rhat

    posterior = tree["posterior"].to_dataset()
    max_rhat, min_bulk, min_tail, worst, worst_score = 1.0, np.inf, np.inf, "", 0.0
    for label, values in _elements(posterior, var_names):
        if np.ptp(values) == 0:
            continue  # a constant (e.g. a fixed correlation diagonal) has no diagnostics
        array = xr.DataArray(values, dims=("chain", "draw"))
        r = float(rhat(array))
        bulk = float(ess(array, method="bulk"))
        tail = float(ess(array, method="tail"))
        max_rhat, min_bulk, min_tail = max(max_rhat, r), min(min_bulk, bulk), min(min_tail, tail)
        score = max((r - 1) / (RHAT_MAX - 1), ESS_MIN / max(min(bulk, tail), 1e-9))
        if score > worst_score:
            worst, worst_score = label, score
    passed = (
        max_rhat <= RHAT_MAX and min_bulk >= ESS_MIN and min_tail >= ESS_MIN and divergences == 0
    )
    return GateResult(passed, max_rhat, min_bulk, min_tail, divergences, "" if passed else worst)
