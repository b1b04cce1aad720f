"""Read and validate a study-records directory into typed tables.

:func:`load_records` is the one entry point: it reads the CSV files of README.md, section
"Study records: the CSV schema" as bytes (regular files only, size-limited:
:mod:`metak.input_files`), checks encoding, CSV syntax, headers, every cell, the rules within a
row, the references between files and the provenance quotes, and either returns a
:class:`StudyRecords` or raises one :class:`~metak.errors.InputError` carrying every problem
found (one line each). Nothing downstream re-checks the records.
"""

from __future__ import annotations

import csv
import difflib
import io
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from metak import input_files, schema
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
    """True when ``directory`` is (a link to) the bundled ``studies/``, which is always checked
    with strict provenance. A link loop is simply not the bundled directory (``realpath`` does
    not raise on loops; ``load_records`` reports them)."""
    return os.path.realpath(directory) == os.path.realpath(bundled_studies_dir())


@dataclass
class _Row:
    line: int
    text: dict[str, str]  # cell text without surrounding whitespace ("" = empty)
    value: dict[str, object] = field(default_factory=dict)  # float, str or None
    bad: set[str] = field(default_factory=set)  # columns whose cell was reported as invalid

    def has(self, name: str) -> bool:
        return self.text.get(name, "") != ""

    def ok(self, name: str) -> bool:
        """Cell filled and valid."""
        return self.has(name) and name not in self.bad


@dataclass
class _Table:
    spec: schema.FileSpec
    path: Path
    header_line: int
    columns: tuple[str, ...]  # known columns present, canonical order
    moderators: tuple[str, ...]  # studies.csv only: extra columns, file order
    rows: list[_Row]
    complete: bool  # False when some records could not be read (CSV syntax, cell count)


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
        self, table: _Table, row: _Row, column: str, message: str, fix: str | None = None
    ) -> None:
        value = row.text.get(column) or None
        self.add(table.path, message, row=row.line, column=column, value=value, fix=fix)
        row.bad.add(column)

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
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            report.add(path, f"malformed CSV: {err}", row=previous + 1, fix=_QUOTE_FIX)
            errors += 1
            if errors >= _MAX_CSV_ERRORS or reader.line_num == previous:
                break
            previous = reader.line_num
            continue
        first, previous = previous + 1, reader.line_num
        if any(cell.strip() for cell in cells):
            records.append((first, cells))
            if len(records) > MAX_ROWS + 1:  # the header and one row too many: enough to tell
                break
    return records, errors == 0


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
    rows = []
    for line, cells in records[1:]:
        if len(cells) != len(raw_header):
            report.add(
                path,
                f"{len(cells)} cells but the header has {len(raw_header)} columns",
                row=line,
                fix=_QUOTE_FIX,
            )
            complete = False
            continue
        row = _Row(line, {})
        for name, i in index.items():
            cell = cells[i]
            row.text[name] = cell.strip()
            if cell != row.text[name]:
                report.add(
                    path,
                    "leading/trailing whitespace",
                    row=line,
                    column=name,
                    value=cell,
                    fix=f"write {row.text[name]!r}",
                )
        rows.append(row)
    known = [c for c in spec.names if c in index]
    extra = [c for c in index if c not in spec.names]
    return _Table(spec, path, header_line, tuple(known), tuple(extra), rows, complete)


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


