"""Tuning jobs on disk: the job folder layout, job.json and the trials index.

A job lives in ``<runs>/<job-id>/``::

    job.json          the spec, script, state, timings (written atomically)
    study.journal     the embedded Optuna storage (the source of truth for resume)
    source/           the source snapshot every trial runs from
    trials/<n>/       one run folder per trial, same layout as `flagrun train`
    trials.jsonl      the trials index: one JSON line per trial state change

The index lets ``flagrun trials`` answer without importing Optuna (~0.5 s).
Each line is written with a single ``write`` on an ``O_APPEND`` descriptor and
fsynced; a reader keeps the last line per trial and skips a torn last line.
Stdlib only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from flagrun import store
from flagrun._atomic import read_json, write_json_atomic
from flagrun.errors import StoreError, UsageError
from flagrun.records import JobRecord, JobState, RecordError, TrialRow
from flagrun.store import JOB_FILE, SOURCE_DIR, TRIALS_DIR

__all__ = [
    "INDEX_FILE",
    "JOB_FILE",
    "SOURCE_DIR",
    "STUDY_FILE",
    "TRIALS_DIR",
    "append_trial",
    "is_job_dir",
    "job_state",
    "list_jobs",
    "read_job",
    "read_trials",
    "resolve_job",
    "trial_dir",
    "write_job",
]

INDEX_FILE = "trials.jsonl"
STUDY_FILE = "study.journal"


def is_job_dir(path: Path) -> bool:
    """True when ``path`` holds a tuning job."""
    return (path / JOB_FILE).is_file()


def read_job(job_dir: Path) -> JobRecord:
    """Read ``job.json``; a missing or damaged file is a StoreError naming it."""
    path = job_dir / JOB_FILE
    try:
        return JobRecord.from_dict(read_json(path))
    except FileNotFoundError:
        raise StoreError(f"{job_dir} is not a tuning job (no {JOB_FILE})") from None
    except (OSError, ValueError) as exc:
        raise StoreError(f"cannot read {path}: {exc}", hint="the record is damaged") from None
    except RecordError as exc:
        raise StoreError(
            f"cannot read {path}: {exc.message}", hint="the record is damaged"
        ) from None


def write_job(job_dir: Path, job: JobRecord) -> None:
    """Replace ``job.json`` atomically."""
    write_json_atomic(job_dir / JOB_FILE, job.to_dict())


def job_state(record: JobRecord) -> JobState:
    """A job's state, CRASHED when it says RUNNING but its tuner is gone."""
    if record.state == JobState.RUNNING and not store.is_alive(record.tuner):
        return JobState.CRASHED
    return record.state


def trial_dir(job_dir: Path, trial_id: int) -> Path:
    """The run folder of trial ``trial_id`` (1-based, as Cloud ML numbers trials)."""
    return job_dir / TRIALS_DIR / str(trial_id)


def append_trial(job_dir: Path, row: TrialRow) -> None:
    """Append one trial state change to the index (one write, then fsync)."""
    text = json.dumps(row.to_dict(), separators=(",", ":"), allow_nan=False, default=str)
    fd = os.open(job_dir / INDEX_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (text + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def read_trials(job_dir: Path) -> list[TrialRow]:
    """The latest row of every trial in the index, in trialId order."""
    latest: dict[int, TrialRow] = {}
    try:
        with open(job_dir / INDEX_FILE, "rb") as handle:
            for raw in handle:
                try:
                    row = TrialRow.from_dict(json.loads(raw))
                except (ValueError, RecordError):
                    continue  # a torn last line from a killed writer
                latest[row.trial_id] = row
    except FileNotFoundError:
        return []
    return [latest[key] for key in sorted(latest)]


def list_jobs(runs_dir: Path) -> list[Path]:
    """Job folders under ``runs_dir``, newest first.

    Ids are sortable timestamps, but a shared study's folder is named after the
    study, so the order is by ``created`` first.
    """
    if not runs_dir.is_dir():
        return []
    jobs = [entry for entry in runs_dir.iterdir() if entry.is_dir() and is_job_dir(entry)]
    return sorted(jobs, key=lambda path: (_created(path), path.name), reverse=True)


def _created(job_dir: Path) -> str:
    try:
        created = read_json(job_dir / JOB_FILE).get("created")
    except (OSError, ValueError, AttributeError):
        return ""
    return created if isinstance(created, str) else ""


def resolve_job(runs_dir: Path, ref: str | None) -> Path:
    """Find a job by id, ``latest`` (or None), or a path to its folder."""
    if ref in (None, "", "latest"):
        jobs = list_jobs(runs_dir)
        if not jobs:
            raise UsageError(
                f"no tuning job in {runs_dir}", hint="start one with `flagrun tune --config FILE`"
            )
        return jobs[0]
    assert ref is not None
    candidate = Path(ref)
    if candidate.is_dir() and is_job_dir(candidate):
        return candidate
    if candidate.is_absolute() or ".." in candidate.parts or len(candidate.parts) != 1:
        raise UsageError(f"{ref!r} is not a job id", hint="give an id from `flagrun jobs`")
    job_dir = runs_dir / ref
    if not is_job_dir(job_dir) or not job_dir.resolve().is_relative_to(runs_dir.resolve()):
        recent = ", ".join(path.name for path in list_jobs(runs_dir)[:5]) or "none"
        raise UsageError(f"no tuning job {ref!r} in {runs_dir}", hint=f"recent jobs: {recent}")
    return job_dir
