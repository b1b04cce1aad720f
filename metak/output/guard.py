"""Where metak may write: the ``--out`` rule and the containment of every written path.

``fit --out DIR`` replaces DIR whole, so DIR must be something metak may throw away: a folder
that does not exist yet, an empty folder, or a metak results directory holding nothing but what
metak wrote (:mod:`metak.output.integrity`). Anything else is refused before any work is done:
a file, a symbolic link, a folder with other content, the studies folder or a folder holding it
or the analysis file, the current folder or one holding it, the home folder or the filesystem
root. ``report --out DIR`` only adds ``report.html``, so it needs DIR to be a metak results
directory. ``effects --out FILE`` never overwrites an input and replaces only an effects file
metak wrote.

Inside a results directory every path is built by :class:`ResultPaths`, which proves that it
stays inside (an analysis named ``../../x`` must not write ``../../x.nc``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from metak.errors import ConfigError, ResultsError
from metak.output.integrity import (
    MANIFEST,
    POSTERIOR,
    foreign_entries,
    read_manifest,
)

__all__ = [
    "UnsafePathError",
    "ResultPaths",
    "check_out_dir",
    "check_effects_out",
    "contained",
]

_SHOWN = 3  # names listed in a message before "…"


class UnsafePathError(ConfigError):
    """A path metak was about to write lies outside the folder it writes into."""


def _real(path: Path | str) -> Path:
    """The path with every link followed; a link loop stays as far as it resolves.

    ``os.path.realpath`` rather than ``Path.resolve``: the latter raises on a link loop, and a
    user's looping link must be an error message, not a traceback.
    """
    return Path(os.path.realpath(path))


def contained(root: Path, path: Path) -> Path:
    """``path``, after proving that it resolves to a place strictly inside ``root``.

    Symbolic links and ``..`` are resolved first, so neither can lead out.

    Raises
    ------
    UnsafePathError
        Naming ``path`` when it resolves outside ``root`` (or to ``root`` itself).
    """
    real_root = _real(root)
    real = _real(path)
    if real == real_root or not real.is_relative_to(real_root):
        raise UnsafePathError(
            f"error: {path}: resolves to {real}, outside the results folder {real_root}; "
            f"refusing to write it; fix: use plain analysis names (letters, digits, _ and -)"
        )
    return Path(path)


def _plain(name: str) -> bool:
    return bool(name) and name not in (".", "..") and not any(c in name for c in "/\\\0")


class ResultPaths:
    """The paths of one results (staging) folder, each checked by :func:`contained`.

    ``written`` collects the relative POSIX path of every file handed out (for the manifest's
    file list), in order.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.written: list[str] = []

    def file(self, name: str) -> Path:
        """``root/name`` for a top-level file such as ``summary.csv``."""
        if not _plain(name):
            raise UnsafePathError(
                f"error: {name!r}: not a plain file name; refusing to write it into {self.root}"
            )
        return self._hand_out(name)

    def posterior(self, analysis: str) -> Path:
        """``root/posterior/<analysis>.nc``, creating ``posterior/``."""
        if not _plain(str(analysis)):
            raise UnsafePathError(
                f"error: analysis name {analysis!r} would put its posterior file outside "
                f"{self.root / POSTERIOR}; refusing to write it; fix: rename the analysis "
                f"(letters, digits, _ and -)"
            )
        folder = contained(self.root, self.root / POSTERIOR)
        folder.mkdir(exist_ok=True)
        return self._hand_out(f"{POSTERIOR}/{analysis}.nc")

    def _hand_out(self, relative: str) -> Path:
        path = contained(self.root, self.root / relative)
        if relative != MANIFEST:
            self.written.append(relative)
        return path


def _show(path: Path) -> str:
    """The path as given, with where it really is when that differs."""
    real = Path(os.path.abspath(path))
    return str(path) if str(path) == str(real) else f"{path} ({real})"


def _given(option: str, path: Path, shown: bool = False) -> str:
    """``--out PATH`` for the command line, ``out_dir='PATH'`` for the Python API."""
    text = _show(path) if shown else str(path)
    return f"{option} {text}" if option.startswith("-") else f"{option}={text!r}"


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (", …" if len(names) > _SHOWN else "")


def _fresh(parent: Path) -> Path:
    """A suggestion for ``--out``: a name in ``parent`` that does not exist yet."""
    candidates = ["results", "metak-results"] + [f"metak-results-{i}" for i in range(2, 10)]
    for name in candidates:
        if not os.path.lexists(parent / name):
            return parent / name
    return parent / "metak-results-new"


def _home() -> Path | None:
    """The home folder, or None where there is none (no HOME and no passwd entry)."""
    try:
        return _real(Path.home())
    except (RuntimeError, KeyError):
        return None


def _under(inner: Path, outer: Path) -> bool:
    return inner == outer or inner.is_relative_to(outer)


def _location_problem(real: Path, inputs: Iterable[Path]) -> tuple[str, Path] | None:
    """Why replacing ``real`` would destroy something that is not results, and a suggestion."""
    home = _home()
    if real == Path(real.anchor):
        return "is the filesystem root", (home or Path.cwd()) / "metak-results"
    if home is not None and _under(home, real):
        what = "is your home folder" if real == home else f"holds your home folder {home}"
        return what, _fresh(home)
    cwd = _real(Path.cwd())
    if _under(cwd, real):
        what = "is the current folder" if real == cwd else f"holds the current folder {cwd}"
        return what, _fresh(cwd)
    for given in inputs:
        if given is None or not os.path.lexists(given):
            continue
        item = _real(given)
        kind = "studies folder" if item.is_dir() else "analysis file"
        if item == real:
            return f"is the {kind}", _fresh(real.parent)
        if item.is_relative_to(real):
            return f"holds the {kind} {given}", _fresh(real)
    return None


