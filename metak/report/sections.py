"""The report's analysis sections.

The analyses and their data, forest plots, prior vs posterior, and meta-regression.

Each function returns the HTML of one ``<section>`` and appends the figures it draws to
``figures`` (:class:`~metak.report.render.RenderedFigure`); text from the results files is
escaped with :func:`~metak.report.html.esc` here, at the edge.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from metak.report.answers import participants, participants_words
from metak.report.diagnostics_plots import prior_posterior_figure
from metak.report.forest import forest_figure
from metak.report.html import esc, figure, note, section
from metak.report.inputs import AnalysisInfo, ReportInputs
from metak.report.quantities import model_parameters, parameter_draws
from metak.report.regression_plots import RegressionLine, bubble_figure, deficiency_figure
from metak.report.text import (
    decimals_for,
    direction_words,
    favours_labels,
    fmt,
    measure_label,
    rounded_prior,
    sentence,
)
from metak.report.units import DEFICIENCY_MODERATOR, effect_unit

if TYPE_CHECKING:
    import xarray as xr

__all__ = [
    "study_rows",
    "parameter_row",
    "units_by_outcome",
    "analyses_section",
    "forest_section",
    "posterior_section",
    "regression_section",
]

_BAND_POINTS = 120
_GRID_MARGIN = 1.25  # the deficiency line extends this factor beyond the outermost baselines


def study_rows(inputs: ReportInputs, name: str) -> pd.DataFrame:
    """The analysis' rows of study_effects.csv, in file order."""
    studies = inputs.studies
    return studies[studies["analysis"].astype(str) == name].reset_index(drop=True)


def parameter_row(inputs: ReportInputs, name: str, parameter: str) -> pd.Series | None:
    """The summary.csv row of ``parameter`` in analysis ``name``, or None."""
    summary = inputs.summary
    match = summary[
        (summary["analysis"].astype(str) == name) & (summary["parameter"].astype(str) == parameter)
    ]
    return None if match.empty else match.iloc[0]


def units_by_outcome(info: AnalysisInfo) -> dict[str, str]:
    """Outcome -> the unit of its effects in this analysis."""
    return {outcome: effect_unit(info, outcome) for outcome in info.outcomes}


def _summary_names(inputs: ReportInputs, name: str) -> list[str]:
    summary = inputs.summary
    return [str(p) for p in summary.loc[summary["analysis"].astype(str) == name, "parameter"]]


def _imputed(rows: pd.DataFrame, moderator: str) -> pd.Series:
    column = f"{moderator}_imputed"
    if column not in rows:
        return pd.Series(False, index=rows.index)
    return rows[column].astype(str).str.lower().isin(("true", "1", "1.0"))


def _outcome_words(info: AnalysisInfo, outcome: str) -> str:
    meta = info.outcome_info(outcome)
    words = (
        f"{esc(meta.description)} (<code>{esc(outcome)}</code>)"
        if meta.description
        else (f"<code>{esc(outcome)}</code>")
    )
    return words + (f", {esc(meta.unit)}" if meta.unit else "")


def _analysis_facts(inputs: ReportInputs, info: AnalysisInfo) -> list[tuple[str, str]]:
    rows = study_rows(inputs, info.name)
    trials, people, without_n = participants(rows, info.arm)
    studies = ", ".join(dict.fromkeys(rows["study_id"].astype(str)))
    count = (
        f"{info.k} effect sizes from {info.n_studies} trials"
        if info.k != info.n_studies
        else f"{info.n_studies} trial{'' if info.n_studies == 1 else 's'}"
    )
    people_text = participants_words(people, without_n)
    facts = [
        (
            "Outcome" if len(info.outcomes) == 1 else "Outcomes",
            "<br>".join(_outcome_words(info, o) for o in info.outcomes),
        ),
        (
            "Effect measure",
            "<br>".join(
                esc(measure_label(info.measure, effect_unit(info, o))) for o in info.outcomes
            ),
        ),
        ("Direction of benefit", esc(direction_words(info.direction, info.intervention))),
        (
            "Model",
            esc(info.model.replace("_", " "))
            + (f" on {esc(', '.join(info.moderators))}" if info.moderators else ""),
        ),
        ("Trials", f"{count} ({esc(studies)})" if len(rows) else count),
        ("Sample", people_text),
        ("Posterior", "exact (no sampler)" if info.method == "exact" else esc(info.method.upper())),
    ]
    if info.priors:
        facts.append(
            (
                "Priors",
                ", ".join(
                    f"<code>{esc(p)} ~ {esc(rounded_prior(d))}</code>"
                    for p, d in info.priors.items()
                ),
            )
        )
    if info.deficiency is not None:
        deficiency = info.deficiency
        measured = info.counts.get("measured", {}).get(DEFICIENCY_MODERATOR, 0)
        imputed = info.counts.get("imputed", {}).get(DEFICIENCY_MODERATOR, 0)
        facts.append(
            (
                "Baseline dp-ucMGP",
                f"{esc(measured)} measured, {esc(imputed)} imputed in the model; effect reported "
                f"at {esc(', '.join(fmt(v, 0) for v in deficiency.levels))} pmol/L, reference "
                f"{esc(fmt(deficiency.reference, 0))} pmol/L",
            )
        )
    for moderator in info.moderators:
        if moderator == DEFICIENCY_MODERATOR:
            continue
        measured = info.counts.get("measured", {}).get(moderator, "?")
        imputed = info.counts.get("imputed", {}).get(moderator, 0)
        facts.append(
            (
                f"Moderator <code>{esc(moderator)}</code>",
                f"{esc(measured)} measured, {esc(imputed)} missing, centred at "
                f"{esc(fmt(info.reference_levels.get(moderator), 4))}",
            )
        )
    for text in (*info.warnings, *info.notes):
        facts.append(("Note", esc(text)))
    return facts


