"""The HTML report, built from a results directory that the real fit and writer produced.

Numbers the report shows are checked against what the test computes itself from the fixture's
records (participants), from the posterior files (probabilities, prior-to-posterior contraction)
and from summary.csv, and every figure's axes are checked not to mix units from the data the
figure builders plotted.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from dataclasses import replace
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from metak.report import ResultsError, build_report
from metak.report.answers import CONTRACTION_MIN, report_questions
from metak.report.forest import forest_figure
from metak.report.inputs import load_inputs
from metak.report.sections import regression_section
from metak.report.text import rounded_prior
from tests.conftest import run_metak
from tests.report_fixture import (
    CAC_STUDIES,
    CLAIMS,
    OUTCOMES,
    QUESTIONS,
    SCRIPT_STUDY,
    built_report,
    divergences,
    make_results,
    seal,
)

pytestmark = pytest.mark.slow  # the fixture fits two MCMC analyses (about half a minute)

SECTIONS = (
    "answers",
    "analyses",
    "forest",
    "posterior",
    "metaregression",
    "robustness",
    "diagnostics",
    "summary",
    "claims",
)
UNITS = {outcome: unit for outcome, _, unit, _, _ in OUTCOMES}
# Prior variances come from 4000-16000 prior draws: their relative standard error is at most
# sqrt(2 / 4000) = 2.2%, so a contraction recomputed from other draws of the same prior agrees
# to within 3 of those (times var_post / var_prior <= 1).
CONTRACTION_TOLERANCE = 0.07


class _Collect(HTMLParser):
    """Tags, attribute values and text nodes of a page (SVG included)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.attrs, self.text, self.styles = [], [], [], []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [(tag, name, value or "") for name, value in attrs]
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        (self.styles if self._in_style else self.text).append(data)


def _text(html: str) -> str:
    page = _Collect()
    page.feed(html)
    return " ".join(" ".join(page.text).split())


@pytest.fixture(scope="module")
def report():
    return built_report()


def _answers(text: str) -> list[dict]:
    blocks = re.findall(r'<article class="answer[^"]*"([^>]*)>(.*?)</article>', text, re.S)
    out = []
    for attrs, body in blocks:
        found = dict(re.findall(r'data-(\w+)="([^"]*)"', attrs))
        found["text"] = _text(body)
        out.append(found)
    return out


def _section(text: str, name: str) -> str:
    return re.search(rf'<section id="{name}">(.*?)</section>', text, re.S).group(1)


def _summary(results) -> pd.DataFrame:
    return pd.read_csv(results / "summary.csv")


def _row(results, analysis: str, parameter: str) -> pd.Series:
    summary = _summary(results)
    return summary[(summary["analysis"] == analysis) & (summary["parameter"] == parameter)].iloc[0]


def _tree(results, analysis: str) -> xr.DataTree:
    with xr.open_datatree(results / "posterior" / f"{analysis}.nc") as tree:
        return tree.load()


def test_written_beside_the_results(report):
    results, _, _ = report
    assert (results / "report.html").is_file()
    assert not list(results.glob(".report.html.*")), "temporary file left behind"


def test_every_section_present_with_a_heading_answers_first(report):
    _, text, _ = report
    positions = []
    for section_id in SECTIONS:
        match = re.search(rf'<section id="{section_id}">\s*<h2>[^<]+</h2>', text)
        assert match, f"section {section_id} missing or without heading"
        positions.append(match.start())
    assert positions == sorted(positions) and text.count("<section") == len(SECTIONS)


def test_one_answer_per_declared_question_in_order(report):
    results, text, _ = report
    declared = json.loads((results / "analyses.json").read_text(encoding="utf-8"))["questions"]
    answers = _answers(_section(text, "answers"))
    assert len(answers) == len(declared) == QUESTIONS
    for answer, question in zip(answers, declared, strict=True):
        assert answer["analysis"] == question["analysis"]
        assert answer["parameter"] == question["parameter"]
        assert answer["text"].startswith(question["text"])


