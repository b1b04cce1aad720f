"""The report's table sections: convergence banner, sampler diagnostics, summary and claims."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from metak.report.diagnostics_plots import ppc_figure, rank_figure, trace_figure
from metak.report.html import esc, figure, note, section, table
from metak.report.inputs import AnalysisInfo, ReportInputs
from metak.report.quantities import model_parameters
from metak.report.sections import figured_analyses, study_rows
from metak.report.text import decimals_for, fmt
from metak.report.units import parameter_unit

if TYPE_CHECKING:
    from collections.abc import Sequence

    import xarray as xr

    from metak.output.integrity import FileProblem

__all__ = [
    "RHAT_MAX",
    "ESS_MIN",
    "banner",
    "modified_banner",
    "diagnostics_section",
    "analysis_diagnostics",
    "diagnostics_blocks",
    "summary_section",
    "claims_counts",
    "claims_summary",
    "claims_section",
]

# Vehtari et al. (2021): rank-normalised split R-hat below 1.01 and bulk/tail ESS above 400 before
# trusting posterior summaries; rows outside these limits are highlighted.
RHAT_MAX = 1.01
ESS_MIN = 400.0
_DEFAULT_FIX = (
    "re-run `python -m metak fit` with more tuning and draws or a higher target_accept; "
    "until then do not use its estimates"
)


def banner(inputs: ReportInputs) -> str:
    """A red banner naming each analysis whose sampler did not converge, with what to do."""
    bad = [info for info in inputs.analyses.values() if not info.converged]
    if not bad:
        return ""
    items = []
    for info in bad:
        advice = "; ".join(info.messages) or _DEFAULT_FIX
        items.append(
            f"<li><strong><code>{esc(info.name)}</code> did not converge</strong>: its estimates "
            f"and verdicts are not reliable. What to do: {esc(advice)}</li>"
        )
    plural = "analyses" if len(bad) > 1 else "analysis"
    return (
        f'<div class="banner" id="convergence-warnings" role="alert"><strong>Warning: {len(bad)} '
        f"{plural} did not converge.</strong><ul>{''.join(items)}</ul></div>"
    )


def modified_banner(problems: Sequence[FileProblem]) -> str:
    """A banner listing the files that are not as ``fit`` wrote them (``--allow-modified``).

    ``problems`` are :class:`metak.output.integrity.FileProblem` (``path``, ``what``).
    """
    if not problems:
        return ""
    items = "".join(f"<li><code>{esc(p.path)}</code>: {esc(p.what)}</li>" for p in problems)
    return (
        '<div class="banner" id="modified-results" role="alert"><strong>Warning: these '
        "results are not as <code>metak fit</code> wrote them</strong> (report built with "
        "<code>--allow-modified</code>); the numbers and figures below may not come from a fit."
        f"<ul>{items}</ul></div>"
    )


def _bad(row: pd.Series) -> bool:
    r_hat, bulk, tail = (
        pd.to_numeric(row.get(c), errors="coerce") for c in ("r_hat", "ess_bulk", "ess_tail")
    )
    return bool(
        (np.isfinite(r_hat) and r_hat > RHAT_MAX)
        or (np.isfinite(bulk) and bulk < ESS_MIN)
        or (np.isfinite(tail) and tail < ESS_MIN)
    )


def _divergences(tree: xr.DataTree | None) -> str:
    if (
        tree is None
        or "sample_stats" not in tree.children
        or "diverging" not in tree["sample_stats"].dataset
    ):
        return note(
            "No divergence information stored (no <code>sample_stats/diverging</code>).", "warn"
        )
    diverging = tree["sample_stats"].dataset["diverging"]
    total = int(diverging.sum())
    per_chain = (
        ", ".join(str(int(v)) for v in diverging.sum("draw").values)
        if "chain" in diverging.dims
        else ""
    )
    text = f"Divergent transitions: <strong>{total}</strong> of {diverging.size} draws"
    text += f" (per chain: {per_chain})." if per_chain else "."
    if total:
        return note(
            text + " Any divergence means the sampler may have missed part of the posterior.",
            "warn",
        )
    return note(text, "ok")


def diagnostics_section(
    inputs: ReportInputs, trees: dict, figures: list, drawn: dict | None = None
) -> str:
    """Sampler diagnostics of the MCMC fits.

    Divergences, R-hat and ESS, and arviz-plots' trace, rank and posterior predictive figures.
    ``drawn`` holds analyses' blocks already drawn elsewhere, ``{name: (html, figures)}``
    (:mod:`metak.report.background`); the others are drawn here.
    """
    drawn = drawn or {}
    parts = [
        note(
            f"R-hat should be below {RHAT_MAX} and bulk/tail ESS above {ESS_MIN:.0f} "
            "(Vehtari et al. 2021); rows outside are highlighted. Figures by arviz-plots "
            "(<code>plot_trace_dist</code>, <code>plot_rank</code>, <code>plot_ppc_dist</code>)."
        )
    ]
    for info in figured_analyses(inputs):
        if info.name in drawn:
            block, its_figures = drawn[info.name]
            figures.extend(its_figures)
        else:
            block = analysis_diagnostics(inputs, info, trees.get(info.name), figures)
        parts.append(block)
    return section("diagnostics", "Sampler diagnostics", "\n".join(parts))


def diagnostics_blocks(
    inputs: ReportInputs, names: Sequence[str], trees: dict
) -> dict[str, tuple[str, list]]:
    """The diagnostics blocks of these analyses, ``{name: (html, figures)}``.

    Each block with its own figures, as :func:`diagnostics_section` takes them (``drawn``).
    """
    drawn = {}
    for name in names:
        figures: list = []
        block = analysis_diagnostics(inputs, inputs.analyses[name], trees.get(name), figures)
        drawn[name] = (block, figures)
    return drawn


def analysis_diagnostics(
    inputs: ReportInputs, info: AnalysisInfo, tree: xr.DataTree | None, figures: list
) -> str:
    """One analysis' block of the diagnostics section (a note for an exact fit)."""
    summary = inputs.summary
    head = f"<h3><code>{esc(info.name)}</code></h3>"
    if info.method == "exact":
        return head + note("Exact posterior: no sampler, so no sampler diagnostics are needed.")
    rows = summary[(summary["analysis"].astype(str) == info.name) & summary["r_hat"].notna()]
    body = [_divergences(tree)]
    body += [note(esc(message), "warn") for message in info.messages]
    body.append(
        table(
            ["parameter", "R-hat", "ESS bulk", "ESS tail"],
            [
                [
                    f"<code>{esc(r['parameter'])}</code>",
                    fmt(r["r_hat"], 3),
                    fmt(r["ess_bulk"], 0),
                    fmt(r["ess_tail"], 0),
                ]
                for _, r in rows.iterrows()
            ],
            numeric={1, 2, 3},
            row_classes=["bad" if _bad(r) else "" for _, r in rows.iterrows()],
        )
    )
    if tree is not None and "posterior" in tree.children:
        names = model_parameters(
            tree,
            info,
            [str(p) for p in summary.loc[summary["analysis"] == info.name, "parameter"]],
        )
        body.append(
            figure(
                trace_figure(f"trace-{info.name}", tree, info, names),
                "Per-chain densities (left) and traces (right); divergent transitions are "
                "marked on the traces. Chains should overlap and look like noise.",
                figures,
            )
        )
        body.append(
            figure(
                rank_figure(f"rank-{info.name}", tree, info, names),
                "Rank plots: each chain's fractional ranks among all chains' draws, as the "
                "difference of their ECDF from uniform. p is the multi-chain uniformity "
                "test's p-value (Säilynoja et al.; arviz-plots' default): a small p, and "
                "highlighted points, flag chains that disagree.",
                figures,
            )
        )
        ppc = ppc_figure(f"ppc-{info.name}", tree, info, study_rows(inputs, info.name))
        if ppc is None:
            body.append(note("No posterior predictive draws stored: no predictive check.", "warn"))
        else:
            body.append(
                figure(
                    ppc,
                    "Posterior predictive check: ECDF of the observed effects (dark) against "
                    "replicated data sets (light), one panel per outcome in its own unit.",
                    figures,
                )
            )
    return head + "".join(body)


