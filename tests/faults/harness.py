"""The fault corpus harness: run one hostile command in a sandboxed world and check what it did.

Every case of the corpus (``tests/faults/test_*.py``) runs a metak command inside a *world*, a
temporary directory laid out like a user's disk::

    world/
      project/               the working directory of the command
        studies/             a valid study-records directory (copy of tests/data/records_base)
        notes.txt            a user's file beside the studies
        .git/HEAD            a user's repository metadata
      outside/
        victim.nc            files a path-traversal would hit
        keep.txt

Before the command runs, every file of the world is hashed (and every file of the repository's
``studies/`` and ``tests/data``); afterwards the same files must be there with the same bytes,
except for the paths a case explicitly allows the command to create. A case asserts the exit
code and that standard error holds exactly one line matching a pattern (no traceback).

Cases run in-process through :func:`metak.cli.main` (fast; an uncaught exception fails the test
as a traceback would) or, with ``subprocess=True``, through ``python -m metak`` in a child
process (for faults that could hang or kill the test process, and to prove the real entry point).
A child imports this checkout's ``metak`` (``PYTHONPATH``), may be started through a
``launcher`` command (``unshare``, ``setpriv``) and may run a ``preexec`` function first (e.g. a
file size limit).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RECORDS_BASE = REPO / "tests" / "data" / "records_base"
# Directories of the repository that no case may touch.
GUARDED_REPO_DIRS = (REPO / "studies", REPO / "tests" / "data")
# A case that runs away (reads /dev/zero, allocates terabytes) is stopped here.
SUBPROCESS_TIMEOUT_S = 300


@dataclass(frozen=True)
class World:
    """Paths of one case's sandbox (see the module docstring)."""

    root: Path

    @property
    def project(self) -> Path:
        return self.root / "project"

    @property
    def studies(self) -> Path:
        return self.project / "studies"

    @property
    def outside(self) -> Path:
        return self.root / "outside"

    def fill(self, text: str) -> str:
        """Expand ``{world}``, ``{project}``, ``{studies}``, ``{outside}`` in an argument."""
        return text.format(
            world=self.root, project=self.project, studies=self.studies, outside=self.outside
        )


@dataclass(frozen=True)
class Case:
    """One hostile command and what metak must do with it.

    ``argv`` items may hold the placeholders of :meth:`World.fill`. ``setup`` edits the world
    before the run. ``stderr`` is a regular expression the single line of standard error must
    match (searched, not anchored); a failing command (exit code not 0) must print exactly one
    line. ``stderr = None`` (successful commands only) does not check standard error.
    ``creates`` are world-relative paths the command may create or replace. ``check`` runs after
    the command for extra assertions on the world. Child processes only: ``env`` values and
    ``launcher`` items may hold the placeholders too; ``launcher`` is a command line put before
    ``python -m metak ...``; ``preexec`` runs in the child before it executes.
    """

    name: str
    argv: tuple[str, ...]
    code: int
    stderr: str | None
    setup: Callable[[World], None] | None = None
    creates: tuple[str, ...] = ()
    check: Callable[[World], None] | None = None
    subprocess: bool = False
    env: dict = field(default_factory=dict)
    launcher: tuple[str, ...] = ()
    preexec: Callable[[], None] | None = None


@dataclass(frozen=True)
class Outcome:
    """What a command did: exit code, standard output and standard error."""

    code: int
    stdout: str
    stderr: str

    @property
    def stderr_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def make_world(tmp_path: Path) -> World:
    """A fresh world under ``tmp_path`` (see the module docstring)."""
    world = World(tmp_path / "world")
    shutil.copytree(RECORDS_BASE, world.studies)
    (world.project / "notes.txt").write_text("my notes\n", encoding="utf-8")
    (world.project / ".git").mkdir()
    (world.project / ".git" / "HEAD").write_text("ref: refs/heads/main\n", encoding="utf-8")
    world.outside.mkdir()
    (world.outside / "victim.nc").write_bytes(b"not a metak file")
    (world.outside / "keep.txt").write_text("keep me\n", encoding="utf-8")
    return world