def test_answers_give_the_estimate_in_its_unit(report):
    """The median and 95% interval of summary.csv in the outcome's unit from outcomes.csv (the
    deficiency slope per doubling of baseline: x ln 2); SMDs are in SD units."""
    results, text, _ = report
    expected_units = {
        ("cac_re", "mu"): UNITS["cac"],
        ("cac_def", "log_baseline_dpucmgp"): UNITS["cac"],
        ("joint", "mu[dpucmgp]"): UNITS["dpucmgp"],
        ("bmd_re", "mu"): "SD units",
    }
    for answer in _answers(_section(text, "answers")):
        key = (answer["analysis"], answer["parameter"])
        assert answer["unit"] == expected_units[key]
        row = _row(results, *key)
        scale = math.log(2) if key[1] == "log_baseline_dpucmgp" else 1.0
        numbers = re.search(
            r"([−\d.,]+) " + re.escape(answer["unit"]) + r" \(95% credible interval ([−\d.,]+) "
            r"to ([−\d.,]+)\)",
            answer["text"],
        )
        assert numbers, answer["text"]
        shown = [float(v.replace("−", "-").replace(",", "")) for v in numbers.groups()]
        for value, column in zip(shown, ("q50", "q2.5", "q97.5"), strict=True):
            digits = len(numbers.group(1).split(".")[1]) if "." in numbers.group(1) else 0
            assert value == pytest.approx(row[column] * scale, abs=0.51 * 10**-digits)


def test_answers_count_trials_and_participants(report):
    """Participants are the group sizes of the fixture's own CAC records, summed."""
    _, text, _ = report
    cac = next(a for a in _answers(text) if a["analysis"] == "cac_re")
    people = sum(2 * n for *_, n in CAC_STUDIES)
    assert f"{len(CAC_STUDIES)} trials, {people:,} participants" in cac["text"]
    deficiency = next(a for a in _answers(text) if a["analysis"] == "cac_def")
    missing = sum(1 for _, _, baseline, *_ in CAC_STUDIES if not baseline)
    assert (
        f"({len(CAC_STUDIES) - missing} with a measured baseline dp-ucMGP, {missing} imputed)"
        in deficiency["text"]
    )


def test_probability_of_benefit_from_the_posterior_draws(report):
    """P(mu < 0) for outcomes where lower is better, P(mu > 0) where higher is."""
    results, text, _ = report
    for answer in _answers(text):
        if answer["parameter"] != "mu":
            continue
        tree = _tree(results, answer["analysis"])
        draws = tree["posterior"].dataset["mu"].values.reshape(-1)
        lower = answer["analysis"] != "bmd_re"
        p = float(np.mean(draws < 0) if lower else np.mean(draws > 0))
        shown = re.search(r"probability of benefit \(a (lower|higher) value with vitamin K\): "
                          r"([<>] )?([\d.]+)", answer["text"])  # fmt: skip
        assert shown and shown.group(1) == ("lower" if lower else "higher")
        if shown.group(2):
            assert (p > 0.99) if shown.group(2) == "> " else (p < 0.01)
        else:
            assert float(shown.group(3)) == pytest.approx(p, abs=0.005)


def test_contraction_says_when_the_data_cannot_tell(report):
    """1 - var_post / var_prior recomputed from the file's prior draws and summary sd; the
    fixture's narrow slope prior gives a contraction below the threshold, the pooled CAC effect
    one near 1."""
    results, text, _ = report
    seen = set()
    for answer in _answers(text):
        analysis, parameter = answer["analysis"], answer["parameter"]
        prior = _tree(results, analysis)["prior"].dataset
        if parameter == "log_baseline_dpucmgp":
            draws = prior["beta"].sel(moderator=parameter).values
        elif parameter.startswith("mu["):
            draws = prior["mu"].sel(outcome=parameter[3:-1]).values
        else:
            draws = prior["mu"].values
        contraction = 1 - _row(results, analysis, parameter)["sd"] ** 2 / np.var(draws, ddof=1)
        shown = float(re.search(r"contraction ([\d.]+)", answer["text"]).group(1))
        assert shown == pytest.approx(contraction, abs=CONTRACTION_TOLERANCE)
        weak = contraction < CONTRACTION_MIN
        assert ("The data cannot tell" in answer["text"]) == weak
        assert ("mostly restates the prior" in answer["text"]) == weak
        seen.add(weak)
    assert seen == {True, False}, "the fixture must exercise both wordings"