def _parse_cell(table: _Table, row: _Row, column: schema.Column, report: _Report) -> None:
    text = row.text.get(column.name, "")
    row.value[column.name] = None
    if text == "":
        if column.cell_required:
            report.cell(
                table,
                row,
                column.name,
                "empty, but the column is required",
                fix=f"fill in {column.name}",
            )
        return
    if column.kind == schema.ENUM:
        if text not in column.allowed:
            report.cell(
                table,
                row,
                column.name,
                f"not allowed; allowed: {', '.join(column.allowed)}",
                fix=_suggest(text, column.allowed, "use one of the allowed values"),
            )
            return
        row.value[column.name] = text
        return
    if not column.numeric:
        row.value[column.name] = text
        return
    if _NON_FINITE.fullmatch(text):
        report.cell(
            table,
            row,
            column.name,
            "not a finite number",
            fix="leave the cell empty when the value is missing",
        )
        return
    if not _NUMBER.fullmatch(text):
        foreign = schema.foreign_digits(text)
        if foreign is not None:
            report.cell(table, row, column.name, foreign[0], fix=foreign[1])
        else:
            report.cell(table, row, column.name, "not a number", fix=_number_fix(text))
        return
    value = float(text)
    if not math.isfinite(value):
        report.cell(table, row, column.name, "not a finite number", fix="check the number")
        return
    if column.kind == schema.INTEGER and not _INTEGER.fullmatch(text):
        report.cell(table, row, column.name, "not a whole number", fix="write a count such as 25")
        return
    if not column.in_range(value):
        report.cell(
            table,
            row,
            column.name,
            f"out of range: must be {column.range_text()}",
            fix="check the value against the source",
        )
        return
    row.value[column.name] = value


_INTEGER = re.compile(r"[+-]?[0-9]+")


def _classify_moderators(table: _Table, report: _Report) -> dict[str, str]:
    """Moderator column -> "numeric" | "categorical"; numeric values parsed into ``row.value``."""
    kinds = {}
    for name in table.moderators:
        cells = [(row, row.text[name]) for row in table.rows if row.text[name]]
        _foreign_digit_numbers(table, name, cells, report)
        numbers = [
            _NUMBER.fullmatch(text) is not None and math.isfinite(float(text)) for _, text in cells
        ]
        markers = [text.lower() in _MISSING_MARKERS for _, text in cells]
        if cells and any(markers) and all(n or m for n, m in zip(numbers, markers, strict=True)):
            # A numeric moderator with "NA"-style cells would silently turn categorical.
            for (row, _), is_marker in zip(cells, markers, strict=True):
                if is_marker:
                    report.cell(
                        table,
                        row,
                        name,
                        "missing-value marker in a numeric moderator column",
                        fix="leave the cell empty",
                    )
        kind = "numeric" if all(numbers) else "categorical"
        kinds[name] = kind
        for row in table.rows:
            text = row.text[name]
            if kind == "numeric":
                row.value[name] = float(text) if text and name not in row.bad else None
            else:
                row.value[name] = text or None
    return kinds


def _foreign_digit_numbers(table: _Table, name: str, cells: list, report: _Report) -> None:
    """Report moderator cells that are numbers written in other digits (e.g. '٤٤' for 44).

    Read as text they would silently make the column categorical; other text stays a category.
    """
    for row, text in cells:
        foreign = schema.foreign_digits(text)
        if foreign is not None and schema.ascii_number(text) is not None:
            report.cell(table, row, name, foreign[0], fix=foreign[1])


# --------------------------------------------------------------------------- rules within a row


def _pair(table, row, first, second, report) -> None:
    """Report ``second`` empty while ``first`` is given."""
    if row.has(first) and not row.has(second):
        report.cell(
            table,
            row,
            second,
            f"empty, but {first} is given",
            fix=f"add {second} or remove {first}",
        )


def _study_rules(table: _Table, row: _Row, report: _Report) -> None:
    for a, b in (
        ("dose", "dose_unit"),
        ("duration", "duration_unit"),
        ("baseline_dpucmgp", "baseline_dpucmgp_stat"),
    ):
        _pair(table, row, a, b, report)
        _pair(table, row, b, a, report)
    if row.value.get("include") == "no" and not row.has("exclusion_reason"):
        report.cell(
            table,
            row,
            "exclusion_reason",
            "empty, but include is 'no'",
            fix="say why the study is left out of the analyses",
        )


