"""The runner: real child processes in tmp folders, stopped and killed for real."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from flagrun import runner, store
from flagrun.records import RunRecord
from tests.helpers import flagrun, start_flagrun, wait_for

DATA = Path(__file__).parent / "data" / "runner"


def gone(pid: int) -> bool:
    return store.process_start_time(pid) is None


def project(tmp_path: Path, *scripts: str) -> Path:
    """A project folder holding copies of the fixture scripts."""
    folder = tmp_path / "project"
    folder.mkdir(exist_ok=True)
    for name in scripts:
        shutil.copy(DATA / name, folder / name)
    return folder


def make_spec(tmp_path: Path, script: str, **kwargs) -> runner.RunSpec:
    folder = project(tmp_path, script)
    run_dir = store.new_run_dir(tmp_path / "runs")
    source = run_dir / store.SOURCE_DIR
    digest = store.snapshot_source(folder, source, exclude=[tmp_path / "runs"])
    return runner.RunSpec(
        script=folder / script,
        run_dir=run_dir,
        source_dir=source,
        project_dir=folder,
        source_hash=digest,
        echo=False,
        **kwargs,
    )


def test_completed_run_is_recorded(tmp_path):
    spec = make_spec(tmp_path, "echo_args.py", flags={"units": 64, "drop": True}, label="first")
    spec.env = {"FLAGRUN_TEST_EXTRA": "yes"}
    spec.job = "j1"
    result = runner.start(spec).wait()
    assert result.status == "COMPLETED" and result.exit_code == 0 and result.signal is None
    record = store.read_run(spec.run_dir)
    assert json.loads((spec.run_dir / "run.json").read_text())["format"] == 1
    assert record.status == "COMPLETED"
    assert record.command == "python echo_args.py --units=64 --drop=true"
    assert record.argv == ["python", "echo_args.py", "--units=64", "--drop=true"]
    assert record.label == "first" and record.job == "j1"
    assert record.source_hash == spec.source_hash
    assert record.runner.pid == os.getpid() and record.child_pid > 0
    assert record.end and record.duration >= 0
    info = json.loads((spec.run_dir / "args.json").read_text())
    assert info["argv"] == ["--units=64", "--drop=true"]
    assert info["cwd"] == str(spec.run_dir)
    assert Path(info["file"]) == spec.source_dir / "echo_args.py"
    assert Path(info["path0"]) == spec.source_dir
    assert info["run_dir"] == str(spec.run_dir) and info["project_dir"] == str(spec.project_dir)
    assert info["unbuffered"] == "1" and info["extra"] == "yes"
    assert "echo_args done" in (spec.run_dir / store.LOG_FILE).read_text()


def test_values_starting_with_dash_arrive_intact(tmp_path):
    spec = make_spec(tmp_path, "echo_args.py", flags={"lr": "-1e-3", "name": "--x y"})
    runner.start(spec).wait()
    info = json.loads((spec.run_dir / "args.json").read_text())
    assert info["argv"] == ["--lr=-1e-3", "--name=--x y"]


def test_failure_records_exit_code_and_error_line(tmp_path):
    spec = make_spec(tmp_path, "exit_with.py", flags={"raise": "boom"})
    result = runner.start(spec).wait()
    assert result.status == "FAILED" and result.exit_code == 1
    assert result.reason == "exit code 1: ValueError: boom"
    assert store.read_run(spec.run_dir).reason == result.reason


def test_exit_code_is_kept(tmp_path):
    result = runner.start(make_spec(tmp_path, "exit_with.py", flags={"code": 7})).wait()
    assert (result.status, result.exit_code, result.reason) == ("FAILED", 7, "exit code 7")


def test_timeout_kills_the_group(tmp_path):
    spec = make_spec(tmp_path, "sleeper.py", timeout=0.5)
    handle = runner.start(spec)
    result = handle.wait()
    assert result.status == "KILLED" and result.reason == "timeout after 0.5 s"
    assert result.signal == "SIGTERM" and result.exit_code is None
    assert gone(handle.pid)
    assert store.read_run(spec.run_dir).status == "KILLED"


def test_stop_records_the_given_status(tmp_path):
    spec = make_spec(tmp_path, "sleeper.py")
    handle = runner.start(spec)
    wait_for(
        lambda: "ready" in (spec.run_dir / store.LOG_FILE).read_text(), timeout=10, what="ready"
    )
    assert handle.poll() is None
    handle.stop("PRUNED", "pruned at step 3", grace=0.5)
    result = handle.wait()
    assert (result.status, result.reason) == ("PRUNED", "pruned at step 3")
    assert handle.wait() is result  # finalized once
    assert store.read_run(spec.run_dir).status == "PRUNED"
    assert gone(handle.pid)


def test_stop_escalates_to_sigkill(tmp_path):
    folder = project(tmp_path)
    (folder / "stubborn.py").write_text(
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\ntime.sleep(60)\n"
    )
    run_dir = store.new_run_dir(tmp_path / "runs")
    spec = runner.RunSpec(folder / "stubborn.py", run_dir, folder, folder, echo=False)
    handle = runner.start(spec)
    wait_for(lambda: "ready" in (run_dir / store.LOG_FILE).read_text(), timeout=10, what="ready")
    handle.stop(grace=0.3)
    result = handle.wait()
    assert result.status == "KILLED" and result.signal == "SIGKILL"


def test_child_flags_json_is_merged(tmp_path):
    spec = make_spec(tmp_path, "writes_flags_json.py", flags={"units": "64"})
    runner.start(spec).wait()
    record = store.read_run(spec.run_dir)
    assert record.flags == {"units": 64, "lr": 0.1}
    assert record.flag_sources == {"units": "argv"}


@pytest.mark.parametrize("call", [1, 2])  # reading the child's start time; run.json again
def test_ctrl_c_right_after_the_child_starts_leaves_it_stopped(tmp_path, monkeypatch, call):
    """A Ctrl-C in the instant between Popen and the run's second record stops the child
    before it propagates, with the run's handle (call 2) or before it exists (call 1)."""
    spec = make_spec(tmp_path, "sleeper.py")
    real_start_time, real_write = store.process_start_time, store.write_run
    children = []

    def interrupt_start_time(pid):
        if pid == os.getpid():  # the runner's own, for run.json: not yet
            return real_start_time(pid)
        children.append(pid)
        raise KeyboardInterrupt

    def interrupt_second_write(run_dir, record):
        if record.child_pid is None or children:  # the first write, or the final one
            return real_write(run_dir, record)
        children.append(record.child_pid)
        raise KeyboardInterrupt

    if call == 1:
        monkeypatch.setattr(store, "process_start_time", interrupt_start_time)
    else:
        monkeypatch.setattr(store, "write_run", interrupt_second_write)
    with pytest.raises(KeyboardInterrupt):
        runner.start(spec)
    monkeypatch.setattr(store, "process_start_time", real_start_time)
    [pid] = children
    assert gone(pid)


