"""Read and validate a study-records directory into typed tables.

:func:`load_records` is the one entry point: it reads the CSV files of README.md, section
"Study records: the CSV schema" as bytes (regular files only, size-limited:
:mod:`metak.input_files`), checks encoding, CSV syntax, headers, every cell, the rules within a
row, the references between files and the provenance quotes, and either returns a
:class:`StudyRecords` or raises one :class:`~metak.errors.InputError` carrying every problem
found (one line each). Nothing downstream re-checks the records.

Tables are held column by column (lists of cell texts, numpy masks of filled and invalid cells)
and every check runs over whole columns, so validation takes time linear in the rows. Problems
are sorted by file and line at the end; within a line they keep the order in which the checks
run (reading, cells in column order, rules within the row, then between rows and files).
"""

from __future__ import annotations

import csv
import difflib
import io
import math
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from metak import input_files, schema
from metak.batching import collector_paused
from metak.errors import InputError, Problem
from metak.provenance import number_in_quote

__all__ = [
    "MAX_ROWS",
    "PROVENANCE_MODES",
    "StudyRecords",
    "bundled_studies_dir",
    "is_bundled",
    "load_records",
]

PROVENANCE_MODES = ("auto", "strict", "off")

_NUMBER = re.compile(schema.NUMBER_PATTERN)
_NON_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
_MISSING_MARKERS = {
    "na",
    "n/a",
    "nan",
    "none",
    "null",
    "-",
    "--",
    ".",
    "?",
    "missing",
    "nr",
    "n.r.",
}
_MAX_CSV_ERRORS = 20  # per file; past this the file is probably not CSV at all
# Data rows per file: a hundred times the largest meta-analysis. Validation holds about 3 KB per
# row, so this, not the byte limit alone, bounds memory: 256 MiB of two-byte lines would be
# 134 million rows.
MAX_ROWS = 1_000_000
_QUOTE_SHOWN = 40  # characters of a quote shown when a number is not found in it
_FILE_RANK = {spec.name: rank for rank, spec in enumerate(schema.FILES, start=1)}
_QUOTE_FIX = (
    'put "…" around cells holding commas, quotes or line breaks, and double quotes inside them ("")'
)


@dataclass(frozen=True)
class StudyRecords:
    """Validated study records: one typed table per file (see ``docs/architecture.md``).

    Numeric columns are float64 (NaN = missing); text columns are ``object`` (None = missing).
    Every table has a ``line`` column: the row's line number in its file (NaN for outcomes
    that outcomes.csv does not declare).
    """

    directory: Path
    studies: pd.DataFrame
    arms: pd.DataFrame
    contrasts: pd.DataFrame
    outcomes: pd.DataFrame
    moderators: dict[str, str]
    warnings: tuple[str, ...]


def bundled_studies_dir() -> Path:
    """The evidence bundled with metak (the repository's ``studies/``)."""
    return Path(__file__).resolve().parents[1] / "studies"


def is_bundled(directory: Path) -> bool:
    """True when ``directory`` is (a link to) the bundled ``studies/``.

    The bundled records are always checked with strict provenance. A link loop is simply not the
    bundled directory (``realpath`` does not raise on loops; ``load_records`` reports them).
    """
    return os.path.realpath(directory) == os.path.realpath(bundled_studies_dir())


class _Table:
    """One file's rows, held column by column.

    ``text`` holds every column of the header (cell text without surrounding whitespace, ""
    when empty); ``value`` the parsed cells (float, str or None) of the known columns present and
    of the moderators; ``bad`` the rows whose cell in a column was reported invalid.
    """

    def __init__(self, spec, path, header_line, columns, moderators, lines, text, complete):
        self.spec: schema.FileSpec = spec
        self.path: Path = path
        self.header_line: int = header_line
        self.columns: tuple[str, ...] = columns  # known columns present, canonical order
        self.moderators: tuple[str, ...] = moderators  # studies.csv only: extra columns
        self.lines: list[int] = lines  # line of each row in the file
        self.text: dict[str, list[str]] = text
        self.complete: bool = complete  # False when some records could not be read
        self.value: dict[str, list] = {}
        self.bad: dict[str, np.ndarray] = {}
        self._has: dict[str, np.ndarray] = {}
        self._numbers: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.lines)

    def texts(self, name: str) -> list[str]:
        """The column's cell texts ("" for every row of a column the file lacks)."""
        found = self.text.get(name)
        return found if found is not None else [""] * len(self)

    def has(self, name: str) -> np.ndarray:
        """Rows whose cell in ``name`` is filled."""
        if name not in self._has:
            texts = self.text.get(name)
            self._has[name] = (
                np.zeros(len(self), bool)
                if texts is None
                else np.array([t != "" for t in texts], dtype=bool)
            )
        return self._has[name]

    def invalid(self, name: str) -> np.ndarray:
        """Rows whose cell in ``name`` was reported as invalid (so far)."""
        if name not in self.bad:
            self.bad[name] = np.zeros(len(self), bool)
        return self.bad[name]

    def ok(self, name: str) -> np.ndarray:
        """Rows whose cell in ``name`` is filled and valid."""
        return self.has(name) & ~self.invalid(name)

    def values(self, name: str) -> list:
        """Parsed cells of ``name`` (None where empty or invalid, or the file lacks it)."""
        found = self.value.get(name)
        return found if found is not None else [None] * len(self)

    def numbers(self, name: str) -> np.ndarray:
        """Parsed numbers of ``name`` as floats (NaN where there is none)."""
        if name not in self._numbers:
            self._numbers[name] = np.array(
                [math.nan if v is None else v for v in self.values(name)], dtype=float
            )
        return self._numbers[name]


