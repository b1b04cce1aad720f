"""The harness itself: it must notice a changed file, a second stderr line and a wrong code."""

from __future__ import annotations

import pytest

from tests.faults.harness import Case, changed_paths, make_world, run_case, snapshot


def test_harness_accepts_a_clean_validate(tmp_path):
    case = Case(
        "validate_ok", ("validate", "--studies", "{studies}", "--provenance", "off"), 0, None
    )
    run_case(case, tmp_path)


def test_harness_notices_changed_created_and_deleted_files(tmp_path):
    world = make_world(tmp_path)
    before = snapshot(world.root)
    (world.outside / "keep.txt").write_text("changed\n", encoding="utf-8")
    (world.project / "notes.txt").unlink()
    (world.outside / "new.txt").write_text("new\n", encoding="utf-8")
    (world.project / "out").mkdir()
    (world.project / "out" / "x").write_text("x", encoding="utf-8")
    after = snapshot(world.root)
    changed = changed_paths(before, after, world, creates=("project/out",))
    assert changed == sorted(
        str(p)
        for p in (
            world.outside / "keep.txt",
            world.project / "notes.txt",
            world.outside / "new.txt",
        )
    )


def test_harness_rejects_wrong_exit_code(tmp_path):
    case = Case("wrong_code", ("validate", "--studies", "{world}/nope"), 0, None)
    with pytest.raises(AssertionError):
        run_case(case, tmp_path)


def test_harness_rejects_a_second_stderr_line(tmp_path):
    # Two problems in one file give two lines: a case expecting one line must fail.
    def two_problems(world):
        path = world.studies / "arms.csv"
        text = path.read_text(encoding="utf-8").replace(",120,", ",-120,").replace(",124,", ",x,")
        path.write_text(text, encoding="utf-8")

    case = Case(
        "two_lines",
        ("validate", "--studies", "{studies}", "--provenance", "off"),
        2,
        "arms.csv",
        setup=two_problems,
    )
    with pytest.raises(AssertionError):
        run_case(case, tmp_path)
