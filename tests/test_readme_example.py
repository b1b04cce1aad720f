"""README's example works when copied: its commands and its notebook code, run as written."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def _block(after: str, language: str) -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index(after) :]
    return re.search(rf"```{language}\n(.*?)```", section, flags=re.S).group(1)


@pytest.fixture
def workdir(tmp_path):
    """A folder holding a copy of examples/, where the example's commands are run."""
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    return tmp_path


def test_console_commands(workdir):
    commands = [
        line[2:] for line in _block("## Example", "console").splitlines() if line.startswith("$ ")
    ]
    metak_lines = [c for c in commands if c.startswith("python -m metak ")]
    assert len(metak_lines) == 4  # validate, effects, fit, report
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for command in metak_lines:
        argv = [sys.executable, "-m", "metak", *command.split()[3:]]
        done = subprocess.run(
            argv, cwd=workdir, capture_output=True, text=True, timeout=300, env=env
        )
        assert done.returncode == 0, (command, done.stderr)
    assert (workdir / "bcg_effects.csv").is_file()
    assert (workdir / "bcg_results" / "report.html").is_file()


def test_notebook_code(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    namespace: dict = {}
    exec(_block("From a notebook", "python"), namespace)  # noqa: S102 - README's own code
    # Each analysis followed by its robustness checks' PET and PEESE analyses.
    assert list(namespace["result"].analyses) == [
        "bcg",
        "bcg_pet",
        "bcg_peese",
        "bcg_latitude",
        "bcg_latitude_pet",
        "bcg_latitude_peese",
    ]
    assert (workdir / "bcg_results" / "summary.csv").is_file()
