"""Read the analysis file (TOML) into :class:`~metak.spec.AnalysisSpec` objects.

Every key is checked here, once; an unknown key or bad value is a one-line :class:`ConfigError`
naming the file, the analysis and the key. The keys are documented in README.md.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from metak.errors import ConfigError
from metak.spec import (
    DEFICIENCY_MODERATOR,
    METHODS,
    MODEL_KINDS,
    AnalysisSpec,
    DeficiencySpec,
    Settings,
)

__all__ = ["load_config", "parse_config", "default_specs"]

_ANALYSIS_KEYS = {
    "name",
    "outcome",
    "outcomes",
    "model",
    "moderators",
    "priors",
    "method",
    "measure",
    "designs",
    "include_excluded",
    "center",
    "deficiency",
    "link_biomarker",
    "prepost_r_uncertain",
    "claims",
}
_DEFICIENCY_KEYS = {"reference", "levels", "impute", "marker_outcome", "group_column"}
_SETTINGS_KEYS = {"draws", "tune", "chains", "seed", "target_accept", "jobs"}
_MEASURES = ("MD", "SMD", "ROM")
# Prior keys every model understands; slopes may also be given per moderator name.
_PRIOR_KEYS = {"mu", "intercept", "slope", "tau", "nu", "r", "moderator_sd"}


def _fail(where: str, message: str, fix: str | None = None) -> ConfigError:
    text = f"{where}: {message}"
    if fix:
        text += f"; fix: {fix}"
    return ConfigError(text)


def _expect(value, kind, where: str, what: str):
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise _fail(where, f"{what} must be {_kind_name(kind)}, got {value!r}")
    return value


def _kind_name(kind) -> str:
    names = {str: "text", bool: "true or false", int: "an integer", list: "a list", dict: "a table"}
    if isinstance(kind, tuple):
        return " or ".join(names.get(k, k.__name__) for k in kind)
    return names.get(kind, kind.__name__)


def _text_list(value, where: str, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    _expect(value, list, where, key)
    for item in value:
        _expect(item, str, where, f"each entry of {key}")
    return tuple(value)


def _parse_priors(table, where: str) -> dict:
    from metak.priors import parse_prior

    _expect(table, dict, where, "priors")
    priors = {}
    for key, text in table.items():
        _expect(text, str, f"{where}.priors", key)
        try:
            priors[key] = parse_prior(text)
        except ConfigError as err:
            raise _fail(f"{where}.priors.{key}", str(err)) from None
    return priors


def _parse_center(value, where: str) -> dict:
    if isinstance(value, str):
        if value not in ("mean", "none"):
            raise _fail(where, f"center {value!r} is not allowed", 'use "mean", "none" or a table')
        return {"*": value}
    if isinstance(value, bool):
        return {"*": "mean" if value else "none"}
    _expect(value, dict, where, "center")
    out = {}
    for key, item in value.items():
        if isinstance(item, (int, float)) and not isinstance(item, bool):
            out[key] = float(item)
        elif item in ("mean", "none"):
            out[key] = item
        else:
            raise _fail(
                f"{where}.center",
                f"{key} = {item!r} is not allowed",
                'use "mean", "none" or a number',
            )
    return out


def _parse_deficiency(value, where: str) -> DeficiencySpec | None:
    if value is False:
        return None
    if value is True:
        return DeficiencySpec()
    _expect(value, dict, where, "deficiency")
    unknown = set(value) - _DEFICIENCY_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise _fail(
            f"{where}.deficiency",
            f"unknown key {key!r}",
            f"allowed: {', '.join(sorted(_DEFICIENCY_KEYS))}",
        )
    kwargs = {}
    if "reference" in value:
        kwargs["reference"] = _positive(value["reference"], f"{where}.deficiency", "reference")
    if "levels" in value:
        levels = _expect(value["levels"], list, f"{where}.deficiency", "levels")
        kwargs["levels"] = tuple(_positive(v, f"{where}.deficiency", "levels") for v in levels)
    if "impute" in value:
        kwargs["impute"] = _expect(value["impute"], bool, f"{where}.deficiency", "impute")
    for key in ("marker_outcome", "group_column"):
        if key in value:
            kwargs[key] = _expect(value[key], str, f"{where}.deficiency", key)
    return DeficiencySpec(**kwargs)


def _positive(value, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise _fail(where, f"{key} must be a positive number, got {value!r}")
    return float(value)


def _parse_analysis(table, index: int, source: str) -> AnalysisSpec:
    where = f"{source}: analysis {index + 1}"
    _expect(table, dict, where, "[[analysis]]")
    unknown = set(table) - _ANALYSIS_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise _fail(
            where, f"unknown key {key!r}", f"allowed keys: {', '.join(sorted(_ANALYSIS_KEYS))}"
        )
    if "name" not in table:
        raise _fail(where, "missing key 'name'", 'add name = "..."')
    name = _expect(table["name"], str, where, "name")
    if not name or name != name.strip() or "/" in name:
        raise _fail(where, f"name {name!r} must be non-empty, without spaces around it or '/'")
    where = f"{source}: analysis {name!r}"
    model = _expect(table.get("model", "random_effects"), str, where, "model")
    if model not in MODEL_KINDS:
        raise _fail(where, f"model {model!r} is not known", f"use one of {', '.join(MODEL_KINDS)}")
    method = _expect(table.get("method", "auto"), str, where, "method")
    if method not in METHODS:
        raise _fail(where, f"method {method!r} is not known", f"use one of {', '.join(METHODS)}")
    outcome = table.get("outcome")
    outcomes = _text_list(table["outcomes"], where, "outcomes") if "outcomes" in table else ()
    if model == "joint":
        if len(outcomes) < 2:
            raise _fail(where, "a joint model needs outcomes = [...] with at least two outcomes")
        if outcome is not None:
            raise _fail(where, "a joint model takes 'outcomes', not 'outcome'")
    else:
        if outcome is None:
            raise _fail(
                where, "missing key 'outcome'", 'add outcome = "<an outcome in the study records>"'
            )
        _expect(outcome, str, where, "outcome")
        if outcomes:
            raise _fail(where, "'outcomes' is only for model = \"joint\"")
    moderators = _text_list(table.get("moderators", []), where, "moderators")
    deficiency = _parse_deficiency(table.get("deficiency", False), where)
    if model == "meta_regression" and not moderators and deficiency is None:
        raise _fail(where, "meta_regression needs moderators = [...] or deficiency = true")
    if model in ("random_effects", "robust") and (moderators or deficiency):
        raise _fail(where, f"model {model!r} takes no moderators", 'use model = "meta_regression"')
    measure = table.get("measure")
    if measure is not None and measure not in _MEASURES:
        raise _fail(
            where, f"measure {measure!r} is not allowed", f"use one of {', '.join(_MEASURES)}"
        )
    priors = _parse_priors(table.get("priors", {}), where)
    for key in priors:
        deficiency_key = deficiency is not None and key == DEFICIENCY_MODERATOR
        if key not in _PRIOR_KEYS and key not in moderators and not deficiency_key:
            raise _fail(
                f"{where}.priors",
                f"unknown prior {key!r}",
                f"use {', '.join(sorted(_PRIOR_KEYS))}, a moderator name or {DEFICIENCY_MODERATOR} (deficiency analyses)",
            )
    designs = _text_list(table["designs"], where, "designs") if "designs" in table else None
    link = table.get("link_biomarker")
    if link is not None:
        _expect(link, str, where, "link_biomarker")
        if model != "joint" or link not in outcomes:
            raise _fail(where, "link_biomarker must name one of the joint model's outcomes")
    return AnalysisSpec(
        name=name,
        model=model,
        outcome=outcome,
        outcomes=outcomes,
        moderators=moderators,
        priors=priors,
        method=method,
        measure=measure,
        designs=designs,
        include_excluded=_expect(
            table.get("include_excluded", False), bool, where, "include_excluded"
        ),
        center=_parse_center(table.get("center", "mean"), where),
        deficiency=deficiency,
        link_biomarker=link,
        prepost_r_uncertain=_expect(
            table.get("prepost_r_uncertain", True), bool, where, "prepost_r_uncertain"
        ),
        claims=_expect(table.get("claims", True), bool, where, "claims"),
    )


def _parse_settings(table, source: str) -> Settings:
    where = f"{source}: [settings]"
    _expect(table, dict, where, "[settings]")
    unknown = set(table) - _SETTINGS_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise _fail(where, f"unknown key {key!r}", f"allowed: {', '.join(sorted(_SETTINGS_KEYS))}")
    kwargs = {}
    for key in ("draws", "tune", "chains", "seed", "jobs"):
        if key in table:
            value = _expect(table[key], int, where, key)
            if value < (0 if key == "seed" else 1):
                raise _fail(where, f"{key} must be positive, got {value}")
            kwargs[key] = value
    if "target_accept" in table:
        value = table["target_accept"]
        if isinstance(value, bool) or not isinstance(value, float) or not 0.5 <= value < 1:
            raise _fail(where, f"target_accept must be a number in [0.5, 1), got {value!r}")
        kwargs["target_accept"] = value
    return Settings(**kwargs)


def parse_config(text: str, source: str = "<config>") -> tuple[list[AnalysisSpec], Settings]:
    """Parse analysis-file text; return the analyses and the run settings."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise _fail(source, f"not valid TOML: {err}") from None
    unknown = set(data) - {"analysis", "settings"}
    if unknown:
        key = sorted(unknown)[0]
        raise _fail(
            source, f"unknown top-level key {key!r}", "use [[analysis]] tables and one [settings]"
        )
    tables = data.get("analysis", [])
    if not isinstance(tables, list) or not tables:
        raise _fail(
            source,
            "no [[analysis]] tables",
            "add at least one [[analysis]] with name, outcome, model",
        )
    specs = [_parse_analysis(table, i, source) for i, table in enumerate(tables)]
    names = [spec.name for spec in specs]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise _fail(
            source,
            f"analysis name {duplicated[0]!r} is used twice",
            "give every analysis its own name",
        )
    settings = _parse_settings(data.get("settings", {}), source)
    return specs, settings


def load_config(path: Path) -> tuple[list[AnalysisSpec], Settings]:
    """Read and parse an analysis file."""
    from metak.errors import InputError
    from metak.input_files import CONFIG_LIMIT, read_input_file

    path = Path(path)
    try:
        # A regular file of at most CONFIG_LIMIT bytes; a FIFO or /dev/zero is refused unread.
        raw = read_input_file(
            path, CONFIG_LIMIT, what="analysis file", missing_fix="check the --config path"
        )
    except InputError as err:
        raise ConfigError(str(err)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _fail(str(path), f"not UTF-8 (byte {err.start})", "save the file as UTF-8") from None
    return parse_config(text, str(path))


def default_specs(outcomes) -> list[AnalysisSpec]:
    """One random-effects analysis per outcome: used when a directory has no analysis file."""
    return [
        AnalysisSpec(name=f"re_{outcome}", model="random_effects", outcome=outcome)
        for outcome in outcomes
    ]
