"""The train verb: flags and options checked before anything is made, and a run that is
interrupted before its child starts leaves no folder behind."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from flagrun import training
from tests.helpers import flagrun, start_flagrun, wait_for
from tests.test_runner import project


def test_missing_script_is_a_user_error(tmp_path):
    with pytest.raises(Exception) as info:
        training.train(tmp_path / "nope.py", runs_dir=tmp_path / "runs")
    assert "no such script" in str(info.value)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("timeout", ["0", "-1", "nan", "inf"])
def test_a_timeout_that_is_not_a_positive_number_is_refused_before_anything_is_made(
    tmp_path, timeout
):
    folder = project(tmp_path, "echo_args.py")
    done = flagrun(folder, "train", "echo_args.py", "--timeout", timeout)
    assert done.returncode == 2, done.stderr
    assert f"--timeout {float(timeout)!r} is not a positive number of seconds" in done.stderr
    assert not (folder / "runs").exists()


def big_project(folder: Path) -> Path:
    """A project whose source snapshot takes a while: 1,900 small modules and 30 MB of text."""
    (folder / "lib").mkdir(parents=True)
    for index in range(1900):
        (folder / "lib" / f"m{index}.py").write_text(f"x = {index}\n")
    (folder / "notes").mkdir()
    for index in range(30):
        (folder / "notes" / f"n{index}.txt").write_bytes(b"n" * 1_000_000)
    return folder


def interrupt_during_snapshot(
    folder: Path, record: str, *args: str, signum: int = signal.SIGINT
) -> subprocess.Popen:
    """Start ``flagrun ARGS`` and Ctrl-C it (or send ``signum``) once its folder's source/
    exists and ``record`` (run.json, job.json) does not yet: mid source snapshot."""
    proc = start_flagrun(folder, *args)

    def mid_snapshot() -> bool:
        return any(not (source.parent / record).exists() for source in folder.glob("runs/*/source"))

    wait_for(mid_snapshot, timeout=30, what="the source snapshot to start")
    proc.send_signal(signum)
    proc.wait(timeout=30)
    return proc


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_during_the_source_snapshot_leaves_no_run_folder(tmp_path, signum):
    folder = big_project(project(tmp_path, "echo_args.py"))
    proc = interrupt_during_snapshot(folder, "run.json", "train", "echo_args.py", signum=signum)
    assert proc.returncode == 128 + signum, proc.stdout.read()
    assert list((folder / "runs").iterdir()) == []