def summary_section(inputs: ReportInputs) -> str:
    """Every summary.csv row, rounded for reading, with its unit, grouped by analysis."""
    columns = ["mean", "sd", "q2.5", "q50", "q97.5"]
    header = [
        "parameter",
        "unit",
        "mean",
        "sd",
        "2.5%",
        "50%",
        "97.5%",
        "R-hat",
        "ESS bulk",
        "ESS tail",
    ]
    rows, classes = [], []
    for name, info in inputs.analyses.items():
        table_rows = inputs.summary[inputs.summary["analysis"].astype(str) == name]
        state = "" if info.converged else ", NOT converged"
        rows.append(
            [
                f"<code>{esc(name)}</code> — "
                f"{esc(info.outcome_info().description or info.outcome)} "
                f"({esc(info.method)}{state})"
            ]
        )
        classes.append("group")
        for _, r in table_rows.iterrows():
            parameter = str(r["parameter"])
            digits = 1 if parameter == "I2" else decimals_for([r["mean"], r["q50"], r["sd"]])
            rows.append(
                [
                    f"<code>{esc(parameter)}</code>",
                    esc(parameter_unit(info, parameter)),
                    *(fmt(r[c], digits) for c in columns),
                    fmt(r.get("r_hat"), 3),
                    fmt(r.get("ess_bulk"), 0),
                    fmt(r.get("ess_tail"), 0),
                ]
            )
            classes.append("bad" if _bad(r) or str(r.get("converged")) == "False" else "")
    body = table(
        header,
        rows,
        numeric=set(range(2, 10)),
        row_classes=classes,
        caption="Posterior summaries, rounded for reading (summary.csv holds the raw numbers), "
        "grouped by analysis. I2 is in percent; <code>p_more_deficient_more_benefit</code>'s "
        "mean is a probability.",
        css_class="summary",
    )
    return section("summary", "Summary table", body)


