"""What ``flagrun tune`` is asked to do, and what a finished job reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flagrun.records import Best, JobState, TrialState


@dataclass
class TuneRequest:
    """Everything ``flagrun tune`` accepts; each field mirrors a CLI option."""

    script: Path | None = None
    config: Path | None = None
    module: str | None = None  # -m: the trainer as a module of a package (python -m)
    args: list[str] = field(default_factory=list)  # after --: given to every trial first
    job_dir: str | None = None  # --job-dir every trial gets (over the file's jobDir)
    max_trials: int | None = None
    parallel: int | None = None
    runs_dir: Path = Path("runs")
    resume: str | None = None
    grid: dict[str, list[str]] | None = None
    sample: float | None = None
    metric: str | None = None
    goal: str | None = None
    gpus: str | None = None
    progress: str = "auto"
    fixed: dict[str, Any] = field(default_factory=dict)  # NAME=VALUE given to every trial
    storage: str | None = None  # a database URL shared by workers (else FLAGRUN_STORAGE)
    study: str | None = None  # the shared study's name
    artifacts: str | None = None  # where finished trials' folders are uploaded
    # A Dask cluster to run the trials on: a scheduler address, a distributed.Client or a
    # cluster object; "none" runs them here (else FLAGRUN_CLUSTER, else a resumed job's own).
    cluster: Any = None

    @property
    def runs_here(self) -> bool:
        """The trials run on this machine (no cluster asked for)."""
        return self.cluster is None or self.cluster == "none"


@dataclass
class JobResult:
    """What a finished (or stopped) tuning job reports."""

    job_dir: Path
    state: JobState
    counts: dict[TrialState, int]
    best: Best | None
    reason: str | None = None

    @property
    def exit_code(self) -> int:
        if self.state == JobState.INTERRUPTED:
            return 130
        complete = self.counts.get(TrialState.COMPLETE, 0)
        return 0 if self.state == JobState.COMPLETED and complete else 1
