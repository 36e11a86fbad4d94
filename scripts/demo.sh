#!/usr/bin/env bash
# The README's first command: set everything up, tune a Fashion-MNIST MLP
# (about 10 minutes on 2 CPU cores), then show the trials and collect the best.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=tensorflow-cpu
. scripts/setup_venv.sh
FLAGRUN="$(dirname "$PY")/flagrun"

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
"$FLAGRUN" report --runs-dir ../runs   # an HTML page of the job: open the path it prints
