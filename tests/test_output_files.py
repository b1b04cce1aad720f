"""Result directories are replaced whole or not at all, and concurrent runs refuse."""

import os

import pytest

from metak.output.files import ResultsLocked, results_transaction


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
