"""Start TensorBoard over flagrun jobs and runs, on 127.0.0.1 only.

TensorBoard names a session by its folder relative to the logdir, and a session at the
logdir itself is ``.``, to which no metric belongs. So a job is shown from its own folder
(its trials are ``trials/N``), and anything else (runs, trials, several jobs) from a
temporary folder of links named after each one, with an HParams experiment over the runs'
flags and metrics by name.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from flagrun import jobstore, store
from flagrun.errors import RunError, UsageError


def folders_for(runs_dir: Path, refs: list[str]) -> list[Path]:
    """The folders to show: each ref as a job, else as a run; none: the latest job, else
    every run."""
    if not refs:
        jobs = jobstore.list_jobs(runs_dir)
        if jobs:
            return [jobs[0]]
        runs = [run.path for run in store.list_runs(runs_dir)]
        if not runs:
            raise UsageError(f"no runs in {runs_dir}", hint="start one with `flagrun train SCRIPT`")
        return runs
    folders = []
    for ref in refs:
        try:
            folders.append(jobstore.resolve_job(runs_dir, ref))
        except UsageError:
            folders.append(store.resolve_run(runs_dir, ref))
    return folders


def link_name(folder: Path) -> str:
    """What a folder is called in TensorBoard: its run or job id, ``<job>/trials/N``."""
    if folder.parent.name == jobstore.TRIALS_DIR:
        return f"{folder.parent.parent.name}/{jobstore.TRIALS_DIR}/{folder.name}"
    return folder.name


def prepare_logdir(folders: list[Path], scratch: Path) -> Path:
    """The logdir showing ``folders``: a lone job's own folder, else ``scratch`` filled
    with a link per folder (and, when they are all runs, their HParams experiment)."""
    if len(folders) == 1 and jobstore.is_job_dir(folders[0]):
        return folders[0]
    for folder in folders:
        link = scratch / link_name(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(folder.resolve(), target_is_directory=True)
    if not any(jobstore.is_job_dir(folder) for folder in folders):
        from flagrun import hparams

        try:
            hparams.write_runs_experiment(scratch, folders)
        except (OSError, ValueError) as exc:
            print(f"flagrun: could not write TensorBoard hparams data: {exc}", file=sys.stderr)
    return scratch


def command(logdir: Path, port: int = 0) -> list[str]:
    """TensorBoard's command line over one logdir."""
    return [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir),
            "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip


def _say(text: str) -> None:
    print(text, flush=True)  # whoever reads our stdout needs the URL now, not at exit


def serve(folders: list[Path], port: int = 0, announce: Callable[[str], None] = _say) -> int:
    """Run TensorBoard until it exits or Ctrl-C; announce its URL as soon as it listens."""
    with tempfile.TemporaryDirectory(prefix="flagrun-tensorboard-") as scratch:
        logdir = prepare_logdir(folders, Path(scratch))
        return _run(command(logdir, port), announce)


def _run(cmd: list[str], announce: Callable[[str], None]) -> int:
    process = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
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
