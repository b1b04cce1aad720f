"""The report's analysis sections: question and data, forest plots, posteriors, meta-regression.

Each function returns the HTML of one ``<section>``; text from the results files is escaped with
:func:`~metak.report.html.esc` here, at the edge.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from metak.report.diagnostics_plots import prior_posterior_svg, sampler_vars
from metak.report.figures import bubble_svg, forest_svg
from metak.report.html import esc, figure, note, section
from metak.report.inputs import AnalysisInfo, ReportInputs, flat_draws
from metak.report.text import (
    decimals_for,
    direction_words,
    favours_labels,
    fmt,
    measure_label,
    sentence,
)

__all__ = [
    "study_rows",
    "parameter_row",
    "question_section",
    "forest_section",
    "posterior_section",
    "regression_section",
]

_BAND_POINTS = 120


def study_rows(inputs: ReportInputs, name: str) -> pd.DataFrame:
    """The analysis' rows of study_effects.csv with a display ``label``.

    The label is the study id, with the comparison appended when a study has several rows.
    """
    studies = inputs.studies
    rows = studies[studies["analysis"].astype(str) == name].reset_index(drop=True)
    ids = rows["study_id"].astype(str)
    label = ids.copy()
    if "comparison" in rows:
        repeated = ids.duplicated(keep=False)
        label[repeated] = ids[repeated] + " (" + rows.loc[repeated, "comparison"].astype(str) + ")"
    return rows.assign(label=label)


def parameter_row(inputs: ReportInputs, name: str, parameter: str) -> pd.Series | None:
    summary = inputs.summary
    match = summary[
        (summary["analysis"].astype(str) == name) & (summary["parameter"].astype(str) == parameter)
    ]
    return None if match.empty else match.iloc[0]


def _pooled_parameter(inputs: ReportInputs, info: AnalysisInfo) -> str | None:
    for parameter in ("intercept", "mu"):
        if parameter_row(inputs, info.name, parameter) is not None:
            return parameter
    return None


def _imputed(rows: pd.DataFrame, moderator: str) -> pd.Series:
    column = f"{moderator}_imputed"
    if column not in rows:
        return pd.Series(False, index=rows.index)
    return rows[column].astype(str).str.lower().isin(("true", "1", "1.0"))


def _moderators(info: AnalysisInfo, rows: pd.DataFrame) -> list[str]:
    # study_effects.csv has the moderator columns of every analysis: keep this analysis' own.
    found = [
        c[: -len("_imputed")]
        for c in rows.columns
        if c.endswith("_imputed") and rows[c].notna().any()
    ]
    return list(dict.fromkeys([*info.moderators, *found]))


def question_section(inputs: ReportInputs) -> str:
    parts = [note("What each analysis asks, on which studies, and how its effect is read.", "note")]
    for info in inputs.analyses.values():
        rows = study_rows(inputs, info.name)
        k = info.k if info.k is not None else len(rows)
        facts = [
            (
                "Outcome",
                esc(info.outcome)
                + (f" — {esc(info.outcome_description)}" if info.outcome_description else ""),
            ),
            (
                "Effect measure",
                esc(measure_label(info.measure, info.unit))
                + (f" (<code>{esc(info.measure)}</code>)" if info.measure else ""),
            ),
            ("Direction of benefit", esc(direction_words(info.direction, info.intervention))),
            (
                "Model",
                esc(info.model.replace("_", " "))
                + (f" on {esc(', '.join(info.moderators))}" if info.moderators else ""),
            ),
            ("Studies", f"{k} ({esc(', '.join(rows['label']))})" if len(rows) else str(k)),
            (
                "Posterior",
                "exact (no sampler)"
                if info.method == "exact"
                else esc(info.method.upper() if info.method == "mcmc" else info.method),
            ),
        ]
        if info.priors:
            facts.append(
                (
                    "Priors",
                    ", ".join(f"<code>{esc(p)} ~ {esc(d)}</code>" for p, d in info.priors.items()),
                )
            )
        for moderator in _moderators(info, rows):
            imputed = rows.loc[_imputed(rows, moderator), "label"].tolist()
            measured = info.counts.get("measured", {}).get(moderator, len(rows) - len(imputed))
            text = f"{esc(measured)} measured, {len(imputed)} imputed"
            if imputed:
                text += (
                    f": {esc(', '.join(imputed))} (imputed values drawn hollow in the bubble plot)"
                )
            facts.append((f"Moderator <code>{esc(moderator)}</code>", text))
        for warning in info.warnings:
            facts.append(("Warning", esc(warning)))
        dl = "".join(f"<dt>{term}</dt><dd>{value}</dd>" for term, value in facts)
        described = info.description.removeprefix(f"{info.name}:").strip()
        title = (
            f"<h3><code>{esc(info.name)}</code>"
            + (f" — {esc(described)}" if described else "")
            + "</h3>"
        )
        parts.append(f'{title}<dl class="facts">{dl}</dl>')
    return section("question", "1. The question and the data", "\n".join(parts))


def forest_section(inputs: ReportInputs) -> str:
    parts = []
    for info in inputs.analyses.values():
        rows = study_rows(inputs, info.name)
        if rows.empty:
            parts.append(
                f"<h3><code>{esc(info.name)}</code></h3>"
                + note("No study rows in study_effects.csv.")
            )
            continue
        pooled_name = _pooled_parameter(inputs, info)
        pooled = pooled_label = None
        if pooled_name is not None:
            row = parameter_row(inputs, info.name, pooled_name)
            pooled = (row["q2.5"], row["q50"], row["q97.5"])
            pooled_label = (
                "Pooled effect" if pooled_name == "mu" else "Effect at reference moderators"
            )
        new = parameter_row(inputs, info.name, "theta_new")
        prediction = None if new is None else (new["q2.5"], new["q97.5"])
        decimals = decimals_for(rows["yi"])
        svg = forest_svg(
            f"forest-{info.name}",
            rows,
            pooled,
            pooled_label or "",
            prediction,
            decimals,
            measure_label(info.measure, info.unit),
            favours_labels(info.direction, info.intervention, info.comparator),
        )
        caption = (
            f"<strong>{esc(info.name)}</strong>: squares are the observed effects with 95% "
            "confidence intervals (area proportional to the study's weight at the posterior mean "
            "of τ); hollow circles the shrunken study estimates with 95% credible intervals; the "
            "diamond the pooled posterior median and 95% credible interval; the bar under it the "
            "95% prediction interval for a new study. "
            f"{esc(sentence(direction_words(info.direction, info.intervention)))}."
        )
        if pooled_name == "intercept":
            caption += " The diamond is the effect at the moderators' reference values."
        parts.append(f"<h3><code>{esc(info.name)}</code></h3>" + figure(svg, caption))
    return section("forest", "2. Forest plots", "\n".join(parts))


def posterior_section(inputs: ReportInputs, trees: dict) -> str:
    parts = [
        note(
            "Posterior densities (orange) with the prior (blue) overlaid, zoomed on the posterior: "
            "a prior that is flat over this range barely influenced the result (a prior line "
            "hugging the axis is nearly flat there)."
        )
    ]
    for info in inputs.analyses.values():
        tree = trees.get(info.name)
        head = f"<h3><code>{esc(info.name)}</code></h3>"
        if tree is None or "posterior" not in tree.children:
            parts.append(
                head
                + note(f"No posterior file <code>posterior/{esc(info.name)}.nc</code>.", "warn")
            )
            continue
        names = [
            n for n in sampler_vars(tree) if n not in ("nu", "r_prepost", "gamma_link", "corr")
        ]
        svg, text = prior_posterior_svg(f"prior-{info.name}", tree, names)
        caption = "Parameters: " + ", ".join(f"<code>{esc(n)}</code>" for n in names) + "."
        parts.append(head + figure(svg, caption) + (note(esc(text), "warn") if text else ""))
    return section("posterior", "3. Posterior and prior", "\n".join(parts))


def _center(tree, rows: pd.DataFrame, moderator: str, j: int, info: AnalysisInfo) -> float:
    """The centring value the fit subtracted: raw column minus constant_data ``X``."""
    raw = pd.to_numeric(rows[moderator], errors="coerce").to_numpy(float)
    if "constant_data" in tree.children and "X" in tree["constant_data"].dataset:
        used = np.asarray(tree["constant_data"].dataset["X"].values, float)
        if used.ndim == 2 and used.shape[0] == raw.size and j < used.shape[1]:
            diff = raw - used[:, j]
            if np.isfinite(diff).any():
                return float(np.nanmedian(diff))
    for value in (info.reference_levels.get(moderator),):
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    return 0.0


def regression_section(inputs: ReportInputs, trees: dict) -> str:
    parts = []
    for info in inputs.analyses.values():
        tree = trees.get(info.name)
        if not info.is_regression or tree is None or "posterior" not in tree.children:
            continue
        posterior = tree["posterior"].dataset
        rows = study_rows(inputs, info.name)
        intercept = flat_draws(tree, "posterior", "intercept" if "intercept" in posterior else "mu")
        beta = flat_draws(tree, "posterior", "beta")
        labels = (
            [str(v) for v in posterior["beta"]["moderator"].values]
            if beta is not None and "moderator" in posterior["beta"].dims
            else []
        )
        for moderator in _moderators(info, rows):
            if moderator not in rows or moderator not in labels or intercept is None:
                continue
            x = pd.to_numeric(rows[moderator], errors="coerce").to_numpy(float)
            keep = np.isfinite(x)
            j = labels.index(moderator)
            center = _center(tree, rows, moderator, j, info)
            grid = np.linspace(np.nanmin(x), np.nanmax(x), _BAND_POINTS)
            lines = intercept[:, None] + beta.reshape(len(beta), -1)[:, j][:, None] * (
                grid - center
            )
            band = (grid, lines.mean(0), *np.quantile(lines, [0.025, 0.975], axis=0))
            svg = bubble_svg(
                f"bubble-{info.name}-{moderator}",
                x[keep],
                rows["yi"].to_numpy(float)[keep],
                rows["weight_pct"].to_numpy(float)[keep],
                _imputed(rows, moderator).to_numpy()[keep],
                band,
                moderator,
                measure_label(info.measure, info.unit),
            )
            caption = (
                f"<strong>{esc(info.name)}</strong>: observed effects against "
                f"<code>{esc(moderator)}</code> (bubble area proportional to weight; hollow dashed "
                "bubbles have imputed moderator values, placed at their imputed value). The line "
                "and band are the posterior mean and 95% credible band of the expected effect, "
                "from the draws of the intercept and slope (centred at "
                f"{esc(fmt(center, decimals_for([center])))})"
                + ("; other moderators held at their reference values" if len(labels) > 1 else "")
                + ". "
                + esc(sentence(direction_words(info.direction, info.intervention)))
                + "."
            )
            parts.append(
                f"<h3><code>{esc(info.name)}</code> — <code>{esc(moderator)}</code></h3>"
                + figure(svg, caption)
            )
    if not parts:
        parts.append(note("No meta-regression analyses in these results."))
    return section("metaregression", "4. Meta-regression", "\n".join(parts))