def _arm_rules(table: _Table, row: _Row, report: _Report) -> None:
    v = row.value
    arm, timepoint = v.get("arm"), v.get("timepoint")
    if arm == "all" and timepoint is not None and timepoint != "baseline":
        report.cell(
            table,
            row,
            "arm",
            f"arm 'all' (whole sample) is allowed only with timepoint "
            f"'baseline', not '{timepoint}'",
            fix="give treatment and control rows instead",
        )
        return  # n and the summary are beside the point until the row is split
    if (
        not row.has("n")
        and arm is not None
        and timepoint is not None
        and not (arm == "all" and timepoint == "baseline")
    ):
        report.cell(
            table,
            row,
            "n",
            "empty; n is required except on arm 'all' baseline rows",
            fix="give the number analysed in this arm",
        )
    if row.has("se") and row.has("sem"):
        report.cell(
            table, row, "sem", "both se and sem are given (they are the same thing)", fix="keep one"
        )
    _arm_summary_rules(table, row, report)


def _arm_summary_rules(table: _Table, row: _Row, report: _Report) -> None:
    v = row.value
    for a, b in (("q1", "q3"), ("min", "max")):
        _pair(table, row, a, b, report)
        _pair(table, row, b, a, report)
    for spread in ("sd", "se", "sem"):
        if row.has(spread) and not row.has("mean"):
            report.cell(
                table,
                row,
                spread,
                f"{spread} is given without a mean",
                fix=f"add the mean or remove {spread}",
            )
    if (row.has("q1") or row.has("q3")) and not row.has("median"):
        report.cell(
            table,
            row,
            "median",
            "empty, but quartiles are given",
            fix="add the median or remove q1/q3",
        )
    order = [name for name in ("min", "q1", "median", "q3", "max") if row.ok(name)]
    for lower, upper in zip(order, order[1:], strict=False):
        if v[lower] > v[upper]:
            report.cell(
                table,
                row,
                upper,
                f"quantiles out of order: {lower} {row.text[lower]} > "
                f"{upper} {row.text[upper]}; need min ≤ q1 ≤ median ≤ q3 ≤ max",
                fix="check the numbers and their columns against the source",
            )
            break
    if row.ok("mean") and row.ok("min") and row.ok("max") and not v["min"] <= v["mean"] <= v["max"]:
        report.cell(
            table,
            row,
            "mean",
            f"mean outside the range [{row.text['min']}, {row.text['max']}]",
            fix="check the numbers and their columns against the source",
        )
    summary = ("mean", "sd", "se", "sem", "median", "q1", "q3", "min", "max")
    if any(name in row.bad for name in summary):
        return  # already reported; a second message about the same cells would only confuse
    spread = row.has("sd") or row.has("se") or row.has("sem")
    usable_mean = row.has("mean") and spread
    usable_median = row.has("median") and (row.has("q1") or row.has("min"))
    timepoint = v.get("timepoint")
    if usable_mean or usable_median or timepoint is None:
        return
    if timepoint == "baseline" and (row.has("mean") or row.has("median")):
        return  # a bare baseline level still serves as a moderator
    if row.has("mean"):
        report.cell(
            table,
            row,
            "sd",
            f"empty: a mean without sd, se or sem is allowed only on baseline "
            f"rows, not '{timepoint}'",
            fix="add the spread the paper gives (sd, se or sem)",
        )
    elif row.has("median"):
        report.cell(
            table,
            row,
            "q1",
            f"empty: a median without q1+q3 or min+max is allowed only on "
            f"baseline rows, not '{timepoint}'",
            fix="add the quartiles or the range",
        )
    else:
        report.cell(
            table,
            row,
            "mean",
            "no summary: need mean with sd/se/sem, or median with q1+q3 and/or min+max",
            fix="fill in what the paper reports, or delete the row",
        )


