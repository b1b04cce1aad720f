"""Fault corpus, options and analysis file: every out-of-range value is exit 2 and one line.

Command-line options and ``[settings]`` / ``[[analysis]]`` values are checked before any work
starts (see README, "The analysis file"), by the constructors of :mod:`metak.spec` that the
command line, the analysis file and the Python API share. Each case runs ``fit`` on the
harness's records (one exact analysis, ``re_pwv_cf``) with one hostile value, and the harness
asserts the exit code, the single stderr line and that nothing was written.
"""

from __future__ import annotations

import pytest

from tests.faults.harness import Case, World, run_case

FIT = ("fit", "--studies", "{studies}", "--provenance", "off", "--quiet")
OUT = ("--out", "{project}/results")
ONE = ("--analysis", "re_pwv_cf")


def _fit(*options: str) -> tuple[str, ...]:
    return (*FIT, *ONE, *options, *OUT)


OPTION_CASES = [
    Case(
        "seed_negative",
        _fit("--seed", "-1"),
        2,
        r"^error: .*argument --seed: must be from 0 to 4,294,967,295, got -1; fix: see",
    ),
    Case(
        "seed_too_large",
        _fit("--seed", "99999999999999999999"),
        2,
        r"argument --seed: must be from 0 to 4,294,967,295, got 99999999999999999999",
    ),
    Case(
        "seed_in_arabic_indic_digits",
        _fit("--seed", "٥"),
        2,
        r"argument --seed: '٥' is not a whole number \(digits 0-9\)",
    ),
    Case("draws_negative_exact", _fit("--draws", "-5"), 2, r"argument --draws: must be from 1"),
    Case(
        "draws_negative_mcmc",
        _fit("--draws", "-5", "--method", "mcmc"),
        2,
        r"argument --draws: must be from 1 to 10,000,000, got -5",
    ),
    Case(
        "tune_negative_mcmc",
        _fit("--tune", "-1", "--method", "mcmc"),
        2,
        r"argument --tune: must be from 1 to 1,000,000, got -1",
    ),
    Case(
        "chains_zero_mcmc",
        _fit("--chains", "0", "--method", "mcmc"),
        2,
        r"argument --chains: must be from 1 to 64, got 0",
    ),
    Case(
        "draws_a_trillion",
        _fit("--draws", "1000000000000"),
        2,
        r"argument --draws: must be from 1 to 10,000,000, got 1000000000000",
    ),
    Case(
        # Within every range, but 640 million exact draws of the whole tree cannot fit in memory:
        # refused before any allocation, with the estimate.
        "draws_beyond_memory",
        _fit("--draws", "10000000", "--chains", "64"),
        2,
        r"^settings: 10,000,000 draws x 64 chains need about [0-9.]+ [GTP]iB of memory for these "
        r"analyses, [0-9.]+ [KMGT]iB is available; fix: lower --draws or --chains",
    ),
    Case("draws_not_a_number", _fit("--draws", "1e3"), 2, r"'1e3' is not a whole number"),
    Case("jobs_zero", _fit("--jobs", "0"), 2, r"argument --jobs: must be from 1 to 256, got 0"),
    Case(
        "method_misspelt",
        _fit("--method", "exakt"),
        2,
        r"argument --method: invalid choice: 'exakt'",
    ),
    Case(
        "unknown_option",
        _fit("--drawz", "5"),
        2,
        r"^error: python -m metak: unrecognized arguments: --drawz 5; fix: see",
    ),
    Case(
        "analysis_not_in_the_file",
        (*FIT, "--analysis", "nope", *OUT),
        2,
        r"^analysis 'nope' is not in the analysis file; fix: use one of re_dpucmgp, re_pwv_cf$",
    ),
]


def _config(text: str):
    def setup(world: World) -> None:
        (world.project / "a.toml").write_text(text, encoding="utf-8")

    return setup


def _with_config(text: str, *options: str) -> dict:
    return {
        "argv": (*FIT, "--config", "{project}/a.toml", *options, *OUT),
        "setup": _config(text),
    }


REGRESSION = """
[[analysis]]
name = "mr"
outcome = "pwv_cf"
model = "meta_regression"
"""
RE = """
[[analysis]]
name = "re"
outcome = "pwv_cf"
"""
NESTED = (
    "[[analysis]]\nname = 're'\noutcome = 'pwv_cf'\nmoderators = " + "[" * 100_000 + "]" * 100_000
)


def _huge_moderator(world: World) -> None:
    path = world.studies / "studies.csv"
    path.write_text(path.read_text(encoding="utf-8").replace(",44\n", ",1e300\n"), encoding="utf-8")


