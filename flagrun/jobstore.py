"""Tuning jobs on disk: the job folder layout, job.json and the trials index.

A job lives in ``<runs>/<job-id>/``::

    job.json          the spec, script, state, timings (written atomically)
    study.journal     the embedded Optuna storage (the source of truth for resume)
    source/           the source snapshot every trial runs from
    trials/<n>/       one run folder per trial, same layout as `flagrun train`
    trials.jsonl      the trials index: one JSON line per trial state change

The index lets ``flagrun trials`` answer without importing Optuna (~0.5 s).
Each line is written with a single ``write`` on an ``O_APPEND`` descriptor and
fsynced; a reader keeps the last line per trial. The index is a cache: damaged
lines are skipped and the trials' own ``run.json`` fill in (``read_index``).
Stdlib only.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from flagrun import _paths, store
from flagrun._atomic import named, read_json, write_json_atomic
from flagrun.errors import StoreError, UsageError
from flagrun.records import JobRecord, JobState, RecordError, RunRecord, TrialRow, TrialState
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
    "TrialsIndex",
    "read_index",
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
    """Append one trial state change to the index (one write, then fsync).

    When the index ends in a torn line (a writer killed mid-line), the new row starts
    on a line of its own rather than being glued onto it.
    """
    text = json.dumps(row.to_dict(), separators=(",", ":"), allow_nan=False, default=str)
    path = job_dir / INDEX_FILE
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
        os.write(fd, ("\n" if torn else "").encode() + (text + "\n").encode())
        os.fsync(fd)
    except OSError as exc:  # a full disk: say which file
        raise named(exc, path) from None
    finally:
        os.close(fd)


@dataclass
class TrialsIndex:
    """A job's trials as its index and the trials' own folders tell them."""

    rows: list[TrialRow]  # the latest row of every trial, by trialId
    notes: list[str] = field(default_factory=list)  # damage found, and what was read instead


def read_trials(job_dir: Path) -> list[TrialRow]:
    """The latest row of every trial, in trialId order (see ``read_index``)."""
    return read_index(job_dir).rows


def read_index(job_dir: Path) -> TrialsIndex:
    """The job's trials, by one rule for a damaged or missing index.

    The index is a cache of what the trials' own ``run.json`` say: a line that is not
    a whole, well-formed row (torn by a kill, edited, its ``runDir`` leading out of
    the job folder) is skipped; then every trial folder whose trial has no row, or
    only a RUNNING one, is read from its ``run.json``, whose ``trial`` outcome the
    tuner writes before the index row. What was skipped or read instead is noted.
    """
    path = job_dir / INDEX_FILE
    latest, damaged, found = _index_rows(path)
    notes = []
    if damaged:
        shown = ", ".join(str(number) for number in damaged[:5])
        more = "..." if len(damaged) > 5 else ""
        notes.append(
            f"{path}: skipped {len(damaged)} damaged line(s) (line {shown}{more}); "
            "their trials are read from their own run folders"
        )
    rebuilt = _fill_from_runs(job_dir, latest)
    if not found and rebuilt:
        notes.append(f"{path} is missing: {rebuilt} trial(s) read from their own run folders")
    return TrialsIndex([latest[key] for key in sorted(latest)], notes)


def _index_rows(path: Path) -> tuple[dict[int, TrialRow], list[int], bool]:
    """(the latest good row per trial, the numbers of the damaged lines, whether it exists)."""
    latest: dict[int, TrialRow] = {}
    damaged = []
    try:
        with open(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    row = TrialRow.from_dict(json.loads(raw))
                except (ValueError, RecordError):
                    damaged.append(number)
                    continue
                if not _paths.is_plain_relative(row.run_dir):
                    damaged.append(number)
                    continue
                latest[row.trial_id] = row
    except FileNotFoundError:
        return latest, damaged, False
    return latest, damaged, True


def _fill_from_runs(job_dir: Path, latest: dict[int, TrialRow]) -> int:
    """Rows from the trials' run.json where the index has none or only RUNNING; how many."""
    try:
        names = os.listdir(job_dir / TRIALS_DIR)
    except (FileNotFoundError, NotADirectoryError):
        return 0
    params: list[str] | None = None
    filled = 0
    for trial_id in sorted(int(name) for name in names if name.isdigit()):
        row = latest.get(trial_id)
        if row is not None and row.state != TrialState.RUNNING:
            continue
        try:
            record = store.read_run(trial_dir(job_dir, trial_id))
        except StoreError:
            continue
        if row is not None and record.trial is None:
            continue  # still running, as the index says
        if params is None:
            params = _param_names(job_dir)
        latest[trial_id] = _row_of_run(trial_id, record, row, params)
        filled += 1
    return filled


def _param_names(job_dir: Path) -> list[str]:
    try:
        return [param.name for param in read_job(job_dir).spec.params]
    except StoreError:
        return []


def _row_of_run(
    trial_id: int, record: RunRecord, row: TrialRow | None, params: list[str]
) -> TrialRow:
    """A trial's row as its own run.json tells it."""
    outcome = record.trial
    if row is not None:
        flags = row.hyperparameters
    else:
        flags = {k: v for k, v in record.flags.items() if k in params} if params else record.flags
    return TrialRow(
        trial_id=trial_id,
        state=outcome.state if outcome else TrialState.RUNNING,
        hyperparameters=flags,
        run_dir=f"{TRIALS_DIR}/{trial_id}",
        objective_value=outcome.objective_value if outcome else None,
        training_step=outcome.training_step if outcome else None,
        duration=record.duration if outcome else None,
        reason=outcome.reason if outcome else None,
        time=record.end or record.start,
        host=record.runner.host if record.runner else None,
        resumed_from=row.resumed_from if row is not None else None,
    )


def list_jobs(runs_dir: Path) -> list[Path]:
    """Job folders under ``runs_dir``, newest first.

    Ids are sortable timestamps, but a shared study's folder is named after the
    study, so the order is by ``created`` first.
    """
    store.check_runs_dir(runs_dir)
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