def check_out_dir(
    out: Path, *, command: str = "fit", inputs: Iterable[Path | None] = (), option: str = "--out"
) -> None:
    """Refuse an output folder metak must not write (the ``--out`` rule, module docstring).

    Parameters
    ----------
    out : Path
        The folder as the user gave it.
    command : {"fit", "report"}
        ``"fit"`` replaces ``out`` whole; ``"report"`` only writes ``report.html`` into it, so
        ``out`` must be a metak results directory (its files are checked by
        :func:`metak.output.integrity.verify_results`).
    inputs : iterable of Path
        The studies folder and the analysis file: never replaced, nor any folder holding them.
    option : str
        How the folder is named in messages: ``--out``, or an argument of the Python API
        (``out_dir``, shown as ``out_dir='...'``).

    Raises
    ------
    ConfigError
        (``fit``) One line saying why and which folder to use instead.
    ResultsError
        (``report``) When ``out`` is not a metak results directory.
    """
    out = Path(out)
    where = _given(option, out, shown=True)
    if command == "report":
        if not out.is_dir():
            what = "no such folder" if not os.path.lexists(out) else "not a folder"
            raise ResultsError(
                f"error: {where}: {what}; fix: give the results folder of `python -m metak fit`"
            )
        if read_manifest(out) is None:
            missing = not os.path.lexists(out / MANIFEST)
            why = "no manifest.json" if missing else "its manifest.json is not metak's"
            raise ResultsError(
                f"error: {where}: not a metak results directory ({why}); fix: give the folder "
                f"`python -m metak fit --out` wrote"
            )
        return
    if command != "fit":
        raise ValueError(f"unknown command {command!r}")

    def refuse(what: str, suggestion: Path) -> ConfigError:
        instead = _given(option, suggestion)
        return ConfigError(
            f"error: {where}: {what}; fix: choose a new or empty folder, e.g. {instead}"
        )

    if out.is_symlink():
        raise refuse(
            "is a symbolic link; metak replaces the results folder whole and does not write "
            "through links",
            _fresh(Path(os.path.abspath(out)).parent),
        )
    if os.path.lexists(out) and not out.is_dir():
        raise refuse("is a file, not a folder", _fresh(Path(os.path.abspath(out)).parent))
    real = _real(out)
    problem = _location_problem(real, inputs)
    if problem is not None:
        raise refuse(problem[0] + "; metak would replace it whole", problem[1])
    if not out.exists():
        return
    entries = sorted(entry.name + ("/" if entry.is_dir() else "") for entry in out.iterdir())
    if not entries:
        return
    manifest = read_manifest(out)
    if manifest is None:
        raise refuse(
            f"a folder with other content ({_names(entries)}) is not a metak results directory",
            _fresh(real),
        )
    foreign = foreign_entries(out, manifest)
    if foreign:
        raise ConfigError(
            f"error: {where}: holds {_names(foreign)}, which metak did not write, so it will not "
            f"replace this results folder; fix: move {'it' if len(foreign) == 1 else 'them'} "
            f"out of {real}, or choose another folder, e.g. {_given(option, _fresh(real.parent))}"
        )


def _first_line(path: Path, limit: int) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(limit).split(b"\n", 1)[0].rstrip(b"\r")


def check_effects_out(out: Path, *, inputs: Iterable[Path], header: str) -> None:
    """Refuse an ``effects --out FILE`` that would overwrite anything but metak's effects CSV.

    Parameters
    ----------
    out : Path
        The file as the user gave it.
    inputs : iterable of Path
        Folders (every file directly inside is an input) and files that are inputs.
    header : str
        The exact first line of the effects CSV metak writes.

    Raises
    ------
    ConfigError
        When ``out`` is an input (the same file, through links too), a folder, a link, not a
        regular file, or an existing file whose first line is not ``header``.
    """
    out = Path(out)
    where = f"--out {_show(out)}"
    suggestion = _fresh_file(Path(os.path.abspath(out)).parent)
    if not os.path.lexists(out):
        return
    if out.exists():
        for given in inputs:
            given = Path(given)
            files = sorted(given.iterdir()) if given.is_dir() else [given]
            for item in files:
                if item.is_file() and os.path.samefile(out, item):
                    raise ConfigError(
                        f"error: {where}: is the input file {item}; metak never overwrites its "
                        f"inputs; fix: write the effects to a new file, e.g. --out {suggestion}"
                    )
    if out.is_symlink():
        what = "is a symbolic link"
    elif out.is_dir():
        what = "is a folder"
    elif not out.is_file():
        what = "is not a regular file"
    elif _first_line(out, len(header) + 2) != header.encode("utf-8"):
        what = "exists and is not an effects file metak wrote (its first line is not its header)"
    else:
        return
    raise ConfigError(
        f"error: {where}: {what}; fix: choose a new file, e.g. --out {suggestion}, or move it away"
    )


def _fresh_file(parent: Path) -> Path:
    for name in ["effects.csv"] + [f"effects-{i}.csv" for i in range(2, 10)]:
        if not os.path.lexists(parent / name):
            return parent / name
    return parent / "effects-new.csv"
