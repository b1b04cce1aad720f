"""number_in_quote: a number cell must appear, as a whole number, in the row's quote."""

from __future__ import annotations

import pytest

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
