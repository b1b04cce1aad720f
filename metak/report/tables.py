"""The report's table sections: convergence banner, sampler diagnostics, summary and claims."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from metak.report.diagnostics_plots import ppc_svg, rank_svg, sampler_vars, trace_svg
from metak.report.html import esc, figure, note, section, table
from metak.report.inputs import ReportInputs
from metak.report.text import decimals_for, fmt

__all__ = [
    "RHAT_MAX",
    "ESS_MIN",
    "banner",
    "modified_banner",
    "diagnostics_section",
    "summary_section",
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


def modified_banner(problems) -> str:
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


def _divergences(tree) -> str:
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


def diagnostics_section(inputs: ReportInputs, trees: dict) -> str:
    parts = [
        note(
            f"R-hat should be below {RHAT_MAX} and bulk/tail ESS above {ESS_MIN:.0f} "
            "(Vehtari et al. 2021); rows outside are highlighted."
        )
    ]
    summary = inputs.summary
    for info in inputs.analyses.values():
        head = f"<h3><code>{esc(info.name)}</code></h3>"
        tree = trees.get(info.name)
        if info.method == "exact":
            parts.append(
                head + note("Exact posterior: no sampler, so no sampler diagnostics are needed.")
            )
            continue
        rows = summary[summary["analysis"].astype(str) == info.name]
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
            names = sampler_vars(tree)
            for kind, draw, caption in (
                (
                    "trace",
                    trace_svg,
                    "Trace by chain (divergent transitions marked in red at the bottom): chains "
                    "should overlap and look like noise.",
                ),
                (
                    "rank",
                    rank_svg,
                    "Rank histograms by chain: every draw ranked among all chains' draws. When the "
                    "chains agree, each chain's ranks are uniform and its histogram stays inside "
                    "the grey band (pointwise 95%).",
                ),
            ):
                svg, text = draw(f"{kind}-{info.name}", tree, names)
                body.append(figure(svg, caption) + (note(esc(text), "warn") if text else ""))
            ppc = ppc_svg(f"ppc-{info.name}", tree)
            if ppc is None:
                body.append(
                    note("No posterior predictive draws stored: no predictive check.", "warn")
                )
            else:
                body.append(
                    figure(
                        ppc[0],
                        "Posterior predictive check: empirical CDF of the observed effects "
                        "(dark) against replicated data sets (light).",
                    )
                    + (note(esc(ppc[1]), "warn") if ppc[1] else "")
                )
        parts.append(head + "".join(body))
    return section("diagnostics", "5. Sampler diagnostics", "\n".join(parts))


def summary_section(inputs: ReportInputs) -> str:
    columns = ["mean", "sd", "q2.5", "q50", "q97.5"]
    rows, classes = [], []
    for _, r in inputs.summary.iterrows():
        digits = 1 if str(r["parameter"]) == "I2" else decimals_for([r["mean"], r["q50"], r["sd"]])
        rows.append(
            [
                f"<code>{esc(r['analysis'])}</code>",
                f"<code>{esc(r['parameter'])}</code>",
                *(fmt(r[c], digits) for c in columns),
                fmt(r.get("r_hat"), 3),
                fmt(r.get("ess_bulk"), 0),
                esc(r.get("method", "")),
                esc(r.get("converged", "")),
            ]
        )
        classes.append("bad" if _bad(r) or str(r.get("converged")) == "False" else "")
    header = [
        "analysis",
        "parameter",
        "mean",
        "sd",
        "2.5%",
        "50%",
        "97.5%",
        "R-hat",
        "ESS bulk",
        "method",
        "converged",
    ]
    body = table(
        header,
        rows,
        numeric=set(range(2, 9)),
        row_classes=classes,
        caption="Posterior summaries, rounded for reading (summary.csv holds the raw numbers). "
        "I2 is in percent.",
    )
    return section("summary", "6. Summary table", body)


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


def claims_section(inputs: ReportInputs) -> str:
    claims = inputs.claims
    if claims.empty:
        return section("claims", "7. Claims", note("No claims were assessed (no claims.csv)."))
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
        "Verdicts: supported when P(statement) ≥ 0.95, contradicted when ≤ 0.05, otherwise "
        "uncertain; not assessable when no analysis covers the claim."
    )
    return section("claims", "7. Claims", intro + f'<ul class="claims">{"".join(items)}</ul>')
