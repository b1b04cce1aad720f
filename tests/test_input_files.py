"""The bounded reader: regular files only, size checked on the descriptor, reads cut at limit + 1.

In-process and without hypothesis: each test builds one kind of file and checks the one line
metak gives for it, or the bytes it reads.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from pathlib import Path

import pytest

from metak import input_files
from metak.errors import InputError
from metak.input_files import (
    CLAIMS_LIMIT,
    CONFIG_LIMIT,
    CSV_LIMIT,
    directory_problem,
    file_problem,
    read_input_file,
)

# A read that blocks (a FIFO opened without O_NONBLOCK) is stopped after this long.
BLOCKED_AFTER_S = 10


@contextlib.contextmanager
def _fail_if_blocked():
    def blocked(signum, frame):
        raise AssertionError(f"blocked for {BLOCKED_AFTER_S} s")

    previous = signal.signal(signal.SIGALRM, blocked)
    signal.alarm(BLOCKED_AFTER_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _message(path, limit=CSV_LIMIT, **kwargs) -> str:
    with pytest.raises(InputError) as info:
        read_input_file(path, limit, **kwargs)
    assert len(info.value.problems) == 1
    return str(info.value.problems[0])


def test_limits_leave_the_bundled_inputs_a_hundredfold_margin():
    studies = Path(__file__).resolve().parents[1] / "studies"
    margin = 100
    for name in ("studies.csv", "arms.csv", "contrasts.csv", "outcomes.csv"):
        assert (studies / name).stat().st_size * margin < CSV_LIMIT
    assert (studies / "claims.csv").stat().st_size * margin < CLAIMS_LIMIT
    assert (studies / "analyses.toml").stat().st_size * margin < CONFIG_LIMIT


def test_readme_states_the_limits():
    from metak.records import MAX_ROWS

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    rule = " ".join(readme.split("- Size limits:")[1].split("\n- ")[0].split())
    assert (
        f"each CSV of the directory at most {CSV_LIMIT // 2**20} MiB and {MAX_ROWS:,} rows" in rule
    )
    assert f"`claims.csv` at most {CLAIMS_LIMIT // 2**20} MiB" in rule
    assert f"(`analyses.toml` or `--config`) at most {CONFIG_LIMIT // 2**20} MiB" in rule


def test_regular_file_and_link_to_one_are_read_whole(tmp_path):
    path = tmp_path / "arms.csv"
    path.write_bytes(b"a,b\n1,2\n")
    (tmp_path / "link.csv").symlink_to(path)
    assert read_input_file(path, 8) == b"a,b\n1,2\n"  # exactly the limit is allowed
    assert read_input_file(tmp_path / "link.csv", 8) == b"a,b\n1,2\n"
    assert file_problem(tmp_path / "link.csv") is None


def test_one_byte_over_the_limit(tmp_path):
    path = tmp_path / "arms.csv"
    path.write_bytes(b"a,b\n1,2\n")
    assert _message(path, 7, what="study-records file") == (
        f"{path}: 8 bytes, over the 7 bytes limit for a study-records file; "
        "fix: check that this is the right file (a study-records file is far smaller)"
    )


def test_sparse_file_over_the_csv_limit_is_refused_by_its_size(tmp_path):
    path = tmp_path / "arms.csv"
    with open(path, "wb") as handle:
        handle.truncate(CSV_LIMIT + 1)  # sparse: no disk space, no bytes written
    assert _message(path, what="study-records file") == (
        f"{path}: 256.0 MiB (268,435,457 bytes), over the 256 MiB limit for a study-records "
        "file; fix: check that this is the right file (a study-records file is far smaller)"
    )


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux /proc")
def test_file_that_lies_about_its_size_is_cut_at_the_limit():
    # /proc files are regular files that report size 0 and hold more.
    assert os.stat("/proc/self/status").st_size == 0
    assert _message("/proc/self/status", 100, what="claims file") == (
        "/proc/self/status: more than its reported 0 bytes, over the 100 bytes limit for a "
        "claims file; fix: check that this is the right file (a claims file is far smaller)"
    )


def test_file_that_grows_after_the_size_check_is_cut_at_the_limit(tmp_path, monkeypatch):
    path = tmp_path / "claims.csv"
    path.write_bytes(b"x" * 90)
    real_fstat = os.fstat

    def fstat_then_grow(fd):
        info = real_fstat(fd)
        with open(path, "ab") as handle:  # a writer appends right after the check
            handle.write(b"y" * 1000)
        return info

    monkeypatch.setattr(input_files.os, "fstat", fstat_then_grow)
    assert _message(path, 100, what="claims file").startswith(
        f"{path}: more than its reported 90 bytes, over the 100 bytes limit for a claims file"
    )


def test_never_more_than_limit_plus_one_bytes_from_an_endless_source(monkeypatch):
    monkeypatch.setattr(input_files, "_CHUNK", 7)  # several reads, each one bounded
    fd = os.open("/dev/zero", os.O_RDONLY)
    try:
        assert input_files._read_at_most(fd, 100) == b"\0" * 101
    finally:
        os.close(fd)


def test_dangling_link(tmp_path):
    (tmp_path / "arms.csv").symlink_to("/nope/arms.csv")
    assert _message(tmp_path / "arms.csv") == (
        f"{tmp_path}/arms.csv: a symbolic link to /nope/arms.csv, which does not exist; "
        "fix: point it at an existing file or remove it"
    )


def test_link_loop(tmp_path):
    (tmp_path / "arms.csv").symlink_to("other.csv")
    (tmp_path / "other.csv").symlink_to("arms.csv")
    assert _message(tmp_path / "arms.csv") == (
        f"{tmp_path}/arms.csv: a symbolic link to other.csv, which loops (too many levels of "
        "symbolic links); fix: point it at an existing file or remove it"
    )


def test_directory(tmp_path):
    (tmp_path / "arms.csv").mkdir()
    assert _message(tmp_path / "arms.csv") == (
        f"{tmp_path}/arms.csv: a directory, not a regular file; fix: replace it with a regular file"
    )


def test_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "arms.csv")
    with _fail_if_blocked():
        message = _message(tmp_path / "arms.csv")
    assert message == (
        f"{tmp_path}/arms.csv: a named pipe (FIFO), not a regular file; "
        "fix: replace it with a regular file"
    )


def test_fifo_swapped_in_after_the_check_is_refused_on_the_descriptor(tmp_path, monkeypatch):
    os.mkfifo(tmp_path / "arms.csv")
    monkeypatch.setattr(input_files, "file_problem", lambda *args, **kwargs: None)
    with _fail_if_blocked():
        message = _message(tmp_path / "arms.csv")
    assert message == (
        f"{tmp_path}/arms.csv: a named pipe (FIFO), not a regular file; fix: give a regular file"
    )


def test_device_behind_a_link(tmp_path):
    (tmp_path / "contrasts.csv").symlink_to("/dev/zero")
    assert _message(tmp_path / "contrasts.csv") == (
        f"{tmp_path}/contrasts.csv: a symbolic link to /dev/zero, a character device, not a "
        "regular file; fix: point it at a regular file or remove it"
    )


def test_socket(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative name keeps the socket path short enough
    with socket.socket(socket.AF_UNIX) as server:
        server.bind("arms.csv")
        assert _message(tmp_path / "arms.csv") == (
            f"{tmp_path}/arms.csv: a socket, not a regular file; "
            "fix: replace it with a regular file"
        )


def test_missing_file_names_its_role_and_fix(tmp_path):
    assert _message(tmp_path / "a.toml", what="analysis file", missing_fix="check --config") == (
        f"{tmp_path}/a.toml: analysis file not found; fix: check --config"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file(tmp_path):
    path = tmp_path / "arms.csv"
    path.write_bytes(b"a\n")
    path.chmod(0)
    assert _message(path) == f"{path}: cannot be read: Permission denied; fix: make it readable"


def test_directory_problem(tmp_path):
    (tmp_path / "studies.csv").write_bytes(b"study_id\n")
    (tmp_path / "gone").symlink_to(tmp_path / "nowhere")
    (tmp_path / "records").symlink_to(tmp_path)
    assert directory_problem(tmp_path) is None
    assert directory_problem(tmp_path / "records") is None  # a link to a directory is fine
    assert str(directory_problem(tmp_path / "studies.csv")) == (
        f"{tmp_path}/studies.csv: a regular file, not a directory; "
        "fix: give the directory holding studies.csv"
    )
    assert str(directory_problem(tmp_path / "gone")) == (
        f"{tmp_path}/gone: a symbolic link to {tmp_path}/nowhere, which does not exist; "
        "fix: point it at an existing directory or remove it"
    )
    assert str(directory_problem(tmp_path / "nowhere")) == (
        f"{tmp_path}/nowhere: directory not found; fix: give an existing study-records directory"
    )
