"""The write-side fault corpus: metak never loses, overwrites or misplaces a user's files.

Each case runs one command in a sandboxed world (:mod:`tests.faults.harness`) and asserts its
exit code, its one line on standard error, and that no file outside what the case may create
changed. The cases, by what they attack:

- **the ``--out`` rule** (``fit`` replaces its output folder whole): the project folder, ``.``,
  the studies folder, a folder holding the studies or the analysis file, an ancestor of the
  working folder, the home folder, the filesystem root, a regular file, a symbolic link, a folder
  with foreign content, a results folder with a file the user added — all refused with exit 2;
  a new folder, an empty one, metak's own previous results (also of the metak before the
  manifest marker) are replaced, exit 0;
- **staging hygiene**: a user's files named like metak's staging directories survive a fit;
- **``effects --out``**: every input file (directly, through a symbolic link, through a hard
  link), a foreign file, a folder and a FIFO are refused; metak's own effects file is replaced;
- **``report``'s integrity check**: a missing, changed or added file is refused unless
  ``--allow-modified`` (which builds the report with a banner); malformed files (renamed header,
  empty ``summary.csv``, broken ``analyses.json``, swapped posterior files) end in one line even
  with ``--allow-modified``; a folder that is not metak's is refused;
- **containment**: an analysis whose name leads out of the results folder writes nothing;
- **the machine**: a file size limit (``RLIMIT_FSIZE``, EFBIG), a genuinely full disk (a tiny
  tmpfs in a private mount namespace, as root) and folders without write permission end in
  exit 1 with one line naming the path and the cause, the previous results untouched and no
  staging directory or lock left.

Fits use ``tests/data/records_base`` with ``--provenance off`` and one exact analysis (about a
second each). Cases that need a child process (resource limits, mount namespaces, dropped
capabilities) run with ``subprocess=True``.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from metak.config import default_name
from metak.output.files import is_work_dir
from metak.output.integrity import LEGACY_NAMES, MANIFEST, read_manifest, verify_results
from tests.faults.harness import Case, World, run_case, run_in_process


def _fit(out: str, *options: str, studies: str = "{studies}") -> tuple[str, ...]:
    return ("fit", "--studies", studies, "--provenance", "off", *options, "--quiet", "--out", out)


def _effects(out: str, studies: str = "{studies}") -> tuple[str, ...]:
    return ("effects", "--studies", studies, "--provenance", "off", "--out", out)


# The fit of most cases: one exact analysis of records_base.
FIT = ("fit", "--studies", "{studies}", "--provenance", "off", "--analysis", "re_pwv_cf", "--quiet")
# Two exact analyses of the same outcome, so posterior files can be swapped between them.
TWO_ANALYSES = """\
[[analysis]]
name = "pwv_a"
outcome = "pwv_cf"
model = "random_effects"

