#!/bin/bash
# The checks that need a GPU, for a machine with one and no network (a CUDA image with
# PyTorch and JAX but no TensorFlow, as the device machines lent to this project):
#   1. flagrun's dependencies that the image lacks, from wheels carried along;
#   2. the real-GPU tests: trials on the GPU each was given (tests/test_gpus.py), and
#      Keras on JAX without TensorFlow captured (tests/test_capture.py);
#   3. the Fashion-MNIST race's flagrun arm on Keras over JAX, MINUTES long, 27 epochs.
#
# Usage: scripts/gpu_check.sh WHEELS_DIR FASHION_MNIST_DIR OUT_DIR [MINUTES]
# Made with, on a machine with the network (for the device's Python 3.12):
#   pip download --only-binary=:all: --platform manylinux2014_x86_64 \
#     --platform manylinux_2_28_x86_64 --python-version 3.12 --abi cp312 --abi none \
#     -d WHEELS_DIR optuna keras
set -u
py=${PYTHON:-python3}  # the image's python3 holds torch and JAX
wheels=$1 data=$2 out=$3 minutes=${4:-5}
mkdir -p "$out" && rm -rf /tmp/gpu_race
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false
nvidia-smi -L | tee "$out/gpu.txt"
"$py" -m pip install -q --no-index --find-links "$wheels" optuna keras 2>&1 | tail -3
"$py" -c "import optuna, keras, jax; print('optuna', optuna.__version__, 'keras',
keras.__version__, 'jax', jax.__version__, jax.devices())" | tee -a "$out/gpu.txt"

"$py" -m pytest -q -p no:cacheprovider -rs tests/test_gpus.py tests/test_capture.py \
  -k "gpu or jax" 2>&1 | tee "$out/tests.log"

FASHION_MNIST_DIR=$data "$py" scripts/bench_fashion_race.py --minutes "$minutes" --epochs 27 --seed 1 \
  --tools flagrun --out /tmp/gpu_race \
  --stopping '{pruner: asha, min_resource: 1, reduction_factor: 3, stopStalled: true}' \
  2>&1 | tee "$out/race.log"
(cd /tmp/gpu_race/flagrun-1 && "$py" -m flagrun trials latest) > "$out/trials.txt" 2>&1
