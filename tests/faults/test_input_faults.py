"""The input side of the fault corpus: hostile input files, paths and numbers.

Every case runs one command on a sandboxed world (:mod:`tests.faults.harness`) and must end with
exit code 2 and exactly one line on standard error, never a traceback, and leave every file
as it was. Cases that could hang or exhaust memory on a regression (a FIFO, ``/dev/zero``) run
in a child process, which the harness stops after ``SUBPROCESS_TIMEOUT_S``.
"""

from __future__ import annotations

import os
import re
import socket

import pytest

from metak import input_files, records
from tests.faults.harness import REPO, Case, World, run_case

# `python -m metak` in a child process would import the editable install's checkout, which is
# not necessarily this one: put this checkout first.
CHILD_ENV = {"PYTHONPATH": str(REPO)}
VALIDATE = ("validate", "--studies", "{studies}")
VALIDATE_OFF = (*VALIDATE, "--provenance", "off")  # numbers edited out of their quotes
EFFECTS_OFF = ("effects", "--studies", "{studies}", "--provenance", "off")
FIT = (
    "fit",
    "--studies",
    "{studies}",
    "--provenance",
    "off",
    "--method",
    "exact",
    "--quiet",
    "--out",
    "{project}/out",
)
FIX_VALUE = (
    "fix: check the value against the source; a value this extreme is a typo or a wrong unit"
)
FIX_LINK = "fix: point it at an existing file or remove it"
CONTRASTS_HEADER = "study_id,outcome,measure,estimate,se,ci_low,ci_high,p_value,source,quote\n"


def line(path: str, rest: str) -> str:
    """A pattern for the whole line: ``path`` (under the world) then exactly ``rest``."""
    return "^" + r"\S*/" + re.escape(path + rest) + "$"


# --------------------------------------------------------------------------- world edits


def edit(name: str, old: str, new: str, count: int = 1):
    def setup(world: World) -> None:
        path = world.studies / name
        text = path.read_text(encoding="utf-8")
        assert text.count(old) >= count, f"{old!r} not in {name}"
        path.write_text(text.replace(old, new, count), encoding="utf-8")

    return setup


def write(name: str, text: str):
    def setup(world: World) -> None:
        (world.studies / name).write_text(text, encoding="utf-8")

    return setup


def link(name: str, target: str):
    """Replace ``studies/name`` by a symbolic link to ``target`` (world placeholders allowed)."""

    def setup(world: World) -> None:
        path = world.studies / name
        if path.exists():
            path.unlink()
        path.symlink_to(world.fill(target))

    return setup


def replace_by(name: str, make):
    def setup(world: World) -> None:
        path = world.studies / name
        path.unlink()
        make(path)

    return setup


def sparse(relative: str, size: int):
    """A file of ``size`` bytes that takes no disk space and is never written byte by byte."""

    def setup(world: World) -> None:
        with open(world.root / relative, "wb") as handle:
            handle.truncate(size)

    return setup


def bind_socket(path) -> None:
    # AF_UNIX paths are limited to ~108 bytes: bind a relative name from the directory.
    previous = os.getcwd()
    os.chdir(path.parent)
    try:
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(path.name)  # the socket file stays after close
    finally:
        os.chdir(previous)


def both(*setups):
    def setup(world: World) -> None:
        for step in setups:
            step(world)

    return setup


# Beta2019 is excluded in the base records, leaving its outcome without effects, which stops
# `fit` before the claims; included, `fit` runs through.
include_beta = edit("studies.csv", ",no,dose outside range,", ",yes,,")
# The contrast of Alpha2015 is preferred over its arms: without it, the arm rows give the effect.
arms_only = write("contrasts.csv", CONTRASTS_HEADER)
BOTH_SDS_TINY = both(
    arms_only,
    edit("arms.csv", ",-0.36,1.2,", ",-0.36,1e-200,"),
    edit("arms.csv", ",0.15,1.3,", ",0.15,1e-200,"),
)
DERIVED_CHANGE_ROWS = (
    "study_id,outcome,arm,timepoint,n,mean,sd,unit\n"
    "Alpha2015,pwv_cf,treatment,baseline,120,9.1,1e200,m/s\n"
    "Alpha2015,pwv_cf,treatment,followup,120,8.7,1.3,m/s\n"
    "Alpha2015,pwv_cf,control,baseline,124,9.0,1.2,m/s\n"
    "Alpha2015,pwv_cf,control,followup,124,9.2,1.4,m/s\n"
)


