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
"""

from __future__ import annotations

import re

__all__ = ["number_in_quote"]

_PLAIN = re.compile(r"[+\-]?(?P<int>\d*)(?:\.(?P<frac>\d+))?", re.ASCII)
_DECIMAL_POINT = "[.\u00b7]"  # '.' or middle dot
_GROUP_SEPARATOR = "[,\u2009\u202f]?"  # optional ',', thin space, narrow no-break space
_MINUS_LIKE = "\u2212\u2013\u2012\u2010\u2011\ufe63\uff0d"


def _int_pattern(digits: str) -> str:
    """Regex for an integer part, allowing thousands separators between 3-digit groups."""
    if len(digits) <= 3:
        return re.escape(digits)
    head = len(digits) % 3 or 3
    groups = [digits[:head]] + [digits[i : i + 3] for i in range(head, len(digits), 3)]
    return _GROUP_SEPARATOR.join(groups)


def _pattern(cell: str) -> str:
    match = _PLAIN.fullmatch(cell)
    if match is None or not (match["int"] or match["frac"]):
        literal = cell.lstrip("+-")
        return re.escape(literal)
    pattern = _int_pattern(match["int"])
    if match["frac"] is not None:
        pattern += _DECIMAL_POINT + match["frac"]
    return pattern


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
    cell = cell_text.strip()
    for ch in _MINUS_LIKE:
        cell = cell.replace(ch, "-")
    if not cell.lstrip("+-"):
        return False
    # Not preceded by a digit or by a decimal point that follows a digit ("10.5", "0.55" for
    # "5"/"55"); not followed by a digit, a decimal part, or a thousands group ("1,234" for "1").
    boundary_left = r"(?<!\d)(?<!\d[.\u00b7])"
    boundary_right = r"(?!\d)(?![.\u00b7]\d)(?![,\u2009\u202f]\d{3}(?!\d))"
    plain = _PLAIN.fullmatch(cell)
    if plain is not None and len(plain["int"]) == 3:
        # "234" is not the last group of "1,234".
        boundary_left += r"(?<!\d[,\u2009\u202f])"
    regex = re.compile(boundary_left + _pattern(cell) + boundary_right, re.ASCII)
    return regex.search(quote) is not None
