"""Safe writing of result files: nothing half-written, the previous good results kept.

A run writes into a fresh staging directory beside the target and, only when everything is
written, swaps it into place (move the old one aside, move the new one in, delete the old).
A lock file beside the target makes a second concurrent run refuse instead of interleaving.

The staging directory and the directory the old results are moved aside into are *work
directories* named ``.<target>.new-<random>`` / ``.<target>.old-<random>``, each holding a
marker file (:data:`WORK_MARKER`) and the results in a ``results/`` subdirectory. Leftovers of a
killed run are removed by the next run only when they carry the marker, so a user's own file or
folder that happens to have such a name is never touched.

Every file is created with mode ``0o666`` and directory with ``0o777`` minus the umask, like any
other program's output (``tempfile`` would make them private, 0600/0700).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from metak.errors import MetakError
from metak.output.faults import named_oserror, netcdf_write_error, output_errors

if TYPE_CHECKING:
    # Only for annotations: this module is stdlib-only at run time.
    import pandas as pd
    import xarray as xr

__all__ = [
    "WORK_MARKER",
    "ResultsLocked",
    "is_work_dir",
    "results_transaction",
    "sha256_of",
    "write_csv_atomic",
    "write_netcdf",
    "write_text_atomic",
]

WORK_MARKER = ".metak-work"
_PAYLOAD = "results"
_RANDOM_BYTES = 4
_CREATE_ATTEMPTS = 100


class ResultsLocked(MetakError):
    """Another metak run is writing to the same results directory."""


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file's bytes, as 64 hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _unique_name[T](parent: Path, prefix: str, make: Callable[[Path], T]) -> tuple[Path, T]:
    """Create ``parent/<prefix><random>`` with ``make``; retry on a name already taken."""
    for _ in range(_CREATE_ATTEMPTS):
        path = parent / f"{prefix}{secrets.token_hex(_RANDOM_BYTES)}"
        try:
            return path, make(path)
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(parent / prefix))


def _create_file(parent: Path, prefix: str) -> tuple[Path, int]:
    # O_EXCL: never open a file someone else created (or a symlink planted under that name).
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    return _unique_name(parent, prefix, lambda path: os.open(path, flags, 0o666))


@contextlib.contextmanager
def _replacing(path: Path) -> Iterator[TextIO]:
    """Yield a text handle on a new file beside ``path``; rename it to ``path`` when done."""
    path = Path(path)
    with named_oserror(path, always=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp, fd = _create_file(path.parent, f".{path.name}.")
    try:
        with named_oserror(path, always=True):
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                yield handle
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_csv_atomic(frame: pd.DataFrame, path: Path) -> None:
    r"""Write a DataFrame as CSV through a temporary file renamed into place.

    UTF-8, ``\n`` line ends, no index column; the folder is created when missing.

    Raises
    ------
    OSError
        Naming ``path`` (``filename``) whatever part of the write failed.
    """
    with _replacing(path) as handle:
        frame.to_csv(handle, index=False, lineterminator="\n")


def write_text_atomic(path: Path, text: str) -> None:
    r"""Write UTF-8 text with ``\n`` line ends through a temporary file renamed into place."""
    with _replacing(path) as handle:
        handle.write(text)


def write_netcdf(tree: xr.DataTree, path: Path) -> None:
    """Write a ``DataTree`` to a new netCDF-4 file at ``path`` with libnetcdf.

    Raises
    ------
    OSError
        Naming ``path``, when the file cannot be written: libnetcdf reports a full disk only as
        ``RuntimeError: NetCDF: HDF error``, so the cause is found out and given as an errno.
    """
    path = Path(path)
    try:
        # libnetcdf (netCDF4) writes a posterior file in ~0.05 s, h5netcdf in ~0.35 s (its
        # per-variable HDF5 bookkeeping in Python): it adds up over a dozen analyses.
        tree.to_netcdf(path, engine="netcdf4")
    except OSError as err:
        raise (err if err.filename else OSError(err.errno, err.strerror, str(path))) from err
    except RuntimeError as err:
        if not str(err).startswith("NetCDF:"):
            raise
        raise netcdf_write_error(path, err) from err


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one of another user counts: it cannot be signalled)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _lock_owner(lock: Path) -> int | None:
    """The pid in a metak lock file, 0 for an empty one, None when it is not a metak lock."""
    try:
        if not lock.is_file() or lock.is_symlink():
            return None
        text = lock.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not text:
        return 0  # killed between creating and writing it: stale
    return int(text) if text.isdigit() else None


@contextlib.contextmanager
def _lock(target: Path) -> Iterator[None]:
    lock = target.parent / f".{target.name}.lock"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            pid = _lock_owner(lock)
            if pid is None:
                raise ResultsLocked(
                    f"error: {lock}: exists and is not a metak lock file; fix: move it away "
                    f"(metak never deletes a file it did not write), or use --out with another "
                    f"directory"
                ) from None
            # A lock left by a killed run is stale: its process is gone, so take it over.
            if pid and pid_alive(pid):
                raise ResultsLocked(
                    f"{target}: another metak run (pid {pid}) is writing these results; "
                    f"fix: wait for it, or use --out with another directory"
                ) from None
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(str(os.getpid()))
        break
    else:  # pragma: no cover - two stale-lock races in a row
        raise ResultsLocked(f"{target}: could not take the lock {lock}")
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()


def _make_work_dir(parent: Path, prefix: str) -> Path:
    """A new marked work directory ``parent/<prefix><random>`` (see the module docstring)."""
    work, _ = _unique_name(parent, prefix, os.mkdir)
    try:
        with named_oserror(work / WORK_MARKER):
            (work / WORK_MARKER).write_text(f"metak {os.getpid()}\n", encoding="ascii")
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return work


def is_work_dir(path: Path) -> bool:
    """Whether ``path`` is a work directory metak made (a real directory with the marker)."""
    marker = path / WORK_MARKER
    return path.is_dir() and not path.is_symlink() and marker.is_file() and not marker.is_symlink()


def _clean_leftovers(target: Path) -> None:
    """Remove the marked work directories a killed run left beside ``target``.

    A run killed between moving the old results aside and moving the new ones in leaves no
    ``target`` and the old results in a ``.old-`` work directory: put them back.
    """
    prefixes = (f".{target.name}.new-", f".{target.name}.old-")
    # Not glob(): a target name may hold glob characters such as [ or *.
    for entry in sorted(target.parent.iterdir()):
        if not entry.name.startswith(prefixes) or not is_work_dir(entry):
            continue
        kept = entry / _PAYLOAD
        if entry.name.startswith(prefixes[1]) and kept.is_dir() and not target.exists():
            os.replace(kept, target)
        shutil.rmtree(entry, ignore_errors=True)


@contextlib.contextmanager
def results_transaction(
    target: Path, recheck: Callable[[], object] | None = None
) -> Iterator[Path]:
    """Yield a staging directory; on success it replaces ``target`` whole.

    On any exception (or interruption) the staging directory is removed and ``target`` is
    untouched; the lock is always released.

    Parameters
    ----------
    target : Path
        The results directory to create or replace.
    recheck : callable, optional
        Called under the lock just before the swap (e.g. the ``--out`` rule again: the folder
        may have changed while the results were computed); an exception it raises cancels the
        swap.

    Yields
    ------
    Path
        The empty staging directory to write the results into.

    Raises
    ------
    ResultsLocked
        When another metak run holds the lock on ``target``.
    metak.errors.OutputError
        When a file or folder cannot be written, moved or removed (one line naming it).
    """
    target = Path(target).absolute()
    kept = "previous results untouched" if target.exists() else f"nothing written to {target}"
    with output_errors(kept):
        with named_oserror(target.parent):
            target.parent.mkdir(parents=True, exist_ok=True)
        with _lock(target):
            _clean_leftovers(target)
            work = _make_work_dir(target.parent, f".{target.name}.new-")
            old = None
            try:
                staging = work / _PAYLOAD
                os.mkdir(staging)
                yield staging
                if recheck is not None:
                    recheck()
                if target.exists() or target.is_symlink():
                    old = _make_work_dir(target.parent, f".{target.name}.old-")
                    os.replace(target, old / _PAYLOAD)
                os.replace(staging, target)
            except BaseException:
                if old is not None and (old / _PAYLOAD).exists() and not target.exists():
                    os.replace(old / _PAYLOAD, target)  # put the previous results back
                raise
            finally:
                shutil.rmtree(work, ignore_errors=True)
                # Keep the old results if they could not be put back: the next run restores
                # them (see _clean_leftovers).
                if old is not None and (target.exists() or not (old / _PAYLOAD).exists()):
                    shutil.rmtree(old, ignore_errors=True)
