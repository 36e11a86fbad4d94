"""curve.py with a cost model: a synthetic learning curve whose epochs take time by the flags.

The Fashion-MNIST MLP space in miniature (scripts/fashion_mnist/tuning.yml): besides
curve.py's learning rate, dropout, width and optimizer, the model has ``layers`` (1..16)
and is trained with ``batch_size`` (16..128). Each epoch costs simulated seconds like the
real MLP on one CPU core: proportional to the weights (784 x width + (layers - 1) x width²),
more for small batches (more steps), plus a second of overhead:

    epoch_seconds = 1 + 30 * weights / weights(8 x 1024) * sqrt(64 / batch_size)

so an average model of the space (8 x 1024, batch 64) takes 31 s an epoch, the largest
(16 x 1536, batch 16) 271 s, the smallest (1 x 512, batch 128) 2 s.

The final quality is curve.py's smooth bump, over six flags:

    quality = 0.10 + 0.85 * exp(-penalty)
    penalty = ((log10(learning_rate) + 3) / 1.2)^2 + ((dropout - 0.3) / 0.5)^2
            + ((log2(width) - 10) / 3)^2 + ((layers - 3) / 6)^2
            + ((log2(batch_size) - 5) / 4)^2 + {adam: 0, rmsprop: 0.05, sgd: 0.3}[optimizer]

so the optimum is **val_acc 0.95** at learning_rate 1e-3, dropout 0.3, width 1024,
layers 3, batch_size 32, optimizer adam (``OPTIMUM``, ``BEST_FLAGS``): 16 s an epoch,
half an average model, five times a 2 x 512 one at batch 64 (3.4 s). Good models are
mid-priced; deep ones are both bad and the slowest of all, as in the real space. Over
curve_cost.yml's space, uniformly drawn: median epoch 25 s, mean 42 s; 76% of the draws
end below 0.30 (their median epoch: 30 s), 0.5% above 0.80 (median epoch 16 s).

The curve (curve.py's ``curve``: chance at the start, the quality exactly at the last
epoch, seeded noise that vanishes at the last epoch) rises faster for high learning
rates, small widths, few layers and small batches (more steps an epoch), and slower
with dropout and for rmsprop and sgd.

Each epoch sleeps ``epoch_seconds * time_scale`` (a 60 s epoch sleeps 0.06 s at 0.001)
and logs ``val_acc`` and ``epoch_seconds`` with ``flagrun.log_metrics``. With
``--ledger FILE`` it also appends one line per epoch to FILE (``time pid epoch seconds
val_acc``; epoch 0: the part of an epoch run before a SIGTERM stopped it), so a
benchmark can sum the compute of every trial of a job as it runs.

Run by hand: python scripts/curve_cost.py --learning_rate 0.001 --layers 3 --time_scale 0.01
"""

from __future__ import annotations

import math
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from curve import CHANCE, NOISE, OPTIMIZER_PENALTY, OPTIMIZER_SPEED, OPTIMUM, curve  # noqa: E402

from flagrun import (  # noqa: E402
    checkpoint_dir,
    flag_integer,
    flag_numeric,
    flag_string,
    flags,
    log_metrics,
)

__all__ = ["BEST_FLAGS", "OPTIMUM", "epoch_seconds", "quality", "speed", "val_acc_curve"]

BEST_FLAGS: dict[str, Any] = {
    "learning_rate": 1e-3,
    "dropout": 0.3,
    "width": 1024,
    "layers": 3,
    "batch_size": 32,
    "optimizer": "adam",
}
REFERENCE_WEIGHTS = 784 * 1024 + 7 * 1024**2  # an average model of the space: 8 x 1024
REFERENCE_SECONDS = 30.0  # its epoch at batch 64


def quality(
    learning_rate: float,
    dropout: float,
    width: int,
    layers: int,
    batch_size: int,
    optimizer: str,
) -> float:
    """The noiseless final val_acc of these flags (at most OPTIMUM)."""
    penalty = (
        ((math.log10(learning_rate) + 3) / 1.2) ** 2
        + ((dropout - 0.3) / 0.5) ** 2
        + ((math.log2(width) - 10) / 3) ** 2
        + ((layers - 3) / 6) ** 2
        + ((math.log2(batch_size) - 5) / 4) ** 2
        + OPTIMIZER_PENALTY[optimizer]
    )
    return CHANCE + (OPTIMUM - CHANCE) * math.exp(-penalty)


