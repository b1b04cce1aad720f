"""number_in_quote: a number cell must appear, as a whole number, in the row's quote."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metak.provenance import number_in_quote

FOUND = [
    ("0.5", "the effect was 0.5 units"),
    ("0.5", "(0.5)"),
    ("0.5", "was 0.5."),  # sentence full stop after the number
    ("-2.3", "a change of −2.3 mm"),  # Unicode minus
    ("-2.3", "a change of –2.3 mm"),  # en dash used as minus
    ("-2.3", "decreased by 2.3 mm"),  # sign given in words
    ("2.3", "range 1.5-2.3"),  # hyphen as a range separator
    ("1234", "n = 1,234 participants"),  # thousands separator in the quote
    ("1234567", "1,234,567"),
    ("1234", "1\u2009234 patients"),  # thin space as thousands separator
    ("3.5", "3·5 mmol/L"),  # middle-dot decimal point (Lancet style)
    ("12", "12mo follow-up"),  # letters may touch the number
    ("12", "n=12"),
    ("12", "values 12,15 and 18"),  # a comma list is not a thousands group
    ("0.45", "95% CI (0.12,0.45)"),
    (".5", "about .5 of them"),
    ("1e-5", "p = 1e-5"),  # not a plain decimal: matched literally
    ("120", "n = 120"),
    ("12", "n=12\u0663"),  # digits are ASCII: an Arabic-Indic digit touching it counts as a letter
]

NOT_FOUND = [
    ("0.5", "was 10.5"),  # inside a larger number
    ("0.5", "was 0.55"),
    ("0.5", "was 0.50"),  # digits count as written: trailing zeros differ
    ("0.50", "was 0.5"),
    ("5", "was 0.5"),  # the decimal part of another number
    ("5", "was 0·5"),
    ("12", "was 112"),
    ("12", "was 12.5"),
    ("1", "1,234 people"),  # first group of a thousands-grouped number
    ("234", "1,234 people"),  # last group of it
    ("1234", "1 234"),  # a plain space is not accepted as thousands separator
    (".5", "0.5"),
    ("2.3", "2.4 and 3.2"),
    ("-", "a - b"),  # a bare sign is not a number
    ("", "anything"),
    ("12", "n = \u0661\u0662"),  # Arabic-Indic digits never prove an ASCII cell
    ("0.5", "\uff10.\uff15"),  # nor do fullwidth ones
]


@pytest.mark.parametrize(("cell", "quote"), FOUND)
def test_found(cell, quote):
    assert number_in_quote(cell, quote)


@pytest.mark.parametrize(("cell", "quote"), NOT_FOUND)
def test_not_found(cell, quote):
    assert not number_in_quote(cell, quote)


def test_regex_characters_in_cell_are_literal():
    assert not number_in_quote("1.0e+5", "1x0e 5")
    assert number_in_quote("1.0e+5", "1.0e+5")


# The rules as one regular expression per cell: how number_in_quote was first written (it
# compiled one per cell, 0.3 ms each). The written-out matcher must agree with it everywhere.
_PLAIN = re.compile(r"[+\-]?(?P<int>\d*)(?:\.(?P<frac>\d+))?", re.ASCII)


def _reference(cell_text: str, quote: str) -> bool:
    cell = cell_text.strip()
    for ch in "\u2212\u2013\u2012\u2010\u2011\ufe63\uff0d":
        cell = cell.replace(ch, "-")
    if not cell.lstrip("+-"):
        return False
    match = _PLAIN.fullmatch(cell)
    if match is None or not (match["int"] or match["frac"]):
        pattern = re.escape(cell.lstrip("+-"))
    else:
        digits = match["int"]
        if len(digits) <= 3:
            pattern = re.escape(digits)
        else:
            head = len(digits) % 3 or 3
            groups = [digits[:head]] + [digits[i : i + 3] for i in range(head, len(digits), 3)]
            pattern = "[,\u2009\u202f]?".join(groups)
        if match["frac"] is not None:
            pattern += "[.\u00b7]" + match["frac"]
    left = r"(?<!\d)(?<!\d[.\u00b7])"
    right = r"(?!\d)(?![.\u00b7]\d)(?![,\u2009\u202f]\d{3}(?!\d))"
    if match is not None and len(match["int"]) == 3:
        left += r"(?<!\d[,\u2009\u202f])"
    return re.compile(left + pattern + right, re.ASCII).search(quote) is not None


_QUOTE_CHARS = "0123456789" * 3 + ".\u00b7,\u2009\u202f -\u2212\u2013+ex\u0663"
_CELL_CHARS = "0123456789" * 3 + ".-\u2212+e "


@settings(max_examples=3000, deadline=None)
@given(
    st.text(alphabet=_QUOTE_CHARS, max_size=24),
    st.text(alphabet=_CELL_CHARS, min_size=1, max_size=8),
    st.integers(0, 24),
    st.integers(1, 8),
)
def test_agrees_with_the_regular_expression(quote, cell, start, width):
    """Random cells, and cells cut out of the quote itself (so that most are found somewhere,
    next to every kind of neighbour), give the same answer as the regular expression."""
    for candidate in (cell, quote[start : start + width]):
        assert number_in_quote(candidate, quote) == _reference(candidate, quote), (candidate, quote)


@pytest.mark.parametrize(("cell", "quote"), FOUND + NOT_FOUND)
def test_examples_agree_with_the_regular_expression(cell, quote):
    assert number_in_quote(cell, quote) == _reference(cell, quote)
