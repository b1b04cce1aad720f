"""The analysis file: the documented shape parses, and every mistake is one clear line."""

import pytest

from metak.config import parse_config
from metak.errors import ConfigError

BCG = """
[[analysis]]
name = "bcg"
outcome = "logRR"
model = "meta_regression"
moderators = ["ablat"]
[analysis.priors]
intercept = "normal(0, 10)"
slope = "normal(0, 10)"
tau = "halfnormal(1.0)"
"""


def test_issue_shape_parses():
    parsed = parse_config(BCG)
    specs, settings = parsed.analyses, parsed.settings
    assert parsed.questions == () and parsed.path is None
    (spec,) = specs
    assert spec.name == "bcg" and spec.model == "meta_regression" and spec.moderators == ("ablat",)
    assert str(spec.priors["tau"]) == "halfnormal(1)"
    assert spec.priors["intercept"].family == "normal"
    assert spec.center == {"*": "mean"}
    assert settings.chains >= 1


def test_deficiency_and_settings():
    text = """
[settings]
draws = 500
chains = 2
[[analysis]]
name = "def"
outcome = "pwv_cf"
model = "meta_regression"
deficiency = { reference = 400, levels = [250, 800] }
"""
    parsed = parse_config(text)
    (spec,), settings = parsed.analyses, parsed.settings
    assert spec.deficiency.reference == 400 and spec.deficiency.levels == (250.0, 800.0)
    assert settings.draws == 500


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[[analysis]]\nname='a'\noutcome='x'\nmodel='nope'", "model 'nope' is not known"),
        ("[[analysis]]\nname='a'\noutcome='x'\nmodle='random_effects'", "unknown key 'modle'"),
        ("[[analysis]]\noutcome='x'", "missing key 'name'"),
        ("[[analysis]]\nname='a'\nmodel='random_effects'", "missing key 'outcome'"),
        ("[[analysis]]\nname='a'\noutcome='x'\nmodel='meta_regression'", "needs moderators"),
        ("[[analysis]]\nname='a'\noutcome='x'\n[analysis.priors]\ntau='halfnormal(-1)'", "tau"),
        (
            "[[analysis]]\nname='a'\noutcome='x'\n[analysis.priors]\ntua='halfnormal(1)'",
            "unknown prior 'tua'",
        ),
        ("[[analysis]]\nname='a'\noutcome='x'\n[[analysis]]\nname='a'\noutcome='y'", "used twice"),
        ("[[analysis]]\nname='a'\noutcomes=['x']\nmodel='joint'", "at least two outcomes"),
        (
            "[settings]\ndraws=0\n[[analysis]]\nname='a'\noutcome='x'",
            "draws must be a whole number from 1 to 10,000,000, got 0",
        ),
        ("this is not toml", "not valid TOML"),
        ("", "no [[analysis]] tables"),
    ],
)
def test_config_errors_are_one_line(text, fragment):
    with pytest.raises(ConfigError) as info:
        parse_config(text, "cfg.toml")
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message
    assert message.startswith("cfg.toml")


def test_jobs_setting():
    assert parse_config("[settings]\njobs = 2\n" + BCG).settings.jobs == 2
    assert parse_config(BCG).settings.jobs is None  # default: one worker per core
    with pytest.raises(ConfigError, match=r"jobs must be a whole number from 1 to 256, got 0"):
        parse_config("[settings]\njobs = 0\n" + BCG)


def test_cli_rejects_zero_jobs_in_one_line(tmp_path):
    from tests.conftest import run_metak

    done = run_metak("fit", "--jobs", "0", "--out", tmp_path / "out", timeout=300)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "argument --jobs: must be from 1 to 256, got 0" in lines[0]
    assert not (tmp_path / "out").exists()


QUESTIONS = """
[[analysis]]
name = "re"
outcome = "pwv_cf"

[[analysis]]
name = "def"
outcome = "cac"
model = "meta_regression"
deficiency = { reference = 500, levels = [300, 700] }

[[analysis]]
name = "joint"
model = "joint"
outcomes = ["dpucmgp", "pwv_cf"]
link_biomarker = "dpucmgp"

[[question]]
text = "Does vitamin K change PWV?"
analysis = "re"
parameter = "mu"

[[question]]
text = "Does baseline status matter?"
analysis = "def"
parameter = "p_more_deficient_more_benefit"

[[question]]
text = "Does the marker predict PWV?"
analysis = "joint"
parameter = "gamma_link[pwv_cf]"
benefit = "higher"
"""


def test_questions_parse_in_file_order():
    questions = parse_config(QUESTIONS).questions
    assert [(q.analysis, q.parameter, q.benefit) for q in questions] == [
        ("re", "mu", None),
        ("def", "p_more_deficient_more_benefit", None),
        ("joint", "gamma_link[pwv_cf]", "higher"),
    ]
    assert questions[0].text == "Does vitamin K change PWV?"


_ONE = '[[analysis]]\nname = "re"\noutcome = "pwv_cf"\n'


@pytest.mark.parametrize(
    ("question", "fragment"),
    [
        ('text = "Q?"\nanalysis = "re"\nparameter = "mu"\nwhy = 1', "unknown key 'why'"),
        ('text = "Q?"\nanalysis = "re"', "missing key 'parameter'"),
        ('text = "Q?"\nanalysis = "nope"\nparameter = "mu"', "analysis 'nope' is not in the"),
        (
            'text = "Q?"\nanalysis = "re"\nparameter = "intercept"',
            "parameter 'intercept' is not a parameter of analysis 're' (random_effects); fix: "
            "use one of mu, tau, tau2, I2, theta_new",
        ),
        ('text = "Q?"\nanalysis = "re"\nparameter = "mu"\nbenefit = "down"', "benefit 'down'"),
        ('text = ""\nanalysis = "re"\nparameter = "mu"', "text must be non-empty text"),
        ('text = """a\nb"""\nanalysis = "re"\nparameter = "mu"', "is not one line"),
        ('text = "Q?"\nanalysis = "re"\nparameter = "mu; x"', "not a summary parameter name"),
    ],
)
def test_question_errors_are_one_line(question, fragment):
    with pytest.raises(ConfigError) as info:
        parse_config(_ONE + "[[question]]\n" + question + "\n", "cfg.toml")
    message = str(info.value)
    assert fragment in message and "\n" not in message and message.startswith("cfg.toml: ")
