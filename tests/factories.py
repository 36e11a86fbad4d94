"""Typed records for tests that write run, job and trial records directly."""

from __future__ import annotations

from typing import Any

from flagrun.records import JobRecord, JobState, RunRecord, RunStatus, TrialRow, TrialState
from flagrun.spec import ParamSpec, TuningSpec


def run_record(run_id: str = "run", status: str = "COMPLETED", **fields: Any) -> RunRecord:
    """A run.json record with the required keys filled in."""
    fields.setdefault("script", "train.py")
    fields.setdefault("start", "2026-01-01T00:00:00.000Z")
    return RunRecord(id=run_id, status=RunStatus(status), **fields)


def job_record(
    job_id: str = "job", state: str = "RUNNING", spec: TuningSpec | None = None, **fields: Any
) -> JobRecord:
    """A job.json record with the required keys filled in."""
    spec = spec or TuningSpec(goal="MAXIMIZE", metric_tag="val_acc")
    fields.setdefault("script", "train.py")
    fields.setdefault("created", "2026-01-01T00:00:00+00:00")
    fields.setdefault("updated", fields["created"])
    return JobRecord(id=job_id, state=JobState(state), spec=spec, **fields)


def trial_row(trial_id: int, state: str, **fields: Any) -> TrialRow:
    """A trials-index row."""
    fields.setdefault("hyperparameters", {})
    fields.setdefault("run_dir", f"trials/{trial_id}")
    return TrialRow(trial_id=trial_id, state=TrialState(state), **fields)


def spec_of(params: list[dict[str, Any]], **fields: Any) -> TuningSpec:
    """A TuningSpec from job.json-style param dicts."""
    return TuningSpec(params=tuple(ParamSpec.from_dict(p) for p in params), **fields)
