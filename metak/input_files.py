"""Open the user's input files safely: regular files only, a size limit, reading bounded.

Every file metak reads from the user (the study-records CSVs, claims.csv, the analysis TOML) goes
through :func:`read_input_file`. It accepts a regular file, or a symbolic link to one, and
rejects with one :class:`~metak.errors.Problem` line anything else: a missing file, a dangling
or looping link, a directory, a named pipe (which would block), a device (``/dev/zero`` never
ends), a socket. The size is checked with ``fstat`` on the opened descriptor, and the read stops
after ``limit + 1`` bytes whatever ``fstat`` said, so a file that grows while it is read, or lies
about its size (``/proc`` files report 0), still costs at most ``limit + 1`` bytes of memory.

The limits (README.md, "Study records: the CSV schema") are far above any real input and far
below what would exhaust memory: parsing a CSV costs several times its size in Python objects.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

from metak.errors import InputError, Problem

__all__ = [
    "CLAIMS_LIMIT",
    "CONFIG_LIMIT",
    "CSV_LIMIT",
    "directory_problem",
    "file_problem",
    "read_input_file",
]

_MIB = 2**20
# 256 MiB holds 1,000,000 rows of 268 bytes (a row with a short quote); the bundled arms rows,
# with long verbatim quotes, average 735 bytes: 365,000 of them, a hundred times the largest
# meta-analysis. Parsing costs several times the size in Python objects, so this keeps a
# hostile file within a few GB of memory.
CSV_LIMIT = 256 * _MIB
# The bundled claims.csv is 22 KB for 27 claims: 16 MiB is about 20,000 claims.
CLAIMS_LIMIT = 16 * _MIB
# The bundled analyses.toml is 3 KB for 12 analyses: 1 MiB is about 4,000 analyses.
CONFIG_LIMIT = 1 * _MIB

# Read in pieces so a file that grows (or never ends) is cut at the limit, not at EOF.
_CHUNK = 16 * _MIB
# O_NONBLOCK: opening a named pipe that slipped past the check (swapped in after it) must not
# wait for a writer. O_NOCTTY: opening a terminal device must not make it ours.
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
_MISSING = (errno.ENOENT, errno.ENOTDIR)


def _kind(mode: int) -> str:
    """What a file of this ``st_mode`` is, in words ("a directory", "a regular file", ...)."""
    if stat.S_ISREG(mode):
        return "a regular file"
    for test, words in _KINDS:
        if test(mode):
            return words
    return "not a regular file"


def _size_text(size: int) -> str:
    return f"{size / _MIB:.1f} MiB ({size:,} bytes)" if size >= _MIB else f"{size:,} bytes"


def _limit_text(limit: int) -> str:
    return f"{limit // _MIB} MiB" if limit % _MIB == 0 else f"{limit:,} bytes"


def _link_problem(path: Path, error: OSError | None, mode: int | None, want: str) -> Problem:
    """The problem of a symbolic link that leads nowhere, loops, or leads to the wrong kind."""
    target = os.readlink(path)
    link = f"a symbolic link to {target}"
    noun = "file" if want == "regular file" else want
    if error is not None and error.errno == errno.ELOOP:
        return Problem(
            path,
            f"{link}, which loops (too many levels of symbolic links)",
            fix=f"point it at an existing {noun} or remove it",
        )
    if error is not None:
        if error.errno in _MISSING:
            return Problem(
                path,
                f"{link}, which does not exist",
                fix=f"point it at an existing {noun} or remove it",
            )
        return Problem(path, f"{link}, which cannot be read: {error.strerror}", fix="check it")
    return Problem(
        path, f"{link}, {_kind(mode)}, not a {want}", fix=f"point it at a {want} or remove it"
    )


def _stat_problem(
    path: Path, want: str, is_wanted: Callable[[int], bool], missing: Problem, fix: str
) -> Problem | None:
    """None when ``path`` (following links) is what ``is_wanted`` accepts, else the problem."""
    try:
        linked = stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError as err:
        if err.errno in _MISSING:
            return missing
        return Problem(path, f"cannot be read: {err.strerror}", fix="check the path")
    try:
        mode = os.stat(path).st_mode
    except OSError as err:
        if linked:
            return _link_problem(path, err, None, want)
        return Problem(path, f"cannot be read: {err.strerror}", fix="check the path")
    if is_wanted(mode):
        return None
    if linked:
        return _link_problem(path, None, mode, want)
    return Problem(path, f"{_kind(mode)}, not a {want}", fix=fix)


def file_problem(
    path: Path | str, *, what: str = "file", missing_fix: str = "check the path"
) -> Problem | None:
    """Why ``path`` is not a regular file (or a link to one) metak may read, or None.

    Parameters
    ----------
    path : str or Path
        The file, as the user named it (a symbolic link is followed).
    what : str
        The file's role in the "not found" message, e.g. ``"analysis file"``.
    missing_fix : str
        The fix given when nothing is at ``path``.

    Returns
    -------
    Problem or None
        One line naming the file, what it is and what to do; None for a regular file.
    """
    path = Path(path)
    missing = Problem(path, f"{what} not found", fix=missing_fix)
    return _stat_problem(
        path, "regular file", stat.S_ISREG, missing, "replace it with a regular file"
    )


def directory_problem(path: Path | str) -> Problem | None:
    """Why ``path`` is not a directory (or a link to one), or None.

    Parameters
    ----------
    path : str or Path
        The study-records directory as the user named it.

    Returns
    -------
    Problem or None
        One line naming the path, what it is and what to do; None for a directory.
    """
    path = Path(path)
    missing = Problem(path, "directory not found", fix="give an existing study-records directory")
    return _stat_problem(
        path, "directory", stat.S_ISDIR, missing, "give the directory holding studies.csv"
    )


def _read_at_most(fd: int, limit: int) -> bytes:
    """Up to ``limit + 1`` bytes from ``fd``: one byte more than allowed proves the file too big."""
    chunks, total = [], 0
    while total <= limit:
        chunk = os.read(fd, min(_CHUNK, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def _too_big(path: Path, size: str, limit: int, what: str) -> InputError:
    article = "an" if what[:1] in "aeiou" else "a"
    return InputError(
        Problem(
            path,
            f"{size}, over the {_limit_text(limit)} limit for {article} {what}",
            fix=f"check that this is the right file ({article} {what} is far smaller)",
        )
    )


def read_input_file(
    path: Path | str, limit: int, *, what: str = "file", missing_fix: str = "check the path"
) -> bytes:
    """The bytes of a user's input file, read safely (see the module docstring).

    Parameters
    ----------
    path : str or Path
        A regular file, or a symbolic link to one.
    limit : int
        Largest size accepted, in bytes (``CSV_LIMIT``, ``CLAIMS_LIMIT``, ``CONFIG_LIMIT``).
    what : str
        The file's role in messages, e.g. ``"study-records file"``.
    missing_fix : str
        The fix given when nothing is at ``path``.

    Returns
    -------
    bytes
        The whole file, at most ``limit`` bytes.

    Raises
    ------
    metak.errors.InputError
        One problem: not a regular file (with what it is instead), unreadable, or over ``limit``.
    """
    path = Path(path)
    problem = file_problem(path, what=what, missing_fix=missing_fix)
    if problem is not None:
        raise InputError(problem)
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as err:
        # Checked a moment ago; it changed since, or the permission bits forbid reading it.
        problem = file_problem(path, what=what, missing_fix=missing_fix)
        raise InputError(
            problem or Problem(path, f"cannot be read: {err.strerror}", fix="make it readable")
        ) from None
    try:
        return _read_open_file(fd, path, limit, what)
    finally:
        os.close(fd)


def _read_open_file(fd: int, path: Path, limit: int, what: str) -> bytes:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        # Swapped in after the check: the descriptor is what counts.
        raise InputError(
            Problem(path, f"{_kind(info.st_mode)}, not a regular file", fix="give a regular file")
        )
    if info.st_size > limit:
        raise _too_big(path, _size_text(info.st_size), limit, what)
    try:
        data = _read_at_most(fd, limit)
    except OSError as err:
        raise InputError(
            Problem(path, f"cannot be read: {err.strerror}", fix="check that it is a readable file")
        ) from None
    if len(data) > limit:
        # fstat said it fits: the file grew while read, or reports no size (/proc, FUSE).
        size = f"more than its reported {info.st_size:,} bytes"
        raise _too_big(path, size, limit, what)
    return data
