"""How far a trial is through its current epoch, so its pace shows before its first point.

The tuner stops a trial that at its pace cannot finish within ``trialTimeout``
(``flagrun.tuner.overrun``). Before a trial's first point its pace is unknown, and the time
it has run so far is only a lower bound of the time to that point: a model that needs ten
minutes an epoch ran ~40 s before a 27-epoch, 900-s trial was stopped, ~200 s in a 5-epoch
job; in the Fashion-MNIST races such trials took 8-34% of the compute. A trial that says
how many of an epoch's batches it has done shows its epoch time within seconds.

``record_progress(epoch, done, steps, epochs)`` writes ``pace.json`` in the run folder, at
most once a second: the epoch (from 0), the batches done in it, the batches an epoch has,
the epochs the run trains, and the wall time. flagrun's capture calls it from a Keras
callback on every ``Model.fit``; another script may call it from its own loop. Outside
flagrun (no ``FLAGRUN_RUN_DIR``) it does nothing. The tuner reads it with ``read_pace``
and times the batches between two readings of the same epoch (``epoch_seconds``), so the
first batches (graph tracing, warm-up) do not count.

Stdlib only: this runs inside every training process.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from flagrun._untrusted import read_regular

__all__ = ["PACE_FILE", "Pace", "PaceWatch", "epoch_seconds", "read_pace", "record_progress"]

PACE_FILE = "pace.json"  # in the run folder
WRITE_EVERY = 1.0  # seconds between two writes, at least
MIN_SPAN = 2.0  # seconds of batches, at least, before an epoch's time is estimated
RUN_DIR_ENV = "FLAGRUN_RUN_DIR"
MAX_BYTES = 4096  # a reading is ~100 bytes


@dataclass(frozen=True)
class Pace:
    """A reading of a run's progress through its epochs."""

    epoch: int  # the epoch under way, from 0
    done: int  # batches done in it
    steps: int  # batches an epoch has
    epochs: int  # epochs the run trains in all (Keras numbers them on after a restore)
    time: float  # wall time of the reading


_last_write = 0.0


def record_progress(epoch: int, done: int, steps: int, epochs: int) -> None:
    """Say that ``done`` of the ``steps`` batches of epoch ``epoch`` (from 0) of ``epochs``
    are done; written at most once a second, and only under flagrun. Cheap enough to call
    after every batch."""
    global _last_write
    run_dir = os.environ.get(RUN_DIR_ENV)
    now = time.time()
    if not run_dir or now - _last_write < WRITE_EVERY:
        return
    _last_write = now
    from flagrun._atomic import write_json_atomic

    reading = asdict(Pace(epoch, done, steps, epochs, now))
    # a full disk or a read-only folder costs the tuner an estimate, not the run
    with contextlib.suppress(OSError):
        write_json_atomic(Path(run_dir) / PACE_FILE, reading)


def read_pace(run_dir: Path) -> Pace | None:
    """The run's latest reading, or None: none written, or not a reading (a script's own
    file of that name, a link, a FIFO, a file too big to be one)."""
    try:
        data = json.loads(read_regular(Path(run_dir) / PACE_FILE, limit=MAX_BYTES))
        pace = Pace(**data)
    except (OSError, ValueError, TypeError):
        return None
    counts = (pace.epoch, pace.done, pace.steps, pace.epochs)
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in counts):
        return None
    if not isinstance(pace.time, (int, float)) or not math.isfinite(pace.time):
        return None
    if pace.steps <= 0 or not 0 <= pace.epoch < pace.epochs or not 0 <= pace.done <= pace.steps:
        return None
    return pace


def epoch_seconds(first: Pace, last: Pace) -> float | None:
    """An epoch's time at the pace of the batches between two readings of the same epoch
    at least ``MIN_SPAN`` apart; None when they are not."""
    span = last.time - first.time
    batches = last.done - first.done
    if last.epoch != first.epoch or last.steps != first.steps or span < MIN_SPAN:
        return None
    if batches <= 0:
        return None
    return span / batches * last.steps


class PaceWatch:
    """The tuner's readings of one run: the first of the epoch under way, to time the
    batches after it, and the first of its process (``started_at`` on), by which its
    training had begun."""

    def __init__(self, run_dir: Path, started_at: float = 0.0) -> None:
        self.run_dir = Path(run_dir)
        self.started_at = started_at
        self.first: Pace | None = None
        self.began: float | None = None  # the wall time of its process's first reading

    def epoch_time(self) -> tuple[Pace, float] | None:
        """The latest reading and the epoch time it shows, or None (no reading yet, or
        too few seconds of batches since the epoch's first reading)."""
        last = read_pace(self.run_dir)
        if last is None:
            return None
        if self.began is None and last.time >= self.started_at:
            self.began = last.time  # not a reading an earlier process left (a resume)
        first = self.first
        if first is None or first.epoch != last.epoch or last.time < first.time:
            self.first = first = last
        seconds = epoch_seconds(first, last)
        return None if seconds is None else (last, seconds)
