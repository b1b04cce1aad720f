"""Claim verdicts: the posterior probability of a statement about a model quantity.

A claim names an analysis and a *statement* about one of its parameters, in a tiny language:

    PARAM < VALUE     PARAM <= VALUE     PARAM > VALUE     PARAM >= VALUE
    PARAM in [LOW, HIGH]                 PARAM outside [LOW, HIGH]

``PARAM`` is a parameter name of ``summary.csv`` (``mu``, ``intercept``, ``tau``, a moderator
name, ``theta_new``, ``effect_at_300``, ...) or ``theta[<study>]``: the shrunken effect of one
study of the analysis, named by its row label in ``study_effects.csv`` (the study id;
``study (comparison)`` for a study with several comparisons of one outcome), for claims about a
single trial. Such a verdict comes with the study's raw estimate and 95% CI beside it
(``study_yi``, ``study_ci_low``, ``study_ci_high``). The verdict thresholds are fixed and
documented:

- ``supported``     P(statement) >= 0.95
- ``contradicted``  P(statement) <= 0.05
- ``uncertain``     otherwise
- ``not assessable`` when the claim has no statement, or its analysis/parameter is not in the
  results.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from metak import input_files
from metak.errors import InputError, Problem
from metak.schema import NUMBER_PATTERN, foreign_digits

__all__ = [
    "SUPPORTED_AT",
    "CONTRADICTED_AT",
    "VERDICT_COLUMNS",
    "Statement",
    "StatementError",
    "parse_statement",
    "verdict_for",
    "load_claims",
    "judge_claims",
]

SUPPORTED_AT = 0.95
CONTRADICTED_AT = 0.05

_NUMBER = NUMBER_PATTERN  # ASCII digits only, as in the study records
# A summary parameter, or theta[<row label>] whose label may hold any text (spaces, brackets).
_PARAM = r"theta\[.+?\]|[A-Za-z_][\w\[\],.\- ]*?"
_COMPARE = re.compile(rf"^\s*({_PARAM})\s*(<=|>=|<|>)\s*({_NUMBER})\s*$")
_INTERVAL = re.compile(
    rf"^\s*({_PARAM})\s+(in|outside)\s*\[\s*({_NUMBER})\s*,\s*({_NUMBER})\s*\]\s*$"
)
_REQUIRED = ("claim_id", "claim")
# The columns of the verdict table (claims.csv of a results directory), in order.
VERDICT_COLUMNS = (
    "claim_id",
    "claim",
    "claimant",
    "source",
    "analysis",
    "parameter",
    "statement",
    "probability",
    "verdict",
    "study_yi",
    "study_ci_low",
    "study_ci_high",
    "explanation",
)


@dataclass(frozen=True)
class Statement:
    """A parsed statement: ``parameter`` compared with ``low``/``high`` by ``op``."""

    parameter: str
    op: str  # "<", "<=", ">", ">=", "in", "outside"
    low: float
    high: float | None = None

    def holds(self, draws: np.ndarray) -> np.ndarray:
        """Element-wise truth of the statement for posterior draws."""
        if self.op == "<":
            return draws < self.low
        if self.op == "<=":
            return draws <= self.low
        if self.op == ">":
            return draws > self.low
        if self.op == ">=":
            return draws >= self.low
        inside = (draws >= self.low) & (draws <= self.high)
        return inside if self.op == "in" else ~inside

    def __str__(self) -> str:
        if self.op in ("in", "outside"):
            return f"{self.parameter} {self.op} [{self.low:g}, {self.high:g}]"
        return f"{self.parameter} {self.op} {self.low:g}"


class StatementError(ValueError):
    """A statement that does not parse: what is wrong, and how to fix it (``fix``, or None)."""

    def __init__(self, message: str, fix: str | None = None):
        super().__init__(message)
        self.fix = fix


def parse_statement(text: str) -> Statement:
    """Parse a statement (grammar in the module docstring).

    Parameters
    ----------
    text : str
        E.g. ``"mu < 0"`` or ``"tau in [0, 0.5]"``; numbers in ASCII digits.

    Returns
    -------
    Statement

    Raises
    ------
    StatementError
        A ``ValueError`` saying what is allowed (or which character is not a digit).
    """
    match = _COMPARE.match(text)
    if match:
        return Statement(match.group(1).strip(), match.group(2), float(match.group(3)))
    match = _INTERVAL.match(text)
    if match:
        low, high = float(match.group(3)), float(match.group(4))
        if low > high:
            raise StatementError(f"interval [{low:g}, {high:g}] has low > high")
        return Statement(match.group(1).strip(), match.group(2), low, high)
    foreign = foreign_digits(text)
    if foreign is not None:
        # Python's \d and float() would read it; metak's numbers are ASCII everywhere.
        raise StatementError(foreign[0], fix="write the numbers with the ASCII digits 0-9")
    raise StatementError(
        "allowed: 'PARAM < VALUE' (also <=, >, >=) or 'PARAM in [LOW, HIGH]' "
        "or 'PARAM outside [LOW, HIGH]'; PARAM a summary parameter or theta[<study>]"
    )


def verdict_for(probability: float) -> str:
    """Map a posterior probability to a plain verdict (thresholds above)."""
    if not np.isfinite(probability):
        return "not assessable"
    if probability >= SUPPORTED_AT:
        return "supported"
    if probability <= CONTRADICTED_AT:
        return "contradicted"
    return "uncertain"


def load_claims(path: Path | str) -> pd.DataFrame:
    """Read a claims CSV (columns ``claim_id, claim`` required; ``analysis, statement`` to judge).

    The file is read by :func:`metak.input_files.read_input_file` (a regular file of at most
    ``CLAIMS_LIMIT`` bytes).

    Parameters
    ----------
    path : Path or str
        The claims file (``claims.csv`` of a study-records directory).

    Returns
    -------
    pandas.DataFrame
        One row per claim, every cell text (None where empty), with the optional columns
        ``analysis``, ``statement``, ``claimant`` and ``source`` added when absent and ``line``,
        the row's line number in the file.

    Raises
    ------
    metak.errors.InputError
        For a file that cannot be read that way, a missing required column, or naming every row
        whose statement does not parse.
    """
    table = _read_text_table(path)
    problems = [
        Problem(path, f"missing required column {c!r}", fix=f"add a {c} column")
        for c in _REQUIRED
        if c not in table
    ]
    if problems:
        raise InputError(problems)
    for column in ("analysis", "statement", "claimant", "source"):
        if column not in table:
            table[column] = None
    for index, row in table.iterrows():
        text = row["statement"]
        if isinstance(text, str) and text:
            try:
                parse_statement(text)
            except StatementError as err:
                problems.append(
                    Problem(
                        path,
                        str(err),
                        row=int(row.get("line", index + 2)),
                        column="statement",
                        value=text,
                        fix=err.fix,
                    )
                )
    if problems:
        raise InputError(problems)
    return table


def _read_text_table(path: Path | str) -> pd.DataFrame:
    data = input_files.read_input_file(
        path, input_files.CLAIMS_LIMIT, what="claims file", missing_fix="check the path"
    )
    try:
        table = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, encoding="utf-8")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(Problem(path, f"not a readable UTF-8 CSV: {message}")) from None
    table = table.replace("", None)
    table["line"] = range(2, len(table) + 2)
    return table


def judge_claims(
    claims: pd.DataFrame,
    draws_for: Callable[[str, str], np.ndarray | None],
    unusable: Callable[[str], str | None] | None = None,
    observed_for: Callable[[str, str], tuple[float, float, float] | None] | None = None,
) -> pd.DataFrame:
    """Judge every claim.

    Parameters
    ----------
    claims : pandas.DataFrame
        The claims table of :func:`load_claims`.
    draws_for : callable
        ``draws_for(analysis, parameter)`` returns a 1-D array of posterior draws, or ``None``
        when the analysis or parameter (``theta[<study>]`` included) does not exist.
    unusable : callable, optional
        ``unusable(analysis)`` returns a reason why an existing analysis must not give verdicts
        (it failed the diagnostics gate, or is excluded from claims), or ``None``; such claims are
        *not assessable* and the probability is still shown.
    observed_for : callable, optional
        ``observed_for(analysis, parameter)`` returns ``(yi, ci_low, ci_high)``, the raw estimate
        and 95% CI of the study a ``theta[<study>]`` parameter names, or ``None``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`VERDICT_COLUMNS`. A claims file's ``assessment`` column (how the claim was
        mapped onto a model quantity, or why it cannot be) is appended to the explanation.
    """
    rows = []
    for _, claim in claims.iterrows():
        analysis = claim.get("analysis")
        text = claim.get("statement")
        probability = np.nan
        observed = (np.nan, np.nan, np.nan)
        reason = None
        if not (isinstance(text, str) and text and isinstance(analysis, str) and analysis):
            explanation = "no analysis/statement given for this claim, so no model quantity to test"
            statement = parameter = ""
        else:
            parsed = parse_statement(text)
            statement, parameter = str(parsed), parsed.parameter
            draws = draws_for(analysis, parameter)
            if draws is None:
                explanation = (
                    f"analysis {analysis!r} with parameter {parameter!r} is not in these results"
                )
            else:
                draws = np.asarray(draws, dtype=float)
                probability = float(np.mean(parsed.holds(draws)))
                explanation = (
                    f"posterior P({statement}) = {probability:.3f} from {draws.size} draws"
                )
                found = observed_for(analysis, parameter) if observed_for is not None else None
                if found is not None:
                    observed = tuple(float(x) for x in found)
                    explanation += (
                        f"; the study's own estimate is {observed[0]:.4g} "
                        f"(95% CI {observed[1]:.4g} to {observed[2]:.4g}), "
                        "the posterior shrinks it toward the pooled effect"
                    )
                reason = unusable(analysis) if unusable is not None else None
                if reason:
                    explanation += f"; not assessable because {reason}"
        note = claim.get("assessment")
        if isinstance(note, str) and note.strip():
            explanation += f" ({note.strip()})"
        rows.append(
            {
                "claim_id": claim["claim_id"],
                "claim": claim["claim"],
                "claimant": claim.get("claimant"),
                "source": claim.get("source"),
                "analysis": analysis if isinstance(analysis, str) else "",
                "parameter": parameter,
                "statement": statement,
                "probability": probability,
                "verdict": "not assessable" if reason else verdict_for(probability),
                "study_yi": observed[0],
                "study_ci_low": observed[1],
                "study_ci_high": observed[2],
                "explanation": explanation,
            }
        )
    return pd.DataFrame(rows, columns=list(VERDICT_COLUMNS))
