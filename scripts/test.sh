#!/usr/bin/env bash
# Set up a fresh virtual environment with flagrun and its test dependencies, then run the tests.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=dev,tensorflow-cpu
. scripts/setup_venv.sh
exec "$PY" -m pytest -n 2 "$@"
