"""Result directories are replaced whole or not at all, and concurrent runs refuse.

Leftovers of killed runs are cleaned only when metak made them (marked work directories); a
failed write is one line; files and folders get the umask's modes.
"""

import errno
import os
import stat

import pytest

from metak.errors import OutputError
from metak.output.files import (
    WORK_MARKER,
    ResultsLocked,
    results_transaction,
    write_csv_atomic,
    write_text_atomic,
)


def test_success_replaces_whole_directory(tmp_path):
    target = tmp_path / "results"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with results_transaction(target) as staging:
        (staging / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["results"]  # no staging or lock left


def test_failure_keeps_previous_results(tmp_path):
    target = tmp_path / "results"
    target.mkdir()
    (target / "good.txt").write_text("good")
    with pytest.raises(RuntimeError), results_transaction(target) as staging:
        (staging / "half.txt").write_text("half")
        raise RuntimeError("boom")
    assert (target / "good.txt").read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["results"]


def test_live_lock_refuses_and_stale_lock_is_taken(tmp_path):
    target = tmp_path / "results"
    lock = tmp_path / ".results.lock"
    lock.write_text(str(os.getpid()))  # a live process holds it
    with pytest.raises(ResultsLocked), results_transaction(target):
        pass
    lock.write_text("999999999")  # no such process: stale
    with results_transaction(target) as staging:
        (staging / "x").write_text("x")
    assert (target / "x").exists()


def _work_dir(parent, name, payload=None):
    """A leftover work directory as a killed run leaves it (marker, maybe results inside)."""
    work = parent / name
    work.mkdir()
    (work / WORK_MARKER).write_text("metak 1\n")
    if payload is not None:
        (work / "results").mkdir()
        (work / "results" / "summary.csv").write_text(payload)
    return work


def test_only_marked_leftovers_are_removed(tmp_path):
    target = tmp_path / "results"
    mine = tmp_path / ".results.new-foo"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    (tmp_path / ".results.old-bar").write_text("mine too")
    _work_dir(tmp_path, ".results.new-dead")
    _work_dir(tmp_path, ".results.old-dead", payload="old")
    with results_transaction(target) as staging:
        (staging / "x").write_text("x")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".results.new-foo",
        ".results.old-bar",
        "results",
    ]
    assert (mine / "keep.txt").read_text() == "mine"


def test_previous_results_of_a_run_killed_mid_swap_are_put_back(tmp_path):
    # Killed after moving the old results aside, before moving the new ones in: no target.
    target = tmp_path / "results"
    _work_dir(tmp_path, ".results.old-dead", payload="previous")
    with pytest.raises(RuntimeError), results_transaction(target):
        raise RuntimeError("this run fails too")
    assert (target / "summary.csv").read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["results"]


def test_a_users_lock_file_is_refused_and_kept(tmp_path):
    lock = tmp_path / ".results.lock"
    lock.write_text("notes about locks\n")
    with pytest.raises(ResultsLocked, match=r"not a metak lock file; fix: move it away"):
        with results_transaction(tmp_path / "results"):
            pass
    assert lock.read_text() == "notes about locks\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".results.lock"]


def test_a_failed_write_is_one_line_naming_the_path(tmp_path):
    target = tmp_path / "results"
    target.mkdir()
    (target / "good.txt").write_text("good")
    with pytest.raises(OutputError) as caught, results_transaction(target) as staging:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(staging / "a.nc"))
    message = str(caught.value)
    assert message == (
        f"error: {staging / 'a.nc'}: no space left on device; previous results untouched; "
        "fix: free space, or use --out on another disk"
    )
    assert (target / "good.txt").read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["results"]


@pytest.fixture
def umask_027():
    previous = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(previous)


def test_files_and_folders_follow_the_umask(tmp_path, umask_027):
    import pandas as pd

    with results_transaction(tmp_path / "results") as staging:
        write_csv_atomic(pd.DataFrame({"a": [1]}), staging / "summary.csv")
        write_text_atomic(staging / "report.html", "<p>")
    results = tmp_path / "results"
    assert stat.S_IMODE(results.stat().st_mode) == 0o750
    for name in ("summary.csv", "report.html"):
        assert stat.S_IMODE((results / name).stat().st_mode) == 0o640, name
