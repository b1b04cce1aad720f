"""Read a batch's long input table (CSV or Parquet) into text cells with their line numbers.

One table holds every review: a ``review_id`` column, and the columns of either an effect-size
table (:mod:`metak.batch.effect_sizes`) or the study-record schema
(:mod:`metak.batch.records_input`). Cells are read as text, as the study records are, so both
formats are checked by the same rules (ASCII numbers, no ``nan``); a Parquet number becomes the
shortest text that reads back as the same double (Python's ``repr``). A problem with the table as
a whole (unreadable, not CSV, no header, no ``review_id``, too big) is one line and exit code 2;
problems in a review's rows are reported per review later and do not stop the batch.
"""

from __future__ import annotations

import csv
import io
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from metak import input_files
from metak.errors import InputError, Problem

__all__ = ["RawTable", "read_table", "TABLE_LIMIT", "ROWS_LIMIT", "REVIEW_ID", "FORMATS"]

REVIEW_ID = "review_id"
_MIB = 2**20
# A batch table holds whole databases (67,000 Cochrane meta-analyses of ~10 studies each are
# 670,000 rows of ~100 bytes): 1 GiB and 5 million rows leave room for ten times that, and keep
# the text cells (about 100 bytes of Python object per cell) within a few GB of memory.
TABLE_LIMIT = 1024 * _MIB
ROWS_LIMIT = 5_000_000
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass(frozen=True)
class RawTable:
    """The table's cells as text (``""`` = empty), one array per column, in file order.

    ``lines`` is each row's line in the CSV file (header = line 1), or its row number in a
    Parquet file counted the same way (first data row = 2), so every message points at a row.
    """

    path: Path
    columns: tuple[str, ...]
    cells: dict[str, np.ndarray]
    lines: np.ndarray

    def __len__(self) -> int:
        return len(self.lines)

    def problem(self, message: str, fix: str) -> InputError:
        """An error about the table as a whole."""
        return InputError(Problem(self.path, message, fix=fix))


def _fail(path: Path, message: str, fix: str) -> InputError:
    return InputError(Problem(path, message, fix=fix))


def _check_header(path: Path, header: list[str]) -> tuple[str, ...]:
    names = [name.strip() for name in header]
    if REVIEW_ID not in names:
        raise _fail(
            path,
            "no review_id column in the header line",
            "start the file with a header line naming the columns, one of them review_id "
            "(the meta-analysis each row belongs to)",
        )
    seen = set()
    for raw, name in zip(header, names, strict=True):
        if raw != name:
            raise _fail(path, f"column name {raw!r} has leading/trailing spaces", f"write {name!r}")
        if not name:
            raise _fail(path, "a header cell is empty", "name every column or delete it")
        if name in seen:
            raise _fail(path, f"column {name!r} appears twice", "keep one of them")
        seen.add(name)
    return tuple(names)


def _read_csv(path: Path) -> RawTable:
    data = input_files.read_input_file(path, TABLE_LIMIT, what="batch table")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise _fail(
            path, f"not UTF-8 text (byte {err.start + 1})", "save the table as UTF-8 CSV"
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records, lines, start = [], [], 1
    try:
        header = next(reader, None)
        if header is None:
            raise _fail(path, "file is empty", "write a header line and one row per effect size")
        start = reader.line_num + 1
        for record in reader:
            if record:  # blank lines are no rows
                records.append(record)
                lines.append(start)
                if len(records) > ROWS_LIMIT:
                    raise _fail(
                        path,
                        f"more than {ROWS_LIMIT:,} rows, the limit of a batch table",
                        "split the reviews over several batches",
                    )
            start = reader.line_num + 1
    except csv.Error as err:
        raise InputError(
            Problem(
                path,
                f"not valid CSV: {err}",
                row=start,
                fix='put "…" around cells holding commas, quotes or line breaks',
            )
        ) from None
    columns = _check_header(path, header)
    width = len(columns)
    for record, line in zip(records, lines, strict=True):
        if len(record) != width:
            raise InputError(
                Problem(
                    path,
                    f"{len(record)} cells but the header has {width} columns",
                    row=line,
                    fix='put "…" around cells holding commas, quotes or line breaks',
                )
            )
    cells = {name: _text([record[j] for record in records]) for j, name in enumerate(columns)}
    return RawTable(path, columns, cells, np.asarray(lines, dtype=np.int64))


def _text(values: list) -> np.ndarray:
    """Cells as an object array of stripped strings.

    Object, not numpy's fixed-width strings: one long cell would make every cell that wide.
    """
    out = np.empty(len(values), dtype=object)
    out[:] = [value.strip() for value in values]
    return out


def _parquet_text(column) -> np.ndarray:
    """A Parquet column as text cells: numbers as the shortest round-trip text, nulls empty."""
    return _text(
        [
            # pandas writes a missing number as NaN: an empty cell, as in a CSV file.
            ""
            if value is None or value != value
            else repr(value)
            if isinstance(value, float)
            else str(value)
            for value in column.to_pylist()
        ]
    )


def _read_parquet(path: Path) -> RawTable:
    problem = input_files.file_problem(path, what="batch table")
    if problem is not None:
        raise InputError(problem)
    size = os.stat(path).st_size
    if not stat.S_ISREG(os.stat(path).st_mode) or size > TABLE_LIMIT:
        raise _fail(
            path,
            f"{size:,} bytes, over the {TABLE_LIMIT // _MIB} MiB limit of a batch table",
            "split the reviews over several batches",
        )
    import pyarrow.parquet as pq
    from pyarrow import ArrowException

    try:
        table = pq.read_table(path)
    except (ArrowException, OSError) as err:
        raise _fail(
            path, f"not a readable Parquet file ({err})", "write it with pandas or pyarrow"
        ) from None
    if table.num_rows > ROWS_LIMIT:
        raise _fail(
            path,
            f"{table.num_rows:,} rows, over the limit of {ROWS_LIMIT:,} rows of a batch table",
            "split the reviews over several batches",
        )
    columns = _check_header(path, list(table.column_names))
    cells = {name: _parquet_text(table.column(name)) for name in columns}
    lines = np.arange(2, table.num_rows + 2, dtype=np.int64)
    return RawTable(path, columns, cells, lines)


def read_table(path: Path) -> RawTable:
    """Read the batch table ``path`` (``.csv``, ``.parquet`` or ``.pq``).

    Raises
    ------
    metak.errors.InputError
        One line: not a regular file, too big, not UTF-8 CSV or Parquet, a bad header (no
        ``review_id``, an empty or repeated column name), a row with the wrong number of cells.
    """
    path = Path(path)
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise _fail(
            path,
            f"unknown table format {path.suffix or '(no suffix)'!r}",
            "give a .csv or .parquet file",
        )
    table = _read_csv(path) if kind == "csv" else _read_parquet(path)
    if not len(table):
        raise _fail(path, "no rows below the header", "add one row per effect size")
    return table
