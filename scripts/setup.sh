#!/usr/bin/env bash
# Set up metak on a fresh machine: a Python 3.12 virtual environment in .venv with metak and its
# test tools installed. Idempotent: reinstalls only when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
    # .python-version (3.12) makes pyenv's `python` resolve to 3.12 here; fall back to python3.12.
    for candidate in python python3.12 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

if [ ! -x .venv/bin/python ]; then
    PYTHON=$(find_python) || {
        echo "setup: need Python >= 3.12 (PyMC 6 and ArviZ 1.x require it); install it or use pyenv" >&2
        exit 1
    }
    echo "setup: creating .venv with $($PYTHON --version)" >&2
    "$PYTHON" -m venv .venv
fi

stamp=.venv/.metak-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "setup: installing metak and its dependencies into .venv" >&2
    .venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | grep -v '^WARNING: Location' >&2 || true
    .venv/bin/python -m pip install --quiet -e ".[test]" 2>&1 | grep -v '^WARNING: Location' >&2 || true
    .venv/bin/python -c 'import metak, pymc, arviz' || { echo "setup: install failed" >&2; exit 1; }
    echo "$want" > "$stamp"
fi