def _contrast_rules(table: _Table, row: _Row, report: _Report) -> None:
    v = row.value
    _pair(table, row, "ci_low", "ci_high", report)
    _pair(table, row, "ci_high", "ci_low", report)
    if v.get("measure") in schema.RATIO_MEASURES:
        for name in ("estimate", "ci_low", "ci_high"):
            if row.ok(name) and v[name] <= 0:
                report.cell(
                    table,
                    row,
                    name,
                    f"must be > 0: measure {v['measure']} is a ratio on the natural scale",
                    fix="give the ratio as reported, or use the log measure "
                    "(e.g. logRR) for a log ratio",
                )
    if row.ok("ci_low") and row.ok("ci_high"):
        if v["ci_low"] >= v["ci_high"]:
            report.cell(
                table,
                row,
                "ci_low",
                f"ci_low {row.text['ci_low']} is not below ci_high {row.text['ci_high']}",
                fix="swap them, or check the interval against the source",
            )
        elif row.ok("estimate") and not v["ci_low"] <= v["estimate"] <= v["ci_high"]:
            report.cell(
                table,
                row,
                "estimate",
                f"outside its CI [{row.text['ci_low']}, {row.text['ci_high']}]",
                fix="check estimate, CI and measure scale against the source",
            )
    if any(name in row.bad for name in ("se", "ci_low", "ci_high", "p_value")):
        return
    if not (row.has("se") or row.has("ci_low") or row.has("ci_high") or row.has("p_value")):
        report.cell(
            table,
            row,
            "se",
            "no uncertainty: need se, ci_low+ci_high, or p_value",
            fix="add what the paper reports, or delete the row",
        )


_ROW_RULES = {
    schema.STUDIES.name: _study_rules,
    schema.ARMS.name: _arm_rules,
    schema.CONTRASTS.name: _contrast_rules,
}


# --------------------------------------------------------------------------- between rows and files


def _duplicates(table: _Table, key: tuple[str, ...], report: _Report) -> None:
    seen: dict[tuple, int] = {}
    for row in table.rows:
        if any(name in row.bad for name in key) or not row.has(key[0]):
            continue
        k = tuple(row.text.get(name, "") for name in key)
        if k in seen:
            if len(key) == 1:
                report.add(
                    table.path,
                    f"duplicate {key[0]} (first on line {seen[k]})",
                    row=row.line,
                    column=key[0],
                    value=k[0],
                    fix=f"make each {key[0]} unique",
                )
            else:
                report.add(
                    table.path,
                    f"duplicate row: same {', '.join(key)} as line {seen[k]}",
                    row=row.line,
                    fix="delete it, or tell the rows apart with arm_label/time_months",
                )
        else:
            seen[k] = row.line


def _references(
    table: _Table, column: str, known: dict[str, int], where: str, report: _Report
) -> None:
    for row in table.rows:
        text = row.text.get(column, "")
        if text and column not in row.bad and text not in known:
            fix = _suggest(text, known, f"add it to {where} or correct the id")
            report.cell(table, row, column, f"not in {where}", fix=fix)


