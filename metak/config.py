"""Read the analysis file (TOML) into analyses, settings and questions.

The analyses are :class:`~metak.spec.AnalysisSpec` objects, the questions the report answers
first :class:`~metak.spec.QuestionSpec` ones.

This module only maps TOML tables onto the spec constructors: which keys exist is taken from the
dataclasses themselves, and every value is checked by the constructors (:mod:`metak.spec`), so
the analysis file and the Python API accept exactly the same things. A mistake is one line:
the file, the analysis, the key, what is wrong and how to fix it.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path

from metak.errors import ConfigError, InputError
from metak.input_files import CONFIG_LIMIT, read_input_file
from metak.spec import (
    NAME_MAX_LENGTH,
    AnalysisSpec,
    DeficiencySpec,
    QuestionSpec,
    Settings,
    check_questions,
    safe_name,
)

__all__ = [
    "DEFAULT_CONFIG_NAME",
    "AnalysisFile",
    "load_config",
    "parse_config",
    "default_specs",
    "resolve_analyses",
    "default_name",
]

DEFAULT_CONFIG_NAME = "analyses.toml"

_ANALYSIS_KEYS = tuple(item.name for item in fields(AnalysisSpec))
_DEFICIENCY_KEYS = tuple(item.name for item in fields(DeficiencySpec))
_QUESTION_KEYS = tuple(item.name for item in fields(QuestionSpec))
_TOP_LEVEL_KEYS = ("analysis", "settings", "question")


@dataclass(frozen=True)
class AnalysisFile:
    """What an analysis file holds.

    The analyses (file order), the run settings, the questions the report answers first
    (``[[question]]``, checked against the analyses) and the file it came from (None for the
    default analyses).
    """

    analyses: tuple[AnalysisSpec, ...]
    settings: Settings
    questions: tuple[QuestionSpec, ...] = ()
    path: Path | None = None


def _fail(where: str, message: str, fix: str | None = None) -> ConfigError:
    return ConfigError(f"{where}: {message}" + (f"; fix: {fix}" if fix else ""))


def _unknown_key(table: dict, allowed: tuple[str, ...], where: str, what: str) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise _fail(
            where, f"unknown {what}{unknown[0]!r}", f"allowed: {', '.join(sorted(allowed))}"
        )


def _deficiency(value: object, where: str) -> DeficiencySpec | None:
    if value is False:
        return None
    if value is True:
        return DeficiencySpec()
    if not isinstance(value, dict):
        raise _fail(where, f"deficiency must be true, false or a table, got {value!r}")
    _unknown_key(value, _DEFICIENCY_KEYS, f"{where}.deficiency", "key ")
    try:
        return DeficiencySpec(**value)
    except ConfigError as err:
        raise ConfigError(f"{where}.{err}") from None


def _analysis(table: object, index: int, source: str) -> AnalysisSpec:
    where = f"{source}: analysis {index + 1}"
    if not isinstance(table, dict):
        raise _fail(where, "[[analysis]] must be a table")
    _unknown_key(table, _ANALYSIS_KEYS, where, "key ")
    if "name" not in table:
        raise _fail(where, "missing key 'name'", 'add name = "..."')
    safe_name(table["name"], where)
    where = f"{source}: analysis {table['name']!r}"
    kwargs = dict(table)
    try:
        kwargs["deficiency"] = _deficiency(
            table.get("deficiency", False), f"analysis {table['name']!r}"
        )
        return AnalysisSpec(**kwargs)
    except ConfigError as err:
        # The constructors name the analysis; the file name is what only this module knows.
        raise ConfigError(f"{source}: {err}") from None


def _settings(table: object, source: str) -> Settings:
    where = f"{source}: [settings]"
    if not isinstance(table, dict):
        raise _fail(where, "[settings] must be a table")
    _unknown_key(table, Settings.keys(), where, "key ")
    try:
        return Settings(**table)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None


def _question(table: object, index: int, source: str) -> QuestionSpec:
    where = f"{source}: question {index + 1}"
    if not isinstance(table, dict):
        raise _fail(where, "[[question]] must be a table")
    _unknown_key(table, _QUESTION_KEYS, where, "key ")
    missing = [key for key in ("text", "analysis", "parameter") if key not in table]
    if missing:
        raise _fail(where, f"missing key {missing[0]!r}", "give text, analysis and parameter")
    try:
        return QuestionSpec(**table)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None


def parse_config(text: str, source: str = "<config>") -> AnalysisFile:
    """Parse analysis-file text into the analyses, the run settings and the questions.

    Parameters
    ----------
    text : str
        The TOML text.
    source : str
        Where it came from, prefixed to every message.

    Returns
    -------
    AnalysisFile
        ``analyses``, ``settings`` and ``questions`` (``path`` is None: see :func:`load_config`).

    Raises
    ------
    ConfigError
        One line naming ``source``, the analysis and the key.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise _fail(source, f"not valid TOML: {err}") from None
    except RecursionError:
        raise _fail(source, "arrays or tables nested too deeply", "flatten the file") from None
    unknown = sorted(set(data) - set(_TOP_LEVEL_KEYS))
    if unknown:
        raise _fail(
            source,
            f"unknown top-level key {unknown[0]!r}",
            "use [[analysis]] and [[question]] tables and one [settings]",
        )
    tables = data.get("analysis", [])
    if not isinstance(tables, list) or not tables:
        raise _fail(
            source,
            "no [[analysis]] tables",
            "add at least one [[analysis]] with name, outcome, model",
        )
    specs = [_analysis(table, i, source) for i, table in enumerate(tables)]
    names = [spec.name for spec in specs]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise _fail(
            source,
            f"analysis name {duplicated[0]!r} is used twice",
            "give every analysis its own name",
        )
    settings = _settings(data.get("settings", {}), source)
    tables = data.get("question", [])
    if not isinstance(tables, list):
        raise _fail(source, "question must be [[question]] tables")
    questions = [_question(table, i, source) for i, table in enumerate(tables)]
    try:
        questions = check_questions(questions, specs)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    return AnalysisFile(tuple(specs), settings, questions)


