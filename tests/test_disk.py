"""A full disk and a read-only runs folder, for real: each test mounts a small tmpfs of its
own (root only), fills it or remounts it read-only, and unmounts it afterwards."""

from __future__ import annotations

import contextlib
import os
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import flagrun, make_project, trials_json, tuning_yaml

TRAIN = textwrap.dedent(
    """
    import os
    from flagrun import flags, flag_numeric, flag_string, log_metrics

    FLAGS = flags(flag_numeric("x", 0.5), flag_string("fill", ""))
    log_metrics({"val_acc": 1.0 - FLAGS.x}, step=0)
    once = os.path.join(os.environ["FLAGRUN_PROJECT_DIR"], "filled")
    if FLAGS.fill and not os.path.exists(once):  # the first trial takes every block left
        open(once, "w").close()
        try:
            with open(FLAGS.fill, "wb") as f:
                while True:
                    f.write(b"\\0" * 65536)
                    f.flush()
        except OSError:
            pass
    """
)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs mounted at tmp_path/disk for this test alone."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                          capture_output=True, text=True)  # fmt: skip
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(disk: Path) -> None:
    with contextlib.suppress(OSError), open(disk / "ballast", "wb") as handle:
        while True:
            handle.write(b"\0" * 65536)
            handle.flush()


def one_line_error(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1, done.stderr
    for word in words:
        assert word in errors[0], done.stderr


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project", TRAIN, tuning_yaml(maxTrials=3, maxParallelTrials=1))


def test_train_and_tune_on_a_full_disk_say_so_and_leave_nothing_half_made(project, disk):
    runs = disk / "runs"
    runs.mkdir()
    fill(disk)
    train = flagrun(project, "train", "train.py", "--runs-dir", str(runs))
    one_line_error(train, "No space left on device", str(runs))
    tune = flagrun(project, "tune", "train.py", "--config", "tuning.yml", "--runs-dir", str(runs))
    one_line_error(tune, "No space left on device", str(runs))
    assert list(runs.iterdir()) == []


def test_a_script_that_fills_the_disk_under_train_gets_a_warning_not_a_traceback(project, disk):
    runs = disk / "runs"
    done = flagrun(project, "train", "train.py", f"fill={disk / 'ballast'}", "--runs-dir",
                   str(runs))  # fmt: skip
    assert done.returncode == 0, done.stderr  # the script's own status
    assert "Traceback" not in done.stderr
    assert "warning: run.json not written" in done.stderr
    assert "No space left on device" in done.stderr


@pytest.mark.slow  # whole jobs, several seconds: kept out of the fast loop (under a minute)
def test_a_disk_that_fills_mid_job_stops_it_in_one_line_and_resume_finishes_it(project, disk):
    runs = disk / "runs"
    args = ["--runs-dir", str(runs), "--progress", "plain"]
    ballast = disk / "ballast"
    done = flagrun(project, "tune", "train.py", f"fill={ballast}", "--config", "tuning.yml", *args)
    one_line_error(done, "No space left on device", str(runs))

    ballast.unlink()  # space again
    [job] = [path.name for path in runs.iterdir()]
    again = flagrun(project, "tune", "--resume", job, *args)
    assert again.returncode == 0, again.stdout + again.stderr
    states = [t["state"] for t in trials_json(project, job, "--runs-dir", str(runs))["trials"]]
    assert states.count("COMPLETE") == 3 and "RUNNING" not in states


@pytest.mark.slow  # whole jobs, several seconds: kept out of the fast loop (under a minute)
def test_a_read_only_runs_folder_is_one_line_for_train_tune_and_resume(project, disk):
    runs = disk / "runs"
    args = ["--runs-dir", str(runs), "--progress", "quiet"]
    done = flagrun(
        project, "tune", "train.py", "--config", "tuning.yml", "--max-trials", "1", *args
    )
    assert done.returncode == 0, done.stderr
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)

    one_line_error(flagrun(project, "train", "train.py", "--runs-dir", str(runs)),
                   "Read-only file system")  # fmt: skip
    one_line_error(flagrun(project, "tune", "train.py", "--config", "tuning.yml", *args),
                   "Read-only file system")  # fmt: skip
    one_line_error(flagrun(project, "tune", "--resume", "latest", "--max-trials", "2", *args),
                   "Read-only file system")  # fmt: skip