CASES = [
    # ---------------------------------------------------------------- what the files are
    Case(
        "arms_dangling_symlink",
        VALIDATE,
        2,
        line(
            "studies/arms.csv",
            f": a symbolic link to /nope/arms.csv, which does not exist; {FIX_LINK}",
        ),
        setup=link("arms.csv", "/nope/arms.csv"),
    ),
    Case(
        "arms_symlink_loop",
        VALIDATE,
        2,
        line(
            "studies/arms.csv",
            ": a symbolic link to arms.csv, which loops (too many levels of symbolic links); "
            + FIX_LINK,
        ),
        setup=link("arms.csv", "arms.csv"),
    ),
    Case(
        "arms_is_a_directory",
        VALIDATE,
        2,
        line(
            "studies/arms.csv",
            ": a directory, not a regular file; fix: replace it with a regular file",
        ),
        setup=replace_by("arms.csv", lambda path: path.mkdir()),
    ),
    Case(
        "arms_is_a_fifo",
        VALIDATE,
        2,
        line(
            "studies/arms.csv",
            ": a named pipe (FIFO), not a regular file; fix: replace it with a regular file",
        ),
        setup=replace_by("arms.csv", os.mkfifo),
        subprocess=True,
        env=CHILD_ENV,
    ),
    Case(
        "contrasts_links_to_dev_zero",
        VALIDATE,
        2,
        line(
            "studies/contrasts.csv",
            ": a symbolic link to /dev/zero, a character device, not a regular file; "
            "fix: point it at a regular file or remove it",
        ),
        setup=link("contrasts.csv", "/dev/zero"),
        subprocess=True,
        env=CHILD_ENV,
    ),
    Case(
        "outcomes_is_a_socket",
        VALIDATE,
        2,
        line(
            "studies/outcomes.csv",
            ": a socket, not a regular file; fix: replace it with a regular file",
        ),
        setup=replace_by("outcomes.csv", bind_socket),
    ),
    Case(
        "studies_links_to_a_missing_file_through_another_link",
        VALIDATE,
        2,
        r"^\S*/studies/studies\.csv: a symbolic link to \S*/outside/hop\.csv, which does not "
        + re.escape(f"exist; {FIX_LINK}")
        + "$",
        setup=both(
            link("studies.csv", "{outside}/hop.csv"),
            lambda world: (world.outside / "hop.csv").symlink_to("/nope/studies.csv"),
        ),
    ),
    Case(
        "claims_dangling_symlink",
        VALIDATE,
        2,
        line(
            "studies/claims.csv",
            f": a symbolic link to /nope/claims.csv, which does not exist; {FIX_LINK}",
        ),
        setup=link("claims.csv", "/nope/claims.csv"),
    ),
    Case(
        "analyses_toml_dangling_symlink_is_no_silent_default",
        FIT,
        2,
        line(
            "studies/analyses.toml",
            f": a symbolic link to /nope/analyses.toml, which does not exist; {FIX_LINK}",
        ),
        setup=both(include_beta, link("analyses.toml", "/nope/analyses.toml")),
    ),
    Case(
        "claims_over_the_limit",
        FIT,
        2,
        line(
            "studies/claims.csv",
            ": 16.0 MiB (16,777,217 bytes), over the 16 MiB limit for a claims file; "
            "fix: check that this is the right file (a claims file is far smaller)",
        ),
        setup=both(include_beta, sparse("project/studies/claims.csv", 16 * 2**20 + 1)),
    ),
    # ---------------------------------------------------------------- --studies
    Case(
        "studies_path_is_a_file",
        ("validate", "--studies", "{studies}/studies.csv"),
        2,
        line(
            "studies/studies.csv",
            ": a regular file, not a directory; fix: give the directory holding studies.csv",
        ),
    ),
    Case(
        "studies_path_is_a_dangling_link",
        ("validate", "--studies", "{project}/review"),
        2,
        line(
            "project/review",
            ": a symbolic link to /nope/review, which does not exist; "
            "fix: point it at an existing directory or remove it",
        ),
        setup=lambda world: (world.project / "review").symlink_to("/nope/review"),
    ),
    Case(
        "studies_path_is_a_fifo",
        ("validate", "--studies", "{project}/review"),
        2,
        line(
            "project/review",
            ": a named pipe (FIFO), not a directory; fix: give the directory holding studies.csv",
        ),
        setup=lambda world: os.mkfifo(world.project / "review"),
    ),
    # ---------------------------------------------------------------- --config
    Case(
        "config_is_a_directory",
        (*FIT, "--config", "{project}/analyses.toml"),
        2,
        line(
            "project/analyses.toml",
            ": a directory, not a regular file; fix: replace it with a regular file",
        ),
        setup=lambda world: (world.project / "analyses.toml").mkdir(),
    ),
    Case(
        "config_is_a_fifo",
        (*FIT, "--config", "{project}/analyses.toml"),
        2,
        line(
            "project/analyses.toml",
            ": a named pipe (FIFO), not a regular file; fix: replace it with a regular file",
        ),
        setup=lambda world: os.mkfifo(world.project / "analyses.toml"),
        subprocess=True,
        env=CHILD_ENV,
    ),
    Case(
        "config_is_dev_zero",
        (*FIT, "--config", "/dev/zero"),
        2,
        "^" + re.escape("/dev/zero: a character device, not a regular file; fix: ") + ".",
        subprocess=True,
        env=CHILD_ENV,
    ),
    Case(
        "config_dangling_symlink",
        (*FIT, "--config", "{project}/analyses.toml"),
        2,
        line(
            "project/analyses.toml",
            f": a symbolic link to /nope/analyses.toml, which does not exist; {FIX_LINK}",
        ),
        setup=lambda world: (world.project / "analyses.toml").symlink_to("/nope/analyses.toml"),
    ),
    Case(
        "config_over_the_limit",
        (*FIT, "--config", "{project}/analyses.toml"),
        2,
        line(
            "project/analyses.toml",
            ": 1.0 MiB (1,048,577 bytes), over the 1 MiB limit for an analysis file; "
            "fix: check that this is the right file (an analysis file is far smaller)",
        ),
        setup=sparse("project/analyses.toml", 2**20 + 1),
    ),
    # ---------------------------------------------------------------- digits
    Case(
        "arabic_indic_digits",
        VALIDATE_OFF,
        2,
        line(
            "studies/arms.csv",
            ":2, column n, value '١٢٠': not a number: '١' (ARABIC-INDIC DIGIT ONE) is not one "
            "of the ASCII digits 0-9; fix: write '120'",
        ),
        setup=edit("arms.csv", ",120,-0.36,", ",١٢٠,-0.36,"),
    ),
    Case(
        "fullwidth_digits",
        VALIDATE_OFF,
        2,
        line(
            "studies/arms.csv",
            ":3, column sd, value '１.３': not a number: '１' (FULLWIDTH DIGIT ONE) is not one "
            "of the ASCII digits 0-9; fix: write '1.3'",
        ),
        setup=edit("arms.csv", ",0.15,1.3,", ",0.15,１.３,"),
    ),
    Case(
        "superscript_digit",
        VALIDATE_OFF,
        2,
        line(
            "studies/arms.csv",
            ":2, column n, value '120¹': not a number: '¹' (SUPERSCRIPT ONE) is not one of the "
            "ASCII digits 0-9; fix: write the number with the ASCII digits 0-9 and '.' "
            "(a superscript is no digit)",
        ),
        setup=edit("arms.csv", ",120,-0.36,", ",120¹,-0.36,"),
    ),
    Case(
        "devanagari_digits_in_a_contrast",
        VALIDATE_OFF,
        2,
        line(
            "studies/contrasts.csv",
            ":2, column estimate, value '-०.५१': not a number: '०' (DEVANAGARI DIGIT ZERO) is "
            "not one of the ASCII digits 0-9; fix: write '-0.51'",
        ),
        setup=edit("contrasts.csv", ",-0.51,", ",-०.५१,"),
    ),
    Case(
        "arabic_indic_moderator_is_not_silently_categorical",
        VALIDATE_OFF,
        2,
        line(
            "studies/studies.csv",
            ":2, column ablat, value '٤٤': not a number: '٤' (ARABIC-INDIC DIGIT FOUR) is not "
            "one of the ASCII digits 0-9; fix: write '44'",
        ),
        setup=edit("studies.csv", ",44\n", ",٤٤\n"),
    ),
    Case(
        "claim_statement_with_arabic_indic_digits",
        FIT,
        2,
        line(
            "studies/claims.csv",
            ":2, column statement, value 'mu < ٠': not a number: '٠' (ARABIC-INDIC DIGIT ZERO) "
            "is not one of the ASCII digits 0-9; fix: write the numbers with the ASCII digits 0-9",
        ),
        setup=both(
            include_beta,
            write("claims.csv", "claim_id,claim,analysis,statement\nc1,helps,re_pwv_cf,mu < ٠\n"),
        ),
    ),
    # ---------------------------------------------------------------- effect-size arithmetic
    Case(
        "both_sds_1e-200_effects",
        EFFECTS_OFF,
        2,
        line(
            "studies/arms.csv",
            ":2, column sd, value '1e-200': the effect size's variance underflows to 0 "
            f"(MD of Alpha2015 / pwv_cf from arms.csv:2,3); {FIX_VALUE}",
        ),
        setup=BOTH_SDS_TINY,
    ),
    Case(
        "both_sds_1e-200_fit",
        FIT,
        2,
        line(
            "studies/arms.csv",
            ":2, column sd, value '1e-200': the effect size's variance underflows to 0 "
            f"(MD of Alpha2015 / pwv_cf from arms.csv:2,3); {FIX_VALUE}",
        ),
        setup=both(include_beta, BOTH_SDS_TINY),
    ),
    Case(
        "both_sds_1e-200_validate",
        VALIDATE_OFF,
        2,
        line(
            "studies/arms.csv",
            ":2, column sd, value '1e-200': the effect size's variance underflows to 0 "
            f"(MD of Alpha2015 / pwv_cf from arms.csv:2,3); {FIX_VALUE}",
        ),
        setup=BOTH_SDS_TINY,
    ),
    Case(
        "sd_1e200_overflows",
        EFFECTS_OFF,
        2,
        line(
            "studies/arms.csv",
            ":2, column sd, value '1e200': computing the effect size overflows "
            f"(MD of Alpha2015 / pwv_cf from arms.csv:2,3); {FIX_VALUE}",
        ),
        setup=both(arms_only, edit("arms.csv", ",-0.36,1.2,", ",-0.36,1e200,")),
    ),
    Case(
        "sd_1e200_overflows_smd",
        (*EFFECTS_OFF, "--measure", "SMD"),
        2,
        line(
            "studies/arms.csv",
            ":2, column sd, value '1e200': computing the effect size overflows "
            f"(SMD of Alpha2015 / pwv_cf from arms.csv:2,3); {FIX_VALUE}",
        ),
        setup=both(arms_only, edit("arms.csv", ",-0.36,1.2,", ",-0.36,1e200,")),
    ),
    Case(
        "contrast_se_1e-200",
        EFFECTS_OFF,
        2,
        line(
            "studies/contrasts.csv",
            ":2, column se, value '1e-200': the effect size's variance underflows to 0 "
            f"(MD of Alpha2015 / pwv_cf from contrasts.csv:2); {FIX_VALUE}",
        ),
        setup=edit("contrasts.csv", ",-0.51,,", ",-0.51,1e-200,"),
    ),
    Case(
        "contrast_se_1e200_fit",
        FIT,
        2,
        line(
            "studies/contrasts.csv",
            ":2, column se, value '1e200': the effect size's variance overflows "
            f"(MD of Alpha2015 / pwv_cf from contrasts.csv:2); {FIX_VALUE}",
        ),
        setup=both(include_beta, edit("contrasts.csv", ",-0.51,,", ",-0.51,1e200,")),
    ),
    Case(
        "median_conversion_overflows",
        EFFECTS_OFF,
        2,
        line(
            "studies/arms.csv",
            ":5, column q3, value '1e300': computing the effect size overflows "
            f"(MD of Beta2019 / dpucmgp from arms.csv:5,6); {FIX_VALUE}",
        ),
        setup=edit("arms.csv", ",400,310,520,", ",400,310,1e300,"),
    ),
    Case(
        "derived_change_score_overflows",
        EFFECTS_OFF,
        2,
        line(
            "studies/arms.csv",
            ":2, column sd, value '1e200': computing the effect size overflows "
            f"(MD of Alpha2015 / pwv_cf from arms.csv:2,3,4,5); {FIX_VALUE}",
        ),
        setup=both(arms_only, write("arms.csv", DERIVED_CHANGE_ROWS)),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_input_fault(case, tmp_path):
    run_case(case, tmp_path)


def test_names_are_distinct():
    names = [case.name for case in CASES]
    assert len(set(names)) == len(names)


def test_csv_over_the_limit(tmp_path, monkeypatch):
    # The real limit (256 MiB) is tested on a sparse file in tests/test_input_files.py; here a
    # small one shows the line `validate` gives, without hashing gigabytes into the snapshot.
    monkeypatch.setattr(input_files, "CSV_LIMIT", 500)
    case = Case(
        "arms_over_the_limit",
        VALIDATE,
        2,
        line(
            "studies/arms.csv",
            ": 622 bytes, over the 500 bytes limit for a study-records file; "
            "fix: check that this is the right file (a study-records file is far smaller)",
        ),
    )
    run_case(case, tmp_path)


def test_csv_over_the_row_limit(tmp_path, monkeypatch):
    # Bytes alone do not bound memory: 256 MiB of two-byte lines is 134 million rows, which took
    # more than 20 GB before the row limit (1,000,000) and 2 GB, 8 s after it.
    monkeypatch.setattr(records, "MAX_ROWS", 3)
    case = Case(
        "arms_over_the_row_limit",
        VALIDATE,
        2,
        line(
            "studies/arms.csv",
            ":5: more than 3 rows, the limit per file; fix: check that this is the right file",
        ),
    )
    run_case(case, tmp_path)


@pytest.mark.parametrize(
    "case",
    [
        Case("studies_link_to_a_directory", ("validate", "--studies", "{project}/review"), 0, None,
             setup=lambda world: (world.project / "review").symlink_to(world.studies)),
        Case("arms_link_to_a_regular_file", VALIDATE, 0, None,
             setup=both(lambda world: (world.studies / "arms.csv").rename(world.outside / "a.csv"),
                        link("arms.csv", "{outside}/a.csv"))),
    ],
    ids=lambda case: case.name,
)  # fmt: skip
def test_links_to_the_right_kind_are_fine(case, tmp_path):
    _, outcome = run_case(case, tmp_path)
    assert outcome.stdout.startswith("ok: ")


def test_studies_path_is_a_symlink_loop(tmp_path):
    case = Case(
        "studies_path_is_a_symlink_loop",
        ("validate", "--studies", "{project}/review"),
        2,
        line(
            "project/review",
            ": a symbolic link to review, which loops (too many levels of symbolic links); "
            "fix: point it at an existing directory or remove it",
        ),
        setup=lambda world: (world.project / "review").symlink_to("review"),
    )
    run_case(case, tmp_path)