[[analysis]]
name = "pwv_b"
outcome = "pwv_cf"
model = "random_effects"
[analysis.priors]
tau = "halfcauchy(0.5)"
"""
ONE_ANALYSIS = TWO_ANALYSES.split("\n\n")[0] + "\n"
# Below the posterior file's size (about 1.5 MB), above every other result file's.
FILE_SIZE_LIMIT = 500_000
# Below the size of records_base's effects table (about 870 bytes).
EFFECTS_SIZE_LIMIT = 400

# A results folder written once per module by the code under test (see previous_results).
_PREVIOUS: dict[str, Path] = {}


@pytest.fixture(scope="module", autouse=True)
def previous_results(tmp_path_factory):
    """A results folder of two analyses (pwv_a, pwv_b), copied into worlds by the cases."""
    root = tmp_path_factory.mktemp("previous")
    shutil.copytree(Path(__file__).parents[1] / "data" / "records_base", root / "studies")
    (root / "two.toml").write_text(TWO_ANALYSES, encoding="utf-8")
    argv = ["fit", "--studies", str(root / "studies"), "--provenance", "off"]
    argv += ["--config", str(root / "two.toml"), "--out", str(root / "results"), "--quiet"]
    outcome = run_in_process(argv, root)
    assert outcome.code == 0, outcome.stderr
    _PREVIOUS["results"] = root / "results"
    return root / "results"


def _previous(world: World, where: str = "project/results") -> Path:
    target = world.root / where
    shutil.copytree(_PREVIOUS["results"], target, symlinks=True)
    return target


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _is_fresh_results(folder: Path) -> None:
    """``folder`` holds complete results of the re_pwv_cf fit, exactly as its manifest lists."""
    assert read_manifest(folder) is not None and not read_manifest(folder).legacy
    assert verify_results(folder).problems == ()
    assert (folder / "posterior" / "re_pwv_cf.nc").is_file()
    assert (folder / "report.html").is_file()
    # The harness proves nothing else changed; here: no work directory or lock of metak's left.
    ours = [p.name for p in folder.parent.iterdir() if is_work_dir(p)]
    assert ours == [] and not (folder.parent / f".{folder.name}.lock").exists(), ours


def _edit(relative: str, old: str, new: str):
    def setup(world: World) -> None:
        path = _previous(world) / relative
        text = path.read_text(encoding="utf-8")
        assert old in text, (relative, old)
        path.write_text(text.replace(old, new, 1), encoding="utf-8")

    return setup


def _set_mean(value: str):
    """Hand-edit the mean of the first row of summary.csv."""

    def setup(world: World) -> None:
        path = _previous(world) / "summary.csv"
        header, first, *rest = path.read_text(encoding="utf-8").split("\n")
        cells = first.split(",")
        cells[header.split(",").index("mean")] = value
        path.write_text("\n".join([header, ",".join(cells), *rest]), encoding="utf-8")

    return setup


def _write(relative: str, text: str, with_previous: bool = True):
    def setup(world: World) -> None:
        if with_previous:
            _previous(world)
        path = world.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    return setup


def _remove(relative: str):
    def setup(world: World) -> None:
        _previous(world)
        (world.root / relative).unlink()

    return setup


def _swap_posteriors(world: World) -> None:
    posterior = _previous(world) / "posterior"
    os.replace(posterior / "pwv_a.nc", posterior / "swap.tmp")
    os.replace(posterior / "pwv_b.nc", posterior / "pwv_a.nc")
    os.replace(posterior / "swap.tmp", posterior / "pwv_b.nc")


def _legacy_previous(world: World) -> None:
    """Results as the metak before the manifest marker wrote them (without the files it did not
    write yet, e.g. the robustness tables)."""
    results = _previous(world)
    manifest = json.loads((results / MANIFEST).read_text(encoding="utf-8"))
    del manifest["metak_results"], manifest["files"]
    (results / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    for entry in results.iterdir():
        if entry.is_file() and entry.name not in LEGACY_NAMES:
            entry.unlink()


def _studies_elsewhere(world: World) -> None:
    shutil.copytree(world.studies, world.outside / "review" / "studies")


def _config_elsewhere(world: World) -> None:
    (world.outside / "cfg").mkdir()
    (world.outside / "cfg" / "analyses.toml").write_text(ONE_ANALYSIS, encoding="utf-8")


def _link(name: str, to: str, previous: bool = False):
    def setup(world: World) -> None:
        if previous:
            _previous(world)
        (world.root / name).symlink_to(world.root / to)

    return setup


def _hard_link(world: World) -> None:
    os.link(world.studies / "arms.csv", world.project / "arms-copy.csv")


def _fifo(world: World) -> None:
    os.mkfifo(world.project / "pipe")


def _staging_lookalikes(world: World) -> None:
    """A user's own files named like metak's staging, swap and lock names."""
    (world.project / ".results.new-foo").mkdir()
    (world.project / ".results.new-foo" / "keep.txt").write_text("mine\n", encoding="utf-8")
    (world.project / ".results.new-empty").mkdir()
    (world.project / ".results.old-bar").write_text("mine too\n", encoding="utf-8")


def _foreign_lock(world: World) -> None:
    (world.project / ".results.lock").write_text("my lock notes\n", encoding="utf-8")


def _effects_file(world: World) -> None:
    from metak.derive import EFFECT_COLUMNS

    text = ",".join(EFFECT_COLUMNS) + "\n" + "x," * (len(EFFECT_COLUMNS) - 1) + "x\n"
    (world.project / "effects.csv").write_text(text, encoding="utf-8")


def _evil_outcome(world: World) -> None:
    """Rename the outcome pwv_cf to an id that, as a file name, leads out of the results."""
    for name in ("arms.csv", "contrasts.csv", "outcomes.csv"):
        path = world.studies / name
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace("pwv_cf", "../../../outside/victim"), encoding="utf-8")


def _report_has_banner(names: tuple[str, ...]):
    def check(world: World) -> None:
        text = (world.project / "results" / "report.html").read_text(encoding="utf-8")
        banner = text[text.index('id="modified-results"') :]
        banner = banner[: banner.index("</div>")]
        for name in names:
            assert f"<code>{name}</code>" in banner, name
        assert text.index('id="modified-results"') < text.index('<section id="answers">')

    return check


def _report_without_banner(world: World) -> None:
    text = (world.project / "results" / "report.html").read_text(encoding="utf-8")
    assert "modified-results" not in text


def _results_unchanged(world: World) -> None:
    assert _files(world.project / "results") == _files(_PREVIOUS["results"])


OUT_RULE = [
    Case(
        "out_is_project",
        (*FIT, "--out", "{project}"),
        2,
        r"--out .*project: is the current folder; .*fix: choose a new or empty folder, e\.g\."
        r" --out .*/project/results$",
    ),
    Case("out_is_dot", (*FIT, "--out", "."), 2, r"--out \. \(.*/project\): is the current folder"),
    Case(
        "out_is_studies",
        (*FIT, "--out", "{studies}"),
        2,
        r"--out .*/studies: is the studies folder; metak would replace it whole; fix: .*--out"
        r" .*/project/results$",
    ),
    Case(
        "out_is_studies_relative",
        (*FIT, "--out", "studies"),
        2,
        r"--out studies \(.*/project/studies\): is the studies folder",
    ),
    Case(
        "out_holds_studies",
        _fit("{outside}/review", "--analysis", "re_pwv_cf", studies="{outside}/review/studies"),
        2,
        r"--out .*/outside/review: holds the studies folder .*/review/studies; .*--out"
        r" .*/review/results$",
        setup=_studies_elsewhere,
    ),
    Case(
        "out_holds_config",
        _fit("{outside}/cfg", "--config", "{outside}/cfg/analyses.toml"),
        2,
        r"--out .*/outside/cfg: holds the analysis file .*analyses\.toml",
        setup=_config_elsewhere,
    ),
    Case(
        "out_is_ancestor_of_cwd",
        (*FIT, "--out", "{world}"),
        2,
        r"--out .*/world: holds the current folder .*/project",
    ),
    Case("out_is_root", (*FIT, "--out", "/"), 2, r"--out /: is the filesystem root"),
    Case(
        "out_is_home",
        (*FIT, "--out", "{outside}"),
        2,
        r"--out .*/outside: is your home folder; .*--out .*/outside/results$",
        subprocess=True,
        env={"HOME": "{outside}"},
    ),
    Case(
        "out_is_a_file",
        (*FIT, "--out", "{project}/notes.txt"),
        2,
        r"--out .*/notes\.txt: is a file, not a folder; fix: .*--out .*/project/results$",
    ),
    Case(
        "out_is_a_folder_with_other_content",
        (*FIT, "--out", "{outside}"),
        2,
        r"--out .*/outside: a folder with other content \(keep\.txt, victim\.nc\) is not a metak"
        r" results directory; fix: choose a new or empty folder, e\.g\. --out .*/outside/results$",
    ),
    Case(
        "out_is_results_with_a_users_file",
        (*FIT, "--out", "{project}/results"),
        2,
        r"--out .*/results: holds notes\.txt, which metak did not write, so it will not replace"
        r" this results folder; fix: move it out",
        setup=_write("project/results/notes.txt", "my notes\n"),
    ),
    Case(
        "out_is_results_with_a_users_folder_in_posterior",
        (*FIT, "--out", "{project}/results"),
        2,
        r"holds posterior/drafts/, which metak did not write",
        setup=_write("project/results/posterior/drafts/a.txt", "draft\n"),
    ),
    Case(
        "out_is_a_symlink_to_results",
        (*FIT, "--out", "{project}/latest"),
        2,
        r"--out .*/latest: is a symbolic link; metak replaces the results folder whole and does"
        r" not write through links",
        setup=_link("project/latest", "project/results", previous=True),
    ),
    Case(
        "out_is_a_symlink_to_a_new_folder",
        (*FIT, "--out", "{project}/elsewhere"),
        2,
        r"is a symbolic link",
        setup=_link("project/elsewhere", "outside/none"),
    ),
]

FIT_OK = [
    Case(
        "fit_into_a_new_folder",
        (*FIT, "--out", "{project}/results"),
        0,
        None,
        creates=("project/results",),
        check=lambda w: _is_fresh_results(w.project / "results"),
    ),
    Case(
        "fit_into_a_new_nested_folder",
        (*FIT, "--out", "{outside}/a/b/results"),
        0,
        None,
        creates=("outside/a",),
        check=lambda w: _is_fresh_results(w.outside / "a" / "b" / "results"),
    ),
    Case(
        "fit_into_an_empty_folder",
        (*FIT, "--out", "{project}/results"),
        0,
        None,
        setup=lambda w: (w.project / "results").mkdir(),
        creates=("project/results",),
        check=lambda w: _is_fresh_results(w.project / "results"),
    ),
    Case(
        "refit_into_its_own_results",
        (*FIT, "--out", "{project}/results"),
        0,
        None,
        setup=_previous,
        creates=("project/results",),
        check=lambda w: _is_fresh_results(w.project / "results"),
    ),
    Case(
        "refit_into_results_of_the_previous_metak",
        (*FIT, "--out", "{project}/results"),
        0,
        None,
        setup=_legacy_previous,
        creates=("project/results",),
        check=lambda w: _is_fresh_results(w.project / "results"),
    ),
    Case(
        "refit_into_results_whose_report_was_deleted",
        (*FIT, "--out", "{project}/results"),
        0,
        None,
        setup=_remove("project/results/report.html"),
        creates=("project/results",),
        check=lambda w: _is_fresh_results(w.project / "results"),
    ),
    Case(
        "staging_names_of_a_user_survive",
        (*FIT, "--out", "{project}/results"),
        0,
        None,
        setup=_staging_lookalikes,
        creates=("project/results",),
        check=lambda w: _is_fresh_results(w.project / "results"),
    ),
    Case(
        "lock_name_of_a_user_is_not_taken",
        (*FIT, "--out", "{project}/results"),
        1,
        r"\.results\.lock: exists and is not a metak lock file; fix: move it away",
        setup=_foreign_lock,
    ),
]

EFFECTS = [
    *(
        Case(
            f"effects_onto_input_{name}",
            _effects(f"{{studies}}/{name}"),
            2,
            rf"--out .*/studies/{name}: is the input file .*/studies/{name}; metak never"
            rf" overwrites its inputs; fix: write the effects to a new file, e\.g\. --out"
            rf" .*/studies/effects\.csv$",
        )
        for name in ("studies.csv", "arms.csv", "contrasts.csv", "outcomes.csv")
    ),
    Case(
        "effects_onto_input_relative",
        _effects("studies/arms.csv", studies="studies"),
        2,
        r"--out studies/arms\.csv \(.*\): is the input file",
    ),
    Case(
        "effects_onto_input_through_a_symlink",
        _effects("{project}/arms-link.csv"),
        2,
        r"arms-link\.csv: is the input file .*/studies/arms\.csv",
        setup=_link("project/arms-link.csv", "project/studies/arms.csv"),
    ),
    Case(
        "effects_onto_input_through_a_hard_link",
        _effects("{project}/arms-copy.csv"),
        2,
        r"arms-copy\.csv: is the input file .*/studies/arms\.csv",
        setup=_hard_link,
    ),
    Case(
        "effects_onto_the_analysis_file",
        _effects("{studies}/analyses.toml"),
        2,
        r"analyses\.toml: is the input file",
        setup=lambda w: (w.studies / "analyses.toml").write_text(ONE_ANALYSIS, encoding="utf-8"),
    ),
    Case(
        "effects_onto_a_foreign_file",
        _effects("{project}/notes.txt"),
        2,
        r"notes\.txt: exists and is not an effects file metak wrote \(its first line is not its"
        r" header\); fix: choose a new file, e\.g\. --out .*/project/effects\.csv, or move it"
        r" away$",
    ),
    Case(
        "effects_onto_a_folder",
        _effects("{outside}"),
        2,
        r"--out .*/outside: is a folder",
    ),
    Case(
        "effects_onto_a_fifo",
        _effects("{project}/pipe"),
        2,
        r"pipe: is not a regular file",
        setup=_fifo,
    ),
    Case(
        "effects_onto_a_symlink_to_a_foreign_file",
        _effects("{project}/keep-link.csv"),
        2,
        r"keep-link\.csv: is a symbolic link",
        setup=_link("project/keep-link.csv", "outside/keep.txt"),
    ),
    Case(
        "effects_into_a_new_file",
        _effects("{project}/effects.csv"),
        0,
        None,
        creates=("project/effects.csv",),
    ),
    Case(
        "effects_onto_its_own_file",
        _effects("{project}/effects.csv"),
        0,
        None,
        setup=_effects_file,
        creates=("project/effects.csv",),
        check=lambda w: "x,x" not in (w.project / "effects.csv").read_text(encoding="utf-8"),
    ),
]

REPORT = [
    Case(
        "report_ok",
        ("report", "--out", "{project}/results"),
        0,
        None,
        setup=_previous,
        creates=("project/results/report.html",),
        check=_report_without_banner,
    ),
    Case(
        "report_missing_file",
        ("report", "--out", "{project}/results"),
        2,
        r"results/summary\.csv: missing; fix: run `python -m metak fit` again, or pass"
        r" --allow-modified",
        setup=_remove("project/results/summary.csv"),
    ),
    Case(
        "report_missing_posterior_file",
        ("report", "--out", "{project}/results"),
        2,
        r"results/posterior/pwv_b\.nc: missing; fix:",
        setup=_remove("project/results/posterior/pwv_b.nc"),
    ),
    Case(
        "report_hand_edited_summary",
        ("report", "--out", "{project}/results"),
        2,
        r"results/summary\.csv: changed since `metak fit` wrote it \(SHA-256 differs from"
        r" manifest\.json\); fix: run `python -m metak fit` again, or pass --allow-modified to"
        r" build the report anyway$",
        setup=_set_mean("0.25"),
    ),
    Case(
        "report_hand_edited_summary_allowed",
        ("report", "--out", "{project}/results", "--allow-modified"),
        0,
        None,
        setup=_set_mean("0.25"),
        creates=("project/results/report.html",),
        check=_report_has_banner(("summary.csv",)),
    ),
    Case(
        "report_missing_posterior_allowed",
        ("report", "--out", "{project}/results", "--allow-modified"),
        0,
        None,
        setup=_remove("project/results/posterior/pwv_b.nc"),
        creates=("project/results/report.html",),
        check=_report_has_banner(("posterior/pwv_b.nc",)),
    ),
    Case(
        "report_with_a_users_file",
        ("report", "--out", "{project}/results"),
        2,
        r"results/notes\.txt: not written by metak \(not listed in manifest\.json\); fix: move it"
        r" out of .*results, or pass --allow-modified",
        setup=_write("project/results/notes.txt", "mine\n"),
    ),
    Case(
        "report_renamed_header",
        ("report", "--out", "{project}/results"),
        2,
        r"summary\.csv: changed since `metak fit` wrote it",
        setup=_edit("summary.csv", ",mean,", ",average,"),
    ),
    Case(
        "report_renamed_header_allowed",
        ("report", "--out", "{project}/results", "--allow-modified"),
        2,
        r"results/summary\.csv: no column 'mean' \(the header has: analysis, parameter, average,"
        r" .*\); fix: run `python -m metak fit` to write the results again$",
        setup=_edit("summary.csv", ",mean,", ",average,"),
    ),
    Case(
        "report_not_a_number_allowed",
        ("report", "--out", "{project}/results", "--allow-modified"),
        2,
        r"results/summary\.csv:2: column 'mean' holds '0\.1x', not a number",
        setup=_set_mean("0.1x"),
    ),
    Case(
        "report_empty_summary",
        ("report", "--out", "{project}/results"),
        2,
        r"summary\.csv: changed since",
        setup=_write("project/results/summary.csv", ""),
    ),
    Case(
        "report_empty_summary_allowed",
        ("report", "--out", "{project}/results", "--allow-modified"),
        2,
        r"results/summary\.csv: empty, not even a header line; fix: run `python -m metak fit`",
        setup=_write("project/results/summary.csv", ""),
    ),
    Case(
        "report_unparsable_analyses_json_allowed",
        ("report", "--out", "{project}/results", "--allow-modified"),
        2,
        r"results/analyses\.json: not valid JSON \(.*\); fix: re-run `python -m metak fit`$",
        setup=_write("project/results/analyses.json", '{"analyses": [\n'),
    ),
    Case(
        "report_analyses_json_of_the_wrong_shape_allowed",
        ("report", "--out", "{project}/results", "--allow-modified"),
        2,
        r"results/analyses\.json: holds a int, not the analyses",
        setup=_write("project/results/analyses.json", "42\n"),
    ),
    Case(
        "report_swapped_posterior_files",
        ("report", "--out", "{project}/results"),
        2,
        r"results/posterior/pwv_a\.nc: changed since `metak fit` wrote it .*; also 1 more:"
        r" posterior/pwv_b\.nc \(changed\)$",
        setup=_swap_posteriors,
    ),
    Case(
        "report_swapped_posterior_files_allowed",
        ("report", "--out", "{project}/results", "--allow-modified"),
        2,
        r"results/posterior/pwv_a\.nc: holds the posterior of analysis 'pwv_b', not 'pwv_a'"
        r" \(files swapped or renamed\?\); fix:",
        setup=_swap_posteriors,
    ),
    Case(
        "report_garbage_posterior_allowed",
        ("report", "--out", "{project}/results", "--allow-modified"),
        2,
        r"results/posterior/pwv_a\.nc: not a readable posterior file",
        setup=_write("project/results/posterior/pwv_a.nc", "not netcdf"),
    ),
    Case(
        "report_missing_manifest",
        ("report", "--out", "{project}/results"),
        2,
        r"--out .*/results: not a metak results directory \(no manifest\.json\); fix: give the"
        r" folder `python -m metak fit --out` wrote$",
        setup=_remove("project/results/manifest.json"),
    ),
    Case(
        "report_not_a_results_folder",
        ("report", "--out", "{outside}"),
        2,
        r"--out .*/outside: not a metak results directory \(no manifest\.json\)",
    ),
    Case(
        "report_foreign_manifest",
        ("report", "--out", "{outside}"),
        2,
        r"--out .*/outside: not a metak results directory \(its manifest\.json is not metak's\)",
        setup=_write("outside/manifest.json", '{"name": "my project"}\n', with_previous=False),
    ),
    Case(
        "report_no_such_folder",
        ("report", "--out", "{project}/nothing"),
        2,
        r"--out .*/nothing: no such folder; fix:",
    ),
    Case(
        "report_results_of_the_previous_metak",
        ("report", "--out", "{project}/results"),
        2,
        r"results/manifest\.json: written by an older metak without file checksums, so the"
        r" results cannot be verified; fix: run `python -m metak fit` again, or pass"
        r" --allow-modified",
        setup=_legacy_previous,
    ),
]


def _posterior_inside(world: World) -> None:
    """The outcome id became a safe file name inside results/posterior (README, name rules)."""
    names = sorted(p.name for p in (world.project / "results" / "posterior").iterdir())
    # The analysis and its robustness checks' PET and PEESE analyses, all inside.
    expected = sorted(f"{EVIL_ANALYSIS}{suffix}.nc" for suffix in ("", "_pet", "_peese"))
    assert names == expected, names
    assert EVIL_ANALYSIS.startswith("re_.._.._.._outside_victim_"), EVIL_ANALYSIS  # no "/"


# The default analysis of the outcome "../../../outside/victim".
EVIL_ANALYSIS = default_name("../../../outside/victim")

CONTAINMENT = [
    Case(
        # Default analyses are named re_<outcome>: an outcome id that reads as a path is mapped
        # to a safe file name, and the posterior file stays inside the results.
        "outcome_id_leading_out_of_the_results",
        _fit("{project}/results", "--analysis", EVIL_ANALYSIS),
        0,
        None,
        setup=_evil_outcome,
        creates=("project/results",),
        check=_posterior_inside,
    ),
]


def _ids(cases):
    return [case.name for case in cases]


@pytest.mark.parametrize("case", OUT_RULE, ids=_ids(OUT_RULE))
def test_out_rule(case, tmp_path):
    run_case(case, tmp_path)


@pytest.mark.parametrize("case", FIT_OK, ids=_ids(FIT_OK))
def test_fit_replaces_only_what_it_may(case, tmp_path):
    run_case(case, tmp_path)


@pytest.mark.parametrize("case", EFFECTS, ids=_ids(EFFECTS))
def test_effects_out(case, tmp_path):
    run_case(case, tmp_path)


@pytest.mark.parametrize("case", REPORT, ids=_ids(REPORT))
def test_report_integrity(case, tmp_path):
    run_case(case, tmp_path)


@pytest.mark.parametrize("case", CONTAINMENT, ids=_ids(CONTAINMENT))
def test_containment(case, tmp_path):
    run_case(case, tmp_path)


# --- the machine: file size limit, full disk, no permission (child processes) -----------------


def _limit_file_size(limit: int = FILE_SIZE_LIMIT) -> None:
    # Runs in the child: writes beyond the limit fail with EFBIG instead of killing it.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def _environment_cannot(reason: str) -> None:
    """Skip where the machine cannot do it; in CI (env ``CI``) as root that is a failure."""
    if os.environ.get("CI") and os.geteuid() == 0:
        pytest.fail(f"{reason} (CI runs as root, where this must work)")
    pytest.skip(reason)


def _dac_bypass_dropped() -> tuple[str, ...]:
    """A launcher that makes permission bits count: as root, drop the caps that bypass them."""
    if os.geteuid() != 0:
        return ()
    if shutil.which("setpriv") is None:
        _environment_cannot("setpriv (util-linux) is needed to drop root's permission bypass")
    caps = "-dac_override,-dac_read_search"
    return ("setpriv", "--inh-caps", caps, "--bounding-set", caps, "--")


def _read_only(relative: str, previous: bool):
    def setup(world: World) -> None:
        if previous:
            _previous(world)
        folder = world.root / relative
        folder.mkdir(exist_ok=True)
        folder.chmod(0o555)

    return setup


def test_file_size_limit_keeps_previous_results(tmp_path):
    case = Case(
        "file_size_limit",
        (*FIT, "--out", "{project}/results"),
        1,
        r"^error: .*/project/\.results\.new-[0-9a-f]+/results/posterior/re_pwv_cf\.nc: file too"
        r" large; previous results untouched; fix: raise the file size limit \(ulimit -f\), or"
        r" use --out on another disk$",
        setup=_previous,
        check=_results_unchanged,
        subprocess=True,
        preexec=_limit_file_size,
    )
    run_case(case, tmp_path)


def test_file_size_limit_on_effects_keeps_the_old_file(tmp_path):
    def setup(world: World) -> None:
        _effects_file(world)
        # Without the one row that gives no effect size, effects prints no note: one line.
        arms = world.studies / "arms.csv"
        lines = arms.read_text(encoding="utf-8").splitlines(keepends=True)
        arms.write_text("".join(line for line in lines if ",all,baseline," not in line))

    case = Case(
        "file_size_limit_effects",
        _effects("{project}/effects.csv"),
        1,
        r"^error: .*/project/effects\.csv: file too large; .*/project/effects\.csv untouched;"
        r" fix: raise the file size limit",
        setup=setup,
        subprocess=True,
        preexec=lambda: _limit_file_size(EFFECTS_SIZE_LIMIT),
    )
    run_case(case, tmp_path)


def _tmpfs_possible(probe: Path) -> str | None:
    """None when a tmpfs can be mounted in a private mount namespace here, else why not."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    probe.mkdir()
    done = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            'mount -t tmpfs -o size=64k metak-probe "$0"',
            str(probe),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return None if done.returncode == 0 else f"cannot mount a tmpfs: {done.stderr.strip()}"