def analyses_section(inputs: ReportInputs) -> str:
    """What each analysis asks, on which trials, with which priors (rounded for reading)."""
    parts = [
        note(
            "Each analysis: its outcome and unit, trials, model and priors (rounded to 4 "
            "significant digits; analyses.json has them in full)."
        )
    ]
    for info in inputs.analyses.values():
        dl = "".join(
            f"<dt>{term}</dt><dd>{value}</dd>" for term, value in _analysis_facts(inputs, info)
        )
        parts.append(
            f'<h3 id="analysis-{esc(info.name)}"><code>{esc(info.name)}</code> — '
            f"{esc(info.outcome_info().description or info.outcome)}</h3>"
            f'<dl class="facts">{dl}</dl>'
        )
    return section("analyses", "Analyses and data", "\n".join(parts))


def _pooled(inputs: ReportInputs, info: AnalysisInfo, outcome: str):
    """(parameter, (q2.5, q50, q97.5), label, prediction) of the pooled effect on ``outcome``."""
    if info.model == "joint":
        names = [f"mu[{outcome}]"]
    else:
        names = ["intercept", "mu"]
    for name in names:
        row = parameter_row(inputs, info.name, name)
        if row is not None:
            label = "Effect at reference moderators" if name == "intercept" else "Pooled effect"
            new = None if info.model == "joint" else parameter_row(inputs, info.name, "theta_new")
            prediction = None if new is None else (new["q2.5"], new["q97.5"])
            return name, (row["q2.5"], row["q50"], row["q97.5"]), label, prediction
    return None, None, "", None


def figured_analyses(inputs: ReportInputs) -> list[AnalysisInfo]:
    """The analyses drawn in the figure sections: all but the robustness checks' analyses.

    A check's analysis (``<name>_pet``, ``<name>_peese``, ``<name>_selection``) is shown where
    it answers its question, in the robustness section (funnel lines, table rows); drawing its
    forest and prior figures again would double the page for no new information.
    """
    return [info for info in inputs.analyses.values() if info.check_of is None]


def checks_shown_elsewhere(inputs: ReportInputs) -> str:
    """A note naming the robustness checks' analyses left out of a figure section, or ""."""
    names = [info.name for info in inputs.analyses.values() if info.check_of is not None]
    if not names:
        return ""
    listed = ", ".join(f"<code>{esc(name)}</code>" for name in names)
    return note(
        f"The robustness checks' analyses ({listed}) are shown in “How far the answers can be "
        "trusted” and in the summary table."
    )


