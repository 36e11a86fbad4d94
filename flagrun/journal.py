"""The job's append-only files after a crash: the Optuna journal and the trials index.

Both are written by appending whole lines. A tuner killed in the middle of a write
(kill -9, power loss) leaves a torn last line: bytes after the last newline. Left
there, the next append glues a good record onto it and the file is unreadable from
then on. So before a tuner appends to a job again (it holds the job's lock, so no
other writer is live), ``drop_torn_tail`` cuts the torn bytes off, and says so.

The journal is the job's study, its one source of truth: a journal that is missing
or empty is refused, never replaced by a fresh study, and damage anywhere but the
tail is refused with the line it is on.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from flagrun.errors import StoreError

OPTUNA_LOCK_SUFFIX = ".lock"  # Optuna's JournalFileSymlinkLock: <journal>.lock
_TAIL_BLOCK = 1 << 16


def drop_torn_tail(path: Path) -> int:
    """Truncate ``path`` after its last newline; the number of bytes dropped (0: none)."""
    with open(path, "r+b") as handle:
        size = handle.seek(0, os.SEEK_END)
        end = size
        while end > 0:
            start = max(0, end - _TAIL_BLOCK)
            handle.seek(start)
            block = handle.read(end - start)
            cut = block.rfind(b"\n")
            if cut >= 0:
                keep = start + cut + 1
                break
            end = start
        else:
            keep = 0
        if keep < size:
            handle.truncate(keep)
            handle.flush()
            os.fsync(handle.fileno())
        return size - keep


def check_journal(path: Path) -> list[str]:
    """Make the study journal of a job being resumed safe to append to; notes on what was done.

    The caller holds the job's lock. StoreError when the journal is missing or empty.
    """
    name = path.name
    if not path.is_file():
        raise StoreError(
            f"{path} is missing: the job's study (every trial's state) is gone",
            hint="its trials' folders and trials.jsonl are still there; start a new job to go on",
        )
    if path.stat().st_size == 0:
        raise StoreError(
            f"{path} is empty: the job's study (every trial's state) is gone",
            hint="its trials' folders and trials.jsonl are still there; start a new job to go on",
        )
    notes = []
    dropped = drop_torn_tail(path)
    if dropped:
        notes.append(f"{name}: dropped a torn last record ({dropped} bytes) a killed tuner left")
    lock = path.with_name(name + OPTUNA_LOCK_SUFFIX)
    if lock.is_symlink() or lock.exists():  # a dead tuner's Optuna lock: we hold the job
        with contextlib.suppress(OSError):
            lock.unlink()
    return notes


def damaged_line(path: Path) -> int | None:
    """The number of the first line of ``path`` that is not a JSON record, or None."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                json.loads(line)
            except ValueError:
                return number
    return None


def unreadable_journal(path: Path, exc: Exception) -> StoreError:
    """The error for a journal Optuna could not read (damage before its last line)."""
    line = damaged_line(path)
    where = f"{path}:{line}" if line is not None else str(path)
    return StoreError(
        f"{where}: the study journal is damaged ({type(exc).__name__}: {exc})",
        hint="the records after a damaged line cannot be trusted; start a new job to go on",
    )