class _Report:
    """Collects problems; ``add`` takes the arguments of :class:`Problem`."""

    def __init__(self) -> None:
        self.problems: list[tuple[int, int, Problem]] = []

    def add(self, path, message, *, row=None, column=None, value=None, fix=None) -> None:
        rank = _FILE_RANK.get(Path(str(path)).name, 0)
        self.problems.append(
            (rank, row or 0, Problem(path, message, row=row, column=column, value=value, fix=fix))
        )

    def cell(
        self, table: _Table, i: int, column: str, message: str, fix: str | None = None
    ) -> None:
        """A problem with the cell of row ``i`` in ``column``, which is then invalid."""
        value = table.texts(column)[i] or None
        self.add(table.path, message, row=table.lines[i], column=column, value=value, fix=fix)
        table.invalid(column)[i] = True

    def sorted(self) -> list[Problem]:
        return [p for _, _, p in sorted(self.problems, key=lambda t: (t[0], t[1]))]


# --------------------------------------------------------------------------- reading


def _decode(path: Path, data: bytes, report: _Report) -> str | None:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        report.add(path, "file is UTF-16 encoded, not UTF-8", row=1, fix="save it as UTF-8")
        return None
    offset = 0
    if data.startswith(b"\xef\xbb\xbf"):
        report.add(
            path,
            "file starts with a byte-order mark (BOM)",
            row=1,
            fix="save as plain UTF-8, not 'UTF-8 with BOM'",
        )
        offset = 3
    try:
        return data[offset:].decode("utf-8")
    except UnicodeDecodeError as err:
        at = offset + err.start
        report.add(
            path,
            f"byte 0x{data[at]:02X} at byte offset {at} is not valid UTF-8",
            row=data.count(b"\n", 0, at) + 1,
            fix="save the file as UTF-8 (e.g. 'CSV UTF-8')",
        )
        return None


