"""Benchmark: flagrun's event reader vs tensorboard's EventAccumulator on the same file.

Builds one event file of TAGS x STEPS scalar events (one value per event, as Keras writes
them) in a temp folder, then times, side by side in this one process:

- flagrun: ``metrics.read_scalars`` (full read, CRC-checked, decoded);
- tensorboard: ``EventAccumulator(size_guidance={"scalars": 0}).Reload()`` plus reading
  every tag back (it imports TensorFlow, when installed, to read records; that import is
  timed separately and left out of the ratio);
- flagrun's ``EventReader.poll()`` on the unchanged file (the tuner's once-a-second cost).

Usage: python scripts/bench_events.py [--quick] [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.record_writer import RecordWriter

from flagrun import metrics

TAGS = ("epoch_accuracy", "epoch_loss", "val_accuracy", "val_loss")


def build(folder: Path, steps: int) -> Path:
    """An event file with len(TAGS) * steps simple_value scalars."""
    path = folder / "logs" / "events.out.tfevents.0.bench"
    path.parent.mkdir(parents=True)
    with open(path, "wb") as handle:
        writer = RecordWriter(handle)
        version = event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2")
        writer.write(version.SerializeToString())
        for step in range(steps):
            for i, tag in enumerate(TAGS):
                value = summary_pb2.Summary.Value(tag=tag, simple_value=1.0 / (step + i + 1))
                summary = summary_pb2.Summary(value=[value])
                event = event_pb2.Event(wall_time=time.time(), step=step, summary=summary)
                writer.write(event.SerializeToString())
    return path


def best_of_interleaved(repeat: int, *fns) -> list[float]:  # noqa: ANN002
    """Each function's best time, the functions taking turns so that load hits all alike."""
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def read_flagrun(run_dir: Path, expected: int) -> None:
    scalars = metrics.read_scalars(run_dir)
    assert sum(map(len, scalars.values())) == expected, "flagrun lost scalars"


def read_tensorboard(log_dir: Path, expected: int) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    accumulator.Reload()
    count = sum(len(accumulator.Scalars(tag)) for tag in accumulator.Tags()["scalars"])
    assert count == expected, "EventAccumulator lost scalars"


def poll_cost(run_dir: Path, calls: int) -> float:
    reader = metrics.EventReader(run_dir)
    reader.poll()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        assert not reader.poll()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke-test size")
    parser.add_argument("--repeat", type=int, default=5, help="best of N (default 5)")
    args = parser.parse_args()
    steps = 500 if args.quick else 50_000
    expected = steps * len(TAGS)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        path = build(run_dir, steps)
        start = time.perf_counter()
        import tensorboard.backend.event_processing.event_accumulator  # noqa: F401

        read_tensorboard(path.parent, expected)  # first use imports TensorFlow when present
        tb_import = time.perf_counter() - start
        ours, theirs = best_of_interleaved(
            args.repeat,
            lambda: read_flagrun(run_dir, expected),
            lambda: read_tensorboard(path.parent, expected),
        )
        poll = poll_cost(run_dir, 200 if args.quick else 1000)
        size = path.stat().st_size
    rows = [
        ("scalars in file", f"{expected:,} ({size / 1e6:.1f} MB)"),
        ("flagrun read_scalars", f"{ours * 1e3:.1f} ms"),
        ("tensorboard EventAccumulator", f"{theirs * 1e3:.1f} ms"),
        ("speed-up (tensorboard / flagrun)", f"{theirs / ours:.1f}x"),
        ("flagrun poll(), unchanged file", f"{poll * 1e6:.0f} us (median)"),
        ("tensorboard first use incl. imports", f"{tb_import:.2f} s"),
        ("tensorflow imported by tensorboard", str("tensorflow" in sys.modules)),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"{'measure':<{width}}  value")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