def test_no_figure_mixes_units_on_an_axis(report):
    results, _, figures = report
    assert figures
    for rendered in figures:
        for axis in rendered.axes:
            assert len(axis.units) <= 1, (rendered.key, axis)
            assert len(axis.outcomes) <= 1, (rendered.key, axis)
    # The joint analysis: a forest plot and a predictive-check panel per outcome, in its unit.
    joint = {axis.outcomes: axis.units for f in figures if f.key.startswith("forest-joint-")
             for axis in f.axes}  # fmt: skip
    assert joint == {("dpucmgp",): (UNITS["dpucmgp"],), ("pwv",): (UNITS["pwv"],)}
    ppc = next(f for f in figures if f.key == "ppc-joint")
    assert {axis.outcomes: axis.units for axis in ppc.axes} == joint


def test_the_unit_check_can_fail():
    """A forest plot given rows of two outcomes reports both units on its one axis."""
    rows = pd.DataFrame(
        {
            "label": ["a", "b"],
            "outcome": ["dpucmgp", "pwv"],
            "yi": [-100.0, -0.3],
            "ci_low": [-150.0, -0.5],
            "ci_high": [-50.0, -0.1],
            "theta_mean": [-90.0, -0.3],
            "theta_q2.5": [-140.0, -0.5],
            "theta_q97.5": [-40.0, -0.1],
            "weight_pct": [50.0, 50.0],
        }
    )
    rendered = forest_figure(
        "mixed", rows, UNITS, None, "", None, 1, "Mean difference", ("left", "right")
    )
    (axis,) = rendered.axes
    assert axis.units == (UNITS["dpucmgp"], UNITS["pwv"])


def test_figure_axes_are_in_the_page(report):
    _, text, figures = report
    attributes = re.findall(r'<figure id="figure-([^"]+)" data-axes="([^"]*)"', text)
    assert [key for key, _ in attributes] == [f.key for f in figures]
    import html

    for (_, value), rendered in zip(attributes, figures, strict=True):
        assert json.loads(html.unescape(value)) == json.loads(rendered.axes_json())


def test_joint_forest_pooled_per_outcome_and_weights_per_outcome(report):
    """Each outcome's forest plot has its own pooled diamond (mu[outcome]) and weights that add
    up to 100% within the outcome; no prediction bar is promised (the joint model has none)."""
    results, _, figures = report
    studies = pd.read_csv(results / "study_effects.csv")
    for outcome in ("dpucmgp", "pwv"):
        rendered = next(f for f in figures if f.key == f"forest-joint-{outcome}")
        rows = studies[(studies["analysis"] == "joint") & (studies["outcome"] == outcome)]
        row = _row(results, "joint", f"mu[{outcome}]")
        texts = re.findall(r"<text[^>]*>([^<]*)</text>", rendered.svg)
        pooled = texts[texts.index("Pooled effect") + 1]
        numbers = [float(v.replace("−", "-")) for v in re.findall(r"[−\d.]+", pooled)]
        digits = len(pooled.split(" ")[0].partition(".")[2])
        for value, column in zip(numbers, ("q50", "q2.5", "q97.5"), strict=True):
            assert value == pytest.approx(row[column], abs=0.51 * 10**-digits)
        weights = [float(texts[texts.index(study) + 2]) for study in rows["study_id"]]
        assert weights == pytest.approx(list(rows["weight_pct"]), abs=0.051)
        assert sum(weights) == pytest.approx(100.0, abs=0.05 * len(weights))
        assert "Pooled, 95% CrI" in texts
        assert not any("prediction" in t.lower() for t in texts)
        assert not any(f"[{outcome}]" in t for t in texts), "rows named by study alone"


def test_parameters_named_as_in_the_tables(report):
    """Prior/posterior, trace and rank panels use summary.csv's names (intercept and the
    moderator's name, not the model's mu and beta)."""
    results, _, figures = report
    summary = _summary(results)
    for rendered in figures:
        kind, _, analysis = rendered.key.partition("-")
        if kind not in ("prior", "trace", "rank"):
            continue
        names = set(summary.loc[summary["analysis"] == analysis, "parameter"])
        for axis in rendered.axes:
            assert set(axis.title.split(", ")) <= names, (rendered.key, axis.title)
    deficiency = next(f for f in figures if f.key == "prior-cac_def")
    assert [a.title for a in deficiency.axes] == ["intercept", "log_baseline_dpucmgp", "tau"]


