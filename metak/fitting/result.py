"""What a fit produces: typed results, one per analysis, and the run's collection of them.

Nothing here fits anything; both engines (:mod:`metak.fitting.exact_engine`,
:mod:`metak.fitting.mcmc.engine`) return :class:`AnalysisResult`, the orchestrator collects them
into a :class:`FitResult`, and the writer (:mod:`metak.output.writer`) and claim verdicts read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from metak.errors import ConfigError
from metak.fitting.data import AnalysisData
from metak.fitting.parameters import parameter_draws, study_label
from metak.robustness.tables import RobustnessTables
from metak.spec import AnalysisSpec, QuestionSpec

__all__ = ["ExactInfo", "McmcInfo", "AnalysisResult", "FitResult", "METHODS_USED"]

METHODS_USED = ("exact", "mcmc")


@dataclass(frozen=True)
class ExactInfo:
    """What the exact path knows beyond the summary, both from the quadrature.

    ``tau_mode`` is the posterior mode of tau; ``log_marginal_likelihood`` is log p(y), for Bayes
    factors (NaN when a coefficient prior is flat).
    """

    tau_mode: float
    log_marginal_likelihood: float


@dataclass(frozen=True)
class McmcInfo:
    """The sampler's diagnostics (the gate's numbers) and where its time went."""

    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    divergences: int
    chains: int
    draws_per_chain: int
    attempts: int
    phase_seconds: dict[str, float] = field(default_factory=dict)  # compile, sampling, prior
    # True when the compiled model of an earlier analysis of the same structure was given this
    # analysis' data instead of compiling one (metak.fitting.mcmc.compiled)
    model_reused: bool = False


@dataclass(frozen=True)
class AnalysisResult:
    """Everything one analysis produced.

    ``summary`` holds the rows of ``summary.csv``, ``study_table`` those of
    ``study_effects.csv``, ``datatree`` the posterior file. Exactly one of ``exact`` / ``mcmc`` is
    set, according to ``method``.
    """

    spec: AnalysisSpec
    data: AnalysisData
    method: str
    summary: pd.DataFrame
    # Both None only for an exact analysis fitted for its summary rows alone (``metak batch``
    # without posterior files, which writes neither study tables nor posterior files).
    study_table: pd.DataFrame | None
    datatree: xr.DataTree | None
    priors: dict[str, str]  # parameter -> prior text actually used
    # The analysis' seed: of its stored draws (``metak_seed`` of its posterior file) and of its
    # robustness checks' own draws, also when it was fitted without a posterior file.
    seed: int = 0
    converged: bool = True
    messages: tuple[str, ...] = ()  # diagnostics gate messages
    warnings: tuple[str, ...] = ()
    exact: ExactInfo | None = None
    mcmc: McmcInfo | None = None
    seconds: float = 0.0
    check_of: str | None = None  # a robustness check's analysis (<name>_pet ...): its name

    def __post_init__(self) -> None:
        if self.method not in METHODS_USED:
            raise ValueError(f"method must be one of {METHODS_USED}, got {self.method!r}")
        if (self.exact is None) == (self.mcmc is None) or (self.method == "exact") != (
            self.exact is not None
        ):
            raise ValueError("an exact result carries ExactInfo, an MCMC result McmcInfo")

    @property
    def direction(self) -> str:
        """The outcome's direction of benefit.

        ``lower_is_better``, ``higher_is_better`` or ``unspecified``.
        """
        return self.data.direction

    def draws(self, parameter: str) -> np.ndarray | None:
        """Flattened posterior draws of a summary parameter or of ``theta[<study>]``.

        None if the analysis has no such parameter or study, or was fitted without draws.
        """
        if self.datatree is None:
            return None
        return parameter_draws(self.datatree, self.data, parameter)

    def study_estimate(self, parameter: str) -> tuple[float, float, float] | None:
        """``(yi, ci_low, ci_high)`` of the study row that ``theta[<label>]`` names.

        As in ``study_effects.csv``: the raw estimate, before shrinkage. None for other
        parameters, for labels not in this analysis and without a study table.
        """
        label = study_label(parameter)
        table = self.study_table
        if label is None or table is None or "label" not in table:
            return None
        rows = table[table["label"] == label]
        if rows.empty:
            return None
        row = rows.iloc[0]
        return float(row["yi"]), float(row["ci_low"]), float(row["ci_high"])


@dataclass(frozen=True)
class FitResult:
    """All analyses of one run (in file order) with their inputs, claims and questions.

    The claim verdicts, and the questions the report answers first (those of fitted analyses).

    ``robustness`` holds the tables of the robustness checks (:mod:`metak.robustness`), None
    when none ran.
    """

    analyses: dict[str, AnalysisResult]
    effects: pd.DataFrame
    unusable: pd.DataFrame
    claims: pd.DataFrame | None = None
    questions: tuple[QuestionSpec, ...] = ()
    robustness: RobustnessTables | None = None

    @property
    def summary(self) -> pd.DataFrame:
        """The rows of ``summary.csv``: every analysis' summary, in file order."""
        frames = [result.summary for result in self.analyses.values()]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    @property
    def study_effects(self) -> pd.DataFrame:
        """The rows of ``study_effects.csv``."""
        frames = [r.study_table for r in self.analyses.values() if r.study_table is not None]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def datatree(self, name: str) -> xr.DataTree:
        """The posterior ``xarray.DataTree`` of one analysis.

        Raises
        ------
        ConfigError
            When there is no analysis of that name.
        """
        try:
            return self.analyses[name].datatree
        except KeyError:
            raise ConfigError(
                f"no analysis named {name!r}; have {', '.join(self.analyses)}"
            ) from None

    @property
    def converged(self) -> bool:
        """True when every analysis passed its diagnostics gate (exact fits always do)."""
        return all(result.converged for result in self.analyses.values())