def _csv_records(path: Path, text: str, report: _Report) -> tuple[list, bool]:
    """``(first line, cells)`` of every non-blank CSV record, and whether none was malformed."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records, previous, errors = [], 0, 0
    while True:
        try:
            for cells in reader:
                first, previous = previous + 1, reader.line_num
                if "".join(cells).strip():  # a record with any non-blank cell
                    records.append((first, cells))
                    if len(records) > MAX_ROWS + 1:  # the header and one row too many: enough
                        return records, errors == 0
            return records, errors == 0
        except csv.Error as err:
            report.add(path, f"malformed CSV: {err}", row=previous + 1, fix=_QUOTE_FIX)
            errors += 1
            if errors >= _MAX_CSV_ERRORS or reader.line_num == previous:
                return records, False
            previous = reader.line_num


def _suggest(value: str, allowed, otherwise: str) -> str:
    """A fix naming the allowed value ``value`` was probably meant to be, else ``otherwise``."""
    allowed = list(allowed)
    for option in allowed:
        if option.lower() == value.lower():
            return f"write '{option}' (case matters)"
    close = difflib.get_close_matches(value, allowed, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    return otherwise


def _read_table(path: Path, spec: schema.FileSpec, report: _Report) -> _Table | None:
    try:
        data = input_files.read_input_file(path, input_files.CSV_LIMIT, what="study-records file")
    except InputError as err:
        for problem in err.problems:
            report.add(problem.file, problem.message, fix=problem.fix)
        return None
    if not data.strip():
        report.add(
            path, "file is empty", fix=f"start it with a header line, e.g. '{spec.example_header}'"
        )
        return None
    text = _decode(path, data, report)
    if text is None:
        return None
    records, complete = _csv_records(path, text, report)
    if not records:
        report.add(
            path, "no header line", fix=f"start it with a header line, e.g. '{spec.example_header}'"
        )
        return None
    if len(records) > MAX_ROWS + 1:
        report.add(
            path,
            f"more than {MAX_ROWS:,} rows, the limit per file",
            row=records[-1][0],
            fix="check that this is the right file",
        )
        return None
    header_line, raw_header = records[0]
    index = _read_header(path, spec, header_line, raw_header, report)
    if index is None:
        return None
    width, lines, kept = len(raw_header), [], []
    for line, cells in records[1:]:
        if len(cells) != width:
            report.add(
                path,
                f"{len(cells)} cells but the header has {width} columns",
                row=line,
                fix=_QUOTE_FIX,
            )
            complete = False
            continue
        lines.append(line)
        kept.append(cells)
    columns = list(zip(*kept, strict=True)) if kept else [()] * width
    text = {}
    for name, i in index.items():
        cells = columns[i]
        stripped = list(map(str.strip, cells))
        text[name] = stripped
        # str.strip returns the cell itself when there is nothing to strip.
        for k in [k for k, (a, b) in enumerate(zip(cells, stripped, strict=True)) if a is not b]:
            if cells[k] != stripped[k]:
                report.add(
                    path,
                    "leading/trailing whitespace",
                    row=lines[k],
                    column=name,
                    value=cells[k],
                    fix=f"write {stripped[k]!r}",
                )
    known = [c for c in spec.names if c in index]
    extra = [c for c in index if c not in spec.names]
    return _Table(spec, path, header_line, tuple(known), tuple(extra), lines, text, complete)


def _read_header(path, spec, line, raw_header, report) -> dict[str, int] | None:
    """Column name -> cell index of its first occurrence; None when the line is no header."""
    names = [cell.strip() for cell in raw_header]
    if not any(name in spec.names for name in names):
        report.add(
            path,
            "line is not a header: none of its cells is a known column name",
            row=line,
            fix=f"put the header line first, e.g. '{spec.example_header}'",
        )
        return None
    index: dict[str, int] = {}
    for i, (raw, name) in enumerate(zip(raw_header, names, strict=True)):
        if raw != name:
            report.add(
                path,
                "column name has leading/trailing whitespace",
                row=line,
                column=repr(raw),
                fix=f"rename it to '{name}'",
            )
        if not name:
            report.add(
                path,
                f"header cell {i + 1} is empty",
                row=line,
                fix="name the column or delete it (also remove trailing commas)",
            )
            continue
        if name in index:
            continue
        index[name] = i
        if name in spec.names:
            continue
        if not spec.extra_columns_are_moderators:
            report.add(
                path,
                "unknown column",
                row=line,
                column=name,
                fix=_suggest(name, spec.names, f"rename or remove it ({', '.join(spec.names)})"),
            )
            del index[name]
        elif name in schema.RESERVED_COLUMNS:
            report.add(
                path,
                "reserved column name (metak computes it)",
                row=line,
                column=name,
                fix="rename the column",
            )
            del index[name]
        elif name.lower() in spec.names or difflib.get_close_matches(
            name, spec.names, n=1, cutoff=0.85
        ):
            # Near-miss of a known column: almost surely a typo, not a moderator.
            report.add(
                path,
                "column looks like a misspelt known column",
                row=line,
                column=name,
                fix=_suggest(name, spec.names, "") + " (other columns are moderators)",
            )
            del index[name]
    for name, count in Counter(n for n in names if n).items():
        if count > 1:
            report.add(
                path,
                f"column appears {count} times in the header",
                row=line,
                column=name,
                fix="keep one",
            )
    for column in spec.columns:
        if column.header_required and column.name not in index:
            report.add(
                path,
                "required column missing",
                row=line,
                column=column.name,
                fix=f"add a '{column.name}' column",
            )
    return index


# --------------------------------------------------------------------------- cells


def _number_fix(text: str) -> str:
    if text.lower() in _MISSING_MARKERS:
        return "leave the cell empty when the value is missing"
    if any(ch in text for ch in "\u2212\u2013\u2012"):
        return "write negative numbers with the ASCII '-'"
    if text[:1] in "<>≤≥":
        return "give the exact number; a bound cannot be used (leave it empty instead)"
    if "," in text:
        return "use '.' as the decimal point and no thousands separators"
    return "write a plain number such as 12.5 (no units, spaces or words)"


def _parse_column(table: _Table, column: schema.Column, report: _Report) -> list:
    """The parsed cells of one column (None where empty or invalid).

    Each invalid cell is reported with the first of: required but empty, not allowed, not a
    finite number, not a number, not a whole number, out of range.
    """
    name, texts = column.name, table.texts(column.name)
    values: list = [None] * len(texts)
    filled = [i for i, text in enumerate(texts) if text]
    if column.cell_required and len(filled) < len(texts):
        for i in np.flatnonzero(~table.has(name)):
            report.cell(
                table, int(i), name, "empty, but the column is required", fix=f"fill in {name}"
            )
    if column.kind == schema.ENUM:
        allowed = set(column.allowed)
        for i in filled:
            text = texts[i]
            if text in allowed:
                values[i] = text
            else:
                report.cell(
                    table,
                    i,
                    name,
                    f"not allowed; allowed: {', '.join(column.allowed)}",
                    fix=_suggest(text, column.allowed, "use one of the allowed values"),
                )
        return values
    if not column.numeric:
        for i in filled:
            values[i] = texts[i]
        return values
    given = [texts[i] for i in filled]
    valid = [m is not None for m in map(_NUMBER.fullmatch, given)]
    if column.kind == schema.INTEGER:
        whole = map(_INTEGER.fullmatch, given)
        valid = [v and w is not None for v, w in zip(valid, whole, strict=True)]
    for i, text, good in zip(filled, given, valid, strict=True):
        if good:
            values[i] = float(text)
        else:
            _report_number(table, i, column, text, report)
    # Finite and in range, checked on all numbers at once; the few failures are reported alone.
    parsed = np.array([math.nan if v is None else v for v in values], dtype=float)
    with np.errstate(invalid="ignore"):
        low_fails = (
            np.zeros(len(values), bool)
            if column.low is None
            else (parsed <= column.low if column.low_open else parsed < column.low)
        )
        high_fails = (
            np.zeros(len(values), bool)
            if column.high is None
            else (parsed >= column.high if column.high_open else parsed > column.high)
        )
    for i in np.flatnonzero(np.isinf(parsed) | low_fails | high_fails):
        i = int(i)
        _report_number(table, i, column, texts[i], report)
        values[i] = None
    return values


def _report_number(table: _Table, i: int, column: schema.Column, text: str, report) -> None:
    """Report the first problem of a number cell that is not a usable number."""
    name = column.name
    if _NON_FINITE.fullmatch(text):
        report.cell(
            table,
            i,
            name,
            "not a finite number",
            fix="leave the cell empty when the value is missing",
        )
        return
    if not _NUMBER.fullmatch(text):
        foreign = schema.foreign_digits(text)
        if foreign is not None:
            report.cell(table, i, name, foreign[0], fix=foreign[1])
        else:
            report.cell(table, i, name, "not a number", fix=_number_fix(text))
        return
    value = float(text)
    if not math.isfinite(value):
        report.cell(table, i, name, "not a finite number", fix="check the number")
        return
    if column.kind == schema.INTEGER and not _INTEGER.fullmatch(text):
        report.cell(table, i, name, "not a whole number", fix="write a count such as 25")
        return
    report.cell(
        table,
        i,
        name,
        f"out of range: must be {column.range_text()}",
        fix="check the value against the source",
    )


_INTEGER = re.compile(r"[+-]?[0-9]+")


def _classify_moderators(table: _Table, report: _Report) -> dict[str, str]:
    """Moderator column -> "numeric" | "categorical"; the values parsed into ``table.value``."""
    kinds = {}
    for name in table.moderators:
        texts = table.texts(name)
        filled = [i for i, text in enumerate(texts) if text]
        _foreign_digit_numbers(table, name, filled, report)
        numbers = [
            _NUMBER.fullmatch(texts[i]) is not None and math.isfinite(float(texts[i]))
            for i in filled
        ]
        markers = [texts[i].lower() in _MISSING_MARKERS for i in filled]
        if filled and any(markers) and all(n or m for n, m in zip(numbers, markers, strict=True)):
            # A numeric moderator with "NA"-style cells would silently turn categorical.
            for i, is_marker in zip(filled, markers, strict=True):
                if is_marker:
                    report.cell(
                        table,
                        i,
                        name,
                        "missing-value marker in a numeric moderator column",
                        fix="leave the cell empty",
                    )
        kind = "numeric" if all(numbers) else "categorical"
        kinds[name] = kind
        if kind == "numeric":
            bad = table.invalid(name)
            table.value[name] = [
                float(text) if text and not bad[i] else None for i, text in enumerate(texts)
            ]
        else:
            table.value[name] = [text or None for text in texts]
    return kinds


def _foreign_digit_numbers(table: _Table, name: str, filled: list, report: _Report) -> None:
    """Report moderator cells that are numbers written in other digits (e.g. '٤٤' for 44).

    Read as text they would silently make the column categorical; other text stays a category.
    """
    texts = table.texts(name)
    for i in filled:
        text = texts[i]
        if text.isascii():  # only ASCII digits: nothing to report
            continue
        foreign = schema.foreign_digits(text)
        if foreign is not None and schema.ascii_number(text) is not None:
            report.cell(table, i, name, foreign[0], fix=foreign[1])


# --------------------------------------------------------------------------- rules within a row
#
# Each rule runs over all rows at once, in the order the checks of one row are listed; a check
# reads which cells earlier checks found invalid (table.ok), as it would row by row.


def _cells(table: _Table, rows: np.ndarray, column: str, message, fix, report: _Report) -> None:
    """Report ``column`` of every row in the mask ``rows``.

    ``message`` is text, or a function of the row's position giving it.
    """
    for i in np.flatnonzero(rows):
        i = int(i)
        report.cell(table, i, column, message(i) if callable(message) else message, fix=fix)


def _pair(table: _Table, rows: np.ndarray, first: str, second: str, report: _Report) -> None:
    """Report ``second`` empty while ``first`` is given."""
    missing = rows & table.has(first) & ~table.has(second)
    _cells(
        table,
        missing,
        second,
        f"empty, but {first} is given",
        f"add {second} or remove {first}",
        report,
    )


def _study_rules(table: _Table, report: _Report) -> None:
    every = np.ones(len(table), bool)
    for a, b in (
        ("dose", "dose_unit"),
        ("duration", "duration_unit"),
        ("baseline_dpucmgp", "baseline_dpucmgp_stat"),
    ):
        _pair(table, every, a, b, report)
        _pair(table, every, b, a, report)
    excluded = np.array([v == "no" for v in table.values("include")], bool)
    _cells(
        table,
        excluded & ~table.has("exclusion_reason"),
        "exclusion_reason",
        "empty, but include is 'no'",
        "say why the study is left out of the analyses",
        report,
    )


def _arm_rules(table: _Table, report: _Report) -> None:
    arm, timepoint = table.values("arm"), table.values("timepoint")
    whole = np.array([a == "all" for a in arm], bool)
    no_arm = np.array([a is None for a in arm], bool)
    no_time = np.array([t is None for t in timepoint], bool)
    baseline = np.array([t == "baseline" for t in timepoint], bool)
    later = whole & ~no_time & ~baseline
    _cells(
        table,
        later,
        "arm",
        lambda i: (
            "arm 'all' (whole sample) is allowed only with timepoint "
            f"'baseline', not '{timepoint[i]}'"
        ),
        "give treatment and control rows instead",
        report,
    )
    rows = ~later  # n and the summary are beside the point until the row is split
    _cells(
        table,
        rows & ~table.has("n") & ~no_arm & ~no_time & ~(whole & baseline),
        "n",
        "empty; n is required except on arm 'all' baseline rows",
        "give the number analysed in this arm",
        report,
    )
    _cells(
        table,
        rows & table.has("se") & table.has("sem"),
        "sem",
        "both se and sem are given (they are the same thing)",
        "keep one",
        report,
    )
    _arm_summary_rules(table, rows, timepoint, no_time, baseline, report)


def _arm_summary_rules(table: _Table, rows, timepoint, no_time, baseline, report) -> None:
    has = table.has
    for a, b in (("q1", "q3"), ("min", "max")):
        _pair(table, rows, a, b, report)
        _pair(table, rows, b, a, report)
    for spread in ("sd", "se", "sem"):
        _cells(
            table,
            rows & has(spread) & ~has("mean"),
            spread,
            f"{spread} is given without a mean",
            f"add the mean or remove {spread}",
            report,
        )
    _cells(
        table,
        rows & (has("q1") | has("q3")) & ~has("median"),
        "median",
        "empty, but quartiles are given",
        "add the median or remove q1/q3",
        report,
    )
    names = ("min", "q1", "median", "q3", "max")
    ok = [table.ok(name) for name in names]
    numbers = [table.numbers(name) for name in names]
    for i in np.flatnonzero(rows & (np.sum(ok, axis=0) >= 2)):
        i = int(i)
        order = [k for k in range(len(names)) if ok[k][i]]
        for lower, upper in zip(order, order[1:], strict=False):
            if numbers[lower][i] > numbers[upper][i]:
                report.cell(
                    table,
                    i,
                    names[upper],
                    f"quantiles out of order: {names[lower]} {table.text[names[lower]][i]} > "
                    f"{names[upper]} {table.text[names[upper]][i]}; "
                    "need min ≤ q1 ≤ median ≤ q3 ≤ max",
                    fix="check the numbers and their columns against the source",
                )
                break
    mean, low, high = table.numbers("mean"), table.numbers("min"), table.numbers("max")
    with np.errstate(invalid="ignore"):  # NaN where a cell is empty; those rows are not ok
        inside = (low <= mean) & (mean <= high)
    _cells(
        table,
        rows & table.ok("mean") & table.ok("min") & table.ok("max") & ~inside,
        "mean",
        lambda i: f"mean outside the range [{table.text['min'][i]}, {table.text['max'][i]}]",
        "check the numbers and their columns against the source",
        report,
    )
    summary = ("mean", "sd", "se", "sem", "median", "q1", "q3", "min", "max")
    # Rows with a cell already reported: a second message about the same cells would only confuse.
    rows = rows & ~np.any([table.invalid(name) for name in summary], axis=0)
    spread = has("sd") | has("se") | has("sem")
    usable_mean = has("mean") & spread
    usable_median = has("median") & (has("q1") | has("min"))
    # A bare baseline level still serves as a moderator.
    bare_baseline = baseline & (has("mean") | has("median"))
    rows = rows & ~(usable_mean | usable_median | no_time | bare_baseline)
    _cells(
        table,
        rows & has("mean"),
        "sd",
        lambda i: (
            "empty: a mean without sd, se or sem is allowed only on baseline "
            f"rows, not '{timepoint[i]}'"
        ),
        "add the spread the paper gives (sd, se or sem)",
        report,
    )
    _cells(
        table,
        rows & ~has("mean") & has("median"),
        "q1",
        lambda i: (
            "empty: a median without q1+q3 or min+max is allowed only on "
            f"baseline rows, not '{timepoint[i]}'"
        ),
        "add the quartiles or the range",
        report,
    )
    _cells(
        table,
        rows & ~has("mean") & ~has("median"),
        "mean",
        "no summary: need mean with sd/se/sem, or median with q1+q3 and/or min+max",
        "fill in what the paper reports, or delete the row",
        report,
    )


def _contrast_rules(table: _Table, report: _Report) -> None:
    every = np.ones(len(table), bool)
    _pair(table, every, "ci_low", "ci_high", report)
    _pair(table, every, "ci_high", "ci_low", report)
    measure = table.values("measure")
    ratio = np.array([m in schema.RATIO_MEASURES for m in measure], bool)
    for name in ("estimate", "ci_low", "ci_high"):
        with np.errstate(invalid="ignore"):
            not_positive = table.numbers(name) <= 0
        _cells(
            table,
            ratio & table.ok(name) & not_positive,
            name,
            lambda i: f"must be > 0: measure {measure[i]} is a ratio on the natural scale",
            "give the ratio as reported, or use the log measure (e.g. logRR) for a log ratio",
            report,
        )
    low, high, estimate = (table.numbers(c) for c in ("ci_low", "ci_high", "estimate"))
    interval = table.ok("ci_low") & table.ok("ci_high")
    with np.errstate(invalid="ignore"):  # NaN where a cell is empty; those rows are not ok
        swapped = interval & (low >= high)
        inside = (low <= estimate) & (estimate <= high)
    outside = interval & ~swapped & table.ok("estimate") & ~inside
    text = table.text
    _cells(
        table,
        swapped,
        "ci_low",
        lambda i: f"ci_low {text['ci_low'][i]} is not below ci_high {text['ci_high'][i]}",
        "swap them, or check the interval against the source",
        report,
    )
    _cells(
        table,
        outside,
        "estimate",
        lambda i: f"outside its CI [{text['ci_low'][i]}, {text['ci_high'][i]}]",
        "check estimate, CI and measure scale against the source",
        report,
    )
    uncertainty = ("se", "ci_low", "ci_high", "p_value")
    reported = np.any([table.invalid(name) for name in uncertainty], axis=0)
    given = np.any([table.has(name) for name in uncertainty], axis=0)
    _cells(
        table,
        ~reported & ~given,
        "se",
        "no uncertainty: need se, ci_low+ci_high, or p_value",
        "add what the paper reports, or delete the row",
        report,
    )


_ROW_RULES = {
    schema.STUDIES.name: _study_rules,
    schema.ARMS.name: _arm_rules,
    schema.CONTRASTS.name: _contrast_rules,
}


# --------------------------------------------------------------------------- between rows and files


def _duplicates(table: _Table, key: tuple[str, ...], report: _Report) -> None:
    seen: dict[tuple, int] = {}
    skip = ~table.has(key[0]) | np.any([table.invalid(name) for name in key], axis=0)
    for i, k in enumerate(zip(*(table.texts(name) for name in key), strict=True)):
        if skip[i]:
            continue
        if k in seen:
            if len(key) == 1:
                report.add(
                    table.path,
                    f"duplicate {key[0]} (first on line {seen[k]})",
                    row=table.lines[i],
                    column=key[0],
                    value=k[0],
                    fix=f"make each {key[0]} unique",
                )
            else:
                report.add(
                    table.path,
                    f"duplicate row: same {', '.join(key)} as line {seen[k]}",
                    row=table.lines[i],
                    fix="delete it, or tell the rows apart with arm_label/time_months",
                )
        else:
            seen[k] = table.lines[i]


def _known(table: _Table, column: str) -> dict[str, int]:
    """Id -> line of every filled cell of ``column`` (the last line where ids repeat)."""
    return {text: line for text, line in zip(table.texts(column), table.lines, strict=True) if text}


def _references(
    table: _Table, column: str, known: dict[str, int], where: str, report: _Report
) -> None:
    bad = table.invalid(column)
    for i, text in enumerate(table.texts(column)):
        if text and not bad[i] and text not in known:
            fix = _suggest(text, known, f"add it to {where} or correct the id")
            report.cell(table, i, column, f"not in {where}", fix=fix)


def _units(arms: _Table, outcomes: _Table | None, report: _Report) -> None:
    declared = {}
    if outcomes is not None and outcomes.complete:
        for outcome, unit in zip(outcomes.texts("outcome"), outcomes.texts("unit"), strict=True):
            if outcome:
                declared.setdefault(outcome, unit)
    first: dict[str, tuple[str, int]] = {}
    bad = arms.invalid("unit")
    for i, (outcome, unit) in enumerate(
        zip(arms.texts("outcome"), arms.texts("unit"), strict=True)
    ):
        if not outcome or not unit or bad[i]:
            continue
        if declared.get(outcome):
            expected, origin = declared[outcome], "outcomes.csv declares"
        elif outcome in first:
            expected, origin = first[outcome][0], f"line {first[outcome][1]} uses"
        else:
            first[outcome] = (unit, arms.lines[i])
            continue
        if unit != expected:
            report.cell(
                arms,
                i,
                "unit",
                f"{origin} unit '{expected}' for outcome '{outcome}'; one unit per outcome",
                fix="convert the numbers, or record them under another outcome id",
            )


# --------------------------------------------------------------------------- provenance


def _quote_start(quote: str) -> str:
    shown = " ".join(quote.split())
    return shown if len(shown) <= _QUOTE_SHOWN else shown[: _QUOTE_SHOWN - 1] + "…"


def _provenance(table: _Table, numeric_moderators: list[str], mode: str, report: _Report) -> bool:
    """Check the quotes of ``table``; False when auto mode leaves it unchecked (needs a warning)."""
    checked = [c.name for c in table.spec.columns if c.quote_checked and c.name in table.columns]
    checked += numeric_moderators
    if table.spec is not schema.STUDIES:
        rows = np.ones(len(table), bool)
    else:  # studies.csv rows holding no checked number need no quote
        rows = np.any([table.ok(name) for name in checked], axis=0) if checked else None
        rows = np.zeros(len(table), bool) if rows is None else rows
    present = [name for name in schema.PROVENANCE_COLUMNS if name in table.columns]
    if mode == "off" or not rows.any():
        return True
    if mode == "auto" and not present:
        return False
    why = "provenance is strict" if mode == "strict" else f"the file has a {present[0]} column"
    for name in schema.PROVENANCE_COLUMNS:
        if name not in present:
            report.add(
                table.path,
                f"column {name} missing, but {why}",
                row=table.header_line,
                fix=f"add a {name} column: every row holding numbers needs source and quote",
            )
    # Within a row: empty source, empty quote, then each number in column order (the problems
    # are sorted by line at the end, so reporting column by column keeps that order).
    ok = {name: table.ok(name) for name in checked}
    for name in present:
        _cells(
            table,
            rows & ~table.has(name),
            name,
            f"empty, but {why}",
            "give the DOI, PMID:… or URL"
            if name == "source"
            else "copy the passage holding the row's numbers verbatim",
            report,
        )
    if "quote" not in present:
        return True
    quotes = table.text["quote"]
    quoted = rows & table.has("quote")
    for name in checked:
        texts = table.text[name] if name in table.text else None
        for i in np.flatnonzero(quoted & ok[name]):
            i = int(i)
            if not number_in_quote(texts[i], quotes[i]):
                report.cell(
                    table,
                    i,
                    name,
                    f"number {texts[i]} not found in the quote ({_quote_start(quotes[i])!r})",
                    fix="write it exactly as the source does, and quote the passage that holds it",
                )
    return True


# --------------------------------------------------------------------------- tables


def _frame(table: _Table | None, spec: schema.FileSpec, moderators: dict[str, str]) -> pd.DataFrame:
    data: dict[str, object] = {}
    for column in spec.columns:
        values = table.values(column.name) if table is not None else []
        if column.numeric:
            array = np.array([np.nan if x is None else x for x in values], dtype=float)
            if column.default is not None:
                array[np.isnan(array)] = column.default
            data[column.name] = array
        else:
            if column.default is not None:
                values = [column.default if x is None else x for x in values]
            data[column.name] = pd.Series(values, dtype=object)
    for name, kind in moderators.items():
        values = table.values(name) if table is not None else []
        if kind == "numeric":
            data[name] = np.array([np.nan if x is None else x for x in values], dtype=float)
        else:
            data[name] = pd.Series(values, dtype=object)
    frame = pd.DataFrame(data)
    frame["line"] = np.array(table.lines if table is not None else [], dtype=np.int64)
    return frame


def _add_derived(studies: pd.DataFrame) -> pd.DataFrame:
    studies = studies.copy()
    for name, (value, unit, factors) in schema.DERIVED_STUDY_COLUMNS.items():
        factor = studies[unit].map(factors).astype(float)
        studies.insert(
            len(studies.columns) - 1, name, studies[value].to_numpy(dtype=float) * factor.to_numpy()
        )
    return studies


def _implicit_measures(names: list, arms: pd.DataFrame, contrasts: pd.DataFrame) -> list[str]:
    """Each undeclared outcome's measure, in the order of ``names``.

    The contrasts' own (log) scale when the outcome has only contrasts, all on one scale (e.g.
    logRR for a user's log risk ratios); otherwise MD.
    """
    with_arms = set(arms["outcome"])
    scales: dict = {}
    for outcome, measure in zip(contrasts["outcome"], contrasts["measure"], strict=True):
        if not pd.isna(measure):
            scales.setdefault(outcome, set()).add(schema.LOG_OF_RATIO.get(measure, measure))
    measures = []
    for name in names:
        given = scales.get(name, set())
        one = len(given) == 1 and name not in with_arms
        measures.append(next(iter(given)) if one else schema.DEFAULT_MEASURE)
    return measures


def _implicit_outcomes(arms: pd.DataFrame, contrasts: pd.DataFrame) -> pd.DataFrame:
    units = arms.dropna(subset=["unit"]).drop_duplicates("outcome").set_index("outcome")["unit"]
    names = list(dict.fromkeys([*arms["outcome"], *contrasts["outcome"]]))
    frame = _frame(None, schema.OUTCOMES, {})
    frame = pd.DataFrame(
        {
            "outcome": pd.Series(names, dtype=object),
            "family": pd.Series([None] * len(names), dtype=object),
            "description": pd.Series([None] * len(names), dtype=object),
            "unit": pd.Series([units.get(n) for n in names], dtype=object),
            "direction": pd.Series([schema.IMPLICIT_DIRECTION] * len(names), dtype=object),
            "measure": pd.Series(_implicit_measures(names, arms, contrasts), dtype=object),
            "prepost_r": np.full(len(names), schema.DEFAULT_PREPOST_R),
            "line": np.full(len(names), np.nan),
        },
        columns=frame.columns,
    )
    return frame


# --------------------------------------------------------------------------- entry point


def _locate_files(directory: Path, report: _Report) -> dict[str, Path] | None:
    problem = input_files.directory_problem(directory)
    if problem is not None:
        report.add(problem.file, problem.message, fix=problem.fix)
        return None
    # lexists, not exists: a dangling or looping link is a file the user meant metak to read;
    # skipping it silently would analyse fewer studies than the directory holds.
    present = {
        spec.name: directory / spec.name
        for spec in schema.FILES
        if os.path.lexists(directory / spec.name)
    }
    try:
        others = sorted(
            p.name
            for p in directory.iterdir()
            if p.suffix.lower() == ".csv" and p.name not in present
        )
    except OSError:
        others = []
    found = f" (found {', '.join(others)}: rename?)" if others else ""
    if schema.STUDIES.name not in present:
        report.add(
            directory / schema.STUDIES.name,
            "file not found; every study-records directory needs it",
            fix=f"create it with one row per study and at least a study_id column{found}",
        )
    if schema.ARMS.name not in present and schema.CONTRASTS.name not in present:
        report.add(
            directory,
            "neither arms.csv nor contrasts.csv found",
            fix=f"add arms.csv (arm summaries) and/or contrasts.csv (between-group effects){found}",
        )
    _check_companions(directory, report)
    return present


def _check_companions(directory: Path, report: _Report) -> None:
    """claims.csv and analyses.toml, read later by ``fit``, must be regular files when present.

    ``fit`` skips them when they are not files; a dangling link would silently drop the claims
    or replace the user's analyses by the defaults.
    """
    for name in schema.COMPANION_FILES:
        path = directory / name
        if os.path.lexists(path):
            problem = input_files.file_problem(path)
            if problem is not None:
                report.add(problem.file, problem.message, fix=problem.fix)


def load_records(directory: str | Path, provenance: str = "auto") -> StudyRecords:
    """Read and validate a study-records directory (README.md, "Study records: the CSV schema").

    Parameters
    ----------
    directory : str or Path
        Directory holding studies.csv, arms.csv and/or contrasts.csv, and optionally outcomes.csv.
    provenance : {"auto", "strict", "off"}
        "strict": every arms/contrasts row, and every studies row holding numbers, needs source
        and quote, and each of its numbers must be in the quote. "auto": strict for files with a
        source or quote column; one warning names the files left unchecked. "off": no check.

    Returns
    -------
    StudyRecords

    Raises
    ------
    InputError
        Carrying every problem found, one line each.
    ValueError
        For an unknown ``provenance`` mode (a programming error).
    """
    if provenance not in PROVENANCE_MODES:
        raise ValueError(f"provenance must be one of {PROVENANCE_MODES}, not {provenance!r}")
    with collector_paused():
        return _load(Path(directory), provenance)


def _load(directory: Path, provenance: str) -> StudyRecords:
    report = _Report()
    paths = _locate_files(directory, report)
    if paths is None:
        raise InputError(report.sorted())
    tables = {
        spec.name: _read_table(paths[spec.name], spec, report)
        for spec in schema.FILES
        if spec.name in paths
    }
    moderators: dict[str, str] = {}
    for name, table in tables.items():
        if table is None:
            continue
        for column in table.spec.columns:
            if column.name in table.columns:
                table.value[column.name] = _parse_column(table, column, report)
        if table.spec is schema.STUDIES:
            moderators = _classify_moderators(table, report)
        rule = _ROW_RULES.get(name)
        if rule is not None:
            rule(table, report)
        if table.spec.duplicate_key:
            _duplicates(table, table.spec.duplicate_key, report)
    studies, outcomes = tables.get(schema.STUDIES.name), tables.get(schema.OUTCOMES.name)
    arms, contrasts = tables.get(schema.ARMS.name), tables.get(schema.CONTRASTS.name)
    data_tables = [t for t in (arms, contrasts) if t is not None]
    if studies is not None and not len(studies):
        report.add(studies.path, "no study rows", fix="add one row per study below the header")
    if (
        data_tables
        and len(data_tables) == len(paths.keys() & {schema.ARMS.name, schema.CONTRASTS.name})
        and not any(len(t) for t in data_tables)
    ):
        report.add(
            directory, "arms.csv/contrasts.csv hold no data rows", fix="add the reported results"
        )
    for table in data_tables:
        # Against an unreadable or empty table every reference would be reported: say it once.
        if studies is not None and studies.complete and len(studies):
            known_studies = _known(studies, "study_id")
            _references(table, "study_id", known_studies, schema.STUDIES.name, report)
        if outcomes is not None and outcomes.complete:
            known_outcomes = _known(outcomes, "outcome")
            _references(table, "outcome", known_outcomes, schema.OUTCOMES.name, report)
    if arms is not None:
        _units(arms, outcomes, report)
    unchecked = []
    for table in (studies, arms, contrasts):
        if table is not None:
            numeric = (
                [n for n, k in moderators.items() if k == "numeric"] if table is studies else []
            )
            if not _provenance(table, numeric, provenance, report):
                unchecked.append(table.spec.name)
    if paths.keys() - tables.keys() or report.problems or None in tables.values():
        raise InputError(report.sorted())
    return _assemble(directory, tables, moderators, unchecked)


def _assemble(
    directory: Path, tables: dict, moderators: dict[str, str], unchecked: list[str]
) -> StudyRecords:
    studies = _add_derived(_frame(tables.get(schema.STUDIES.name), schema.STUDIES, moderators))
    arms = _frame(tables.get(schema.ARMS.name), schema.ARMS, {})
    contrasts = _frame(tables.get(schema.CONTRASTS.name), schema.CONTRASTS, {})
    if schema.OUTCOMES.name in tables:
        outcomes = _frame(tables[schema.OUTCOMES.name], schema.OUTCOMES, {})
    else:
        outcomes = _implicit_outcomes(arms, contrasts)
    all_moderators = dict(moderators)
    for name in schema.NUMERIC_STUDY_MODERATORS:
        all_moderators[name] = "numeric"
    warnings = ()
    if unchecked:
        warnings = (
            f"provenance not checked for {', '.join(unchecked)}: no source or quote column",
        )
    return StudyRecords(directory, studies, arms, contrasts, outcomes, all_moderators, warnings)
