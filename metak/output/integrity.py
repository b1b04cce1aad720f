"""What makes a folder a metak results directory, and whether its files are still as written.

``fit`` writes ``manifest.json`` with a marker and the SHA-256 of every file it wrote::

    "metak_results": {"format": 1},
    "files": {"summary.csv": "<sha256>", "posterior/bcg.nc": "<sha256>", ...}

Listed are all CSVs, ``analyses.json``, ``summary.md``, ``README.md`` and ``posterior/*.nc``;
not ``manifest.json`` itself and not ``report.html``, which ``report`` rewrites. The ``--out``
rule (:mod:`metak.output.guard`) uses this to recognise a folder it may replace, and ``report``
(:func:`verify_results`) to refuse results that changed since ``fit`` wrote them.

Results written before the marker existed (``manifest.json`` with ``versions.metak``, no
``files``) are recognised by their file names only (:data:`LEGACY_NAMES`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from metak.errors import ResultsError
from metak.output.files import sha256_of

__all__ = [
    "MARKER_KEY",
    "FORMAT",
    "FILES_KEY",
    "MANIFEST",
    "REPORT",
    "README",
    "POSTERIOR",
    "LEGACY_NAMES",
    "ResultsManifest",
    "FileProblem",
    "Verification",
    "listed_name_ok",
    "read_manifest",
    "foreign_entries",
    "seal_manifest",
    "verify_results",
]

MARKER_KEY = "metak_results"
FORMAT = 1
FILES_KEY = "files"
MANIFEST = "manifest.json"
REPORT = "report.html"
README = "README.md"
POSTERIOR = "posterior"
# Everything the metak before the marker wrote at the top of a results directory.
LEGACY_NAMES = frozenset(
    {
        "summary.csv",
        "summary.md",
        "study_effects.csv",
        "effects.csv",
        "unusable.csv",
        "claims.csv",
        "analyses.json",
        MANIFEST,
        REPORT,
        README,
    }
)
_SHA256 = re.compile(r"[0-9a-f]{64}")
_ALLOW = "pass --allow-modified to build the report anyway"
_FIX = f"run `python -m metak fit` again, or {_ALLOW}"


@dataclass(frozen=True)
class ResultsManifest:
    """The part of ``manifest.json`` that says what the folder is.

    ``files`` maps each file ``fit`` wrote (a POSIX path relative to the folder) to its SHA-256;
    it is empty for results of the metak before the marker (``legacy``).
    """

    files: dict[str, str]
    legacy: bool = False


@dataclass(frozen=True)
class FileProblem:
    """A file of a results directory that is not as ``fit`` wrote it."""

    path: str  # relative to the results directory, POSIX
    kind: str  # missing | changed | unreadable | not a file | link | added | unverifiable
    what: str  # the words of the error message


def listed_name_ok(name: str) -> bool:
    """Whether ``name`` is a path ``fit`` can have written: ``NAME`` or ``posterior/NAME.nc``."""
    if not isinstance(name, str) or "\\" in name or "\0" in name:
        return False
    parts = PurePosixPath(name).parts
    if str(PurePosixPath(*parts)) != name or any(p in ("", ".", "..") for p in parts):
        return False
    if len(parts) == 1:
        return name not in (MANIFEST, REPORT, POSTERIOR)
    return len(parts) == 2 and parts[0] == POSTERIOR and parts[1].endswith(".nc")


def read_manifest(directory: Path) -> ResultsManifest | None:
    """The manifest of a metak results directory; None when ``directory`` holds none.

    None also when ``manifest.json`` is unreadable, not JSON, or not metak's: without the
    marker and without ``versions.metak``, or with a file list naming a path ``fit`` never
    writes.
    """
    try:
        raw = json.loads((Path(directory) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(raw, dict):
        return None
    marker = raw.get(MARKER_KEY)
    if isinstance(marker, dict) and marker.get("format") == FORMAT:
        files = raw.get(FILES_KEY)
        if not isinstance(files, dict):
            return None
        if not all(listed_name_ok(k) and _SHA256.fullmatch(str(v)) for k, v in files.items()):
            return None
        return ResultsManifest(dict(files))
    versions = raw.get("versions")
    if marker is None and isinstance(versions, dict) and "metak" in versions:
        return ResultsManifest({}, legacy=True)
    return None


def _is_regular(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def foreign_entries(directory: Path, manifest: ResultsManifest) -> list[str]:
    """Entries of ``directory`` that ``fit`` did not write, sorted; folders end in ``/``.

    Allowed are the listed files, ``manifest.json``, ``report.html``, ``README.md`` and a
    ``posterior/`` folder holding only listed ``.nc`` files (any ``.nc`` for legacy results);
    each must be a regular file (not a link), ``posterior`` a real folder.
    """
    directory = Path(directory)
    if manifest.legacy:
        top = set(LEGACY_NAMES)
    else:
        top = {name for name in manifest.files if "/" not in name} | {MANIFEST, REPORT, README}
    foreign = []
    for entry in sorted(directory.iterdir()):
        if entry.name == POSTERIOR and entry.is_dir() and not entry.is_symlink():
            for inner in sorted(entry.iterdir()):
                name = f"{POSTERIOR}/{inner.name}"
                listed = inner.suffix == ".nc" if manifest.legacy else name in manifest.files
                if not (listed and _is_regular(inner)):
                    foreign.append(name + ("/" if inner.is_dir() else ""))
        elif not (entry.name in top and _is_regular(entry)):
            foreign.append(entry.name + ("/" if entry.is_dir() else ""))
    return foreign


def seal_manifest(
    manifest: Mapping[str, Any], root: Path, written: Iterable[str]
) -> dict[str, Any]:
    """``manifest`` with the marker first and the SHA-256 of each ``written`` file last.

    Parameters
    ----------
    manifest : mapping
        What the run records (command, settings, versions, ...).
    root : Path
        The folder the files were written into.
    written : iterable of str
        The files, as POSIX paths relative to ``root`` (not ``manifest.json``, not
        ``report.html``).

    Returns
    -------
    dict
        A new dict (``manifest`` is not changed): the marker, the other entries of ``manifest``,
        then the file hashes sorted by name. A marker or file list already in ``manifest`` is
        replaced.

    Raises
    ------
    OSError
        When a written file cannot be read.
    """
    rest = {k: v for k, v in manifest.items() if k not in (MARKER_KEY, FILES_KEY)}
    files = {name: sha256_of(Path(root) / name) for name in sorted(written)}
    return {MARKER_KEY: {"format": FORMAT}, **rest, FILES_KEY: files}


@dataclass(frozen=True)
class Verification:
    """The outcome of :func:`verify_results`: the files not as ``fit`` wrote them."""

    directory: Path
    problems: tuple[FileProblem, ...]
    legacy: bool = False

    def refusal(self) -> str:
        """One line naming the first problem (and how many more), with the fix."""
        first = self.problems[0]
        more = len(self.problems) - 1
        also = ""
        if more:
            others = ", ".join(f"{p.path} ({p.kind})" for p in self.problems[1:4])
            also = f"; also {more} more: {others}{', …' if more > 3 else ''}"
        fix = f"move it out of {self.directory}, or {_ALLOW}" if first.kind == "added" else _FIX
        return f"error: {self.directory / first.path}: {first.what}; fix: {fix}{also}"


def _check_listed(directory: Path, name: str, expected: str) -> FileProblem | None:
    path = directory / name
    if path.is_symlink():
        return FileProblem(name, "link", "replaced by a symbolic link")
    if not path.exists():
        return FileProblem(name, "missing", "missing")
    if not path.is_file():
        return FileProblem(name, "not a file", "not a file")
    try:
        actual = sha256_of(path)
    except OSError as err:
        reason = (err.strerror or str(err)).lower()
        return FileProblem(name, "unreadable", f"unreadable ({reason})")
    if actual != expected:
        return FileProblem(
            name,
            "changed",
            "changed since `metak fit` wrote it (SHA-256 differs from manifest.json)",
        )
    return None


def verify_results(directory: Path) -> Verification:
    """Check every file ``manifest.json`` lists against its SHA-256, and look for others.

    Returns
    -------
    Verification
        ``problems`` lists missing, changed, unreadable files and files ``fit`` did not write;
        for results of the metak before the marker, nothing can be checked and one problem
        says so.

    Raises
    ------
    ResultsError
        When ``directory`` is not a metak results directory.
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    if manifest is None:
        raise ResultsError(
            f"error: {directory}: not a metak results directory (no manifest.json with metak's "
            f"marker); fix: give the folder `python -m metak fit --out` wrote"
        )
    if manifest.legacy:
        old = FileProblem(
            MANIFEST,
            "unverifiable",
            "written by an older metak without file checksums, so the results cannot be verified",
        )
        return Verification(directory, (old,), legacy=True)
    problems = [
        problem
        for name, digest in manifest.files.items()
        if (problem := _check_listed(directory, name, digest)) is not None
    ]
    problems += [
        FileProblem(name, "added", "not written by metak (not listed in manifest.json)")
        for name in foreign_entries(directory, manifest)
    ]
    return Verification(directory, tuple(problems))