def _units(arms: _Table, outcomes: _Table | None, report: _Report) -> None:
    declared = {}
    if outcomes is not None and outcomes.complete:
        for r in outcomes.rows:
            if r.has("outcome"):
                declared.setdefault(r.text["outcome"], r.text.get("unit", ""))
    first: dict[str, tuple[str, int]] = {}
    for row in arms.rows:
        outcome, unit = row.text.get("outcome", ""), row.text.get("unit", "")
        if not outcome or not unit or "unit" in row.bad:
            continue
        if declared.get(outcome):
            expected, origin = declared[outcome], "outcomes.csv declares"
        elif outcome in first:
            expected, origin = first[outcome][0], f"line {first[outcome][1]} uses"
        else:
            first[outcome] = (unit, row.line)
            continue
        if unit != expected:
            report.cell(
                arms,
                row,
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
    every_row = table.spec is not schema.STUDIES
    rows = [r for r in table.rows if every_row or any(r.ok(name) for name in checked)]
    present = [name for name in schema.PROVENANCE_COLUMNS if name in table.columns]
    if mode == "off" or not rows:
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
    for row in rows:
        for name in present:
            if not row.has(name):
                report.cell(
                    table,
                    row,
                    name,
                    f"empty, but {why}",
                    fix="give the DOI, PMID:… or URL"
                    if name == "source"
                    else "copy the passage holding the row's numbers verbatim",
                )
        if "quote" not in present or not row.has("quote"):
            continue
        quote = row.text["quote"]
        for name in checked:
            if row.ok(name) and not number_in_quote(row.text[name], quote):
                report.cell(
                    table,
                    row,
                    name,
                    f"number {row.text[name]} not found in the quote ({_quote_start(quote)!r})",
                    fix="write it exactly as the source does, and quote the passage that holds it",
                )
    return True


# --------------------------------------------------------------------------- tables


def _frame(table: _Table | None, spec: schema.FileSpec, moderators: dict[str, str]) -> pd.DataFrame:
    rows = table.rows if table is not None else []
    data: dict[str, object] = {}
    for column in spec.columns:
        values = [row.value.get(column.name) for row in rows]
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
        values = [row.value.get(name) for row in rows]
        if kind == "numeric":
            data[name] = np.array([np.nan if x is None else x for x in values], dtype=float)
        else:
            data[name] = pd.Series(values, dtype=object)
    frame = pd.DataFrame(data)
    frame["line"] = np.array([row.line for row in rows], dtype=np.int64)
    return frame


def _add_derived(studies: pd.DataFrame) -> pd.DataFrame:
    studies = studies.copy()
    for name, (value, unit, factors) in schema.DERIVED_STUDY_COLUMNS.items():
        factor = studies[unit].map(factors).astype(float)
        studies.insert(
            len(studies.columns) - 1, name, studies[value].to_numpy(dtype=float) * factor.to_numpy()
        )
    return studies


def _implicit_measure(outcome: str, arms: pd.DataFrame, contrasts: pd.DataFrame) -> str:
    """An undeclared outcome's measure: the contrasts' own (log) scale when it has only
    contrasts, all on one scale (e.g. logRR for a user's log risk ratios); otherwise MD."""
    if (arms["outcome"] == outcome).any():
        return schema.DEFAULT_MEASURE
    given = contrasts.loc[contrasts["outcome"] == outcome, "measure"].dropna()
    scales = {schema.LOG_OF_RATIO.get(m, m) for m in given}
    return scales.pop() if len(scales) == 1 else schema.DEFAULT_MEASURE


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
            "measure": pd.Series(
                [_implicit_measure(n, arms, contrasts) for n in names], dtype=object
            ),
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


def load_records(directory, provenance: str = "auto") -> StudyRecords:
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
    directory = Path(directory)
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
                for row in table.rows:
                    _parse_cell(table, row, column, report)
            else:
                for row in table.rows:
                    row.value[column.name] = None
        if table.spec is schema.STUDIES:
            moderators = _classify_moderators(table, report)
        rule = _ROW_RULES.get(name)
        for row in table.rows:
            if rule is not None:
                rule(table, row, report)
        if table.spec.duplicate_key:
            _duplicates(table, table.spec.duplicate_key, report)
    studies, outcomes = tables.get(schema.STUDIES.name), tables.get(schema.OUTCOMES.name)
    arms, contrasts = tables.get(schema.ARMS.name), tables.get(schema.CONTRASTS.name)
    data_tables = [t for t in (arms, contrasts) if t is not None]
    if studies is not None and not studies.rows:
        report.add(studies.path, "no study rows", fix="add one row per study below the header")
    if (
        data_tables
        and len(data_tables) == len(paths.keys() & {schema.ARMS.name, schema.CONTRASTS.name})
        and not any(t.rows for t in data_tables)
    ):
        report.add(
            directory, "arms.csv/contrasts.csv hold no data rows", fix="add the reported results"
        )
    for table in data_tables:
        # Against an unreadable or empty table every reference would be reported: say it once.
        if studies is not None and studies.complete and studies.rows:
            known_studies = {r.text["study_id"]: r.line for r in studies.rows if r.has("study_id")}
            _references(table, "study_id", known_studies, schema.STUDIES.name, report)
        if outcomes is not None and outcomes.complete:
            known_outcomes = {r.text["outcome"]: r.line for r in outcomes.rows if r.has("outcome")}
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
