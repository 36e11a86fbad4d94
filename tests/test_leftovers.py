"""What a run leaves running: grandchildren that ignore SIGTERM, hold the output pipe,
start their own session, or outlive a runner killed with SIGKILL. Real processes
throughout; every process a test starts is killed by that test, by pid."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import flagrun, make_project, start_flagrun, tuning_yaml, wait_for

# A script whose child outlives it: it ignores SIGTERM, keeps the script's stdout open,
# and writes its pid to <project>/leftovers.txt. `session=true` puts it in a session of
# its own (setsid), out of the run's process group.
LEAVES_A_CHILD = textwrap.dedent(
    """
    import os, subprocess, sys, time
    from flagrun import flags, flag_boolean, flag_numeric, log_metrics

    FLAGS = flags(flag_numeric("x", 0.5), flag_boolean("session", False),
                  flag_numeric("linger", 0.0))
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)"],
        start_new_session=FLAGS.session,
    )
    with open(os.path.join(os.environ["FLAGRUN_PROJECT_DIR"], "leftovers.txt"), "a") as f:
        f.write(f"{child.pid}\\n")
    print("started a child that ignores SIGTERM", flush=True)
    log_metrics({"val_acc": 1 - FLAGS.x}, step=0)
    time.sleep(FLAGS.linger)
    """
)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent to reap it does not)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def leftover_pids(project: Path) -> list[int]:
    path = project / "leftovers.txt"
    return [int(pid) for pid in path.read_text().split()] if path.exists() else []


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    folder = make_project(tmp_path, LEAVES_A_CHILD, tuning_yaml(maxTrials=2))
    yield folder
    for pid in leftover_pids(folder):  # the processes this test's scripts started
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def all_gone(pids: list[int], timeout: float = 10) -> bool:
    return bool(wait_for(lambda: not any(alive(pid) for pid in pids), timeout, "leftovers gone"))


@pytest.mark.slow  # whole jobs, several seconds: kept out of the fast loop (under a minute)
@pytest.mark.parametrize("session", ["false", "true"])
def test_train_returns_and_kills_a_child_that_holds_its_output_and_ignores_sigterm(
    project: Path, session: str
) -> None:
    started = time.monotonic()
    done = flagrun(project, "train", "train.py", f"session={session}", timeout=60)
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert "started a child" in done.stdout
    assert took < 15, took  # it used to wait forever for the pipe to close
    [pid] = leftover_pids(project)
    assert all_gone([pid])
    [run] = [path for path in (project / "runs").iterdir()]
    assert '"status": "COMPLETED"' in (run / "run.json").read_text()


@pytest.mark.slow  # whole jobs, several seconds: kept out of the fast loop (under a minute)
def test_tune_kills_what_each_trial_left_running(project: Path) -> None:
    done = flagrun(project, "tune", "train.py", "session=true", "--config", "tuning.yml")
    assert done.returncode == 0, done.stderr
    pids = leftover_pids(project)
    assert len(pids) == 2
    assert all_gone(pids)


@pytest.mark.slow  # whole jobs, several seconds: kept out of the fast loop (under a minute)
@pytest.mark.parametrize("command", ["train", "tune"])
def test_kill_9_of_the_runner_still_kills_the_grandchildren(project: Path, command: str) -> None:
    args = ["train.py", "linger=300"]
    if command == "tune":
        args += ["--config", "tuning.yml", "--parallel", "1"]
    runner = start_flagrun(project, command, *args, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: leftover_pids(project), 30, "the trial's child to start")
    finally:
        runner.kill()  # SIGKILL: the runner cleans nothing up itself
        runner.wait()
    assert all_gone(leftover_pids(project))
