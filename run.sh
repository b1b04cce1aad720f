#!/usr/bin/env bash
# Set everything up (first time only) and run the full analysis of the bundled evidence.
# Extra arguments go to `python -m metak fit` (e.g. ./run.sh --quiet --out /tmp/results).
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
exec .venv/bin/python -m metak fit "$@"
