"""A batch's output folder: the ``--out`` rule, one checkpoint per finished chunk, resume.

``OUT/checkpoints/batch.json`` records what the batch is (the SHA-256 of its table and analysis
file, seed, settings, chunking, versions: its *fingerprint*). Each finished chunk leaves
``chunk-<n>.summary.parquet`` and ``chunk-<n>.status.parquet`` and then, last, ``chunk-<n>.json``
(its timings): a chunk counts as done only when that file exists, so a batch killed while
writing redoes the chunk. Every file is written to a temporary name and renamed into place.

Run again with the same arguments, a batch fits only the chunks not done; with other arguments
it is refused (one line naming what differs), so hours of work are never thrown away by a
changed option. ``--out`` must otherwise be a new or empty folder, with the rules of ``fit``'s
(not a link, not the home or current folder, not a folder holding the inputs).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from metak.errors import ConfigError
from metak.output.files import pid_alive
from metak.output.guard import check_out_dir, contained

__all__ = ["CheckpointStore", "check_batch_out", "is_batch_dir", "CHECKPOINTS", "MARKER_KEY"]

CHECKPOINTS = "checkpoints"
_STATE = "batch.json"
_LOCK = "lock"
MARKER_KEY = "metak_batch"
FORMAT = 1


def _state_path(out: Path) -> Path:
    return Path(out) / CHECKPOINTS / _STATE


def _read_state(out: Path) -> dict | None:
    try:
        state = json.loads(_state_path(out).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and MARKER_KEY in state else None


def is_batch_dir(out: Path) -> bool:
    """True when ``out`` is a folder a metak batch wrote (its checkpoint marker is there)."""
    out = Path(out)
    return out.is_dir() and not out.is_symlink() and _read_state(out) is not None


def check_batch_out(out: Path, inputs: Iterable[Path | None]) -> None:
    """Refuse an ``--out`` a batch must not write into (module docstring).

    Raises
    ------
    ConfigError
        One line saying why and what to do.
    """
    out = Path(out)
    if is_batch_dir(out):
        return
    check_out_dir(out, inputs=inputs)  # links, files, home, inputs; a fit's results folder passes
    if out.is_dir() and any(out.iterdir()):
        raise ConfigError(
            f"error: --out {out}: holds the results of `python -m metak fit`, not of a batch; "
            "fix: choose a new or empty folder for the batch"
        )


def _write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Write through ``write(temporary path)``, then rename into place."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        write(Path(temporary))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """A DataFrame as a Parquet file (pyarrow), written atomically.

    A text column that also holds numbers (a robustness table's mixed cells) is stored as text:
    Parquet columns have one type.
    """
    frame = frame.copy()
    for column in frame.select_dtypes(include="object").columns:
        kinds = {type(value) for value in frame[column] if value is not None and value == value}
        if len(kinds) > 1 and str in kinds:
            frame[column] = [None if v is None or v != v else str(v) for v in frame[column]]
    _write_atomic(path, lambda temporary: frame.to_parquet(temporary, index=False))


def write_json(data: dict, path: Path) -> None:
    """JSON, written atomically."""
    text = json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"
    _write_atomic(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


@dataclass
class CheckpointStore:
    """The checkpoints of one batch in ``out/checkpoints``."""

    out: Path
    fingerprint: dict

    @classmethod
    def open(cls, out: Path, fingerprint: dict) -> CheckpointStore:
        """Start a batch in ``out``, or resume the one there (same fingerprint).

        Raises
        ------
        ConfigError
            When ``out`` holds a batch with another fingerprint, or another process is running
            a batch there.
        """
        out = Path(out)
        state = _read_state(out)
        if state is not None and state.get("fingerprint") != fingerprint:
            differs = sorted(
                key
                for key in set(fingerprint) | set(state.get("fingerprint", {}))
                if fingerprint.get(key) != state.get("fingerprint", {}).get(key)
            )
            raise ConfigError(
                f"error: --out {out}: holds a batch run with other arguments or inputs "
                f"({', '.join(differs)} differ); it resumes only with the same ones; fix: rerun "
                "it as it was started, or choose a new --out (or delete that folder)"
            )
        (out / CHECKPOINTS).mkdir(parents=True, exist_ok=True)
        store = cls(out, fingerprint)
        store._lock()
        if state is None:
            write_json({MARKER_KEY: {"format": FORMAT}, "fingerprint": fingerprint}, store._state)
        return store

    @property
    def _state(self) -> Path:
        return _state_path(self.out)

    def _file(self, index: int, suffix: str) -> Path:
        return contained(self.out, self.out / CHECKPOINTS / f"chunk-{index:06d}.{suffix}")

    def _lock(self) -> None:
        lock = self.out / CHECKPOINTS / _LOCK
        try:
            handle = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                owner = int(lock.read_text(encoding="ascii").strip() or 0)
            except (OSError, ValueError):
                owner = 0
            if owner and pid_alive(owner):
                raise ConfigError(
                    f"error: --out {self.out}: another metak batch (process {owner}) is writing "
                    "there; fix: wait for it to finish, or choose another --out"
                ) from None
            lock.unlink(missing_ok=True)  # left by a batch that was killed
            handle = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        with os.fdopen(handle, "w", encoding="ascii") as file:
            file.write(str(os.getpid()))

    def release(self) -> None:
        """Remove this process's lock."""
        (self.out / CHECKPOINTS / _LOCK).unlink(missing_ok=True)

    def done(self, index: int) -> bool:
        """Whether chunk ``index`` finished in this or an earlier run."""
        return self._file(index, "json").is_file()

    def save(
        self,
        index: int,
        summary: pd.DataFrame,
        status: pd.DataFrame,
        info: dict,
        tables: dict[str, pd.DataFrame] | None = None,
    ) -> None:
        """Checkpoint a finished chunk (and its robustness tables); its ``.json`` last."""
        write_parquet(summary, self._file(index, "summary.parquet"))
        write_parquet(status, self._file(index, "status.parquet"))
        for name, table in (tables or {}).items():
            write_parquet(table, self._file(index, f"table.{name}.parquet"))
        write_json({**info, "tables": sorted(tables or {})}, self._file(index, "json"))

    def load(self, index: int) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict]:
        """A finished chunk's summary rows, status rows, timings and tables."""
        summary = pd.read_parquet(self._file(index, "summary.parquet"))
        status = pd.read_parquet(self._file(index, "status.parquet"))
        info = json.loads(self._file(index, "json").read_text(encoding="utf-8"))
        tables = {
            name: pd.read_parquet(self._file(index, f"table.{name}.parquet"))
            for name in info.get("tables", [])
        }
        return summary, status, info, tables
