"""The robustness checks' tables: what the results directory gets (README, "What results/ holds").

Plain pandas only, so the fit layer's result type (:class:`metak.fitting.result.FitResult`) can
carry them without importing the checks.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import pandas as pd

__all__ = ["RobustnessTables", "ROBUSTNESS_COLUMNS", "LEAVE_ONE_OUT_COLUMNS", "CLAIM_COLUMNS"]

# robustness.csv: one row per analysis and assessed quantity (the pooled effect; joint models:
# each outcome's).
ROBUSTNESS_COLUMNS = [
    "analysis",
    "parameter",
    "method",
    "mean",
    "q2.5",
    "q97.5",
    "p_benefit",
    "verdict",
    "log_bf10_effect",
    "bf10_effect",
    "averaged_mean",
    "p_effect",
    "pet_mean",
    "pet_p_benefit",
    "pet_verdict",
    "peese_mean",
    "peese_p_benefit",
    "peese_verdict",
    "selection_mean",
    "selection_p_benefit",
    "selection_verdict",
    "most_influential",
    "max_shift_sd",
    "loo_flips",
    "prior_flips",
    "sensitive_to_prior",
    "psense_diagnosis",
    "label",
    "detail",
]
LEAVE_ONE_OUT_COLUMNS = [
    "analysis",
    "parameter",
    "left_out",
    "mu_mean",
    "mu_sd",
    "mu_q2.5",
    "mu_q97.5",
    "p_benefit",
    "verdict",
    "shift_sd",
    "flips",
    "pareto_k",
    "method",
]
# Columns the checks add to claims.csv.
CLAIM_COLUMNS = ["robustness", "robustness_detail"]


@dataclass(frozen=True)
class RobustnessTables:
    """Every table the robustness checks write, one field per file (``<field>.csv``)."""

    robustness: pd.DataFrame
    bayes_factors: pd.DataFrame
    model_averaging: pd.DataFrame
    leave_one_out: pd.DataFrame
    loo: pd.DataFrame
    loo_compare: pd.DataFrame
    prior_sensitivity: pd.DataFrame
    psense: pd.DataFrame

    def files(self) -> dict[str, pd.DataFrame]:
        """``{file name: table}`` of the files to write."""
        return {f"{item.name}.csv": getattr(self, item.name) for item in fields(self)}
