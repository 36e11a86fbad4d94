#!/usr/bin/env bash
# Set up a fresh virtual environment with flagrun and its test dependencies, then run the tests.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${FLAGRUN_VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e ".[dev,tensorflow-cpu]"
exec "$VENV/bin/python" -m pytest -n 2 "$@"
