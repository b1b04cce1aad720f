#!/usr/bin/env bash
# Set everything up (first time only), including headless Chromium for the report's browser
# test, and run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "test: installing Debian chromium for the browser test" >&2
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "test: chromium not found and cannot install it (not root); the browser test will skip outside CI" >&2
    fi
fi
exec .venv/bin/python -m pytest "$@"
