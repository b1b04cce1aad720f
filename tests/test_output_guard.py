"""Where results may be written: containment, the manifest marker and the Python API's rule.

The command-line faults are in ``tests/faults/test_output_faults.py``; these tests check the
pieces directly, and the writer and ``metak.write_results`` on a real (exact, fast) fit.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from dataclasses import replace
from pathlib import Path

import pytest

import metak
from metak.errors import ConfigError
from metak.output.guard import ResultPaths, UnsafePathError, check_out_dir, contained
from metak.output.integrity import (
    MARKER_KEY,
    listed_name_ok,
    read_manifest,
    seal_manifest,
    verify_results,
)

RECORDS_BASE = Path(__file__).parent / "data" / "records_base"
ONE_ANALYSIS = '[[analysis]]\nname = "pwv"\noutcome = "pwv_cf"\nmodel = "random_effects"\n'


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    root = tmp_path_factory.mktemp("fit")
    shutil.copytree(RECORDS_BASE, root / "studies")
    (root / "one.toml").write_text(ONE_ANALYSIS, encoding="utf-8")
    records = metak.load_studies(root / "studies", provenance="off")
    return metak.fit(records, config=root / "one.toml", seed=3)


def test_contained_refuses_dot_dot_and_links_out(tmp_path):
    root = tmp_path / "results"
    (root / "posterior").mkdir(parents=True)
    assert contained(root, root / "posterior" / "a.nc") == root / "posterior" / "a.nc"
    with pytest.raises(UnsafePathError, match=r"a\.nc: resolves to .*, outside the results folder"):
        contained(root, root / "posterior" / ".." / ".." / "a.nc")
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(UnsafePathError):
        contained(root, root / "link" / "a.nc")
    with pytest.raises(UnsafePathError):
        contained(root, root)


@pytest.mark.parametrize("name", ["../victim", "a/b", "..", ".", "", "a\\b", "x\0y"])
def test_posterior_names_must_be_plain(tmp_path, name):
    with pytest.raises(UnsafePathError, match="refusing to write it"):
        ResultPaths(tmp_path).posterior(name)
    assert list(tmp_path.iterdir()) == []


def test_a_posterior_folder_that_links_out_is_refused(tmp_path):
    root = tmp_path / "results"
    root.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (root / "posterior").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafePathError, match="outside the results folder"):
        ResultPaths(root).posterior("pwv")


def test_writer_refuses_an_analysis_name_leading_out(tmp_path, fitted):
    evil = replace(fitted, analyses={"../../victim": fitted.analyses["pwv"]})
    out = tmp_path / "project" / "results"
    out.parent.mkdir()
    with pytest.raises(ConfigError, match=r"analysis name '\.\./\.\./victim'"):
        metak.write_results(evil, out)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["project"]


def test_written_results_carry_marker_and_hashes(tmp_path, fitted):
    out = metak.write_results(fitted, tmp_path / "results")
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert list(manifest)[0] == MARKER_KEY and manifest[MARKER_KEY] == {"format": 1}
    written = sorted(
        p.relative_to(out).as_posix()
        for p in out.rglob("*")
        if p.is_file() and p.name not in ("manifest.json", "report.html")
    )
    assert sorted(manifest["files"]) == written
    assert "posterior/pwv.nc" in written and "README.md" in written
    assert verify_results(out).problems == ()


def test_python_api_follows_the_out_rule(tmp_path, fitted):
    (tmp_path / "notes.txt").write_text("mine\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"out_dir='.*': a folder with other content"):
        metak.write_results(fitted, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("summary.csv", True),
        ("posterior/a.nc", True),
        ("posterior/a.txt", False),
        ("posterior/x/a.nc", False),
        ("../a.csv", False),
        ("/etc/passwd", False),
        ("a/../b.csv", False),
        ("./a.csv", False),
        ("manifest.json", False),
        ("report.html", False),
        ("posterior", False),
    ],
)
def test_manifest_lists_only_what_fit_writes(name, ok):
    assert listed_name_ok(name) is ok


def test_a_manifest_naming_a_path_fit_never_writes_is_not_metaks(tmp_path):
    (tmp_path / "a.csv").write_text("x\n", encoding="utf-8")
    sealed = seal_manifest({}, tmp_path, ["a.csv"])
    (tmp_path / "manifest.json").write_text(json.dumps(sealed), encoding="utf-8")
    assert read_manifest(tmp_path) is not None
    sealed["files"]["../outside.csv"] = sealed["files"]["a.csv"]
    (tmp_path / "manifest.json").write_text(json.dumps(sealed), encoding="utf-8")
    assert read_manifest(tmp_path) is None


def test_results_follow_the_umask(tmp_path, fitted):
    previous = os.umask(0o027)
    try:
        out = metak.write_results(fitted, tmp_path / "results")
    finally:
        os.umask(previous)
    for path in [out, *out.rglob("*")]:
        expected = 0o750 if path.is_dir() else 0o640
        assert stat.S_IMODE(path.stat().st_mode) == expected, path


def test_the_out_rule_works_without_a_home_folder(tmp_path, monkeypatch):
    def no_home():
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    check_out_dir(tmp_path / "results")  # a new folder: fine
    with pytest.raises(ConfigError, match="is the filesystem root"):
        check_out_dir(Path("/"))
