"""The exception family for user-facing mistakes.

Every error a user can cause is a :class:`MetakError`; the CLI prints ``str(err)`` as one line
and exits with ``err.exit_code``. Programming errors stay ordinary exceptions (and tracebacks).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "EXIT_OK",
    "EXIT_BAD_INPUT",
    "EXIT_FIT_FAILED",
    "EXIT_OTHER",
    "MetakError",
    "InputError",
    "ConfigError",
    "FitError",
    "ResultsError",
    "OutputError",
    "Problem",
]

EXIT_OK = 0
EXIT_OTHER = 1
EXIT_BAD_INPUT = 2
EXIT_FIT_FAILED = 3


# Longer cell values (quotes, notes) are cut in messages so every problem stays one short line.
_VALUE_SHOWN = 60


class MetakError(Exception):
    """Base class: a mistake in what the user gave metak, reported as one line."""

    exit_code = EXIT_OTHER


class Problem:
    """One problem found in an input file: where it is, what is wrong, how to fix it.

    ``str(problem)`` is the one line shown to the user:
    ``file:row, column C, value 'V': message; fix: F`` (absent parts left out).

    Parameters
    ----------
    file : str or Path
        The file (or directory) the problem is in.
    message : str
        What is wrong, e.g. ``"must be > 0"``.
    row : int, optional
        The 1-based line number in ``file`` (the header is line 1).
    column : str, optional
        The column name.
    value : object, optional
        The offending cell value as read (long text is cut in the message).
    fix : str, optional
        What the user should do about it.
    """

    __slots__ = ("file", "row", "column", "value", "message", "fix")

    def __init__(
        self,
        file: str | Path,
        message: str,
        *,
        row: int | None = None,
        column: str | None = None,
        value: object = None,
        fix: str | None = None,
    ) -> None:
        self.file = str(file)
        self.row = row
        self.column = column
        self.value = value
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f":{self.row}"
        parts = [where]
        if self.column is not None:
            parts.append(f"column {self.column}")
        if self.value is not None:
            value = self.value
            if isinstance(value, str) and len(value) > _VALUE_SHOWN:
                value = value[: _VALUE_SHOWN - 1] + "…"
            parts.append(f"value {value!r}")
        text = ": ".join([", ".join(parts), self.message])
        if self.fix:
            text += f"; fix: {self.fix}"
        return " ".join(text.splitlines())

    def __repr__(self) -> str:
        return f"Problem({str(self)!r})"


class InputError(MetakError):
    """Bad study records: carries every problem found, one line each.

    Parameters
    ----------
    problems : Problem or iterable of Problem
        What was found; ``str(err)`` is their lines joined by newlines.
    """

    exit_code = EXIT_BAD_INPUT

    def __init__(self, problems: Problem | Iterable[Problem]) -> None:
        if isinstance(problems, Problem):
            problems = [problems]
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ConfigError(MetakError):
    """A bad analysis file or command-line option."""

    exit_code = EXIT_BAD_INPUT


class FitError(MetakError):
    """A fit that failed its diagnostics gate even after the automatic retry."""

    exit_code = EXIT_FIT_FAILED


class ResultsError(MetakError):
    """A results directory that is missing, not metak's, or changed since ``fit`` wrote it."""

    exit_code = EXIT_BAD_INPUT


class OutputError(MetakError):
    """A result file could not be written (disk full, no permission): the machine, not the input."""

    exit_code = EXIT_OTHER