# Mount a tmpfs of $1 KiB on $2, put the previous results ($3) on it, run metak, then list every
# path on the disk and the SHA-256 of every file into $4 (the mount vanishes with the namespace).
_FULL_DISK = (
    'size="$1"; disk="$2"; previous="$3"; state="$4"; shift 4; '
    'mount -t tmpfs -o size="$size"k metak-full "$disk" || exit 97; '
    'cp -a "$previous" "$disk/results" || exit 98; '
    '"$@"; code=$?; '
    'cd "$disk" && find . -print | LC_ALL=C sort > "$state" && '
    'find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum >> "$state"; '
    "exit $code"
)


def test_full_disk_keeps_previous_results(tmp_path):
    why_not = _tmpfs_possible(tmp_path / "probe")
    if why_not:
        _environment_cannot(why_not)
    previous = _PREVIOUS["results"]
    used_kib = sum(-(-p.stat().st_size // 4096) * 4 for p in previous.rglob("*") if p.is_file())
    posterior_kib = (previous / "posterior" / "pwv_a.nc").stat().st_size // 1024
    # Room for the previous results and the new small files, not for the new posterior file.
    size_kib = used_kib + posterior_kib // 2

    def check(world: World) -> None:
        lines = (world.root / "disk-state.txt").read_text(encoding="utf-8").splitlines()
        paths = [line for line in lines if line.startswith(".")]
        expected = (
            ["."]
            + sorted(f"./results/{p.relative_to(previous).as_posix()}" for p in previous.rglob("*"))
            + ["./results"]
        )
        assert sorted(paths) == sorted(expected), "staging or lock left on the full disk"
        hashes = dict(reversed(line.split("  ", 1)) for line in lines if not line.startswith("."))
        for path, data in _files(previous).items():
            assert hashes[f"./results/{path}"] == hashlib.sha256(data).hexdigest(), path

    case = Case(
        "full_disk",
        (*FIT, "--out", "{world}/disk/results"),
        1,
        r"^error: .*/disk/\.results\.new-[0-9a-f]+/results/posterior/re_pwv_cf\.nc: no space left"
        r" on device; previous results untouched; fix: free space, or use --out on another disk$",
        setup=lambda w: (w.root / "disk").mkdir(),
        creates=("disk-state.txt",),
        check=check,
        subprocess=True,
        launcher=(
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            _FULL_DISK,
            "sh",
            str(size_kib),
            "{world}/disk",
            str(previous),
            "{world}/disk-state.txt",
        ),
    )
    run_case(case, tmp_path)


def test_permission_denied_on_the_parent_folder(tmp_path):
    case = Case(
        "permission_parent",
        (*FIT, "--out", "{project}/locked/results"),
        1,
        r"^error: .*/project/locked/\.results\.lock: permission denied; nothing written to"
        r" .*/locked/results; fix: use --out in a folder you may write to, or change its"
        r" permissions$",
        setup=_read_only("project/locked", previous=False),
        subprocess=True,
        launcher=_dac_bypass_dropped(),
    )
    run_case(case, tmp_path)


def test_permission_denied_when_swapping_keeps_previous_results(tmp_path):
    # The new results are complete; moving the read-only old folder aside fails.
    case = Case(
        "permission_swap",
        (*FIT, "--out", "{project}/results"),
        1,
        r"^error: .*/project/results: permission denied; previous results untouched; fix: use"
        r" --out in a folder you may write to",
        setup=_read_only("project/results", previous=True),
        check=_results_unchanged,
        subprocess=True,
        launcher=_dac_bypass_dropped(),
    )
    run_case(case, tmp_path)


def test_permission_denied_on_report(tmp_path):
    case = Case(
        "permission_report",
        ("report", "--out", "{project}/results"),
        1,
        r"^error: .*/project/results/report\.html: permission denied; previous report\.html"
        r" untouched; fix: use --out in a folder you may write to",
        setup=_read_only("project/results", previous=True),
        check=_results_unchanged,
        subprocess=True,
        launcher=_dac_bypass_dropped(),
    )
    run_case(case, tmp_path)
