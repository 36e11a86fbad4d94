"""Start TensorBoard over flagrun jobs and runs, on 127.0.0.1 only."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from flagrun import jobstore, store
from flagrun.errors import RunError, UsageError


def folders_for(runs_dir: Path, refs: list[str]) -> list[Path]:
    """The folders to show: each ref as a job, else as a run; none: the latest job, else runs/."""
    if not refs:
        jobs = jobstore.list_jobs(runs_dir)
        if jobs:
            return [jobs[0]]
        if not runs_dir.is_dir():
            raise UsageError(f"no runs in {runs_dir}", hint="start one with `flagrun train SCRIPT`")
        return [runs_dir]
    folders = []
    for ref in refs:
        try:
            folders.append(jobstore.resolve_job(runs_dir, ref))
        except UsageError:
            folders.append(store.resolve_run(runs_dir, ref))
    return folders


def command(folders: list[Path], port: int = 0) -> list[str]:
    """TensorBoard's command line: one logdir, or a named logdir_spec for several."""
    if len(folders) == 1:
        logdir = ["--logdir", str(folders[0])]
    else:
        logdir = ["--logdir_spec", ",".join(f"{path.name}:{path}" for path in folders)]
    return [sys.executable, "-m", "tensorboard.main", *logdir, "--host", "127.0.0.1",
            "--port", str(port)]  # fmt: skip


def _say(text: str) -> None:
    print(text, flush=True)  # whoever reads our stdout needs the URL now, not at exit


def serve(folders: list[Path], port: int = 0, announce: Callable[[str], None] = _say) -> int:
    """Run TensorBoard until it exits or Ctrl-C; announce its URL as soon as it listens."""
    process = subprocess.Popen(
        command(folders, port), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    stderr = process.stderr
    assert stderr is not None  # stderr=PIPE
    try:
        for line in stderr:
            if "http://" in line:
                url = line[line.index("http://") :].split()[0]
                announce(f"TensorBoard at {url} (Ctrl-C to stop)")
                for _ in stderr:  # keep draining it, or a full pipe blocks TensorBoard
                    pass
                break
        else:
            process.wait()
            raise RunError("TensorBoard stopped before it served", hint="is tensorboard installed?")
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        process.wait()
        return 130