def test_running_record_exists_before_the_child_finishes(tmp_path):
    spec = make_spec(tmp_path, "sleeper.py")
    handle = runner.start(spec)
    record = store.read_run(spec.run_dir)
    assert record.status == "RUNNING" and record.child_pid == handle.pid
    assert store.effective_status(record) == "RUNNING"
    handle.stop(grace=0.2)
    handle.wait()


def test_two_concurrent_runs_are_isolated(tmp_path):
    folder = project(tmp_path, "write_same.py")
    procs = [start_flagrun(folder, "train", "write_same.py", f"tag={tag}") for tag in ("a", "b")]
    assert [p.wait(timeout=30) for p in procs] == [0, 0]
    runs = store.list_runs(folder / "runs")
    assert sorted((r.path / "out.txt").read_text() for r in runs) == ["a", "b"]
    assert len({r.id for r in runs}) == 2
    assert not (folder / "out.txt").exists()


def test_script_reads_data_beside_itself_and_in_the_launch_folder(tmp_path):
    folder = project(tmp_path, "reads_data.py")
    (folder / "data").mkdir()
    (folder / "data" / "beside.bin").write_bytes(b"\0" * 10)
    (folder / "launch.txt").write_text("here\n")
    done = flagrun(folder, "train", "reads_data.py")
    assert done.returncode == 0, done.stderr
    assert "beside 10 launch here" in done.stdout


def start_train(folder: Path, *args: str) -> tuple[subprocess.Popen, Path, RunRecord]:
    proc = start_flagrun(folder, "train", "sleeper.py", *args)
    runs = folder / "runs"
    wait_for(lambda: any(runs.glob("*/output.log")), timeout=10, what="the run's output.log")
    run_dir = next(runs.glob("*/output.log")).parent
    wait_for(lambda: "ready" in (run_dir / store.LOG_FILE).read_text(), timeout=10, what="ready")
    return proc, run_dir, store.read_run(run_dir)


