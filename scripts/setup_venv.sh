# Sourced by test.sh and demo.sh: make (or reuse) the venv and install flagrun with EXTRAS.
# Sets PY to the venv's python.
VENV=${FLAGRUN_VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PY="$PWD/$VENV/bin/python"
"$PY" -m pip install -q --upgrade pip
"$PY" -m pip install -q -e ".[$EXTRAS]"