def forest_section(inputs: ReportInputs, figures: list) -> str:
    """Forest plots: one per analysis and outcome, each with its own axis and unit."""
    parts = [checks_shown_elsewhere(inputs)]
    for info in figured_analyses(inputs):
        rows = study_rows(inputs, info.name)
        head = f"<h3><code>{esc(info.name)}</code></h3>"
        if rows.empty:
            parts.append(head + note("No study rows in study_effects.csv."))
            continue
        units = units_by_outcome(info)
        panels = []
        for outcome in info.outcomes:
            these = rows[rows["outcome"].astype(str) == outcome].reset_index(drop=True)
            if these.empty:
                continue
            if len(info.outcomes) > 1 and these["study_id"].is_unique:
                # One outcome per panel: the study alone names the row (not "study [outcome]").
                these = these.assign(label=these["study_id"].astype(str))
            name, pooled, label, prediction = _pooled(inputs, info, outcome)
            meta = info.outcome_info(outcome)
            unit = units.get(outcome, "")
            rendered = forest_figure(
                f"forest-{info.name}-{outcome}",
                these,
                units,
                pooled,
                label,
                prediction,
                decimals_for(these["yi"]),
                measure_label(info.measure, unit)
                + (f" — {meta.description}" if meta.description else ""),
                favours_labels(meta.direction, info.intervention, info.comparator),
            )
            caption = (
                f"<strong>{esc(info.name)}</strong>"
                + (f", {esc(meta.description or outcome)}" if len(info.outcomes) > 1 else "")
                + f" ({esc(unit or 'no unit')}): squares are the observed effects with 95% "
                "confidence intervals (area proportional to the study's weight within this "
                "outcome, at the posterior mean of τ); hollow circles the shrunken study "
                "estimates with 95% credible intervals"
                + (
                    "; the diamond the pooled posterior median and 95% credible interval"
                    + (f" (<code>{esc(name)}</code>)" if name else "")
                    if pooled is not None
                    else ""
                )
                + (
                    "; the bar under it the 95% prediction interval for a new study"
                    if prediction is not None
                    else ""
                )
                + f". {esc(sentence(direction_words(meta.direction, info.intervention)))}."
            )
            panels.append(figure(rendered, caption, figures))
        parts.append(head + "".join(panels))
    return section("forest", "Forest plots", "\n".join(parts))


def posterior_section(inputs: ReportInputs, trees: dict, figures: list) -> str:
    """Prior and posterior densities of each analysis' parameters (arviz-plots)."""
    parts = [
        note(
            "Prior and posterior densities of each parameter (arviz-plots' "
            "<code>plot_prior_posterior</code>), named as in the tables, each on its own axis in "
            "its unit: where the posterior is as wide as the prior, the data say little."
        )
    ]
    parts.append(checks_shown_elsewhere(inputs))
    for info in figured_analyses(inputs):
        tree = trees.get(info.name)
        head = f"<h3><code>{esc(info.name)}</code></h3>"
        if tree is None or "posterior" not in tree.children:
            parts.append(
                head
                + note(f"No posterior file <code>posterior/{esc(info.name)}.nc</code>.", "warn")
            )
            continue
        names = model_parameters(tree, info, _summary_names(inputs, info.name))
        rendered, text = prior_posterior_figure(f"prior-{info.name}", tree, info, names)
        if rendered is None:
            parts.append(head + note(esc(text), "warn"))
            continue
        caption = "Parameters: " + ", ".join(f"<code>{esc(n)}</code>" for n in names) + "."
        parts.append(head + figure(rendered, caption, figures))
    return section("posterior", "Prior and posterior", "\n".join(parts))


def _line(intercept: np.ndarray, slope: np.ndarray, grid: np.ndarray, x: np.ndarray):
    lines = intercept[:, None] + slope[:, None] * x[None, :]
    low, high = np.quantile(lines, [0.025, 0.975], axis=0)
    return RegressionLine(grid, lines.mean(axis=0), low, high)


