"""Fuzzing: whatever bytes the files hold, load_records returns records or raises InputError."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metak.errors import InputError
from metak.records import StudyRecords, load_records

BASE = Path(__file__).parent / "data" / "records_base"
FILES = ("studies.csv", "arms.csv", "contrasts.csv", "outcomes.csv")
# Pieces that make CSV and cells interesting: separators, quoting, numbers, enums, encodings.
ATOMS = [
    ",",
    '"',
    '""',
    "\n",
    "\r\n",
    " ",
    "\t",
    "-",
    "−",
    "0",
    "1.5",
    "1e309",
    "nan",
    "inf",
    "NA",
    "<0.05",
    "1,234",
    "treatment",
    "all",
    "baseline",
    "followup",
    "RR",
    "MD",
    "no",
    "\ufeff",
    "\x00",
    "é",
    "study_id",
    "outcome",
    "sd",
    "quote",
    "source",
    "ug/day",
]
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _load(files: dict[str, bytes | None]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "records"
        shutil.copytree(BASE, directory)
        for name, data in files.items():
            if data is None:
                (directory / name).unlink()
            else:
                (directory / name).write_bytes(data)
        try:
            result = load_records(directory, provenance="auto")
        except InputError as err:
            assert err.problems
            assert all("\n" not in str(p) for p in err.problems)
        else:
            assert isinstance(result, StudyRecords)


@FUZZ
@given(name=st.sampled_from(FILES), data=st.binary(max_size=400))
def test_random_bytes(name, data):
    _load({name: data})


@FUZZ
@given(name=st.sampled_from(FILES), text=st.text(max_size=300))
def test_random_text(name, text):
    _load({name: text.encode("utf-8", errors="surrogatepass")})


@st.composite
def _mutated(draw):
    name = draw(st.sampled_from(FILES))
    text = (BASE / name).read_text(encoding="utf-8")
    for _ in range(draw(st.integers(1, 4))):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 12)))
        piece = draw(st.one_of(st.sampled_from(ATOMS), st.text(max_size=6)))
        text = text[:start] + piece + text[end:]
    return name, text


@FUZZ
@given(case=_mutated(), drop=st.sampled_from([None, *FILES]))
def test_mutated_valid_files(case, drop):
    name, text = case
    files: dict[str, bytes | None] = {name: text.encode("utf-8", errors="surrogatepass")}
    if drop is not None and drop != name:
        files[drop] = None
    _load(files)