def test_deficiency_figure_in_pmol_per_litre(report):
    results, text, figures = report
    rendered = next(f for f in figures if f.key == "deficiency-cac_def")
    x_axis, y_axis = rendered.axes
    assert x_axis.units == ("pmol/L",) and y_axis.units == (UNITS["cac"],)
    part = _section(text, "metaregression")
    assert "Baseline dp-ucMGP (pmol/L, log scale)" in part
    assert "log_baseline_dpucmgp</text>" not in rendered.svg  # not the log ratio as the x-axis
    assert "Imputed baseline: 95% posterior interval (not measured)" in rendered.svg
    twin = next(f for f in figures if f.key == "deficiency-cac_def_complete_case")
    assert "Imputed baseline" not in twin.svg  # the complete-case analysis imputes nothing


def test_a_deficiency_panel_without_a_line_says_why(report):
    results, _, _ = report
    inputs = load_inputs(results)
    studies = inputs.studies
    twin = "cac_def_complete_case"
    keep = ~(studies["analysis"] == twin) | ~studies.index.isin(
        studies.index[studies["analysis"] == twin][1:]
    )
    one = replace(inputs, analyses={twin: inputs.analyses[twin]}, studies=studies[keep])
    figures = []
    html = regression_section(one, {twin: _tree(results, twin)}, figures)
    assert "No figure: only one trial has a baseline dp-ucMGP here" in html
    assert "set by its prior, not by the data" in html
    assert not [f for f in figures if f.key.startswith("deficiency-")]


def test_priors_rounded_in_the_report_full_in_analyses_json(report):
    results, text, _ = report
    analyses = json.loads((results / "analyses.json").read_text(encoding="utf-8"))["analyses"]
    part = _text(_section(text, "analyses"))
    for entry in analyses:
        for key, prior in entry["spec"]["priors"].items():
            assert f"{key} ~ {rounded_prior(prior)}" in part
            for number in re.findall(r"\d+\.\d+", rounded_prior(prior)):
                assert len(number.replace(".", "").lstrip("0")) <= 4, prior
    assert any(len(n) > 8 for e in analyses for p in e["spec"]["priors"].values()
               for n in re.findall(r"[\d.]+", p))  # fmt: skip


def test_nothing_external(report):
    _, text, _ = report
    page = _Collect()
    page.feed(text)
    assert not {"script", "link", "img", "iframe", "object", "embed", "image"} & set(page.tags)
    for tag, name, value in page.attrs:
        if name == "data-axes":
            continue  # JSON text describing the axes, not a reference
        assert "://" not in value and not value.strip().startswith("//"), (tag, name, value)
        if name.endswith("href"):
            assert value.startswith("#"), (tag, name, value)
        assert name != "src", (tag, name, value)
    css = "".join(page.styles)
    assert "@import" not in css and not re.search(r"url\((?!#)", css)
    in_text = "".join(page.text)
    for scheme in ("http://", "https://"):
        assert text.count(scheme) == in_text.count(scheme)


def test_data_is_escaped(report):
    _, text, _ = report
    assert "<script" not in text.lower()
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    # In the analyses' facts (HTML) and in the forest plot (SVG text written by matplotlib).
    assert text.count(escaped) >= 2
    assert "<b>Acme</b>" not in text and "&lt;b&gt;Acme&lt;/b&gt;" in text
    page = _Collect()
    page.feed(text)
    assert SCRIPT_STUDY in "".join(page.text)


def test_non_converged_analysis_gets_a_banner(report):
    results, text, _ = report
    banner = re.search(r'<div class="banner"[^>]*>(.*?)</div>', text, re.S)
    assert banner and "pwv_short" in banner.group(1)
    messages = json.loads((results / "analyses.json").read_text(encoding="utf-8"))["analyses"]
    (short,) = [a for a in messages if a["name"] == "pwv_short"]
    assert not short["converged"] and short["diagnostics"]
    for message in short["diagnostics"]:
        assert message.replace("'", "&#x27;") in banner.group(1)
    assert text.index('class="banner"') < text.index('<section id="answers">')