def _deficiency_part(
    inputs: ReportInputs, info: AnalysisInfo, tree: xr.DataTree | None, figures: list
) -> str:
    rows = study_rows(inputs, info.name)
    head = f"<h3><code>{esc(info.name)}</code> — effect against baseline dp-ucMGP</h3>"
    reference = info.deficiency.reference
    measured = (
        rows["baseline_dpucmgp_pmol_l"].to_numpy(float)
        if "baseline_dpucmgp_pmol_l" in rows
        else np.full(len(rows), np.nan)
    )
    imputed = {}
    flags = _imputed(rows, DEFICIENCY_MODERATOR).to_numpy()
    posterior = tree["posterior"].dataset
    if flags.any() and "log_baseline_imputed" in posterior:
        draws = posterior["log_baseline_imputed"]
        dim = next(d for d in draws.dims if d not in ("chain", "draw"))
        ids = [str(v) for v in draws[dim].values]
        for position in np.flatnonzero(flags):
            study = str(rows.loc[position, "study_id"])
            if study in ids:
                values = reference * np.exp(draws.isel({dim: ids.index(study)}).values.reshape(-1))
                imputed[int(position)] = tuple(np.quantile(values, [0.025, 0.5, 0.975]))
    placed = int(np.isfinite(measured).sum()) + len(imputed)
    unit = effect_unit(info)
    if placed < 2:
        shown = "; ".join(
            f"{esc(rows.loc[i, 'label'])}: baseline {esc(fmt(measured[i], 0))} pmol/L, effect "
            f"{esc(fmt(rows.loc[i, 'yi'], decimals_for(rows['yi'])))} {esc(unit)}"
            for i in np.flatnonzero(np.isfinite(measured))
        )
        return head + note(
            f"No figure: {'only one trial has' if placed == 1 else 'no trial has'} a baseline "
            "dp-ucMGP here"
            + (f" ({shown})" if shown else "")
            + ". The slope of a line through one point is set by its prior, not by the data, so "
            "none is drawn (the summary table has the slope's posterior).",
            "warn",
        )
    intercept = parameter_draws(tree, "posterior", "intercept", info)
    slope = parameter_draws(tree, "posterior", DEFICIENCY_MODERATOR, info)
    spots = [*measured[np.isfinite(measured)], *(v for q in imputed.values() for v in q)]
    spots += [reference, *info.deficiency.levels]
    grid = np.geomspace(min(spots) / _GRID_MARGIN, max(spots) * _GRID_MARGIN, _BAND_POINTS)
    line = _line(intercept, slope, grid, np.log(grid / reference))
    levels = {}
    for level in info.deficiency.levels:
        row = parameter_row(inputs, info.name, f"effect_at_{level:g}")
        if row is not None:
            levels[level] = (row["q2.5"], row["q50"], row["q97.5"])
    rendered = deficiency_figure(
        f"deficiency-{info.name}",
        rows,
        measured,
        imputed,
        line,
        reference,
        levels,
        units_by_outcome(info),
        measure_label(info.measure, unit),
    )
    caption = (
        f"<strong>{esc(info.name)}</strong>: each trial's observed effect "
        f"({esc(unit or 'no unit')}) against its participants' baseline dp-ucMGP on a log axis "
        "(the model is linear in its log)."
    )
    if np.isfinite(measured).any():
        caption += (
            " Filled points: baselines measured in the trial (vertical bar: the effect's 95% CI; "
            "area proportional to weight)."
        )
    if imputed:
        caption += (
            " Dashed horizontal lines with hollow points: baselines the trial did not report, "
            "imputed in the model; the line is the 95% posterior interval of the imputed value, "
            "not a measurement."
        )
    caption += (
        " The curve and band are the posterior mean and 95% credible band of the expected "
        f"effect; the dashed vertical line is the reference ({esc(fmt(reference, 0))} pmol/L), "
        "the dotted ones the reported levels with the effect there (diamonds, 95% CrI). "
        f"{esc(sentence(direction_words(info.direction, info.intervention)))}."
    )
    return head + figure(rendered, caption, figures)


def _bubble_part(
    inputs: ReportInputs,
    info: AnalysisInfo,
    tree: xr.DataTree | None,
    moderator: str,
    figures: list,
) -> str | None:
    rows = study_rows(inputs, info.name)
    raw = f"{moderator}_raw"
    if raw not in rows:
        return None
    x = pd.to_numeric(rows[raw], errors="coerce").to_numpy(float)
    intercept = parameter_draws(tree, "posterior", "intercept", info)
    slope = parameter_draws(tree, "posterior", moderator, info)
    if intercept is None or slope is None or np.isfinite(x).sum() < 2:
        return None
    center = float(info.reference_levels.get(moderator, 0.0) or 0.0)
    grid = np.linspace(np.nanmin(x), np.nanmax(x), _BAND_POINTS)
    line = _line(intercept, slope, grid, grid - center)
    unit = effect_unit(info)
    rendered = bubble_figure(
        f"bubble-{info.name}-{moderator}",
        rows,
        moderator,
        x,
        line,
        units_by_outcome(info),
        measure_label(info.measure, unit),
    )
    caption = (
        f"<strong>{esc(info.name)}</strong>: observed effects ({esc(unit or 'no unit')}) against "
        f"<code>{esc(moderator)}</code> (bubble area proportional to weight). The line and band "
        "are the posterior mean and 95% credible band of the expected effect (centred at "
        f"{esc(fmt(center, decimals_for([center])))}; other moderators at their reference). "
        f"{esc(sentence(direction_words(info.direction, info.intervention)))}."
    )
    return f"<h3><code>{esc(info.name)}</code> — <code>{esc(moderator)}</code></h3>" + figure(
        rendered, caption, figures
    )


def regression_section(inputs: ReportInputs, trees: dict, figures: list) -> str:
    """Effect against each numeric moderator; the deficiency analyses against baseline pmol/L."""
    parts = []
    for info in figured_analyses(inputs):
        tree = trees.get(info.name)
        if not info.is_regression or tree is None or "posterior" not in tree.children:
            continue
        if info.deficiency is not None:
            parts.append(_deficiency_part(inputs, info, tree, figures))
        for moderator in info.moderators:
            # Categorical levels: their rows are in the summary table.
            if moderator == DEFICIENCY_MODERATOR or "[" in moderator:
                continue
            part = _bubble_part(inputs, info, tree, moderator, figures)
            if part is not None:
                parts.append(part)
    if not parts:
        parts.append(note("No meta-regression analyses in these results."))
    return section("metaregression", "Meta-regression", "\n".join(parts))
