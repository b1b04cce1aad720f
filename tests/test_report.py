"""The HTML report, built from a fixture results directory (no model is fitted)."""

from __future__ import annotations

import re
import subprocess
import sys
from html.parser import HTMLParser

import pytest

from metak.report import ResultsError, build_report
from tests.report_fixture import SCRIPT_STUDY, make_results, seal

SECTIONS = ("question", "forest", "posterior", "metaregression", "diagnostics", "summary", "claims")


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


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    results = make_results(tmp_path_factory.mktemp("report"), converged=False)
    path = build_report(results)
    return results, path.read_text(encoding="utf-8")


def test_written_beside_the_results(report):
    results, _ = report
    assert (results / "report.html").is_file()
    assert not list(results.glob(".report.html.*")), "temporary file left behind"


def test_every_section_present_with_a_heading(report):
    _, text = report
    for section_id in SECTIONS:
        match = re.search(rf'<section id="{section_id}">\s*<h2>[^<]+</h2>', text)
        assert match, f"section {section_id} missing or without heading"
    assert text.count("<svg") >= 3 + 3 + 1 + 3, (
        "forest, prior/posterior, bubble and diagnostics figures"
    )


def test_nothing_external(report):
    _, text = report
    page = _Collect()
    page.feed(text)
    assert not {"script", "link", "img", "iframe", "object", "embed", "image"} & set(page.tags)
    for tag, name, value in page.attrs:
        assert "://" not in value and not value.strip().startswith("//"), (tag, name, value)
        if name.endswith("href"):
            assert value.startswith("#"), (tag, name, value)
        assert name != "src", (tag, name, value)
    css = "".join(page.styles)
    assert "@import" not in css and not re.search(r"url\((?!#)", css)
    # Any URL left is data shown as text (a claim's source), never markup.
    in_text = "".join(page.text)
    for scheme in ("http://", "https://"):
        assert text.count(scheme) == in_text.count(scheme)
    assert 'src="//' not in text


def test_data_is_escaped(report):
    _, text = report
    assert "<script" not in text.lower()
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    # In the data summary (HTML) and in the forest plot (SVG text written by matplotlib).
    assert text.count(escaped) >= 2
    assert "<b>Acme</b>" not in text and "&lt;b&gt;Acme&lt;/b&gt;" in text
    page = _Collect()
    page.feed(text)
    assert SCRIPT_STUDY in "".join(page.text)


def test_non_converged_analysis_gets_a_banner(report):
    _, text = report
    banner = re.search(r'<div class="banner"[^>]*>(.*?)</div>', text, re.S)
    assert banner and "pwv_dose" in banner.group(1) and "target_accept" in banner.group(1)
    assert text.index('class="banner"') < text.index('<section id="question">')


def test_no_banner_when_all_converged(tmp_path):
    text = build_report(make_results(tmp_path, converged=True)).read_text(encoding="utf-8")
    assert 'class="banner"' not in text


def test_plain_words(report):
    _, text = report
    assert "lower is better: a negative effect favours vitamin K" in text
    assert "higher is better: a positive effect favours vitamin K" in text
    assert "2 imputed: Vossen 2020, Haroon 2023" in text
    assert text.count("Exact posterior: no sampler") == 2
    assert "Divergent transitions: <strong>7</strong>" in text
    assert re.search(
        r"Vitamin K slows coronary calcification, claimed by .*?supported</span> \(P = 0\.99\) "
        r"because",
        text,
    )
    assert "contradicted</span> (P = 0.03)" in text
    assert "not assessable</span> because no analysis covers fractures" in text


def test_rebuild_is_byte_identical(tmp_path):
    first = build_report(make_results(tmp_path / "a")).read_bytes()
    again = build_report(make_results(tmp_path / "a")).read_bytes()
    elsewhere = build_report(make_results(tmp_path / "b")).read_bytes()
    assert first == again == elsewhere


def test_figures_closed(report):
    plt = pytest.importorskip("matplotlib.pyplot")
    assert plt.get_fignums() == []


def test_mcmc_diagnostic_figures(report):
    """The fixture's MCMC analysis gets a trace, a rank and a predictive-check figure, with its
    divergent transitions marked on the trace; exact analyses get none of them."""
    _, text = report
    diagnostics = re.search(r'<section id="diagnostics">(.*?)</section>', text, re.S).group(1)
    assert diagnostics.count("<svg") == 3
    assert "Trace by chain" in diagnostics and "Rank histograms by chain" in diagnostics
    assert "Posterior predictive check" in diagnostics
    assert "#c00000" in diagnostics  # the divergence marks (the fixture has divergent draws)


def test_exact_results_are_reported_without_arviz_plots(tmp_path):
    """Exact fits need no sampler plots, so the report must not import arviz-plots (about
    1.3 s of start-up): keep only the fixture's exact analyses and build in a fresh process."""
    import json

    import pandas as pd

    results = make_results(tmp_path)
    info = json.loads((results / "analyses.json").read_text(encoding="utf-8"))
    exact = {name for name, entry in info.items() if entry["method"] == "exact"}
    assert exact and len(exact) < len(info)
    (results / "analyses.json").write_text(
        json.dumps({name: info[name] for name in exact}), encoding="utf-8"
    )
    for table in ("summary.csv", "study_effects.csv"):
        frame = pd.read_csv(results / table)
        frame[frame["analysis"].isin(exact)].to_csv(results / table, index=False)
    for path in (results / "posterior").glob("*.nc"):
        if path.stem not in exact:
            path.unlink()
    seal(results)  # these edits are the test's, not a user's: the report must accept them
    code = (
        "import sys\n"
        "from metak.report import build_report\n"
        f"text = build_report({str(results)!r}).read_text(encoding='utf-8')\n"
        "print('arviz_plots' in sys.modules, text.count('<svg'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    imported, figures = done.stdout.split()
    assert imported == "False"
    assert int(figures) >= 2 * len(exact)  # a forest plot and a prior/posterior figure each


def test_missing_results_file_is_a_clear_error(tmp_path):
    results = make_results(tmp_path)
    (results / "analyses.json").unlink()
    with pytest.raises(
        ResultsError, match=r"analyses\.json: missing; fix: run `python -m metak fit`"
    ):
        build_report(results)
