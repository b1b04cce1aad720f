"""The batch table: every cell checked once, a bad review reported (file, line, column, value,
fix) and skipped without touching the others; the table as a whole refused in one line; Parquet
read as CSV; a review's analysis data the same as ``fit`` builds from the same rows."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from metak.batch.effect_sizes import read_effect_sizes
from metak.batch.outputs import review_folder
from metak.batch.progress import ReviewProgress
from metak.batch.records_input import read_records_table
from metak.batch.review_data import review_analysis_data
from metak.batch.seeds import SEED_BITS, review_seed
from metak.batch.table import read_table
from metak.derive import compute_effects
from metak.fitting.data import build_analysis_data
from metak.priors import parse_prior
from metak.records import load_records
from metak.spec import AnalysisSpec
from tests.batch_tables import record_rows, write_table
from tests.conftest import run_metak
from tests.synthetic import write_records


def _good(review: str, k: int = 3) -> list[dict]:
    return [
        {"review_id": review, "study_id": f"s{i}", "yi": f"0.{i + 1}", "vi": "0.04", "se": ""}
        for i in range(k)
    ]


def test_bad_cells_spoil_only_their_review(tmp_path):
    rows = _good("A") + _good("B") + _good("C") + _good("D") + _good("E") + _good("F")
    rows[4]["vi"] = "-1"  # B, line 6 (header = line 1)
    rows[6]["yi"] = "0,5"  # C, line 8
    rows[10]["se"] = "0.2"  # D, line 12: both vi and se
    rows[12]["yi"] = ""  # E, line 14
    rows[16]["study_id"] = "s0"  # F, line 18: s0 twice in one review
    path = write_table(rows, tmp_path / "t.csv")
    reviews = read_effect_sizes(read_table(path))
    assert reviews.order == ("A", "B", "C", "D", "E", "F")
    assert [str(p) for p in reviews.problems["B"]] == [
        f"{path}:6, column vi, value '-1': must be > 0; fix: check the variance"
    ]
    assert [str(p) for p in reviews.problems["C"]] == [
        f"{path}:8, column yi, value '0,5': not a number; fix: write a plain number such as 0.25 "
        "(ASCII digits, '.' as decimal point)"
    ]
    assert [str(p) for p in reviews.problems["D"]] == [
        f"{path}:12, column se, value '0.2': both vi and se given; fix: give one of them (vi = se²)"
    ]
    assert [str(p) for p in reviews.problems["E"]] == [
        f"{path}:14, column yi: empty, but every row needs it; fix: fill in yi"
    ]
    assert [(p.row, p.column) for p in reviews.problems["F"]] == [(18, "study_id")]
    assert set(reviews.problems) == {"B", "C", "D", "E", "F"}
    good = reviews.rows
    assert list(good["review_id"]) == ["A"] * 3
    np.testing.assert_array_equal(good["yi"], [0.1, 0.2, 0.3])
    np.testing.assert_array_equal(good["vi"], [0.04] * 3)
    assert list(good["line"]) == [2, 3, 4]


def test_a_bad_review_is_reported_and_the_batch_goes_on(tmp_path):
    rows = _good("A", 4) + _good("B", 4)
    rows[5]["vi"] = "abc"
    path = write_table(rows, tmp_path / "t.csv")
    done = run_metak("batch", path, "--out", tmp_path / "out", "--quiet", "--jobs", "1")
    assert done.returncode == 0, done.stderr
    status = pd.read_csv(tmp_path / "out" / "status.csv")
    assert list(status["review_id"]) == ["A", "B"]
    assert list(status["status"]) == ["ok", "bad_input"]
    assert status["message"][1].startswith(f"{path}:7, column vi, value 'abc': not a number")
    summary = pd.read_parquet(tmp_path / "out" / "summary.parquet")
    assert set(summary["review_id"]) == {"A"}


@pytest.mark.parametrize(
    ("header", "body", "name", "expected"),
    [
        ("study_id,yi,vi", "s1,0.1,0.04", "t.csv", "no review_id column in the header line"),
        ("review_id,yi", "A,0.1", "t.csv", "neither a vi nor an se column"),
        ("review_id,yi,yi", "A,0.1,0.2", "t.csv", "column 'yi' appears twice"),
        ("review_id,yi,vi", "A,0.1", "t.csv", "2 cells but the header has 3 columns"),
        ("review_id,yi,vi", "A,0.1,0.04", "t.txt", "unknown table format '.txt'"),
        ("review_id,study_id,n", "A,s1,12", "t.csv", "neither yi (effect sizes) nor the columns"),
    ],
)
def test_a_bad_table_is_one_line_and_exit_code_2(tmp_path, header, body, name, expected):
    path = tmp_path / name
    path.write_text(f"{header}\n{body}\n", encoding="utf-8")
    done = run_metak("batch", path, "--out", tmp_path / "out", "--quiet")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(str(path)) and expected in lines[0] and "fix:" in lines[0]
    assert not (tmp_path / "out" / "summary.parquet").exists()


def test_parquet_is_read_as_csv(tmp_path):
    rows = pd.DataFrame(
        {
            "review_id": ["A", "A", "B", "B"],
            "yi": [0.1, -0.25, 1e-3, 2.0],
            "vi": [0.04, 0.01, np.nan, 0.3],
            "se": [np.nan, np.nan, 0.1, np.nan],
            "x": [1.5, np.nan, 3.0, 4.0],
        }
    )
    rows.to_parquet(tmp_path / "t.parquet", index=False)
    rows.to_csv(tmp_path / "t.csv", index=False)
    from_parquet = read_effect_sizes(read_table(tmp_path / "t.parquet"))
    from_csv = read_effect_sizes(read_table(tmp_path / "t.csv"))
    pd.testing.assert_frame_equal(from_parquet.rows, from_csv.rows)
    assert from_parquet.moderators == from_csv.moderators == {"x": "numeric"}
    np.testing.assert_array_equal(from_parquet.rows["vi"], [0.04, 0.01, 0.1 * 0.1, 0.3])


def test_review_seeds_depend_on_the_batch_seed_and_review_id_only():
    seeds = {review_seed(7, f"review {i}") for i in range(1000)}
    assert len(seeds) == 1000  # distinct reviews, distinct seeds (no collision among 1,000)
    assert all(0 <= seed < 2**SEED_BITS for seed in seeds)
    assert review_seed(7, "review 3") == review_seed(7, "review 3")
    assert review_seed(7, "review 3") != review_seed(8, "review 3")


def _study_rows():
    """Studies with a numeric moderator (one missing) and a categorical one (three levels)."""
    rng = np.random.default_rng(4)
    groups = ["a", "b", "a", "c", "a", "b", "c", "a", "b", "a"]
    x = rng.normal(size=10)
    x[3] = np.nan
    return [
        {
            "study_id": f"s{i}",
            "x": None if np.isnan(x[i]) else repr(float(x[i])),
            "g": groups[i],
            "yi": repr(float(rng.normal())),
            "se": repr(float(rng.uniform(0.1, 0.3))),
        }
        for i in range(10)
    ]


@pytest.mark.parametrize("center", [{}, {"x": "none"}, {"x": 0.5}], ids=["mean", "none", "value"])
def test_review_data_is_what_fit_builds_from_the_same_rows(tmp_path, center):
    studies = _study_rows()
    directory = write_records(
        tmp_path / "r",
        studies,
        [(s["study_id"], "y", float(s["yi"]), float(s["se"])) for s in studies],
        ["x", "g"],
    )
    records = load_records(directory, provenance="off")
    spec = AnalysisSpec(
        name="mr",
        outcome="y",
        model="meta_regression",
        moderators=("x", "g"),
        center=center,
        priors={"tau": parse_prior("halfnormal(1)")},
    )
    expected = build_analysis_data(compute_effects(records).effects, records, spec)
    table = [
        {
            "review_id": "R",
            "study_id": s["study_id"],
            "outcome": "y",
            "measure": "MD",
            "yi": s["yi"],
            "se": s["se"],
            "x": s["x"] or "",
            "g": s["g"],
        }
        for s in studies
    ]
    reviews = read_effect_sizes(read_table(write_table(table, tmp_path / "t.csv")))
    got = review_analysis_data(reviews.rows, spec, reviews)
    for name in ("y", "v", "v_conversion", "X", "X_raw"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=name)
    for name in (
        "row_label",
        "study_id",
        "outcome",
        "moderator_names",
        "centers",
        "excluded",
        "notes",
        "directions",
    ):
        assert getattr(got, name) == getattr(expected, name), name
    assert got.k == 9  # s3 dropped: complete case


def test_record_rows_are_checked_by_the_records_rules_at_their_table_lines(tmp_path, reference_dir):
    rows = record_rows(reference_dir)
    rows[next(i for i, row in enumerate(rows) if row.get("sd"))]["sd"] = "-5"
    first_bcg = next(i for i, row in enumerate(rows) if row["review_id"] == "bcg_logRR")
    rows[first_bcg + 1]["ablat"] = "44"  # study 2 now says 44 on one row...
    rows.insert(
        first_bcg + 2, dict(rows[first_bcg + 1], ablat="55", estimate="", se="", measure="")
    )  # ...and 55 on a study-only row
    path = write_table(rows, tmp_path / "t.csv")
    reviews = read_records_table(read_table(path))
    normand = [str(p) for p in reviews.problems["escalc_normand1999"]]
    line = next(i for i, row in enumerate(rows) if row.get("sd") == "-5") + 2  # header: line 1
    assert normand == [
        f"{path}:{line}, column sd, value '-5': out of range: must be > 0; "
        "fix: check the value against the source"
    ]
    bcg = reviews.problems["bcg_logRR"]
    assert [(p.row, p.column, p.value) for p in bcg] == [(first_bcg + 4, "ablat", "55")]
    assert list(dict.fromkeys(reviews.rows["review_id"])) == ["raudenbush1985_SMD"]


def test_posterior_files_only_on_request(tmp_path):
    rows = _good("A", 4) + _good("B/odd id", 4)
    path = write_table(rows, tmp_path / "t.csv")
    done = run_metak(
        "batch", path, "--out", tmp_path / "out", "--quiet", "--jobs", "1", "--posterior"
    )
    assert done.returncode == 0, done.stderr
    files = sorted(
        p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.nc")
    )
    odd = review_folder("B/odd id")
    assert odd.startswith("B_odd_id_") and "/" not in odd
    expected = {
        f"posterior/{folder}/{name}.nc"
        for folder in ("A", odd)
        for name in ("re_effect", "re_effect_pet", "re_effect_peese")
    }
    assert set(files) == expected
    summary = pd.read_parquet(tmp_path / "out" / "summary.parquet")
    tree = xr.open_datatree(tmp_path / "out" / "posterior" / "A" / "re_effect.nc")
    rows_a = summary[(summary["review_id"] == "A") & (summary["analysis"] == "re_effect")]
    np.testing.assert_array_equal(tree["summary"]["mean"].values, rows_a["mean"].to_numpy())
    assert tree.attrs["metak_seed"] == review_seed(20261122, "A")
    without = run_metak("batch", path, "--out", tmp_path / "plain", "--quiet", "--jobs", "1")
    assert without.returncode == 0 and not (tmp_path / "plain" / "posterior").exists()


def test_progress_is_a_line_per_tenth_in_a_log_and_nothing_when_quiet():
    log = io.StringIO()
    progress = ReviewProgress(total=200, done=40, stream=log)
    for _ in range(16):
        progress.advance(10)
    lines = log.getvalue().splitlines()
    assert [line.split(" reviews")[0].strip() for line in lines] == [
        f"{n}/200" for n in (60, 80, 100, 120, 140, 160, 180, 200)
    ]
    assert lines[-1].strip().startswith("200/200 reviews (100%)")
    quiet = ReviewProgress(total=200, stream=None)
    quiet.advance(200)  # nothing to write to: nothing written, no error
