"""The report's robustness section: how far each answer can be trusted.

Read from the robustness files of the results directory alone (``robustness.csv``,
``bayes_factors.csv``, ``leave_one_out.csv``, ``prior_sensitivity.csv``, ``loo_compare.csv``,
``psense.csv``, ``model_averaging.csv``; README, "How far the answer can be trusted"); results
written before these checks existed get a one-line note instead. Text from the files is escaped
here, at the edge.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from metak.errors import ResultsError
from metak.report.html import esc, figure, note, section, table
from metak.report.inputs import ReportInputs
from metak.report.robustness_figures import funnel_svg, influence_svg
from metak.report.text import decimals_for, fmt, interval, measure_label

__all__ = ["robustness_section", "ROBUSTNESS_FILES"]

ROBUSTNESS_FILES = (
    "robustness",
    "bayes_factors",
    "leave_one_out",
    "prior_sensitivity",
    "loo_compare",
    "psense",
    "model_averaging",
)
_REFIT = "fix: run `python -m metak fit` to write the results again"
_LABEL_CLASS = {
    "robust": "supported",
    "not robust": "contradicted",
    "partly assessed": "uncertain",
    "not assessable": "not-assessable",
}


def _read(directory: Path, name: str) -> pd.DataFrame | None:
    path = directory / f"{name}.csv"
    if not path.is_file():
        return None
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise ResultsError(f"error: {path}: empty, not even a header line; {_REFIT}") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as err:
        detail = " ".join(str(err).split()) or type(err).__name__
        raise ResultsError(f"error: {path}: not readable as CSV ({detail}); {_REFIT}") from None


def _rows(frame: pd.DataFrame | None, analysis: str) -> pd.DataFrame:
    if frame is None or frame.empty or "analysis" not in frame:
        return pd.DataFrame()
    return frame[frame["analysis"].astype(str) == analysis]


def _bf(value) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    if not np.isfinite(number):
        return "∞" if number > 0 else ""
    return f"{number:.3g}"


def _text(value) -> str:
    """A text cell ('' for a missing value, which pandas reads as NaN)."""
    return value if isinstance(value, str) else ""


def _label(label: str) -> str:
    css = _LABEL_CLASS.get(str(label), "not-assessable")
    return f'<span class="verdict {css}">{esc(label)}</span>'


def _overview(robust: pd.DataFrame) -> str:
    header = [
        "Analysis",
        "Effect [95% CrI]",
        "P(benefit)",
        "Verdict",
        "BF<sub>10</sub> effect",
        "PET",
        "PEESE",
        "Averaged",
        "Most influential",
        "Robustness",
    ]
    rows = []
    for _, row in robust.iterrows():
        d = decimals_for([row.get("mean"), row.get("q2.5"), row.get("q97.5")])
        rows.append(
            [
                f"<code>{esc(row['analysis'])}</code> {esc(row['parameter'])}",
                esc(interval(row.get("mean"), row.get("q2.5"), row.get("q97.5"), d)),
                esc(fmt(row.get("p_benefit"), 3)),
                esc(_text(row.get("verdict"))),
                esc(_bf(row.get("bf10_effect"))),
                esc(fmt(row.get("pet_mean"), d)),
                esc(fmt(row.get("peese_mean"), d)),
                esc(fmt(row.get("averaged_mean"), d)),
                esc(
                    row["most_influential"] if isinstance(row.get("most_influential"), str) else ""
                ),
                _label(row.get("label")) + f"<br><small>{esc(row.get('detail') or '')}</small>",
            ]
        )
    return table(header, rows, numeric={2, 4, 5, 6, 7})


def _funnel(inputs: ReportInputs, name: str) -> str:
    studies = inputs.studies
    rows = studies[studies["analysis"].astype(str) == name]
    if len(rows) < 2 or "vi" not in rows:
        return ""
    summary = inputs.summary
    values = summary[summary["analysis"].astype(str).isin([name, f"{name}_pet", f"{name}_peese"])]

    def mean(analysis: str, parameter: str) -> float | None:
        match = values[(values["analysis"] == analysis) & (values["parameter"] == parameter)]
        return None if match.empty else float(match["mean"].iloc[0])

    pooled = mean(name, "mu")
    lines = {}
    for label, suffix, slope, power in (("PET", "_pet", "sei", 1), ("PEESE", "_peese", "sei2", 2)):
        intercept, coefficient = mean(name + suffix, "intercept"), mean(name + suffix, slope)
        if intercept is not None and coefficient is not None:
            lines[label] = (intercept, coefficient, power)
    if not lines:  # only analyses with bias checks (others would repeat the same funnel)
        return ""
    info = inputs.analyses.get(name)
    axis = measure_label(info.measure, info.unit) if info else "Effect"
    svg = funnel_svg(
        f"funnel-{name}",
        rows["yi"].to_numpy(float),
        np.sqrt(rows["vi"].to_numpy(float)),
        pooled,
        lines,
        axis,
    )
    caption = (
        f"<strong>{esc(name)}</strong>: contour-enhanced funnel plot. Each study's effect against "
        "its standard error; shading marks where its two-sided p-value for no effect would fall "
        "(white: p > 0.10). Missing studies in the white region suggest publication bias; the "
        "PET and PEESE lines are the exact meta-regressions on the standard error and the "
        "variance, whose value at se = 0 is the bias-adjusted effect."
    )
    return figure(svg, caption)


def _influence(loo: pd.DataFrame, robust_row: pd.Series, inputs: ReportInputs) -> str:
    if loo.empty:
        return ""
    name = str(robust_row["analysis"])
    info = inputs.analyses.get(name)
    axis = measure_label(info.measure, info.unit) if info else "Effect"
    parameter = str(robust_row["parameter"])
    rows = loo[loo["parameter"].astype(str) == parameter]
    if rows.empty:
        return ""
    svg = influence_svg(
        f"influence-{name}-{parameter}",
        rows["left_out"].astype(str).tolist(),
        rows["mu_mean"].to_numpy(float),
        rows["mu_q2.5"].to_numpy(float),
        rows["mu_q97.5"].to_numpy(float),
        (float(robust_row["q2.5"]), float(robust_row["mean"]), float(robust_row["q97.5"])),
        rows["flips"].astype(str).str.lower().eq("true").to_numpy(),
        axis,
    )
    method = str(rows["method"].iloc[0])
    how = (
        "exact leave-one-out posteriors"
        if method.startswith("exact")
        else "PSIS importance-weighted leave-one-out posteriors (Pareto k in leave_one_out.csv)"
    )
    caption = (
        f"<strong>{esc(name)}</strong> ({esc(parameter)}): the pooled effect (mean and 95% "
        f"credible interval) with each study left out — {how}; the dashed line and band are "
        "the fit with every study. Red rows change the verdict."
    )
    return figure(svg, caption)


def _bayes_factors(bfs: pd.DataFrame) -> str:
    if bfs is None or bfs.empty:
        return ""
    rows = [
        [
            f"<code>{esc(row['analysis'])}</code>",
            esc(row["hypothesis"]),
            esc(fmt(row["log_bf10"], 3)),
            esc(_bf(row["bf10"])),
            esc(row["method"]),
            esc(_text(row.get("note"))),
        ]
        for _, row in bfs.iterrows()
    ]
    return "<h3>Bayes factors</h3>" + table(
        ["Analysis", "Hypothesis", "log BF<sub>10</sub>", "BF<sub>10</sub>", "Method", "Note"],
        rows,
        numeric={2, 3},
        caption="BF<sub>10</sub> > 1 favours the hypothesis (an effect, heterogeneity, a "
        "moderator effect, small-study bias) over its absence; 'averaged' rows are inclusion "
        "Bayes factors over the 12-model ensemble (model_averaging.csv).",
    )


def _sensitivity(frame: pd.DataFrame) -> str:
    if frame is None or frame.empty:
        return ""
    rows = []
    for _, row in frame.iterrows():
        d = decimals_for([row["mu_mean"], row["mu_q2.5"], row["mu_q97.5"]])
        rows.append(
            [
                f"<code>{esc(row['analysis'])}</code>",
                esc(row["prior_set"]),
                esc(interval(row["mu_mean"], row["mu_q2.5"], row["mu_q97.5"], d)),
                esc(fmt(row["p_benefit"], 3)),
                esc(row["verdict"]),
                esc(fmt(row["log_bf10_effect"], 2)),
                "changes the verdict" if str(row["flips"]).lower() == "true" else "",
            ]
        )
    return "<h3>Other priors</h3>" + table(
        [
            "Analysis",
            "Prior",
            "Effect [95% CrI]",
            "P(benefit)",
            "Verdict",
            "log BF<sub>10</sub>",
            "",
        ],
        rows,
        numeric={3, 5},
        caption="Exact analyses are refitted exactly under each alternative prior; MCMC analyses "
        "are reweighted with the prior power-scaled (Pareto k in prior_sensitivity.csv).",
    )


def _comparison(frame: pd.DataFrame) -> str:
    if frame is None or frame.empty:
        return ""
    rows = [
        [
            esc(row["group"]),
            f"<code>{esc(row['analysis'])}</code>",
            esc(fmt(row["elpd_loo"], 2)),
            esc(fmt(row["se"], 2)),
            esc(fmt(row["elpd_diff"], 2)),
            esc(fmt(row["dse"], 2)),
            esc(fmt(row["weight"], 2)),
            "yes" if str(row["k_warning"]).lower() == "true" else "",
        ]
        for _, row in frame.iterrows()
    ]
    return "<h3>Leave-one-out comparison (PSIS-LOO)</h3>" + table(
        [
            "Effect sizes",
            "Analysis",
            "elpd<sub>loo</sub>",
            "SE",
            "Δ elpd",
            "SE Δ",
            "Weight",
            "k > 0.7",
        ],
        rows,
        numeric={2, 3, 4, 5, 6},
        caption="Analyses fitted to the same effect sizes ranked by their expected log "
        "predictive density for a left-out study (arviz-stats compare, stacking weights). With a "
        "handful of studies the differences are small and their SEs unreliable.",
    )


def robustness_section(inputs: ReportInputs) -> str:
    """The robustness section (section id ``robustness``)."""
    frames = {name: _read(inputs.directory, name) for name in ROBUSTNESS_FILES}
    robust = frames["robustness"]
    intro = note(
        "Is there small-study or publication bias, how much evidence is there for an effect "
        "rather than none, does one trial carry the result, would another reasonable prior change "
        "the verdict? Each answer is re-asked with every study left out in turn, adjusted for "
        "small-study bias (PET, PEESE) and under other priors; it is <em>robust</em> only when "
        "its verdict survives all of them. README, “How far the answer can be trusted”, defines "
        "every number."
    )
    if robust is None:
        body = intro + note("These results hold no robustness checks (written by an older metak).")
        return section("robustness", "How far the answers can be trusted", body)
    parts = [intro, _overview(robust)]
    for _, row in robust.iterrows():
        name = str(row["analysis"])
        figures = _funnel(inputs, name) if not str(row["parameter"]).startswith("mu[") else ""
        figures += _influence(_rows(frames["leave_one_out"], name), row, inputs)
        if figures:
            parts.append(f"<h3><code>{esc(name)}</code> {esc(row['parameter'])}</h3>" + figures)
    parts.append(_bayes_factors(frames["bayes_factors"]))
    parts.append(_sensitivity(frames["prior_sensitivity"]))
    parts.append(_comparison(frames["loo_compare"]))
    return section("robustness", "How far the answers can be trusted", "\n".join(parts))
