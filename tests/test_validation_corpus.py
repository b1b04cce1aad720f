# ruff: noqa: E501  (each expected message is one long line, kept whole so it can be grepped)
"""A corpus of malformed study-records directories and the exact messages metak gives for them.

Each case starts from the valid directory ``tests/data/records_base`` and applies a few edits
(replace text in a file, replace or delete a whole file). The test checks the exact problem
lines from :func:`load_records`, and, through the real entry point in a subprocess, exit code 2
with those lines on stderr and no traceback.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from metak.errors import EXIT_BAD_INPUT, InputError
from metak.records import load_records

BASE = Path(__file__).parent / "data" / "records_base"
DELETE = object()
BASE_STUDIES = (BASE / "studies.csv").read_text(encoding="utf-8")

STUDIES_WITH_BASELINE = (
    "study_id,year,design,baseline_dpucmgp,baseline_dpucmgp_stat,source,quote\n"
    "Alpha2015,2015,RCT,560,,PMID:11111111,baseline dp-ucMGP 560 pmol/L\n"
    "Beta2019,2019,RCT,,,PMID:22222222,\n"
)
ARMS_WITHOUT_QUOTE = (
    "study_id,outcome,arm,timepoint,n,mean,sd,unit,source\n"
    "Alpha2015,pwv_cf,treatment,change,120,-0.36,1.2,m/s,PMID:11111111\n"
    "Alpha2015,pwv_cf,control,change,124,0.15,1.3,m/s,PMID:11111111\n"
)
OUTCOMES_WITHOUT_DIRECTION = "outcome,family,unit\npwv_cf,stiffness,m/s\ndpucmgp,biomarker,pmol/L\n"


# (name, {file: [edits]}, expected lines). An edit is (old, new): replace the first `old` by
# `new` in the file; (None, content) replaces the whole file; (None, DELETE) deletes it.
CASES = [
    (
        "studies_missing",
        {"studies.csv": [(None, DELETE)]},
        [
            "studies.csv: file not found; every study-records directory needs it; fix: create it with one row per study and at least a study_id column",
        ],
    ),
    (
        "neither_arms_nor_contrasts",
        {"arms.csv": [(None, DELETE)], "contrasts.csv": [(None, DELETE)]},
        [
            "DIR: neither arms.csv nor contrasts.csv found; fix: add arms.csv (arm summaries) and/or contrasts.csv (between-group effects)",
        ],
    ),
    (
        "empty_file",
        {"arms.csv": [(None, b"")]},
        [
            "arms.csv: file is empty; fix: start it with a header line, e.g. 'study_id,outcome,arm,timepoint,n,mean,sd,unit,source,quote'",
        ],
    ),
    (
        "byte_order_mark",
        {"studies.csv": [(None, b"\xef\xbb\xbf" + BASE_STUDIES.encode())]},
        [
            "studies.csv:1: file starts with a byte-order mark (BOM); fix: save as plain UTF-8, not 'UTF-8 with BOM'",
        ],
    ),
    (
        "latin1_byte",
        {"arms.csv": [(b"\xc2\xb1", b"\xb1")]},
        [
            "arms.csv:3: byte 0xB1 at byte offset 284 is not valid UTF-8; fix: save the file as UTF-8 (e.g. 'CSV UTF-8')",
        ],
    ),
    (
        "utf16_file",
        {
            "outcomes.csv": [
                (
                    None,
                    b"\xff\xfeo\x00u\x00t\x00c\x00o\x00m\x00e\x00,\x00d\x00i\x00r\x00e\x00c\x00t\x00i\x00o\x00n\x00\n\x00p\x00w\x00v\x00_\x00c\x00f\x00,\x00l\x00o\x00w\x00e\x00r\x00_\x00i\x00s\x00_\x00b\x00e\x00t\x00t\x00e\x00r\x00\n\x00",
                )
            ]
        },
        [
            "outcomes.csv:1: file is UTF-16 encoded, not UTF-8; fix: save it as UTF-8",
        ],
    ),
    (
        "header_missing",
        {"outcomes.csv": [("outcome,family,unit,direction,measure,prepost_r\n", "")]},
        [
            "outcomes.csv:1: line is not a header: none of its cells is a known column name; fix: put the header line first, e.g. 'outcome,family,unit,direction,measure'",
        ],
    ),
    (
        "header_only_studies",
        {"studies.csv": [(None, BASE_STUDIES.splitlines()[0] + "\n")]},
        [
            "studies.csv: no study rows; fix: add one row per study below the header",
        ],
    ),
    (
        "duplicate_column",
        {"contrasts.csv": [("p_value,source", "se,source")]},
        [
            "contrasts.csv:1, column se: column appears 2 times in the header; fix: keep one",
        ],
    ),
    (
        "unknown_column_typo",
        {"arms.csv": [("time_months", "time_month")]},
        [
            "arms.csv:1, column time_month: unknown column; fix: did you mean 'time_months'?",
        ],
    ),
    (
        "unknown_column_outcomes",
        {"outcomes.csv": [("prepost_r", "prepost_rho")]},
        [
            "outcomes.csv:1, column prepost_rho: unknown column; fix: did you mean 'prepost_r'?",
        ],
    ),
    (
        "missing_required_column",
        {"outcomes.csv": [(None, OUTCOMES_WITHOUT_DIRECTION)]},
        [
            "outcomes.csv:1, column direction: required column missing; fix: add a 'direction' column",
        ],
    ),
    (
        "header_whitespace",
        {"studies.csv": [(",year,", ", year,")]},
        [
            "studies.csv:1, column ' year': column name has leading/trailing whitespace; fix: rename it to 'year'",
        ],
    ),
    (
        "empty_header_cell",
        {
            "outcomes.csv": [
                (None, "outcome,direction,\npwv_cf,lower_is_better,\ndpucmgp,lower_is_better,\n")
            ]
        },
        [
            "outcomes.csv:1: header cell 3 is empty; fix: name the column or delete it (also remove trailing commas)",
        ],
    ),
    (
        "misspelt_moderator",
        {"studies.csv": [("dose_unit", "dose_units")]},
        [
            "studies.csv:1, column dose_units: column looks like a misspelt known column; fix: did you mean 'dose_unit'? (other columns are moderators)",
            "studies.csv:2, column dose_unit: empty, but dose is given; fix: add dose_unit or remove dose",
            "studies.csv:3, column dose_unit: empty, but dose is given; fix: add dose_unit or remove dose",
        ],
    ),
    (
        "reserved_moderator_name",
        {"studies.csv": [(",ablat\n", ",line\n")]},
        [
            "studies.csv:1, column line: reserved column name (metak computes it); fix: rename the column",
        ],
    ),
    (
        "cell_whitespace",
        {"arms.csv": [("Beta2019,dpucmgp,control", "Beta2019 ,dpucmgp,control")]},
        [
            "arms.csv:6, column study_id, value 'Beta2019 ': leading/trailing whitespace; fix: write 'Beta2019'",
        ],
    ),
    (
        "wrong_field_count",
        {"arms.csv": [("36,124,0.15", "36,1240.15")]},
        [
            'arms.csv:3: 13 cells but the header has 14 columns; fix: put "…" around cells holding commas, quotes or line breaks, and double quotes inside them ("")',
        ],
    ),
    (
        "malformed_quoting",
        {"contrasts.csv": [('−0.12)"', '−0.12)"x')]},
        [
            'contrasts.csv:2: malformed CSV: \',\' expected after \'"\'; fix: put "…" around cells holding commas, quotes or line breaks, and double quotes inside them ("")',
        ],
    ),
    (
        "unterminated_quote",
        {"studies.csv": [('for 24 weeks (13 sites)",13', "for 24 weeks (13 sites),13")]},
        [
            'studies.csv:3: malformed CSV: unexpected end of data; fix: put "…" around cells holding commas, quotes or line breaks, and double quotes inside them ("")',
        ],
    ),
    (
        "unicode_minus_in_cell",
        {"arms.csv": [(",-0.36,", ",−0.36,")]},
        [
            "arms.csv:2, column mean, value '−0.36': not a number; fix: write negative numbers with the ASCII '-'",
        ],
    ),
    (
        "bound_in_number_cell",
        {"contrasts.csv": [(",-0.12,,", ",-0.12,<0.05,")]},
        [
            "contrasts.csv:2, column p_value, value '<0.05': not a number; fix: give the exact number; a bound cannot be used (leave it empty instead)",
        ],
    ),
    (
        "arabic_indic_digits",
        {"arms.csv": [(",120,-0.36,", ",١٢٠,-0.36,")]},
        [
            "arms.csv:2, column n, value '١٢٠': not a number: '١' (ARABIC-INDIC DIGIT ONE) is not one of the ASCII digits 0-9; fix: write '120'",
        ],
    ),
    (
        "fullwidth_digits",
        {"arms.csv": [(",0.15,1.3,", ",0.15,１.３,")]},
        [
            "arms.csv:3, column sd, value '１.３': not a number: '１' (FULLWIDTH DIGIT ONE) is not one of the ASCII digits 0-9; fix: write '1.3'",
        ],
    ),
    (
        "superscript_digit",
        {"contrasts.csv": [(",-0.51,", ",-0.51²,")]},
        [
            "contrasts.csv:2, column estimate, value '-0.51²': not a number: '²' (SUPERSCRIPT TWO) is not one of the ASCII digits 0-9; fix: write the number with the ASCII digits 0-9 and '.' (a superscript is no digit)",
        ],
    ),
    (
        "moderator_in_other_digits",
        {"studies.csv": [(",44\n", ",٤٤\n")]},
        [
            "studies.csv:2, column ablat, value '٤٤': not a number: '٤' (ARABIC-INDIC DIGIT FOUR) is not one of the ASCII digits 0-9; fix: write '44'",
        ],
    ),
    (
        "non_finite_sd",
        {"arms.csv": [(",1.3,", ",nan,")]},
        [
            "arms.csv:3, column sd, value 'nan': not a finite number; fix: leave the cell empty when the value is missing",
        ],
    ),
    (
        "negative_sd",
        {"arms.csv": [(",1.3,", ",-1.3,")]},
        [
            "arms.csv:3, column sd, value '-1.3': out of range: must be > 0; fix: check the value against the source",
        ],
    ),
    (
        "zero_se",
        {"contrasts.csv": [("MD,-0.51,,", "MD,-0.51,0,")]},
        [
            "contrasts.csv:2, column se, value '0': out of range: must be > 0; fix: check the value against the source",
        ],
    ),
    (
        "n_below_two",
        {"arms.csv": [("6,30,,,610", "6,1,,,610")]},
        [
            "arms.csv:6, column n, value '1': out of range: must be ≥ 2; fix: check the value against the source",
        ],
    ),
    (
        "n_not_integer",
        {"arms.csv": [(",120,", ",120.5,")]},
        [
            "arms.csv:2, column n, value '120.5': not a whole number; fix: write a count such as 25",
        ],
    ),
    (
        "inverted_ci",
        {"contrasts.csv": [("-0.90,-0.12", "-0.12,-0.90")]},
        [
            "contrasts.csv:2, column ci_low, value '-0.12': ci_low -0.12 is not below ci_high -0.90; fix: swap them, or check the interval against the source",
        ],
    ),
    (
        "estimate_outside_ci",
        {"contrasts.csv": [("MD,-0.51", "MD,-0.05"), ("−0.51", "−0.05")]},
        [
            "contrasts.csv:2, column estimate, value '-0.05': outside its CI [-0.90, -0.12]; fix: check estimate, CI and measure scale against the source",
        ],
    ),
    (
        "quantiles_out_of_order",
        {"arms.csv": [("400,310,520", "400,410,520"), ("IQR 310", "IQR 410")]},
        [
            "arms.csv:5, column median, value '400': quantiles out of order: q1 410 > median 400; need min ≤ q1 ≤ median ≤ q3 ≤ max; fix: check the numbers and their columns against the source",
        ],
    ),
    (
        "p_value_above_one",
        {"contrasts.csv": [(",-0.12,,", ",-0.12,1.5,")]},
        [
            "contrasts.csv:2, column p_value, value '1.5': out of range: must be in (0, 1]; fix: check the value against the source",
        ],
    ),
    (
        "prepost_r_out_of_range",
        {"outcomes.csv": [("MD,0.6", "MD,1.5")]},
        [
            "outcomes.csv:3, column prepost_r, value '1.5': out of range: must be in (-1, 1); fix: check the value against the source",
        ],
    ),
    (
        "year_out_of_range",
        {"studies.csv": [("Alpha2015,2015", "Alpha2015,15")]},
        [
            "studies.csv:2, column year, value '15': out of range: must be in [1900, 2100]; fix: check the value against the source",
        ],
    ),
    (
        "duplicate_study_id",
        {"studies.csv": [("Beta2019,2019", "Alpha2015,,,,,,,,,,,,\nBeta2019,2019")]},
        [
            "studies.csv:3, column study_id, value 'Alpha2015': duplicate study_id (first on line 2); fix: make each study_id unique",
        ],
    ),
    (
        "duplicate_outcome",
        {"outcomes.csv": [("dpucmgp,", "pwv_cf,stiffness,m/s,lower_is_better,,\ndpucmgp,")]},
        [
            "outcomes.csv:3, column outcome, value 'pwv_cf': duplicate outcome (first on line 2); fix: make each outcome unique",
        ],
    ),
    (
        "duplicate_arms_row",
        {
            "arms.csv": [
                ("Alpha2015,pwv_cf,control,change,36", "Alpha2015,pwv_cf,treatment,change,36")
            ]
        },
        [
            "arms.csv:3: duplicate row: same study_id, outcome, arm, arm_label, timepoint, time_months as line 2; fix: delete it, or tell the rows apart with arm_label/time_months",
        ],
    ),
    (
        "unknown_study_id",
        {"arms.csv": [("Beta2019,dpucmgp,control", "Beta2091,dpucmgp,control")]},
        [
            "arms.csv:6, column study_id, value 'Beta2091': not in studies.csv; fix: did you mean 'Beta2019'?",
        ],
    ),
    (
        "unknown_outcome",
        {"contrasts.csv": [("pwv_cf", "pwv_cr")]},
        [
            "contrasts.csv:2, column outcome, value 'pwv_cr': not in outcomes.csv; fix: did you mean 'pwv_cf'?",
        ],
    ),
    (
        "unknown_arm_value",
        {"arms.csv": [("control,change", "placebo,change")]},
        [
            "arms.csv:3, column arm, value 'placebo': not allowed; allowed: treatment, control, all; fix: use one of the allowed values",
        ],
    ),
    (
        "unknown_timepoint",
        {"arms.csv": [("control,followup", "control,follow-up")]},
        [
            "arms.csv:6, column timepoint, value 'follow-up': not allowed; allowed: baseline, followup, change; fix: did you mean 'followup'?",
        ],
    ),
    (
        "measure_wrong_case",
        {"contrasts.csv": [("MD,-0.51", "md,-0.51")]},
        [
            "contrasts.csv:2, column measure, value 'md': not allowed; allowed: MD, SMD, ROM, logRR, logOR, logHR, GEN, RM, RR, OR, HR; fix: write 'MD' (case matters)",
        ],
    ),
    (
        "design_not_allowed",
        {"studies.csv": [("RCT,2,mg/week", "crossover,2,mg/week")]},
        [
            "studies.csv:3, column design, value 'crossover': not allowed; allowed: RCT, single-arm, non-randomised; fix: use one of the allowed values",
        ],
    ),
    (
        "arm_all_at_followup",
        {"arms.csv": [("all,baseline", "all,followup")]},
        [
            "arms.csv:4, column arm, value 'all': arm 'all' (whole sample) is allowed only with timepoint 'baseline', not 'followup'; fix: give treatment and control rows instead",
        ],
    ),
    (
        "mean_without_spread_at_change",
        {"arms.csv": [("-0.36,1.2,", "-0.36,,")]},
        [
            "arms.csv:2, column sd: empty: a mean without sd, se or sem is allowed only on baseline rows, not 'change'; fix: add the spread the paper gives (sd, se or sem)",
        ],
    ),
    (
        "median_without_quartiles",
        {"arms.csv": [("400,310,520", "400,,")]},
        [
            "arms.csv:5, column q1: empty: a median without q1+q3 or min+max is allowed only on baseline rows, not 'followup'; fix: add the quartiles or the range",
        ],
    ),
    (
        "half_quartile_pair",
        {"arms.csv": [("610,480,720", "610,480,")]},
        [
            "arms.csv:6, column q3: empty, but q1 is given; fix: add q3 or remove q1",
        ],
    ),
    (
        "spread_without_mean",
        {"arms.csv": [(",0.15,1.3,", ",,1.3,")]},
        [
            "arms.csv:3, column sd, value '1.3': sd is given without a mean; fix: add the mean or remove sd",
        ],
    ),
    (
        "no_uncertainty",
        {"contrasts.csv": [("-0.90,-0.12", ",")]},
        [
            "contrasts.csv:2, column se: no uncertainty: need se, ci_low+ci_high, or p_value; fix: add what the paper reports, or delete the row",
        ],
    ),
    (
        "half_ci",
        {"contrasts.csv": [("-0.90,-0.12", "-0.90,")]},
        [
            "contrasts.csv:2, column ci_high: empty, but ci_low is given; fix: add ci_high or remove ci_low",
        ],
    ),
    (
        "ratio_not_positive",
        {"contrasts.csv": [("MD,-0.51", "RR,-0.51")]},
        [
            "contrasts.csv:2, column estimate, value '-0.51': must be > 0: measure RR is a ratio on the natural scale; fix: give the ratio as reported, or use the log measure (e.g. logRR) for a log ratio",
            "contrasts.csv:2, column ci_low, value '-0.90': must be > 0: measure RR is a ratio on the natural scale; fix: give the ratio as reported, or use the log measure (e.g. logRR) for a log ratio",
            "contrasts.csv:2, column ci_high, value '-0.12': must be > 0: measure RR is a ratio on the natural scale; fix: give the ratio as reported, or use the log measure (e.g. logRR) for a log ratio",
        ],
    ),
    (
        "unit_differs_from_outcomes",
        {"arms.csv": [("30,,,610,480,720,pmol/L", "30,,,610,480,720,nmol/L")]},
        [
            "arms.csv:6, column unit, value 'nmol/L': outcomes.csv declares unit 'pmol/L' for outcome 'dpucmgp'; one unit per outcome; fix: convert the numbers, or record them under another outcome id",
        ],
    ),
    (
        "unit_differs_within_outcome",
        {
            "outcomes.csv": [(None, DELETE)],
            "arms.csv": [("30,,,610,480,720,pmol/L", "30,,,610,480,720,pmol/l")],
        },
        [
            "arms.csv:6, column unit, value 'pmol/l': line 4 uses unit 'pmol/L' for outcome 'dpucmgp'; one unit per outcome; fix: convert the numbers, or record them under another outcome id",
        ],
    ),
    (
        "baseline_without_stat",
        {"studies.csv": [(None, STUDIES_WITH_BASELINE)]},
        [
            "studies.csv:2, column baseline_dpucmgp_stat: empty, but baseline_dpucmgp is given; fix: add baseline_dpucmgp_stat or remove baseline_dpucmgp",
        ],
    ),
    (
        "dose_without_unit",
        {"studies.csv": [("180,ug/day", "180,")]},
        [
            "studies.csv:2, column dose_unit: empty, but dose is given; fix: add dose_unit or remove dose",
        ],
    ),
    (
        "exclusion_reason_missing",
        {"studies.csv": [("no,dose outside range", "no,")]},
        [
            "studies.csv:3, column exclusion_reason: empty, but include is 'no'; fix: say why the study is left out of the analyses",
        ],
    ),
    (
        "moderator_missing_marker",
        {"studies.csv": [('sites)",13', 'sites)",NA')]},
        [
            "studies.csv:3, column ablat, value 'NA': missing-value marker in a numeric moderator column; fix: leave the cell empty",
        ],
    ),
    (
        "source_empty",
        {"arms.csv": [("PMID:22222222", "")]},
        [
            "arms.csv:5, column source: empty, but the file has a source column; fix: give the DOI, PMID:… or URL",
        ],
    ),
    (
        "quote_empty",
        {"contrasts.csv": [('"difference −0.51 m/s (95% CI −0.90 to −0.12)"', "")]},
        [
            "contrasts.csv:2, column quote: empty, but the file has a source column; fix: copy the passage holding the row's numbers verbatim",
        ],
    ),
    (
        "number_not_in_quote",
        {"arms.csv": [(",1.3,", ",1.4,")]},
        [
            "arms.csv:3, column sd, value '1.4': number 1.4 not found in the quote ('control 0.15 ± 1.3 m/s (n = 124)'); fix: write it exactly as the source does, and quote the passage that holds it",
        ],
    ),
    (
        "quote_column_missing",
        {"arms.csv": [(None, ARMS_WITHOUT_QUOTE)]},
        [
            "arms.csv:1: column quote missing, but the file has a source column; fix: add a quote column: every row holding numbers needs source and quote",
        ],
    ),
]


def _write_case(directory: Path, edits: dict) -> None:
    shutil.copytree(BASE, directory)
    for name, changes in edits.items():
        path = directory / name
        for old, new in changes:
            if old is None and new is DELETE:
                path.unlink()
                continue
            if old is None:
                path.write_bytes(new if isinstance(new, bytes) else new.encode("utf-8"))
                continue
            data = path.read_bytes()
            old_b = old if isinstance(old, bytes) else old.encode("utf-8")
            new_b = new if isinstance(new, bytes) else new.encode("utf-8")
            assert old_b in data, f"corpus edit {old!r} does not apply to {name}"
            path.write_bytes(data.replace(old_b, new_b, 1))


def _relative(lines, directory: Path) -> list[str]:
    prefix = str(directory) + "/"
    return [line.replace(prefix, "").replace(str(directory), "DIR") for line in lines]


def test_corpus_is_large_and_distinct():
    names = [name for name, _, _ in CASES]
    assert len(names) >= 35
    assert len(set(names)) == len(names)
    assert len({str(expected) for _, _, expected in CASES}) == len(CASES)


def test_base_is_valid():
    records = load_records(BASE)
    assert records.warnings == ()


@pytest.mark.parametrize(("name", "edits", "expected"), CASES, ids=[c[0] for c in CASES])
def test_messages(tmp_path, name, edits, expected):
    directory = tmp_path / "records"
    _write_case(directory, edits)
    with pytest.raises(InputError) as info:
        load_records(directory)
    assert _relative([str(p) for p in info.value.problems], directory) == expected


@pytest.mark.slow
@pytest.mark.parametrize(("name", "edits", "expected"), CASES, ids=[c[0] for c in CASES])
def test_cli_exit_code(tmp_path, name, edits, expected):
    directory = tmp_path / "records"
    _write_case(directory, edits)
    result = subprocess.run(
        [sys.executable, "-m", "metak", "validate", "--studies", str(directory)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[1],
        check=False,
    )
    assert result.returncode == EXIT_BAD_INPUT
    assert "Traceback" not in result.stderr
    assert _relative(result.stderr.splitlines(), directory) == expected
    assert result.stdout == ""