def test_no_banner_when_all_converged(tmp_path):
    text = build_report(make_results(tmp_path, converged=True)).read_text(encoding="utf-8")
    assert 'class="banner"' not in text
    assert "pwv_short" not in text


def test_claims_counted_in_the_header(report):
    results, text, _ = report
    verdicts = pd.read_csv(results / "claims.csv")["verdict"].fillna("not assessable")
    assert len(verdicts) == len(CLAIMS)
    counts = verdicts.value_counts()
    subtitle = re.search(r'<header class="top">.*?<p>(.*?)</p>', text, re.S).group(1)
    assert f"{len(CLAIMS)} claims: {len(CLAIMS) - counts['not assessable']} assessed" in subtitle
    assert f"{counts['not assessable']} not assessable" in subtitle
    for verdict in ("supported", "contradicted", "uncertain"):
        if verdict in counts:
            assert f"{counts[verdict]} {verdict}" in subtitle


def test_claim_verdicts_shown(report):
    results, text, _ = report
    claims = pd.read_csv(results / "claims.csv")
    part = _section(text, "claims")
    for claim in claims.itertuples():
        verdict = claim.verdict if isinstance(claim.verdict, str) else "not assessable"
        assert re.search(re.escape(claim.claim) + r", claimed by .*?" + verdict, part), claim


def test_rebuild_elsewhere_is_byte_identical(report, tmp_path):
    _, text, _ = report
    elsewhere = build_report(make_results(tmp_path, converged=False)).read_text(encoding="utf-8")
    assert elsewhere == text


def test_diagnostics_split_with_a_second_process_give_the_same_page(report, tmp_path, monkeypatch):
    """The fixture's page drew every MCMC block in the child; here the child draws the first two
    and this process the third: the page, and the figures in their order, must not change."""
    import metak.report.background as background

    _, text, figures = report
    monkeypatch.setattr(background, "CHILD_EXTRA", 0)
    assert len(background.child_share(["a", "b", "c"])) == 2
    drawn: list = []
    path = build_report(make_results(tmp_path, converged=False), figures=drawn)
    assert path.read_text(encoding="utf-8") == text
    assert [f.key for f in drawn] == [f.key for f in figures]


def test_a_failing_second_process_changes_nothing(report, tmp_path, monkeypatch):
    """A child that cannot draw (here: it cannot even start Python) leaves every block to this
    process: same page, same figures."""
    import sys

    _, text, figures = report
    monkeypatch.setattr(sys, "executable", shutil.which("false"))
    drawn: list = []
    path = build_report(make_results(tmp_path, converged=False), figures=drawn)
    assert path.read_text(encoding="utf-8") == text
    assert [f.key for f in drawn] == [f.key for f in figures]


def test_figures_closed(report):
    plt = pytest.importorskip("matplotlib.pyplot")
    assert plt.get_fignums() == []


def test_mcmc_diagnostic_figures(report):
    """Every MCMC analysis gets arviz-plots' trace, rank and predictive-check figures and its
    divergence count from the file; exact analyses get none."""
    results, text, figures = report
    analyses = json.loads((results / "analyses.json").read_text(encoding="utf-8"))["analyses"]
    part = _section(text, "diagnostics")
    keys = {f.key for f in figures}
    for entry in analyses:
        name = entry["name"]
        has = {kind for kind in ("trace", "rank", "ppc") if f"{kind}-{name}" in keys}
        assert has == ({"trace", "rank", "ppc"} if entry["method"] == "mcmc" else set()), name
        if entry["method"] == "mcmc":
            count = divergences(_tree(results, name))
            assert f"Divergent transitions: <strong>{count}</strong>" in part
    # The robustness checks' analyses (exact) are shown in the robustness section instead.
    assert part.count("Exact posterior: no sampler") == sum(
        e["method"] == "exact" and not e["check_of"] for e in analyses
    )