def _probability(value) -> str:
    try:
        p = float(value)
    except (TypeError, ValueError):
        return ""
    if not math.isfinite(p):
        return ""
    if p > 0.99:
        return "P > 0.99"
    if p < 0.01:
        return "P < 0.01"
    return f"P = {p:.2f}"


def claims_counts(claims: pd.DataFrame) -> dict[str, int]:
    """How many claims got each verdict (``not assessable`` for an empty verdict)."""
    if claims.empty or "verdict" not in claims:
        return {}
    verdicts = claims["verdict"].fillna("not assessable").astype(str).replace("", "not assessable")
    return {str(k): int(v) for k, v in verdicts.value_counts().items()}


def claims_summary(claims: pd.DataFrame) -> str:
    """E.g. "27 claims: 9 assessed (1 supported, 8 uncertain), 18 not assessable"."""
    counts = claims_counts(claims)
    total = sum(counts.values())
    if not total:
        return "no claims"
    open_ = counts.get("not assessable", 0)
    judged = [
        f"{counts[v]} {v}" for v in ("supported", "contradicted", "uncertain") if counts.get(v)
    ]
    text = f"{total} claim{'' if total == 1 else 's'}: {total - open_} assessed"
    text += f" ({', '.join(judged)})" if judged else ""
    return text + (f", {open_} not assessable" if open_ else "")


def claims_section(inputs: ReportInputs) -> str:
    """Each claim with its verdict, probability and the model quantity it was tested on."""
    claims = inputs.claims
    if claims.empty:
        return section("claims", "Claims", note("No claims were assessed (no claims.csv)."))
    items = []
    for _, c in claims.iterrows():

        def text(column, c=c):
            value = c.get(column)
            return (
                ""
                if value is None or (isinstance(value, float) and math.isnan(value))
                else str(value)
            )

        verdict = text("verdict") or "not assessable"
        p = _probability(c.get("probability"))
        source = f" ({esc(text('source'))})" if text("source") else ""
        where = (
            f" <span class=note>[<code>{esc(text('analysis'))}</code>: "
            f"<code>{esc(text('statement'))}</code>]</span>"
            if text("statement")
            else ""
        )
        because = f" because {esc(text('explanation'))}" if text("explanation") else ""
        items.append(
            f"<li><strong>Claim:</strong> {esc(text('claim'))}, "
            f"claimed by {esc(text('claimant') or 'unknown')}{source}: "
            f'<span class="verdict {esc(verdict.replace(" ", "-"))}">{esc(verdict)}</span>'
            f"{' (' + p + ')' if p else ''}{because}.{where}</li>"
        )
    intro = note(
        f"{esc(claims_summary(claims))}. Verdicts: supported when P(statement) ≥ 0.95, "
        "contradicted when ≤ 0.05, otherwise uncertain; not assessable when no analysis covers "
        "the claim's quantity."
    )
    return section("claims", "Claims", intro + f'<ul class="claims">{"".join(items)}</ul>')
