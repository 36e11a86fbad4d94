"""Trials as child processes of the tuner, on this machine.

Each trial gets its own process group and run folder (see ``runner``), the
least-loaded GPU when there are GPUs, and the metric source of its folder
(``sources.for_run``: event files and the hypertune file).
On Linux a pidfd per child wakes the loop the moment one exits.
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import Sequence
from pathlib import Path

from flagrun import runner, sources
from flagrun.executors.base import TrialProcess
from flagrun.gpus import GpuPool
from flagrun.records import RunStatus

POLL_SECONDS = 0.05  # how often exits are looked for where there are no pidfds


class LocalTrial:
    """A trial running as a child process of this one."""

    def __init__(self, handle: runner.RunHandle, gpu: str | None, pool: GpuPool) -> None:
        self.handle = handle
        self.run_dir: Path = handle.run_dir
        self.gpu = gpu
        self.metrics = sources.for_run(handle.run_dir)
        self.exit_fd = _exit_fd(handle.pid)
        self._pool: GpuPool | None = pool

    def poll(self) -> bool:
        return self.handle.poll() is not None

    def stop(self, status: RunStatus, reason: str, grace: float) -> None:
        self.handle.stop(status=status, reason=reason, grace=grace)

    def result(self) -> runner.RunResult:
        result = self.handle.wait()
        if self.exit_fd is not None:
            os.close(self.exit_fd)
            self.exit_fd = None
        if self._pool is not None:
            self._pool.release(self.gpu)
            self._pool = None
        return result


class LocalExecutor:
    """Runs each trial as a child process; ``gpus`` are shared out among the ``slots``
    trials that may run at once."""

    def __init__(self, gpus: Sequence[str] = (), slots: int = 1) -> None:
        self.gpus = GpuPool(list(gpus), slots)

    def start(self, spec: runner.RunSpec) -> LocalTrial:
        gpu = self.gpus.acquire()
        spec.env = {**spec.env, **GpuPool.env(gpu, self.gpus.shared)}
        try:
            handle = runner.start(spec)
        except BaseException:
            self.gpus.release(gpu)
            raise
        return LocalTrial(handle, gpu, self.gpus)

    def wait(self, running: Sequence[TrialProcess], timeout: float) -> None:
        fds = []
        for trial in running:
            if isinstance(trial, LocalTrial) and trial.exit_fd is not None:
                fds.append(trial.exit_fd)
        if running and len(fds) == len(running):
            select.select(fds, [], [], timeout)
        else:
            time.sleep(min(POLL_SECONDS, timeout) if running else timeout)

    def close(self) -> None:
        pass


def _exit_fd(pid: int) -> int | None:
    """A pidfd that becomes readable when ``pid`` exits (Linux >= 5.3), else None."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # not Linux >= 5.3, or the process is already gone
        return None
