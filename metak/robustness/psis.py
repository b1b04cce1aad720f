"""PSIS-LOO from the stored pointwise log-likelihood.

Per-study predictive checks, Pareto k flags, the comparison of analyses of the same effect sizes,
and leave-one-out posteriors of MCMC fits.

Every analysis' posterior file holds ``log p(y_i | parameters)`` per draw (the study effects
integrated out), so arviz-stats' :func:`~arviz_stats.loo` gives the expected log predictive
density of each effect size left out, with Pareto k flagging where importance sampling cannot
be trusted (k above ``good_k``, 0.7 for these draw counts), and :func:`~arviz_stats.compare`
ranks analyses fitted to the same effect sizes (random effects vs robust vs meta-regression vs
PET/PEESE). Its smoothed importance weights also give, for MCMC fits, the posterior with one
study left out, without refitting (exact fits have the exact leave-one-out of
:mod:`metak.robustness.leave_one_out`).

The exact checks' PSIS (:func:`exact_psis`) runs the same algorithm vectorised over the studies
(:mod:`metak.robustness.pareto_smoothing`; arviz-stats fits one study at a time), and returns the
ELPDData arviz-stats' ``loo`` would.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import xarray as xr
from arviz_stats import compare, loo
from arviz_stats.utils import ELPDDataLOO

from metak.robustness.effect import Answer, answer_from_draws
from metak.robustness.pareto_smoothing import psis_loo
from metak.robustness.problem import Problem, VariantFit

__all__ = [
    "EXACT_PSIS_DRAWS",
    "LOO_COLUMNS",
    "COMPARE_COLUMNS",
    "Psis",
    "psis",
    "exact_psis",
    "psis_left_out",
    "comparison_groups",
    "comparison_rows",
]

# Independent exact draws used for PSIS-LOO: plenty for Pareto k and elpd (an MCMC fit of 4,000
# draws is the usual sample), at a quarter of the cost of all 16,000 (k = 1,000: 1 s, not 4 s).
EXACT_PSIS_DRAWS = 4000
# Second entropy word of the PSIS draws' seed: a stream of their own, apart from the stored
# draws (which use the analysis' seed alone).
_PSIS_STREAM = 0x5051
LOO_COLUMNS = ["analysis", "study", "elpd_loo", "pareto_k", "k_ok", "elpd_loo_exact"]
COMPARE_COLUMNS = [
    "group",
    "analysis",
    "rank",
    "elpd_loo",
    "se",
    "p_loo",
    "elpd_diff",
    "dse",
    "weight",
    "k_warning",
    "note",
]


@dataclass(frozen=True, eq=False)
class Psis:
    """PSIS-LOO of one analysis (arviz-stats' result and its pieces as arrays)."""

    elpd_data: object  # arviz_stats ELPDData (pointwise)
    studies: tuple[str, ...]
    elpd_i: np.ndarray
    pareto_k: np.ndarray
    good_k: float
    log_weights: np.ndarray  # (study, draws), draws flattened chain-major

    def rows(self, analysis: str, exact_elpd: np.ndarray | None = None) -> list[dict]:
        """``loo.csv`` rows."""
        exact = np.full(len(self.studies), np.nan) if exact_elpd is None else exact_elpd
        return [
            {
                "analysis": analysis,
                "study": study,
                "elpd_loo": float(self.elpd_i[i]),
                "pareto_k": float(self.pareto_k[i]),
                "k_ok": bool(self.pareto_k[i] <= self.good_k),
                "elpd_loo_exact": float(exact[i]),
            }
            for i, study in enumerate(self.studies)
        ]


def psis(datatree: xr.DataTree, all_draws: bool = False) -> Psis:
    """PSIS-LOO of the effect sizes of one analysis' posterior tree.

    MCMC fits use every draw. An exact fit's stored draws are independent: their relative
    efficiency is 1 by construction (arviz would estimate it from the draws' ESS, a third of the
    cost), and the first :data:`EXACT_PSIS_DRAWS` of them are as good as any MCMC sample; with
    ``all_draws`` every stored draw is used (to reweight them all, :func:`psis_left_out`). The
    exact checks themselves draw their own (:func:`exact_psis`). MCMC trees go through
    arviz-stats' ``loo``, exact ones through :mod:`~metak.robustness.pareto_smoothing` (the
    same numbers, vectorised over studies).
    """
    if datatree.attrs.get("metak_method") != "exact":
        return _psis(datatree, None)  # arviz estimates the relative efficiency from the draws
    log_likelihood = datatree["log_likelihood"]["y"]
    if not all_draws:
        per_chain = max(1, EXACT_PSIS_DRAWS // log_likelihood.sizes["chain"])
        log_likelihood = log_likelihood.isel(draw=slice(0, per_chain))
    values = np.asarray(log_likelihood.transpose("study", "chain", "draw"), dtype=float)
    studies = tuple(str(s) for s in log_likelihood["study"].values)
    return _exact_psis(values.reshape(values.shape[0], -1), studies, chains=values.shape[1])


def exact_psis(problem: Problem, fit: VariantFit, seed: int) -> Psis:
    """PSIS-LOO of an exact analysis from :data:`EXACT_PSIS_DRAWS` fresh independent draws.

    The draws come from the exact posterior itself (seeded by the analysis' seed), not from its
    posterior file, so a batch that writes no posterior files needs none drawn and gets the
    same PSIS as ``fit``. Their relative efficiency is 1 by construction.
    """
    rng = np.random.default_rng([_PSIS_STREAM, seed])
    loglik = fit.pointwise_log_likelihood(problem, EXACT_PSIS_DRAWS, rng)  # (draw, study)
    return _exact_psis(loglik.T, problem.labels)


def _exact_psis(log_lik: np.ndarray, studies: tuple[str, ...], chains: int = 1) -> Psis:
    """PSIS-LOO of independent draws' ``(study, draw)`` log-likelihood, vectorised over studies.

    :mod:`metak.robustness.pareto_smoothing` does the arithmetic; the ELPDData is the one
    arviz-stats' ``loo`` would give for these draws as ``chains`` chains of equal length,
    chain-major (what :func:`~arviz_stats.compare` consumes).
    """
    result = psis_loo(log_lik, r_eff=1.0)
    coords = {"study": list(studies)}
    per_study = {"dims": ("study",), "coords": coords, "name": "y"}
    elpd_data = ELPDDataLOO(
        elpd=result.elpd,
        se=result.se,
        p=result.p_loo,
        n_samples=log_lik.shape[1],
        n_data_points=np.int64(log_lik.shape[0]),
        scale="log",
        warning=result.warning,
        good_k=result.good_k,
        elpd_i=xr.DataArray(result.elpd_i, **per_study),
        pareto_k=xr.DataArray(result.pareto_k, **per_study),
        approx_posterior=False,
        log_weights=xr.DataArray(
            result.log_weights.reshape(log_lik.shape[0], chains, -1),
            dims=("study", "chain", "draw"),
            coords=coords,
            name="y",
        ),
    )
    return Psis(
        elpd_data,
        tuple(str(s) for s in studies),
        result.elpd_i,
        result.pareto_k,
        float(result.good_k),
        result.log_weights,
    )


def _psis(tree: xr.DataTree, reff: float | None) -> Psis:
    with warnings.catch_warnings():
        # arviz-stats warns when a Pareto k exceeds good_k; metak reports every k in loo.csv and
        # flags those studies' checks as untrusted instead (only this warning is silenced).
        warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto")
        result = loo(tree, pointwise=True, var_name="y", reff=reff)
    weights = result.log_weights.transpose("study", "chain", "draw")
    return Psis(
        result,
        tuple(str(s) for s in result.elpd_i["study"].values),
        np.asarray(result.elpd_i, dtype=float),
        np.asarray(result.pareto_k, dtype=float),
        float(result.good_k),
        np.asarray(weights).reshape(weights.shape[0], -1),
    )


def psis_left_out(
    result: Psis, draws: np.ndarray, direction: str
) -> list[tuple[str, Answer, float]]:
    """``(study, answer, pareto k)`` with each study left out, by importance weighting."""
    out = []
    for i, study in enumerate(result.studies):
        log_w = result.log_weights[i]
        weights = np.exp(log_w - log_w.max())
        out.append((study, answer_from_draws(draws, weights, direction), float(result.pareto_k[i])))
    return out


def comparison_groups(results: dict) -> dict[str, list[str]]:
    """Analyses fitted to the same effect sizes (same outcome, rows and values), 2 or more each.

    The key names the group: the outcome(s) and how many effect sizes.
    """
    groups: dict[tuple, list[str]] = {}
    for name, result in results.items():
        data = result.data
        key = (
            tuple(sorted(set(data.outcome))),
            tuple(data.row_label),
            tuple(np.round(np.asarray(data.y, dtype=float), 12)),
        )
        groups.setdefault(key, []).append(name)
    named = {}
    for key, names in groups.items():
        if len(names) >= 2:
            named[f"{', '.join(key[0])} (k = {len(key[1])})"] = names
    return named


def comparison_rows(group: str, elpds: dict) -> list[dict]:
    """``loo_compare.csv`` rows for one group: arviz-stats' compare (stacking weights)."""
    table = compare(elpds, round_to="none")
    rows = []
    for name, row in table.iterrows():
        elpd = elpds[name]
        rows.append(
            {
                "group": group,
                "analysis": name,
                "rank": int(row["rank"]),
                "elpd_loo": float(row["elpd"]),
                "se": float(row["se"]),
                "p_loo": float(row["p"]),
                "elpd_diff": float(row["elpd_diff"]),
                "dse": float(row["dse"]),
                "weight": float(row["weight"]),
                "k_warning": bool(elpd.warning),
                "note": str(row.get("diag_diff", "") or ""),
            }
        )
    return rows