def _digest(path: Path) -> str:
    if path.is_symlink():
        return "link:" + os.readlink(path)
    if not path.is_file():
        return "special"
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(*roots: Path) -> dict[str, str]:
    """``{path: sha256}`` of every file and symlink below ``roots`` (directories as ``dir``)."""
    seen: dict[str, str] = {}
    for root in roots:
        if not root.exists() and not root.is_symlink():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            seen[dirpath] = "dir"
            for name in [*filenames, *(d for d in dirnames if Path(dirpath, d).is_symlink())]:
                path = Path(dirpath, name)
                seen[str(path)] = _digest(path)
    return seen


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def run_in_process(argv: list[str], cwd: Path) -> Outcome:
    """``metak.cli.main(argv)`` with standard output and error captured."""
    from metak.cli import main

    out, err = io.StringIO(), io.StringIO()
    with _cwd(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return Outcome(code, out.getvalue(), err.getvalue())


def run_subprocess(
    argv: list[str],
    cwd: Path,
    env: dict | None = None,
    launcher: tuple[str, ...] = (),
    preexec: Callable[[], None] | None = None,
) -> Outcome:
    """``python -m metak ARGV`` in a child process, importing this checkout's ``metak``."""
    full_env = dict(os.environ)
    # The child runs in the world, not the checkout: without this it would import whatever
    # ``metak`` the interpreter has installed (another worktree's, in a shared venv).
    full_env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO), *filter(None, [full_env.get("PYTHONPATH")])]
    )
    full_env.update(env or {})
    done = subprocess.run(
        [*launcher, sys.executable, "-m", "metak", *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=SUBPROCESS_TIMEOUT_S,
        env=full_env,
        check=False,
        preexec_fn=preexec,
    )
    return Outcome(done.returncode, done.stdout, done.stderr)


def _allowed(path: str, world: World, creates: tuple[str, ...]) -> bool:
    for relative in creates:
        allowed = world.root / relative
        if path == str(allowed) or path.startswith(str(allowed) + os.sep):
            return True
    return False


def changed_paths(
    before: dict[str, str], after: dict[str, str], world: World, creates: tuple[str, ...] = ()
) -> list[str]:
    """Paths created, deleted or changed between two snapshots, except those ``creates`` allows."""
    return sorted(
        path
        for path in set(before) | set(after)
        if before.get(path) != after.get(path) and not _allowed(path, world, creates)
    )


def run_case(case: Case, tmp_path: Path) -> tuple[World, Outcome]:
    """Run ``case`` in a fresh world and assert everything the corpus promises about it."""
    world = make_world(tmp_path)
    if case.setup is not None:
        case.setup(world)
    before = snapshot(world.root, *GUARDED_REPO_DIRS)
    argv = [world.fill(arg) for arg in case.argv]
    if case.subprocess:
        env = {key: world.fill(value) for key, value in case.env.items()}
        launcher = tuple(world.fill(arg) for arg in case.launcher)
        outcome = run_subprocess(argv, world.project, env, launcher, case.preexec)
    else:
        outcome = run_in_process(argv, world.project)
    after = snapshot(world.root, *GUARDED_REPO_DIRS)
    if not case.subprocess:
        assert not (case.env or case.launcher or case.preexec), f"case {case.name}: subprocess only"
    where = f"case {case.name}: exit {outcome.code}, stderr:\n{outcome.stderr}"
    assert "Traceback" not in outcome.stderr, where
    assert outcome.code == case.code, where
    if case.code != 0 or case.stderr is not None:
        lines = outcome.stderr_lines
        assert len(lines) == 1, where
        assert re.search(case.stderr or "", lines[0]), f"{where}\npattern: {case.stderr}"
    changed = changed_paths(before, after, world, case.creates)
    assert not changed, f"case {case.name} changed files outside what it may create: {changed}"
    if case.check is not None:
        case.check(world)
    return world, outcome
