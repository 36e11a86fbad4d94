"""One tuner per job: an exclusive lock held for as long as a tuner works on a job.

Two ``flagrun tune --resume`` of one job at once would both fail the trials the
other is running; checking "is its tuner alive?" and then taking over is a race.
The lock is ``flock`` on ``tuner.lock`` in the job folder: the kernel drops it when
its holder exits in any way (kill -9 included), so there is never a stale lock to
clean up. A shared study's folder is not locked: several workers on one machine
use it together, and the study's database keeps them apart.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from flagrun.errors import UsageError

LOCK_FILE = "tuner.lock"


class JobLock:
    """A held lock; released by ``release()`` or when this process ends."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd: int | None = fd
        self.path = path

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None


def lock_job(job_dir: Path) -> JobLock:
    """Take the job for this process; a UsageError naming the holder when another has it."""
    path = Path(job_dir) / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by trials (PEP 446)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise UsageError(
            f"job {Path(job_dir).name} is being tuned by another process{holder}",
            hint="one job has one tuner: wait for it to finish, or stop it (Ctrl-C) first",
        ) from None
    except BaseException:
        os.close(fd)
        raise
    with contextlib.suppress(OSError):  # who holds it, for the message above (advisory)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return JobLock(fd, path)


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return f" (pid {text})" if text.isdigit() else ""
