"""Benchmark: what capture's progress callback (``flagrun.pace``) costs a Keras fit.

Under flagrun every ``Model.fit`` gets a callback that says, at most once a second, how far
the epoch is (so the tuner can stop a model too slow for its trialTimeout within seconds).
It runs after every batch, so it matters most where batches are cheapest: a small MLP at
a small batch size. This fits one such model for one epoch on random Fashion-MNIST-shaped
data, with the callback and without it, alternating (both see the same machine load),
and prints the median epoch times, the cost per batch and the ratio. Target: under 1%
of the epoch. The callbacks capture adds anyway (TensorBoard, BackupAndRestore) are in
neither arm: this is the callback's own cost.

    .venv/bin/python scripts/bench_pace.py [--repeat 7] [--batch-size 16] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

TARGET = 0.01  # of the epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="epochs timed each way")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--samples", type=int, default=12_000)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 x 2 tiny epochs")
    args = parser.parse_args()
    if args.quick:
        args.repeat, args.samples = 2, 800
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    with tempfile.TemporaryDirectory() as folder:
        os.environ["FLAGRUN_RUN_DIR"] = folder  # record_progress writes only under flagrun
        times, steps = measure(args)
        written = (Path(folder) / "pace.json").exists()
    report(times, steps, args, written)


def measure(args: argparse.Namespace) -> tuple[dict[str, list[float]], int]:
    import keras
    import numpy as np

    from flagrun.capture import _pace_callback

    rng = np.random.default_rng(0)
    x = rng.random((args.samples, 784), dtype=np.float32)
    y = rng.integers(0, 10, args.samples)
    model = keras.Sequential(
        [keras.Input((784,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)]
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0)  # trace and warm up
    arms = {"without": list, "with the progress callback": lambda: [_pace_callback()]}
    times: dict[str, list[float]] = {name: [] for name in arms}
    for _ in range(args.repeat):
        for name, callbacks in arms.items():
            start = time.perf_counter()
            model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0, callbacks=callbacks())
            times[name].append(time.perf_counter() - start)
    return times, -(-args.samples // args.batch_size)


def per_call_us(calls: int = 100_000) -> float:
    """The callback's own time per batch, called in a loop (steadier than whole epochs)."""
    from flagrun.capture import _pace_callback

    callback = _pace_callback()
    callback.set_params({"steps": 750, "epochs": 5})
    callback.on_epoch_begin(0)
    start = time.perf_counter()
    for batch in range(calls):
        callback.on_train_batch_end(batch % 750)
    return (time.perf_counter() - start) / calls * 1e6


def report(
    times: dict[str, list[float]], steps: int, args: argparse.Namespace, written: bool
) -> None:
    base = statistics.median(times["without"])
    paced = statistics.median(times["with the progress callback"])
    print(
        f"Keras fit, 1 x 64 MLP, {args.samples} samples, batch {args.batch_size} ({steps} "
        f"batches an epoch), median of {args.repeat} epochs each way, alternating"
    )
    print(f"{'':<30} {'epoch s':>9}")
    for name, values in times.items():
        print(f"{name:<30} {statistics.median(values):>9.3f}")
    cost = paced / base - 1
    per_batch_us = (paced - base) / steps * 1e6
    print(f"cost: {cost:+.2%} of the epoch, {per_batch_us:+.1f} us a batch")
    print(f"the callback alone: {per_call_us():.2f} us a batch")
    print(f"target: under {TARGET:.0%}: {'met' if cost < TARGET else 'not met'}")
    if not written:
        print("the callback wrote no pace.json", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
