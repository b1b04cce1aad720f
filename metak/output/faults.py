"""Failed writes as one line: which file, what the machine said, what to do.

A full disk, a file size limit or a folder without write permission is not the user's input at
fault, so it ends a command with :class:`~metak.errors.OutputError` (exit 1), never a traceback.
Two pieces: the writing functions make sure every failure is an ``OSError`` naming the file
(:func:`named_oserror`, :func:`netcdf_write_error`), and the command wraps its writing in
:func:`output_errors`, which turns such an ``OSError`` into the one line.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import secrets
from collections.abc import Iterator
from pathlib import Path

from metak.errors import OutputError

__all__ = ["named_oserror", "netcdf_write_error", "output_errors", "describe_oserror"]

# What to do about each cause; anything else gets _OTHER_FIX.
_FIXES = {
    errno.ENOSPC: "free space, or use --out on another disk",
    errno.EDQUOT: "free space within your disk quota, or use --out on another disk",
    errno.EFBIG: "raise the file size limit (ulimit -f), or use --out on another disk",
    errno.EACCES: "use --out in a folder you may write to, or change its permissions",
    errno.EPERM: "use --out in a folder you may write to, or change its permissions",
    errno.EROFS: "use --out on a writable disk",
}
_OTHER_FIX = "check the disk and the folder, then run the command again"

# libnetcdf hides the errno of a failed write behind "NetCDF: HDF error". To name the cause, a
# probe file beside the failed one is written: if 1 MiB more cannot be written there, the probe's
# errno is the cause (no space, quota, permission).
_PROBE_BYTES = 1 << 20
_PROBE_CHUNK = 1 << 16
# HDF5 writes a variable in one piece (a few MiB for a large MCMC posterior): a file that ended
# within this distance of the process' file size limit (RLIMIT_FSIZE) ran into that limit.
_NEAR_SIZE_LIMIT = 64 << 20


@contextlib.contextmanager
def named_oserror(path: Path, always: bool = False) -> Iterator[None]:
    """Re-raise an ``OSError`` raised inside as one naming ``path``.

    Only when it names no file (a write on an open handle), or with ``always`` (a temporary
    file's name would only puzzle the user); an ``OSError`` without an errno passes unchanged.

    Parameters
    ----------
    path : Path
        The file the user knows: the one being written, not a temporary file beside it.
    always : bool
        Replace the file name even when the error names one.
    """
    try:
        yield
    except OSError as err:
        if err.errno is None or (err.filename is not None and not always):
            raise
        raise OSError(err.errno, err.strerror, str(path)) from err


def _file_size_limit_reached(path: Path) -> bool:
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    if soft == resource.RLIM_INFINITY:
        return False
    try:
        size = path.stat().st_size
    except OSError:
        size = 0
    return size + _NEAR_SIZE_LIMIT >= soft


def _probe_errno(directory: Path) -> int | None:
    """The errno of writing 1 MiB into a new file in ``directory``; None when that works."""
    probe = None
    fd = -1
    try:
        for _ in range(16):
            probe = directory / f".metak-probe-{secrets.token_hex(4)}"
            try:
                fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                break
            except FileExistsError:
                continue
        else:
            return None
        block = bytes(_PROBE_CHUNK)
        for _ in range(_PROBE_BYTES // _PROBE_CHUNK):
            os.write(fd, block)
        os.fsync(fd)
    except OSError as err:
        return err.errno
    finally:
        if fd >= 0:
            os.close(fd)
        if probe is not None:
            with contextlib.suppress(OSError):
                os.unlink(probe)
    return None


def netcdf_write_error(path: Path, err: Exception) -> OSError:
    """The ``OSError`` behind libnetcdf's ``RuntimeError`` while writing ``path``.

    Parameters
    ----------
    path : Path
        The netCDF file being written (it may exist, half written).
    err : Exception
        What libnetcdf raised (``RuntimeError: NetCDF: HDF error`` on a full disk).

    Returns
    -------
    OSError
        With ``filename = path`` and the errno found: ``EFBIG`` when the file reached the
        process' file size limit, else the errno a probe write beside it fails with
        (``ENOSPC``, ``EDQUOT``, ``EACCES``, ...), else ``EIO`` with libnetcdf's message.
    """
    path = Path(path)
    if _file_size_limit_reached(path):
        cause = errno.EFBIG
    else:
        cause = _probe_errno(path.parent)
    if cause is None:
        return OSError(errno.EIO, f"could not write the netCDF file ({err})", str(path))
    return OSError(cause, os.strerror(cause), str(path))


def describe_oserror(err: OSError, kept: str) -> str:
    """One line for a failed write: ``error: PATH: cause; KEPT; fix: what to do``.

    Parameters
    ----------
    err : OSError
        The failure; its errno chooses the fix (no space, quota, size limit, permission, ...).
    kept : str
        What is still intact, e.g. ``"previous results untouched"``.

    Returns
    -------
    str
    """
    reason = (err.strerror or str(err)).rstrip(".")
    reason = reason[:1].lower() + reason[1:]
    where = f"{err.filename}: " if err.filename is not None else ""
    fix = _FIXES.get(err.errno, _OTHER_FIX)
    return " ".join(f"error: {where}{reason}; {kept}; fix: {fix}".split())


@contextlib.contextmanager
def output_errors(kept: str) -> Iterator[None]:
    """Turn an ``OSError`` raised inside into :class:`~metak.errors.OutputError` (one line).

    Parameters
    ----------
    kept : str
        What is still intact, said in the message, e.g. ``"previous results untouched"``.
    """
    try:
        yield
    except OSError as err:
        raise OutputError(describe_oserror(err, kept)) from err
