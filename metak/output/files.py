"""Safe writing of result files: nothing half-written, the previous good results kept.

A run writes into a fresh temporary directory beside the target and, only when everything is
written, swaps it into place (rename the old one aside, rename the new one in, delete the old).
A lock file beside the target makes a second concurrent run refuse instead of interleaving.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from metak.errors import MetakError

__all__ = ["write_csv_atomic", "results_transaction", "sha256_of", "ResultsLocked"]


class ResultsLocked(MetakError):
    """Another metak run is writing to the same results directory."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_csv_atomic(frame, path: Path) -> None:
    """Write a DataFrame as CSV through a temporary file renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            frame.to_csv(handle, index=False, lineterminator="\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _lock(target: Path):
    lock = target.parent / f".{target.name}.lock"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            # A lock left by a killed run is stale: its process is gone, so take it over.
            try:
                pid = int(lock.read_text().strip() or "0")
            except (OSError, ValueError):
                pid = 0
            if pid and _pid_alive(pid):
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


@contextlib.contextmanager
def results_transaction(target: Path):
    """Yield a temporary directory; on success it replaces ``target`` whole.

    On any exception (or interruption) the temporary directory is removed and ``target`` is
    untouched.
    """
    target = Path(target).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    with _lock(target):
        # We hold the lock, so any staging or swap directory left here was abandoned by a killed
        # run: remove it before starting.
        for leftover in target.parent.glob(f".{target.name}.new-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        for leftover in target.parent.glob(f".{target.name}.old-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
        try:
            yield staging
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.rmdir(old)
            os.replace(target, old)
        os.replace(staging, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
