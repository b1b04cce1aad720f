"""load_records on valid directories: types, defaults, derived columns, moderators, warnings."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from metak import records as records_module
from metak.errors import InputError
from metak.records import bundled_studies_dir, load_records

BASE = Path(__file__).parent / "data" / "records_base"
WEEKS_TO_MONTHS = 7 / (365.25 / 12)


@pytest.fixture
def base(tmp_path) -> Path:
    directory = tmp_path / "records"
    shutil.copytree(BASE, directory)
    return directory


def test_tables_are_typed(base):
    records = load_records(base)
    assert records.directory == base
    for frame in (records.studies, records.arms, records.contrasts, records.outcomes):
        assert "line" in frame.columns
    for column in (
        "n",
        "mean",
        "sd",
        "se",
        "sem",
        "median",
        "q1",
        "q3",
        "min",
        "max",
        "time_months",
    ):
        assert records.arms[column].dtype == np.float64
    for column in ("estimate", "se", "ci_low", "ci_high", "p_value", "n_treatment"):
        assert records.contrasts[column].dtype == np.float64
    assert records.arms["study_id"].dtype == object
    assert records.arms["line"].tolist() == [2, 3, 4, 5, 6]
    assert math.isnan(records.arms.loc[2, "n"])  # arm 'all' baseline row without n
    assert records.arms.loc[0, "mean"] == pytest.approx(-0.36)
    assert records.arms["se"].isna().all()  # optional column absent from the file


def test_defaults_filled(base):
    records = load_records(base)
    contrast = records.contrasts.iloc[0]
    assert contrast["order"] == "t-c"
    assert contrast["ci_level"] == 0.95
    outcomes = records.outcomes.set_index("outcome")
    assert outcomes.loc["pwv_cf", "measure"] == "MD"
    assert outcomes.loc["pwv_cf", "prepost_r"] == 0.5
    assert outcomes.loc["dpucmgp", "prepost_r"] == 0.6
    assert records.studies.set_index("study_id").loc["Alpha2015", "include"] == "yes"


def test_derived_dose_and_duration(base):
    studies = load_records(base).studies.set_index("study_id")
    assert studies.loc["Alpha2015", "dose_ug_day"] == 180.0
    assert studies.loc["Alpha2015", "duration_months"] == 36.0
    assert studies.loc["Beta2019", "dose_ug_day"] == pytest.approx(2000 / 7)
    assert studies.loc["Beta2019", "duration_months"] == pytest.approx(24 * WEEKS_TO_MONTHS)


def test_moderators(base):
    path = base / "studies.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[0] += ",region"
    lines[1] += ",Europe"
    lines[2] += ",Asia"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    records = load_records(base)
    assert records.moderators["ablat"] == "numeric"
    assert records.moderators["region"] == "categorical"
    for name in ("dose_ug_day", "duration_months", "baseline_dpucmgp", "year"):
        assert records.moderators[name] == "numeric"
    assert records.studies["ablat"].dtype == np.float64
    assert records.studies["region"].tolist() == ["Europe", "Asia"]


def test_implicit_outcomes(base):
    (base / "outcomes.csv").unlink()
    outcomes = load_records(base).outcomes
    assert outcomes["outcome"].tolist() == ["pwv_cf", "dpucmgp"]
    assert set(outcomes["direction"]) == {"unspecified"}
    assert set(outcomes["measure"]) == {"MD"}
    assert outcomes["prepost_r"].tolist() == [0.5, 0.5]
    assert outcomes["unit"].tolist() == ["m/s", "pmol/L"]
    assert outcomes["line"].isna().all()


def test_auto_warns_once_for_files_without_provenance(base):
    (base / "contrasts.csv").write_text(
        "study_id,outcome,measure,estimate,se\nAlpha2015,pwv_cf,MD,-0.51,0.2\n", encoding="utf-8"
    )
    records = load_records(base)
    assert records.warnings == (
        "provenance not checked for contrasts.csv: no source or quote column",
    )
    with pytest.raises(InputError) as info:
        load_records(base, provenance="strict")
    assert [p.column for p in info.value.problems] == [None, None]
    assert "column source missing, but provenance is strict" in str(info.value)
    assert load_records(base, provenance="off").warnings == ()


def test_strict_requires_quotes_of_study_numbers(base):
    path = base / "studies.csv"
    path.write_text(
        path.read_text(encoding="utf-8").replace("PMID:22222222,", ",", 1), encoding="utf-8"
    )
    with pytest.raises(InputError) as info:
        load_records(base, provenance="strict")
    assert [(p.row, p.column) for p in info.value.problems] == [(3, "source")]


def test_off_skips_quote_check(base):
    path = base / "arms.csv"
    path.write_text(path.read_text(encoding="utf-8").replace(",1.3,", ",1.4,"), encoding="utf-8")
    with pytest.raises(InputError):
        load_records(base)
    assert load_records(base, provenance="off").arms.loc[1, "sd"] == 1.4


def test_bcg_like_contrast_only_directory(tmp_path):
    directory = tmp_path / "bcg"
    directory.mkdir()
    (directory / "studies.csv").write_text(
        "study_id,year,ablat\nAronson1948,1948,44\nFerguson1949,1949,55\nRosenthal1960,1960,42\n",
        encoding="utf-8",
    )
    (directory / "contrasts.csv").write_text(
        "study_id,outcome,measure,estimate,se\n"
        "Aronson1948,tb,logRR,-0.8893,0.5706\n"
        "Ferguson1949,tb,logRR,-1.5854,0.4411\n"
        "Rosenthal1960,tb,logRR,-1.3481,0.4159\n",
        encoding="utf-8",
    )
    records = load_records(directory)
    assert len(records.warnings) == 1
    assert "contrasts.csv" in records.warnings[0] and "studies.csv" in records.warnings[0]
    assert records.moderators["ablat"] == "numeric"
    assert records.arms.empty and "mean" in records.arms.columns
    assert records.contrasts["estimate"].tolist() == [-0.8893, -1.5854, -1.3481]
    assert records.outcomes["outcome"].tolist() == ["tb"]
    assert records.outcomes["direction"].tolist() == ["unspecified"]


def test_missing_directory(tmp_path):
    with pytest.raises(InputError) as info:
        load_records(tmp_path / "nowhere")
    assert str(info.value).endswith(
        "nowhere: directory not found; fix: give an existing study-records directory"
    )


def test_a_dangling_link_is_reported_not_skipped(base):
    # A skipped arms.csv left the fit with fewer studies and exit 0.
    (base / "arms.csv").unlink()
    (base / "arms.csv").symlink_to(base / "gone" / "arms.csv")
    (base / "claims.csv").symlink_to("claims.csv")
    with pytest.raises(InputError) as info:
        load_records(base)
    assert [str(p) for p in info.value.problems] == [
        f"{base}/claims.csv: a symbolic link to claims.csv, which loops (too many levels of "
        "symbolic links); fix: point it at an existing file or remove it",
        f"{base}/arms.csv: a symbolic link to {base}/gone/arms.csv, which does not exist; "
        "fix: point it at an existing file or remove it",
    ]


def test_links_to_regular_files_and_directories_are_read(base, tmp_path):
    (tmp_path / "arms.csv").write_bytes((base / "arms.csv").read_bytes())
    (base / "arms.csv").unlink()
    (base / "arms.csv").symlink_to(tmp_path / "arms.csv")
    (tmp_path / "review").symlink_to(base)
    records = load_records(tmp_path / "review")
    assert len(records.arms) == 5


def test_row_limit(base, monkeypatch):
    # The byte limit alone would let 256 MiB of two-byte lines become 134 million rows.
    monkeypatch.setattr(records_module, "MAX_ROWS", 3)
    with pytest.raises(InputError) as info:
        load_records(base)
    assert [str(p) for p in info.value.problems] == [
        f"{base}/arms.csv:5: more than 3 rows, the limit per file; "
        "fix: check that this is the right file"
    ]
    monkeypatch.setattr(records_module, "MAX_ROWS", 5)  # exactly the limit is allowed
    assert len(load_records(base).arms) == 5


def test_unknown_provenance_mode_is_a_programming_error(base):
    with pytest.raises(ValueError, match="provenance"):
        load_records(base, provenance="lenient")


def test_bundled_studies_dir():
    assert bundled_studies_dir() == Path(__file__).resolve().parents[1] / "studies"