def test_ctrl_c_kills_the_run(tmp_path):
    folder = project(tmp_path, "sleeper.py")
    proc, run_dir, record = start_train(folder)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130  # 20 s was once too short on a loaded CI machine
    record = store.read_run(run_dir)
    assert record.status == "KILLED" and "interrupted" in record.reason
    assert gone(record.child_pid)


def test_cli_timeout_kills_the_run(tmp_path):
    folder = project(tmp_path, "sleeper.py")
    proc, run_dir, record = start_train(folder, "--timeout", "1")
    assert proc.wait(timeout=20) == 128 + signal.SIGTERM
    record = store.read_run(run_dir)
    assert record.status == "KILLED" and record.reason == "timeout after 1 s"
    assert gone(record.child_pid)


def test_kill_9_of_the_runner_reads_as_crashed(tmp_path):
    folder = project(tmp_path, "sleeper.py")
    proc, run_dir, record = start_train(folder)
    proc.kill()
    proc.wait(timeout=10)
    record = store.read_run(run_dir)
    assert record.status == "RUNNING"
    assert store.effective_status(record) == "CRASHED"
    wait_for(lambda: gone(record.child_pid), timeout=10, what="the child to be gone")


# -- faults: signals, huge output, bad options, a script that removes its own folder --------

GRACEFUL = """
import os, signal, sys, time

def on_term(signum, frame):
    time.sleep(0.5)  # some cleanup that takes a moment
    open(os.path.join(os.environ["FLAGRUN_PROJECT_DIR"], "cleaned-up"), "w").close()
    sys.exit(0)

signal.signal(signal.SIGTERM, on_term)
print("sleeper ready", flush=True)
time.sleep(120)
"""


def test_sigterm_to_train_stops_the_run_like_ctrl_c_with_its_grace(tmp_path):
    folder = project(tmp_path)
    (folder / "sleeper.py").write_text(GRACEFUL)
    proc, run_dir, record = start_train(folder)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 128 + signal.SIGTERM
    record = store.read_run(run_dir)
    assert record.status == "KILLED" and record.reason == "interrupted (SIGTERM)"
    assert (folder / "cleaned-up").exists()  # the script had its grace, not a SIGKILL
    assert gone(record.child_pid)


def test_a_50_mb_line_is_copied_and_logged_whole_in_linear_time(tmp_path):
    folder = project(tmp_path)
    (folder / "big.py").write_text('import sys\nsys.stdout.write("x" * 50_000_000 + "\\n")\n')
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "flagrun", "train", "big.py"],
        cwd=folder,
        capture_output=True,
        timeout=120,
    )
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert len(done.stdout) == 50_000_001
    [log] = (folder / "runs").glob("*/output.log")
    assert log.stat().st_size == 50_000_001
    assert took < 8, f"{took:.1f} s"  # 20 s when every chunk rescanned the whole line


@pytest.mark.parametrize("slow_git", [False, True])
def test_a_script_that_removes_its_own_run_folder_is_still_recorded(tmp_path, slow_git):
    folder = project(tmp_path)
    (folder / "vandal.py").write_text(
        "import shutil, flagrun\nprint('bye')\nshutil.rmtree(flagrun.run_dir())\n"
    )
    env = None
    if slow_git:  # the run's second record is written after git answers: the folder is gone
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        (bin_dir / "git").write_text("#!/bin/sh\nsleep 2\nexit 128\n")
        (bin_dir / "git").chmod(0o755)
        env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    done = flagrun(folder, "train", "vandal.py", env=env)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    [run_dir] = (folder / "runs").iterdir()
    assert store.read_run(run_dir).status == "COMPLETED"


def test_a_fifo_in_place_of_the_log_does_not_hang_the_failure_reason(tmp_path):
    # The failure reason reads the log's last line; opening a FIFO nobody writes blocks.
    spec = make_spec(tmp_path, "fifo_log.py")
    results = []
    waiter = threading.Thread(target=lambda: results.append(runner.start(spec).wait()))
    waiter.start()
    waiter.join(timeout=60)
    assert not waiter.is_alive(), "the runner hangs on the FIFO"
    assert (results[0].status, results[0].reason) == ("FAILED", "exit code 3")