def test_summary_table_grouped_with_units(report):
    results, text, _ = report
    part = _section(text, "summary")
    summary = _summary(results)
    assert part.count('<tr class="group">') == summary["analysis"].nunique()
    row = re.search(r"<code>mu\[dpucmgp\]</code></td><td>([^<]*)</td>", part)
    assert row and row.group(1) == UNITS["dpucmgp"]
    row = re.search(r"<code>gamma_link\[pwv\]</code></td><td>([^<]*)</td>", part)
    assert row and row.group(1) == f"{UNITS['pwv']} per {UNITS['dpucmgp']}"
    assert len(re.findall(r"<tr(?: class=\"bad\")?><td>", part)) == len(summary)


def test_default_questions_one_per_analysis(report):
    """Without [[question]] tables: one answer per analysis, the complete-case twin excepted."""
    results, _, _ = report
    inputs = replace(load_inputs(results), questions=())
    asked = {(q.analysis, q.parameter) for q in report_questions(inputs)}
    assert asked == {
        ("cac_re", "mu"),
        ("bmd_re", "mu"),
        ("pwv_dose", "dose_ug_day"),
        ("cac_def", "log_baseline_dpucmgp"),
        ("joint", "gamma_link[pwv]"),
        ("pwv_short", "mu"),
    }


SHAPES = [
    ("42\n", "holds a int, not the analyses"),
    ("[]\n", "holds a list, not the analyses"),
    ('{"cac_re": {}}\n', "has the key 'cac_re'"),
    ('{"analyses": {}, "questions": []}\n', '"analyses" is a dict'),
    ('{"analyses": []}\n', "has no key 'questions'"),
]


@pytest.mark.parametrize(("content", "fragment"), SHAPES)
def test_analyses_json_of_another_shape_is_refused(report, tmp_path, content, fragment):
    """Only the shape fit writes is read, even with --allow-modified (the old reader also took a
    list or an object of entries by name)."""
    results, _, _ = report
    copy = shutil.copytree(results, tmp_path / "results")
    (copy / "analyses.json").write_text(content, encoding="utf-8")
    with pytest.raises(ResultsError, match=re.escape(fragment)) as info:
        build_report(copy, allow_modified=True)
    assert "\n" not in str(info.value) and "analyses.json" in str(info.value)


def test_another_shape_is_exit_code_2_and_one_line(report, tmp_path):
    results, _, _ = report
    copy = shutil.copytree(results, tmp_path / "results")
    content, fragment = SHAPES[2]
    (copy / "analyses.json").write_text(content, encoding="utf-8")
    done = run_metak("report", "--out", copy, "--allow-modified", timeout=300)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], lines


def test_an_entry_missing_a_key_is_refused(report, tmp_path):
    results, _, _ = report
    copy = shutil.copytree(results, tmp_path / "results")
    raw = json.loads((copy / "analyses.json").read_text(encoding="utf-8"))
    del raw["analyses"][1]["outcome_meta"]
    (copy / "analyses.json").write_text(json.dumps(raw), encoding="utf-8")
    seal(copy)
    with pytest.raises(ResultsError, match=r"analyses\[1\] has no key 'outcome_meta'"):
        build_report(copy)


def test_missing_results_file_is_a_clear_error(tmp_path):
    results = make_results(tmp_path)
    (results / "analyses.json").unlink()
    with pytest.raises(
        ResultsError, match=r"analyses\.json: missing; fix: run `python -m metak fit`"
    ):
        build_report(results)


def test_robustness_check_analyses_are_not_drawn_again(report):
    """PET/PEESE analyses belong to their analysis' robustness checks: their numbers are in the
    robustness section and the summary table, not in another forest, prior and bubble figure."""
    results, text, figures = report
    inputs = load_inputs(results)
    checks = {name: info.check_of for name, info in inputs.analyses.items() if info.check_of}
    assert checks["cac_re_pet"] == "cac_re" and checks["cac_re_peese"] == "cac_re"
    kinds = ("forest", "prior", "bubble", "trace", "rank", "ppc", "deficiency")
    drawn = [
        f.key
        for f in figures
        for name in checks
        for kind in kinds
        if f.key == f"{kind}-{name}" or f.key.startswith(f"{kind}-{name}-")
    ]
    assert drawn == []
    assert "funnel-cac_re" in {f.key for f in figures}
    robustness = _section(text, "robustness")
    assert "cac_re_pet" in _text(_section(text, "summary")) and "PET" in _text(robustness)
    assert "<code>cac_re_pet</code>" in _section(text, "forest")  # said where they are
