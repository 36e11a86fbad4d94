"""``flagrun.log_metrics``: write TensorBoard scalars from any training script.

Values go into ``<run dir>/logs/`` (the run folder from ``FLAGRUN_RUN_DIR``; ``./logs``
when the script runs outside flagrun) as ``simple_value`` events, flushed at every call
so the tuner sees them while the trial runs. One event file per process, closed at exit.

TensorFlow is never imported: records are framed by tensorboard's ``RecordWriter`` over a
plain file (tensorboard's ``EventFileWriter`` would import TensorFlow to make the folder).
"""

from __future__ import annotations

import atexit
import os
import socket
import threading
import time
from collections.abc import Mapping
from numbers import Real
from pathlib import Path

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.record_writer import RecordWriter

from flagrun.errors import MetricsError

RUN_DIR_ENV = "FLAGRUN_RUN_DIR"
LOG_DIR = "logs"


class MetricsWriter:
    """Appends scalar events to one new event file in ``log_dir``."""

    def __init__(self, log_dir: Path) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}"
        self.path = log_dir / f"{name}.{os.getpid()}.flagrun"
        self._file = open(self.path, "ab")  # noqa: SIM115 (kept open for the process)
        self._records = RecordWriter(self._file)
        self._next_step = 0
        self._lock = threading.Lock()
        self._write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def log(self, values: Mapping[str, float], step: int | None = None) -> int:
        """Write ``values`` at ``step`` (default: one past the last step); return the step."""
        with self._lock:
            step = self._next_step if step is None else step
            self._next_step = step + 1
            now = time.time()
            for tag, value in values.items():  # one value per event, as torch writes them
                entry = summary_pb2.Summary.Value(tag=tag, simple_value=value)
                summary = summary_pb2.Summary(value=[entry])
                self._records.write(
                    event_pb2.Event(wall_time=now, step=step, summary=summary).SerializeToString()
                )
            self._file.flush()
        return step

    def close(self) -> None:
        """Flush and close the event file."""
        with self._lock:
            if not self._file.closed:
                self._file.close()

    def _write(self, event: event_pb2.Event) -> None:
        self._records.write(event.SerializeToString())
        self._file.flush()


_writer: MetricsWriter | None = None
_writer_pid: int | None = None
_writer_lock = threading.Lock()


def log_dir() -> Path:
    """Where ``log_metrics`` writes: ``$FLAGRUN_RUN_DIR/logs``, else ``./logs``."""
    run_dir = os.environ.get(RUN_DIR_ENV)
    return Path(run_dir) / LOG_DIR if run_dir else Path(LOG_DIR)


def log_metrics(values: Mapping[str, float], step: int | None = None) -> int:
    """Record scalar metrics for this run, e.g. ``log_metrics({"val_acc": 0.91}, step=3)``.

    ``step`` defaults to one past the previous call's step (0 first). The values are on
    disk when this returns. Returns the step written.
    """
    clean = _checked(values)
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
        raise MetricsError(
            f"log_metrics: step must be a whole number >= 0, not {step!r}",
            hint="pass step=epoch, or leave it out to count calls",
        )
    return _process_writer().log(clean, step)


def _checked(values: Mapping[str, float]) -> dict[str, float]:
    if not isinstance(values, Mapping):
        raise MetricsError(
            f"log_metrics takes a dict of name -> number, not {type(values).__name__}",
            hint='write log_metrics({"val_acc": 0.91})',
        )
    clean = {}
    for name, value in values.items():
        if not isinstance(name, str) or not name:
            raise MetricsError(f"log_metrics: metric name {name!r} is not a non-empty string")
        if isinstance(value, bool) or not isinstance(value, Real):
            value = _as_float(name, value)
        clean[name] = float(value)
    return clean


def _as_float(name: str, value: object) -> float:
    """Numbers from numpy/torch/TF (0-d arrays, tensors) via ``float()``; nothing else."""
    if isinstance(value, (bool, str, bytes)) or not hasattr(value, "__float__"):
        raise MetricsError(
            f"log_metrics: metric {name!r} is {value!r}, not a number",
            hint="pass a float, e.g. float(history['val_acc'][-1])",
        )
    return float(value)


def _process_writer() -> MetricsWriter:
    """One writer per process (a forked child gets its own file)."""
    global _writer, _writer_pid
    with _writer_lock:
        if _writer is None or _writer_pid != os.getpid():
            _writer = MetricsWriter(log_dir())
            _writer_pid = os.getpid()
            atexit.register(_writer.close)
        return _writer
