#!/usr/bin/env bash
# The README's first command: set everything up, tune a Fashion-MNIST MLP
# (about 10 minutes on 2 CPU cores), then show the trials and collect the best.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${FLAGRUN_VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e ".[tensorflow-cpu]"
FLAGRUN="$PWD/$VENV/bin/flagrun"

if [ -z "${FASHION_MNIST_DIR:-}" ] && [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -q && apt-get install -y -q dataset-fashion-mnist
  else
    echo "demo: Fashion-MNIST is missing: run 'sudo apt-get install dataset-fashion-mnist'," \
         "or set FASHION_MNIST_DIR to a folder with its four idx files" >&2
    exit 1
  fi
fi

cd scripts
"$FLAGRUN" tune mnist_mlp.py --config demo.yml --runs-dir ../runs dataset=fashion_mnist epochs=8
"$FLAGRUN" trials --runs-dir ../runs
"$FLAGRUN" collect --runs-dir ../runs --dest ../collected/demo
