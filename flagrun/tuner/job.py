"""An open tuning job: its folder, record, study and what its trials run; and the
record keeping (job.json, the trials index) as trials change state."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna

from flagrun import jobstore, store
from flagrun.records import Best, JobRecord, JobState, Launch, TrialRow, TrialState
from flagrun.spec import TuningSpec

if TYPE_CHECKING:
    from flagrun.artifacts import ArtifactStore
    from flagrun.joblock import JobLock
    from flagrun.launch import Trainer
    from flagrun.tuner.budget import Tally

STUDY_NAME = "flagrun"  # the study's name inside a one-machine job's journal


@dataclass
class Job:
    """An open job: its folder, record, Optuna study and what the trials run."""

    job_dir: Path
    record: JobRecord
    study: optuna.Study
    script: Path  # the trainer's entry file inside the job's source snapshot
    project_dir: Path
    notes: list[str] = field(default_factory=list)  # said once when the loop starts
    artifacts: ArtifactStore | None = None  # where finished trials are uploaded
    artifact_prefix: str = ""
    lock: JobLock | None = None  # one tuner per job (a shared study's folder has none)

    @property
    def spec(self) -> TuningSpec:
        return self.record.spec

    @property
    def shared(self) -> bool:
        """The study lives in a database other workers use too."""
        return self.record.shared

    @property
    def source_dir(self) -> Path:
        return self.job_dir / jobstore.SOURCE_DIR

    def trial_dir(self, trial_id: int) -> Path:
        return jobstore.trial_dir(self.job_dir, trial_id)

    def close(self) -> None:
        """Let go of the job: another tuner may take it now."""
        if self.lock is not None:
            self.lock.release()

    # -- the records ------------------------------------------------------------------------

    def mark_running(self) -> None:
        """This process tunes the job now."""
        record = self.record
        record.state, record.reason, record.ended = JobState.RUNNING, None, None
        record.updated, record.tuner = now(), store.runner_identity()
        jobstore.write_job(self.job_dir, record)

    def record_trial(self, row: TrialRow, tally: Tally) -> None:
        """A trial's state change: one line in the trials index, then job.json."""
        jobstore.append_trial(self.job_dir, row)
        self.record.updated, self.record.counts, self.record.best = now(), tally.counts, self.best()
        jobstore.write_job(self.job_dir, self.record)

    def finish(self, state: JobState, reason: str | None, tally: Tally) -> None:
        record = self.record
        record.state, record.reason = state, reason
        record.ended = record.updated = now()
        record.counts, record.best = tally.counts, self.best()
        jobstore.write_job(self.job_dir, record)

    def best(self) -> Best | None:
        """The study's best trial so far."""
        try:
            best = self.study.best_trial
        except ValueError:
            return None
        return Best(best.number + 1, best.value, best.user_attrs.get("flags", {}))


def new_record(
    job_dir: Path,
    spec: TuningSpec,
    trainer: Trainer,
    *,
    config: Path | None,
    fixed_flags: dict[str, Any],
    launch: Launch,
    storage: str,
    study: str,
    artifacts: str | None,
    source_hash: str | None,
    shared: bool = False,
    created: str | None = None,
) -> JobRecord:
    """The record of a job that starts now (or of a worker joining a shared study)."""
    stamp = now()
    return JobRecord(
        id=job_dir.name,
        state=JobState.RUNNING,
        spec=spec,
        script=trainer.entry,
        created=created or stamp,
        updated=stamp,
        script_path=str(trainer.file),
        config=str(config.resolve()) if config else None,
        project_dir=str(Path.cwd()),
        fixed_flags=fixed_flags,
        launch=launch,
        storage=storage,
        study=study,
        shared=shared,
        artifacts=artifacts,
        source_hash=source_hash,
        tuner=store.runner_identity(),
    )


def trial_row(
    trial_id: int,
    state: TrialState,
    flags: dict[str, Any],
    *,
    run_dir: str | None = None,
    value: float | None = None,
    step: int | None = None,
    reason: str | None = None,
    duration: float | None = None,
    resumed_from: int | None = None,
) -> TrialRow:
    """A row of the trials index, stamped now on this host."""
    return TrialRow(
        trial_id=trial_id,
        state=state,
        hyperparameters=flags,
        run_dir=run_dir or f"{jobstore.TRIALS_DIR}/{trial_id}",
        objective_value=value,
        training_step=step,
        duration=duration,
        reason=reason,
        time=now(),
        host=socket.gethostname(),
        resumed_from=resumed_from,
    )


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
