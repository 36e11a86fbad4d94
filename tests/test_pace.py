"""Tests for flagrun.pace: a run's progress through its epochs, written and read back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import asdict
from pathlib import Path

import pytest

from flagrun.pace import MIN_SPAN, PACE_FILE, Pace, PaceWatch, epoch_seconds, read_pace


def record_in_child(run_dir: Path | None, code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` (after ``from flagrun.pace import record_progress``) in a fresh
    process, under flagrun when ``run_dir`` is given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLAGRUN_")}
    if run_dir is not None:
        env["FLAGRUN_RUN_DIR"] = str(run_dir)
    source = "from flagrun.pace import record_progress\n" + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", source], env=env, capture_output=True, text=True, timeout=60
    )


def test_progress_is_written_at_most_once_a_second_and_read_back(tmp_path: Path) -> None:
    done = record_in_child(
        tmp_path,
        """
        import time
        for batch in range(1, 16):
            record_progress(0, batch, 40, 3)
            time.sleep(0.1)
        """,
    )
    assert done.returncode == 0, done.stderr
    reading = read_pace(tmp_path)
    assert reading is not None
    # the first call writes; the next write waits a second: batch 11 (of 15) at the most
    assert (reading.epoch, reading.steps, reading.epochs) == (0, 40, 3)
    assert 9 <= reading.done <= 12


def test_outside_flagrun_nothing_is_written(tmp_path: Path) -> None:
    done = record_in_child(None, "record_progress(0, 1, 10, 2)\nimport os\nprint(os.listdir())")
    assert done.returncode == 0, done.stderr
    assert PACE_FILE not in done.stdout


@pytest.mark.parametrize(
    "content",
    [
        "{",  # torn
        "[1, 2]",
        json.dumps({"epoch": 0, "done": 5, "steps": 10}),  # a script's own file
        json.dumps({"epoch": 0, "done": 11, "steps": 10, "epochs": 2, "time": 1.0}),
        json.dumps({"epoch": 0, "done": 1, "steps": 0, "epochs": 2, "time": 1.0}),
        json.dumps({"epoch": 2, "done": 1, "steps": 10, "epochs": 2, "time": 1.0}),
        json.dumps({"epoch": "0", "done": 1, "steps": 10, "epochs": 2, "time": 1.0}),
        json.dumps({"epoch": 0, "done": True, "steps": 10, "epochs": 2, "time": 1.0}),
        '{"epoch": 0, "done": 1, "steps": 10, "epochs": 2, "time": NaN}',
    ],
)
def test_what_is_not_a_reading_reads_as_none(tmp_path: Path, content: str) -> None:
    (tmp_path / PACE_FILE).write_text(content)
    assert read_pace(tmp_path) is None


def test_no_file_reads_as_none(tmp_path: Path) -> None:
    assert read_pace(tmp_path) is None


def test_a_hostile_file_reads_as_none_at_once(tmp_path: Path) -> None:
    # The run folder is the script's: a link out of it, a FIFO nobody writes to (reading
    # it would block the tuner) and a huge file are no readings.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write(elsewhere, Pace(0, 1, 10, 2, 1.0))
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / PACE_FILE).symlink_to(elsewhere / PACE_FILE)
    assert read_pace(elsewhere) is not None and read_pace(linked) is None
    fifo = tmp_path / "fifo"
    fifo.mkdir()
    os.mkfifo(fifo / PACE_FILE)
    assert read_pace(fifo) is None
    huge = tmp_path / "huge"
    huge.mkdir()
    (huge / PACE_FILE).write_text(" " * 10_000 + json.dumps(asdict(Pace(0, 1, 10, 2, 1.0))))
    assert read_pace(huge) is None


def test_an_epochs_time_is_the_pace_of_the_batches_between_two_readings() -> None:
    first = Pace(epoch=0, done=10, steps=100, epochs=5, time=100.0)
    assert epoch_seconds(first, Pace(0, 30, 100, 5, 104.0)) == 20.0
    assert epoch_seconds(first, Pace(0, 12, 100, 5, 100.0 + MIN_SPAN / 2)) is None  # too soon
    assert epoch_seconds(first, Pace(1, 30, 100, 5, 104.0)) is None  # another epoch
    assert epoch_seconds(first, Pace(0, 10, 100, 5, 104.0)) is None  # no batch since


def test_the_watch_times_batches_from_the_first_reading_of_each_epoch(tmp_path: Path) -> None:
    # The first reading comes after the first batch, which traced the graph: slow. The
    # watch times only the batches after it.
    watch = PaceWatch(tmp_path)
    assert watch.epoch_time() is None  # no reading yet
    write(tmp_path, Pace(0, 1, 100, 5, 100.0))
    assert watch.epoch_time() is None
    write(tmp_path, Pace(0, 21, 100, 5, 104.0))
    assert watch.epoch_time() == (Pace(0, 21, 100, 5, 104.0), 20.0)
    write(tmp_path, Pace(1, 5, 100, 5, 125.0))  # a new epoch: timed afresh
    assert watch.epoch_time() is None
    write(tmp_path, Pace(1, 35, 100, 5, 128.0))
    assert watch.epoch_time() == (Pace(1, 35, 100, 5, 128.0), 10.0)


def test_the_watch_knows_when_its_process_began_to_train(tmp_path: Path) -> None:
    watch = PaceWatch(tmp_path, started_at=100.0)
    write(tmp_path, Pace(2, 50, 100, 5, 90.0))  # left by the process before a resume
    watch.epoch_time()
    assert watch.began is None
    write(tmp_path, Pace(2, 1, 100, 5, 106.0))
    watch.epoch_time()
    write(tmp_path, Pace(2, 40, 100, 5, 110.0))
    watch.epoch_time()
    assert watch.began == 106.0  # its first reading: its training had begun by then


def write(run_dir: Path, reading: Pace) -> None:
    (run_dir / PACE_FILE).write_text(json.dumps(asdict(reading)))
