"""The Python API accepts exactly what the analysis file and command line accept.

``metak.fit`` goes through the same orchestrator and the same constructors as ``python -m metak
fit``: a misspelt model, an unknown analysis name or method, bad settings are one-line
``ConfigError``s with the messages the analysis file gives, and what ``load_analyses`` returns
can be passed straight back in.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import metak
from metak.config import parse_config
from metak.errors import ConfigError
from metak.spec import AnalysisSpec, DeficiencySpec, QuestionSpec, Settings

BASE = Path(__file__).parent / "data" / "records_base"


@pytest.fixture(scope="module")
def records():
    return metak.load_studies(BASE, provenance="off")


def _spec(**changes):
    return AnalysisSpec(**{"name": "re", "outcome": "pwv_cf", **changes})


def test_unknown_analysis_name(records):
    with pytest.raises(
        ConfigError, match=r"^analysis 'nope' is not in the analysis file; fix: use one of re$"
    ):
        metak.fit(records, config=[_spec()], analyses=["nope"])


def test_unknown_method(records):
    with pytest.raises(
        ConfigError, match=r"^method 'exakt' is not known; fix: use one of auto, exact, mcmc$"
    ):
        metak.fit(records, config=[_spec()], method="exakt")


def test_settings_overrides_are_checked(records):
    with pytest.raises(
        ConfigError, match=r"draws must be a whole number from 1 to 10,000,000, got -5"
    ):
        metak.fit(records, config=[_spec()], draws=-5)
    with pytest.raises(
        ConfigError, match=r"seed must be a whole number from 0 to 4,294,967,295, got -1"
    ):
        metak.fit(records, config=[_spec()], seed=-1)


def test_config_of_the_wrong_kind(records):
    with pytest.raises(
        ConfigError, match=r"config must be an analysis-file path, a list of AnalysisSpec"
    ):
        metak.fit(records, config=42)
    with pytest.raises(ConfigError, match=r"analyses must be AnalysisSpec objects, got 're'"):
        metak.fit(records, config=["re"])


def test_what_load_analyses_returns_is_accepted(records, tmp_path):
    path = tmp_path / "a.toml"
    path.write_text(
        '[settings]\nseed = 7\n[[analysis]]\nname = "re"\noutcome = "pwv_cf"\n', encoding="utf-8"
    )
    result = metak.fit(records, config=metak.load_analyses(path))
    assert list(result.analyses) == ["re", "re_pet", "re_peese"]  # + the bias checks
    assert result.datatree("re").attrs["metak_seed"] == 7  # the file's seed, not a default
    again = metak.fit(records, config=path)
    assert result.summary.equals(again.summary)


# (keyword changes to a valid spec, the TOML lines giving the same mistake, the message)
SAME_MISTAKES = [
    ({"model": "random_efects"}, "model = 'random_efects'", "model 'random_efects' is not known"),
    ({"method": "exakt"}, "method = 'exakt'", "method 'exakt' is not known"),
    ({"measure": "OR"}, "measure = 'OR'", "measure 'OR' is not allowed"),
    (
        {"model": "meta_regression", "moderators": ("ablat", "ablat")},
        "model = 'meta_regression'\nmoderators = ['ablat', 'ablat']",
        "moderators lists 'ablat' twice",
    ),
    (
        {"moderators": ("ablat",)},
        "moderators = ['ablat']",
        "model 'random_effects' takes no moderators",
    ),
    (
        {"priors": {"tua": "halfnormal(1)"}},
        "priors = {tua = 'halfnormal(1)'}",
        "unknown prior 'tua'",
    ),
    (
        {"priors": {"tau": "halfnormal(1e-320)"}},
        "priors = {tau = 'halfnormal(1e-320)'}",
        "sigma must be from 1e-100 to 1e+100",
    ),
    ({"center": {"x": 1.0}}, "center = {x = 1.0}", "unknown key 'x': not a moderator"),
    ({"claims": "yes"}, "claims = 'yes'", "claims must be true or false"),
]


@pytest.mark.parametrize(("changes", "toml", "fragment"), SAME_MISTAKES)
def test_api_and_analysis_file_give_the_same_message(changes, toml, fragment):
    with pytest.raises(ConfigError) as from_api:
        _spec(**changes)
    text = f"[[analysis]]\nname = 're'\noutcome = 'pwv_cf'\n{toml}\n"
    with pytest.raises(ConfigError) as from_file:
        parse_config(text, "cfg.toml")
    assert fragment in str(from_api.value)
    assert str(from_file.value) == f"cfg.toml: {from_api.value}"


def test_deficiency_and_settings_are_checked_when_built():
    with pytest.raises(
        ConfigError, match=r"deficiency: reference must be a positive number, got -1"
    ):
        DeficiencySpec(reference=-1)
    with pytest.raises(
        ConfigError, match=r"settings: chains must be a whole number from 1 to 64, got 0"
    ):
        Settings(chains=0)
    with pytest.raises(ConfigError, match=r"name '\.\./x' is not allowed"):
        AnalysisSpec(name="../x", outcome="y")


def test_questions_from_python_and_file_give_the_same_message(records):
    """A question on an analysis that does not exist: the same words from metak.fit and from
    the analysis file (which adds its name)."""
    question = QuestionSpec(text="Q?", analysis="nope", parameter="mu")
    with pytest.raises(ConfigError) as from_api:
        metak.fit(records, config=[_spec()], questions=[question])
    text = (
        "[[analysis]]\nname = 're'\noutcome = 'pwv_cf'\n"
        "[[question]]\ntext = 'Q?'\nanalysis = 'nope'\nparameter = 'mu'\n"
    )
    with pytest.raises(ConfigError) as from_file:
        parse_config(text, "cfg.toml")
    assert "analysis 'nope' is not in the analysis file" in str(from_api.value)
    assert str(from_file.value) == f"cfg.toml: {from_api.value}"
    with pytest.raises(ConfigError, match=r"benefit 'up' is not allowed"):
        QuestionSpec(text="Q?", analysis="re", parameter="mu", benefit="up")


def test_questions_reach_the_fit_result(records, tmp_path):
    path = tmp_path / "a.toml"
    path.write_text(
        '[[analysis]]\nname = "re"\noutcome = "pwv_cf"\n'
        '[[question]]\ntext = "Does it work?"\nanalysis = "re"\nparameter = "mu"\n',
        encoding="utf-8",
    )
    result = metak.fit(records, config=metak.load_analyses(path))
    assert result.questions == (QuestionSpec("Does it work?", "re", "mu"),)
    again = metak.fit(records, config=path, questions=[])
    assert again.questions == ()