CONFIG_CASES = [
    Case(
        "moderator_listed_twice",
        code=2,
        stderr=r"a\.toml: analysis 'mr': moderators lists 'ablat' twice; fix: list each once$",
        **_with_config(REGRESSION + 'moderators = ["ablat", "ablat"]\n'),
    ),
    Case(
        "center_1e308",
        code=2,
        stderr=r"a\.toml: analysis 'mr'\.center: ablat = 1e\+308 is not allowed; fix: use a finite "
        r"number of magnitude at most 1e\+15$",
        **_with_config(REGRESSION + 'moderators = ["ablat"]\ncenter = {ablat = 1e308}\n'),
    ),
    Case(
        "center_unknown_key",
        code=2,
        stderr=r"analysis 'mr'\.center: unknown key 'dose': not a moderator of this analysis; "
        r"fix: use one of ablat$",
        **_with_config(REGRESSION + 'moderators = ["ablat"]\ncenter = {dose = 3}\n'),
    ),
    Case(
        "prior_scale_underflows",
        code=2,
        stderr=r"analysis 're'\.priors\.tau: prior 'halfnormal\(1e-320\)': sigma must be from "
        r"1e-100 to 1e\+100, got 1e-320",
        **_with_config(RE + '[analysis.priors]\ntau = "halfnormal(1e-320)"\n'),
    ),
    Case(
        "prior_density_overflows",
        code=2,
        stderr=r"prior 'lognormal\(1000, 1\)': it cannot be evaluated in double precision",
        **_with_config(RE + '[analysis.priors]\ntau = "lognormal(1000, 1)"\n'),
    ),
    Case(
        "prior_in_arabic_indic_digits",
        code=2,
        stderr=r"prior 'halfnormal\(١\)': parameter '١' is not a number \(ASCII digits 0-9\)",
        **_with_config(RE + '[analysis.priors]\ntau = "halfnormal(١)"\n'),
    ),
    Case(
        "array_nested_100000_deep",
        code=2,
        stderr=r"a\.toml: arrays or tables nested too deeply; fix: flatten the file$",
        **_with_config(NESTED),
    ),
    Case(
        "name_leading_out_of_the_results",
        code=2,
        stderr=r"a\.toml: analysis 1: name '\.\./\.\./victim' is not allowed; fix: use letters, "
        r"digits, '_', '-' and '\.', starting with a letter or digit, at most 64 characters$",
        **_with_config("[[analysis]]\nname = '../../victim'\noutcome = 'pwv_cf'\n"),
    ),
    Case(
        "name_too_long",
        code=2,
        stderr=r"analysis 1: name 'aaaa+' is not allowed",
        **_with_config(f"[[analysis]]\nname = '{'a' * 65}'\noutcome = 'pwv_cf'\n"),
    ),
    Case(
        "method_misspelt_in_file",
        code=2,
        stderr=r"analysis 're': method 'exakt' is not known; fix: use one of auto, exact, mcmc$",
        **_with_config(RE + "method = 'exakt'\n"),
    ),
    Case(
        "model_misspelt_in_file",
        code=2,
        stderr=r"analysis 'x': model 'random_efects' is not known; fix: use one of random_effects",
        **_with_config("[[analysis]]\nname='x'\noutcome='pwv_cf'\nmodel='random_efects'\n"),
    ),
    Case(
        "settings_draws_negative",
        code=2,
        stderr=r"a\.toml: settings: draws must be a whole number from 1 to 10,000,000, got -5",
        **_with_config("[settings]\ndraws = -5\n" + RE),
    ),
    Case(
        "settings_target_accept_above_one",
        code=2,
        stderr=r"settings: target_accept must be a number in \[0\.5, 1\.0\), got 1\.5$",
        **_with_config("[settings]\ntarget_accept = 1.5\n" + RE),
    ),
    Case(
        "settings_unknown_key",
        code=2,
        stderr=r"\[settings\]: unknown key 'drawz'; fix: allowed: chains, draws, jobs, seed",
        **_with_config("[settings]\ndrawz = 5\n" + RE),
    ),
    Case(
        "moderator_values_of_1e300",
        code=2,
        stderr=r"^analysis 'mr': moderator 'ablat' has values of magnitude 1e\+300; metak needs "
        r"at most 1e\+15; fix: rescale the moderator",
        argv=(*FIT, "--config", "{project}/a.toml", *OUT),
        setup=lambda world: (
            _config(REGRESSION + 'moderators = ["ablat"]\ninclude_excluded = true\n')(world),
            _huge_moderator(world),
        ),
    ),
]


@pytest.mark.parametrize("case", OPTION_CASES, ids=[case.name for case in OPTION_CASES])
def test_command_line_options(case, tmp_path):
    run_case(case, tmp_path)


@pytest.mark.parametrize("case", CONFIG_CASES, ids=[case.name for case in CONFIG_CASES])
def test_analysis_file_values(case, tmp_path):
    run_case(case, tmp_path)


def test_options_through_the_real_entry_point(tmp_path):
    """The same one-line refusal from ``python -m metak`` in a child process."""
    case = next(case for case in OPTION_CASES if case.name == "draws_a_trillion")
    run_case(
        Case(**{**case.__dict__, "name": "draws_a_trillion_child", "subprocess": True}), tmp_path
    )
