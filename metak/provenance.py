"""Provenance: whether a number cell is written, digit for digit, in the row's verbatim quote.

The rules (see "Provenance" in README.md, section "Study records: the CSV schema"):

- The number must appear as a whole number token: ``0.5`` is not found in ``10.5``, ``0.55``
  or ``0.50``, and ``12`` is not found in ``112``, ``12.5`` or ``1,234``. Digits are compared
  as written in the cell, so a cell ``0.50`` needs ``0.50`` in the quote (trailing zeros count).
- The sign is ignored (the absolute value is matched): papers write "decreased by 2.3" or use
  the Unicode minus ``−``/en dash ``–``, and a hyphen also separates ranges (``1.5-2.3``).
- The quote may group thousands: cell ``1234`` matches ``1,234`` (also a thin space as the
  separator).
- A middle dot used as decimal point (``3·5``, Lancet style) counts as ``.``.
- Letters next to a number do not matter (``12`` is found in ``12mo`` and ``n=12``).
- A cell that is not a plain decimal (e.g. ``1e-5``) must appear literally.
- Digits are the ASCII digits 0-9 (``re.ASCII``): Arabic-Indic or fullwidth digits in a quote
  never prove a cell, and next to a number they count as letters do.

The rules are those of a regular expression per cell (``tests/test_provenance.py`` keeps that
expression and checks this module against it); compiling one per cell cost ~0.3 ms, 30 s for
100,000 rows, so the matching is written out: find the cell's leading digits in the quote and
check the rest of the number and its boundaries at each place they occur.
"""

from __future__ import annotations

import functools
import re

__all__ = ["number_in_quote"]

_PLAIN = re.compile(r"[+\-]?(?P<int>\d*)(?:\.(?P<frac>\d+))?", re.ASCII)
_DIGITS = frozenset("0123456789")
_DECIMAL_POINTS = frozenset(".\u00b7")  # '.' or middle dot
_GROUP_SEPARATORS = frozenset(",\u2009\u202f")  # ',', thin space, narrow no-break space
_MINUS_LIKE = str.maketrans(dict.fromkeys("\u2212\u2013\u2012\u2010\u2011\ufe63\uff0d", "-"))


@functools.lru_cache(maxsize=4096)
def _parse(cell: str) -> tuple[tuple[str, ...], str | None, bool] | None:
    """``(pieces, decimals, three)`` of a cell, or None for a cell that is only a sign.

    The literal pieces in order (the groups of three digits of the whole part, which the quote
    may separate), the decimal digits after a point ('.' or middle dot) or None, and whether the
    whole part has exactly three digits. A cell that is not a plain decimal is one literal piece.
    """
    cell = cell.strip().translate(_MINUS_LIKE)
    if not cell.lstrip("+-"):
        return None
    plain = _PLAIN.fullmatch(cell)
    if plain is None or not (plain["int"] or plain["frac"]):
        return (cell.lstrip("+-"),), None, False
    digits = plain["int"]
    if len(digits) <= 3:
        pieces = (digits,) if digits else ()
    else:
        head = len(digits) % 3 or 3
        pieces = (digits[:head], *(digits[i : i + 3] for i in range(head, len(digits), 3)))
    return pieces, plain["frac"], len(digits) == 3


def _boundary_left(quote: str, start: int, three: bool) -> bool:
    """Whether a number may start at ``start``: not right after a digit or a number's point.

    Not preceded by a digit, by a decimal point that follows a digit ('10.5', '0.55' for
    '5'/'55'), and, for a three-digit whole part, by a thousands separator that follows a digit
    ('234' is not the last group of '1,234').
    """
    if start == 0:
        return True
    before = quote[start - 1]
    if before in _DIGITS:
        return False
    if start >= 2 and quote[start - 2] in _DIGITS:
        if before in _DECIMAL_POINTS or (three and before in _GROUP_SEPARATORS):
            return False
    return True


def _boundary_right(quote: str, end: int) -> bool:
    """Not followed by a digit, a decimal part, or a thousands group ('1' in '1,234')."""
    if end >= len(quote):
        return True
    after = quote[end]
    if after in _DIGITS:
        return False
    if after in _DECIMAL_POINTS:
        return not (end + 1 < len(quote) and quote[end + 1] in _DIGITS)
    if after in _GROUP_SEPARATORS:
        group = quote[end + 1 : end + 4]
        if len(group) == 3 and all(ch in _DIGITS for ch in group):
            return end + 4 < len(quote) and quote[end + 4] in _DIGITS
    return True


def _rest(quote: str, at: int, pieces: tuple[str, ...], frac: str | None) -> int:
    """End of the number whose first piece ends at ``at``, or -1 when the rest does not follow."""
    for piece in pieces:
        if at < len(quote) and quote[at] in _GROUP_SEPARATORS:
            at += 1  # an optional separator; a piece never starts with one
        if not quote.startswith(piece, at):
            return -1
        at += len(piece)
    if frac is not None:
        if at >= len(quote) or quote[at] not in _DECIMAL_POINTS:
            return -1
        if not quote.startswith(frac, at + 1):
            return -1
        at += 1 + len(frac)
    return at


def _find_point(quote: str, frac: str, at: int) -> int:
    """The next place from ``at`` of a decimal point followed by the digits ``frac``, or -1."""
    i = quote.find(frac, at + 1)
    while i != -1:
        if quote[i - 1] in _DECIMAL_POINTS:
            return i - 1
        i = quote.find(frac, i + 1)
    return -1


def number_in_quote(cell_text: str, quote: str) -> bool:
    """Whether the number written in ``cell_text`` occurs as a whole number in ``quote``.

    Parameters
    ----------
    cell_text : str
        The cell as written in the CSV (e.g. ``"-2.3"``, ``"1234"``, ``"0.50"``).
    quote : str
        The verbatim quote of the row.

    Returns
    -------
    bool
        True when the number is found (see the module docstring for the matching rules).
    """
    parsed = _parse(cell_text)
    if parsed is None:
        return False
    pieces, frac, three = parsed
    if not pieces:  # no whole part ('.5'): the number starts at its decimal point
        start = _find_point(quote, frac, 0)
        while start != -1:
            end = start + 1 + len(frac)
            if _boundary_left(quote, start, three) and _boundary_right(quote, end):
                return True
            start = _find_point(quote, frac, start + 1)
        return False
    first = pieces[0]
    start = quote.find(first)
    while start != -1:
        if _boundary_left(quote, start, three):
            end = _rest(quote, start + len(first), pieces[1:], frac)
            if end != -1 and _boundary_right(quote, end):
                return True
        start = quote.find(first, start + 1)
    return False