def speed(
    learning_rate: float,
    dropout: float,
    width: int,
    layers: int,
    batch_size: int,
    optimizer: str,
) -> float:
    """How fast the curve rises: 3 at the optimum (see the module docstring)."""
    k = (
        3
        * (learning_rate / 1e-3) ** 0.5
        * (1024 / width) ** 0.3
        * (3 / layers) ** 0.3
        * (32 / batch_size) ** 0.3
        * ((1 - dropout) / 0.7) ** 1.5
        * OPTIMIZER_SPEED[optimizer]
    )
    return min(max(k, 0.05), 20.0)


def epoch_seconds(width: int, layers: int, batch_size: int) -> float:
    """Simulated seconds of one epoch on one core."""
    weights = 784 * width + (layers - 1) * width**2
    return 1.0 + REFERENCE_SECONDS * weights / REFERENCE_WEIGHTS * math.sqrt(64 / batch_size)


def val_acc_curve(values: dict[str, Any], epochs: int, seed: int) -> list[float]:
    """The val_acc after each of ``epochs`` epochs, noise included (the last one exact)."""
    model = {name: values[name] for name in BEST_FLAGS}
    final, k = quality(**model), speed(**model)
    rng = random.Random(f"{seed}:" + ":".join(str(values[name]) for name in BEST_FLAGS))
    out = []
    for epoch in range(1, epochs + 1):
        progress = epoch / epochs
        out.append(curve(final, k, progress) + rng.gauss(0, NOISE * (1 - progress)))
    return out


class Ledger:
    """Appends ``time pid epoch seconds val_acc`` lines; writes the partial epoch on SIGTERM."""

    def __init__(self, path: str, time_scale: float) -> None:
        self.path, self.time_scale = path, time_scale
        self.epoch_started = time.monotonic()
        signal.signal(signal.SIGTERM, self._on_term)

    def write(self, epoch: int, seconds: float, val_acc: float) -> None:
        line = f"{time.time():.6f} {os.getpid()} {epoch} {seconds:.6f} {val_acc:.6f}\n"
        # One short O_APPEND write: lines of trials running side by side never interleave.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
        self.epoch_started = time.monotonic()

    def _on_term(self, signum: int, frame: object) -> None:
        if self.time_scale > 0:
            partial = (time.monotonic() - self.epoch_started) / self.time_scale
            self.write(0, partial, float("nan"))
        sys.exit(128 + signum)


def main() -> None:
    FLAGS = flags(
        flag_numeric("learning_rate", 0.01, "log scale, best at 1e-3"),
        flag_numeric("dropout", 0.5, "0..0.8, best at 0.3"),
        flag_integer("width", 512, "units per layer, best at 1024"),
        flag_integer("layers", 8, "hidden layers, best at 3"),
        flag_integer("batch_size", 64, "16..128, best at 32"),
        flag_string("optimizer", "sgd", "adam, rmsprop or sgd"),
        flag_integer("epochs", 20, "epochs to train"),
        flag_integer("seed", 0, "noise seed"),
        flag_numeric("time_scale", 0.0, "real seconds slept per simulated second"),
        flag_string("ledger", "", "append each epoch's simulated seconds to this file"),
    )
    if FLAGS.optimizer not in OPTIMIZER_PENALTY:
        raise SystemExit(f"--optimizer {FLAGS.optimizer!r}: use adam, rmsprop or sgd")
    values = {name: getattr(FLAGS, name) for name in BEST_FLAGS}
    seconds = epoch_seconds(FLAGS.width, FLAGS.layers, FLAGS.batch_size)
    ledger = Ledger(FLAGS.ledger, FLAGS.time_scale) if FLAGS.ledger else None
    # The checkpoint contract: the last finished epoch, so a paused or interrupted trial
    # continues after it (the curve is a function of the flags and the seed).
    checkpoint = checkpoint_dir() / "epoch"
    done = int(checkpoint.read_text()) if checkpoint.exists() else 0
    for epoch, val_acc in enumerate(val_acc_curve(values, FLAGS.epochs, FLAGS.seed), start=1):
        if epoch <= done:
            continue
        time.sleep(seconds * FLAGS.time_scale)
        log_metrics({"val_acc": val_acc, "epoch_seconds": seconds}, step=epoch)
        if ledger:
            ledger.write(epoch, seconds, val_acc)
        checkpoint.write_text(str(epoch))
        print(f"epoch {epoch}/{FLAGS.epochs} val_acc {val_acc:.4f} ({seconds:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