def load_config(path: Path) -> AnalysisFile:
    """Read and parse an analysis file (see :func:`parse_config`)."""
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
    parsed = parse_config(text, str(path))
    return AnalysisFile(parsed.analyses, parsed.settings, parsed.questions, path)


def default_name(outcome: str) -> str:
    """The name of the default random-effects analysis of ``outcome``: ``re_<outcome>``.

    Outcome ids are free text, and an analysis name becomes a file name: characters outside the
    safe set are replaced by ``_`` and, when anything was replaced or cut, a short hash of the
    outcome id is appended so two outcomes never share a name.
    """
    slug = re.sub(r"[^A-Za-z0-9_.\-]", "_", outcome)
    name = f"re_{slug}"
    if name != f"re_{outcome}" or len(name) > NAME_MAX_LENGTH:
        digest = hashlib.sha256(outcome.encode("utf-8")).hexdigest()[:8]
        name = f"{name[: NAME_MAX_LENGTH - 9]}_{digest}"
    return safe_name(name)


def default_specs(outcomes: Iterable[str]) -> list[AnalysisSpec]:
    """One random-effects analysis per outcome: used when a directory has no analysis file."""
    return [
        AnalysisSpec(name=default_name(outcome), model="random_effects", outcome=outcome)
        for outcome in outcomes
    ]


def resolve_analyses(
    studies_dir: Path, config_path: Path | None, outcomes: Iterable[str]
) -> AnalysisFile:
    """The analyses to run: ``config_path``, else ``<studies>/analyses.toml``, else RE per outcome.

    Returns
    -------
    AnalysisFile
        With ``path`` the analysis file used, or None for the default analyses (no questions:
        the report then asks one per analysis).
    """
    if config_path is None and (Path(studies_dir) / DEFAULT_CONFIG_NAME).is_file():
        config_path = Path(studies_dir) / DEFAULT_CONFIG_NAME
    if config_path is None:
        return AnalysisFile(tuple(default_specs(outcomes)), Settings())
    return load_config(Path(config_path))
