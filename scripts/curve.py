"""A synthetic learning curve: the benchmarks' objective with a known optimum.

No data, no framework: each epoch sleeps ``epoch_seconds`` and writes ``val_acc``
with ``flagrun.log_metrics`` (steps 1..epochs), so a tuning job over it behaves like
one over a real model, in seconds.

The final quality is a smooth function of the flags:

    quality = 0.10 + 0.85 * exp(-penalty)
    penalty = ((log10(learning_rate) + 3) / 0.8)^2 + ((dropout - 0.3) / 0.35)^2
            + ((log2(width) - 8) / 2.5)^2 + {adam: 0, rmsprop: 0.05, sgd: 0.3}[optimizer]

so the optimum is **val_acc 0.95** at learning_rate 1e-3, dropout 0.3, width 256,
optimizer adam (``OPTIMUM`` below), and 0.10 (chance) far from it.

Every curve starts at chance and reaches its quality exactly at the last epoch:

    val_acc(p) = 0.10 + (quality - 0.10) * (1 - exp(-k p)) / (1 - exp(-k)),  p = epoch / epochs

plus seeded noise whose spread shrinks to zero at the last epoch (so the final value,
and hence any regret, is exact). The speed k (3 at the optimum) grows with the learning
rate and for small widths, and falls with dropout and for rmsprop and sgd. Bad flags are
clearly behind after a few epochs, but some good ones start slowly (sgd, low learning
rates, more dropout) and are overtaken early by worse, faster ones, so pruning on early
epochs has a real cost. The noise is seeded by ``seed`` and the flag values.

Run by hand: python scripts/curve.py --learning_rate 0.001 --dropout 0.3
"""

from __future__ import annotations

import math
import random
import time

from flagrun import flag_integer, flag_numeric, flag_string, flags, log_metrics

OPTIMUM = 0.95
CHANCE = 0.10
OPTIMIZER_PENALTY = {"adam": 0.0, "rmsprop": 0.05, "sgd": 0.3}
OPTIMIZER_SPEED = {"adam": 1.0, "rmsprop": 0.8, "sgd": 0.4}
NOISE = 0.02  # spread of the noise at the first epoch


def quality(learning_rate: float, dropout: float, width: int, optimizer: str) -> float:
    """The noiseless final val_acc of these flags (at most OPTIMUM)."""
    penalty = (
        ((math.log10(learning_rate) + 3) / 0.8) ** 2
        + ((dropout - 0.3) / 0.35) ** 2
        + ((math.log2(width) - 8) / 2.5) ** 2
        + OPTIMIZER_PENALTY[optimizer]
    )
    return CHANCE + (OPTIMUM - CHANCE) * math.exp(-penalty)


def speed(learning_rate: float, dropout: float, width: int, optimizer: str) -> float:
    """How fast the curve rises: 3 at the optimum, faster for high learning rates and
    small widths (which end worse), slower with dropout and for rmsprop and sgd."""
    k = (
        3
        * (learning_rate / 1e-3) ** 0.5
        * (256 / width) ** 0.3
        * ((1 - dropout) / 0.7) ** 1.5
        * OPTIMIZER_SPEED[optimizer]
    )
    return min(max(k, 0.05), 20.0)


def curve(final: float, k: float, progress: float) -> float:
    """The noiseless val_acc after ``progress`` (0..1] of the epochs."""
    return CHANCE + (final - CHANCE) * (1 - math.exp(-k * progress)) / (1 - math.exp(-k))


def main() -> None:
    FLAGS = flags(
        flag_numeric("learning_rate", 0.01, "log scale, best at 1e-3"),
        flag_numeric("dropout", 0.5, "0..0.8, best at 0.3"),
        flag_integer("width", 64, "units, best at 256"),
        flag_string("optimizer", "sgd", "adam, rmsprop or sgd"),
        flag_integer("epochs", 30, "epochs to train"),
        flag_integer("seed", 0, "noise seed"),
        flag_numeric("epoch_seconds", 0.01, "sleep per epoch"),
    )
    if FLAGS.optimizer not in OPTIMIZER_PENALTY:
        raise SystemExit(f"--optimizer {FLAGS.optimizer!r}: use adam, rmsprop or sgd")
    final = quality(FLAGS.learning_rate, FLAGS.dropout, FLAGS.width, FLAGS.optimizer)
    k = speed(FLAGS.learning_rate, FLAGS.dropout, FLAGS.width, FLAGS.optimizer)
    rng = random.Random(
        f"{FLAGS.seed}:{FLAGS.learning_rate}:{FLAGS.dropout}:{FLAGS.width}:{FLAGS.optimizer}"
    )
    for epoch in range(1, FLAGS.epochs + 1):
        time.sleep(FLAGS.epoch_seconds)
        progress = epoch / FLAGS.epochs
        noise = rng.gauss(0, NOISE * (1 - progress))
        val_acc = curve(final, k, progress) + noise
        log_metrics({"val_acc": val_acc}, step=epoch)
        print(f"epoch {epoch}/{FLAGS.epochs} val_acc {val_acc:.4f}", flush=True)


if __name__ == "__main__":
    main()
