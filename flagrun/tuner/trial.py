"""One trial's life in the loop: what it runs, what its metric series says, how it ended."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from flagrun import launch, metrics, objective, pruners, runner
from flagrun.errors import MetricsError
from flagrun.executors import TrialProcess
from flagrun.pace import Pace, PaceWatch
from flagrun.records import RunStatus, TrialState
from flagrun.spec import TuningSpec
from flagrun.tuner.job import Job


@dataclass
class ActiveTrial:
    """A trial whose process runs."""

    trial: optuna.Trial
    trial_id: int  # Cloud ML's trialId: Optuna's trial number + 1
    flags: dict[str, Any]
    process: TrialProcess
    started: float = field(default_factory=time.monotonic)
    started_at: float = field(default_factory=time.time)  # the origin of its elapsed time
    tag: str | None = None  # the event-file tag the objective resolved to
    reported: int = 0  # how many points of the metric series were looked at for the pruner
    reported_steps: set[int] = field(default_factory=set)  # the steps the pruner has
    pending: tuple[int, float] | None = None  # a time step not over yet: (step, last value)
    pruned_at: int | None = None
    interrupted: bool = False  # stopped by the tuner itself: its parameters run again
    paused: bool = False  # stopped at a rung with its checkpoint kept (tuner.promotion)
    pace_watch: PaceWatch | None = None  # its readings of progress through an epoch

    def read_epoch_time(self) -> tuple[Pace, float] | None:
        """Its latest progress reading and the epoch time it shows (``flagrun.pace``)."""
        if self.pace_watch is None:
            self.pace_watch = PaceWatch(self.process.run_dir, self.started_at)
        return self.pace_watch.epoch_time()

    def training_began(self) -> float | None:
        """Seconds from its start to its first progress reading (by then it trained), or
        None: it has said nothing of its progress (yet)."""
        began = self.pace_watch.began if self.pace_watch is not None else None
        return None if began is None else began - self.started_at

    @property
    def series(self) -> list[metrics.Scalar]:
        return self.process.metrics.scalars.get(self.tag, []) if self.tag else []

    @property
    def last_point(self) -> tuple[float | None, int | None]:
        series = self.series
        return (series[-1].value, series[-1].step) if series else (None, None)


@dataclass(frozen=True)
class Verdict:
    """How a finished trial is counted."""

    state: TrialState
    value: float | None = None
    step: int | None = None
    reason: str | None = None
    missing_tag: bool = False  # the objective's tag was never written


def launch_spec(job: Job, trial_id: int, flags: dict[str, Any]) -> runner.RunSpec:
    """What a trial runs (``flagrun.launch``): the job's trainer from its snapshot, its
    fixed args and --job-dir, the fixed flags then the tuned ones, Cloud ML's env."""
    spec = job.spec
    run_dir = job.trial_dir(trial_id)
    return runner.RunSpec(
        script=job.script,
        run_dir=run_dir,
        source_dir=job.source_dir,
        project_dir=job.project_dir,
        flags={**job.record.fixed_flags, **flags},
        module=job.record.launch.module,
        args=launch.trial_args(job.record.launch, run_dir),
        timeout=spec.trial_timeout,
        env={
            "FLAGRUN_JOB_DIR": str(job.job_dir),
            "FLAGRUN_TRIAL_ID": str(trial_id),
            "FLAGRUN_SCRIPT_DIR": str(_original_script_dir(job)),
            objective.METRIC_TAG_ENV: spec.metric_tag,
            **launch.trial_env(run_dir, trial_id, spec.metric_tag),
        },
        echo=False,
        source_hash=job.record.source_hash,
        job=job.job_dir.name,
        trial_id=trial_id,
    )


def _original_script_dir(job: Job) -> Path:
    """The folder of the script the job was started with (trials run its snapshot)."""
    record = job.record
    if not record.script_path:
        return job.script.parent
    return (Path(record.project_dir or ".") / record.script_path).parent


def judge(active: ActiveTrial, result: runner.RunResult, spec: TuningSpec) -> Verdict:
    """Decide a finished trial's state and objective value.

    A trial is PRUNED only when the stop reached a running process: one that exited by
    itself before the tuner could stop it finished, and is judged on its metric.
    """
    if active.pruned_at is not None and result.status == RunStatus.PRUNED:
        value, step = active.last_point
        return Verdict(TrialState.PRUNED, value, step, result.reason)
    if active.interrupted:
        return Verdict(TrialState.FAILED, reason=result.reason or "interrupted")
    if result.status != RunStatus.COMPLETED:
        return Verdict(TrialState.FAILED, reason=result.reason or f"exit code {result.exit_code}")
    source = active.process.metrics
    tags = source.tags()
    tag = metrics.find_tag(spec.metric_tag, tags)
    if tag is None:
        return Verdict(TrialState.FAILED, reason=missing_tag_message(spec.metric_tag, tags),
                       missing_tag=True)  # fmt: skip
    value, step = metrics.aggregate(source.scalars[tag], spec.metric_aggregation)
    if not math.isfinite(value):
        return Verdict(
            TrialState.FAILED, None, step, f"objective {spec.metric_tag} is {value} at step {step}"
        )
    return Verdict(TrialState.COMPLETE, value, step)


def missing_tag_error(spec: TuningSpec, trial_id: int, tags: list[str]) -> MetricsError | None:
    """The error that stops a job whose first finished trial lacks the objective's tag
    (a typo in hyperparameterMetricTag must not burn the budget); None when the tag is
    there after all."""
    try:
        metrics.resolve_tag(spec.metric_tag, tags)
    except MetricsError as exc:
        where = f"{spec.path}: " if spec.path else ""
        return MetricsError(
            f"trial {trial_id} finished without the metric tag {spec.metric_tag!r} "
            f"({where}hyperparameterMetricTag); stopping the job. {exc.message}",
            hint=exc.hint,
        )
    return None


def missing_tag_message(tag: str, tags: list[str]) -> str:
    shown = ", ".join(tags) if tags else "none"
    return f"metric tag {tag!r} not found; tags written: {shown}"


def report_new_points(
    active: ActiveTrial, spec: TuningSpec, *, finished: bool = False, lag: float = 1.0
) -> None:
    """Give the pruner the metric points it has not seen (every trial's whole curve must
    reach it, or later trials are judged against nothing). A step the pruner already has
    is skipped (Hugging Face's final evaluate repeats the last epoch's step): the first
    value of a step stands, as Optuna would keep it anyway.

    With ``earlyStopping: {resource: time}`` a point's step is its time since the trial
    started, in ``timeStep`` units, from the point's own wall time. Several epochs can
    land in one time step, and the last of them is what the trial had reached by its end:
    so a time step is reported once it is over: a later step has a point, or its end is
    ``lag`` seconds past (by then its points have reached the tuner: capture makes the
    writers flush each point, and the loop passes two of its polls), or the trial
    ``finished``."""
    if active.tag is None:
        active.tag = metrics.find_tag(spec.metric_tag, active.process.metrics.tags())
    if not spec.early_stopping:
        return
    resource = pruners.resource_of(spec)
    series = active.series
    for point in series[active.reported :]:
        if not math.isfinite(point.value):
            continue
        step = resource.step_of(point.step, point.wall_time - active.started_at)
        if not resource.is_time:
            _report(active, step, point.value)
            continue
        if active.pending is not None and active.pending[0] != step:
            _report(active, *active.pending)
        active.pending = (step, point.value)
    active.reported = len(series)
    if active.pending is not None:
        step_end = active.started_at + active.pending[0] * resource.time_step
        if finished or time.time() > step_end + lag:
            _report(active, *active.pending)
            active.pending = None


def _report(active: ActiveTrial, step: int, value: float) -> None:
    if step in active.reported_steps:
        return
    try:
        active.trial.report(value, step)
    except optuna.exceptions.UpdateFinishedTrialError:
        return  # another worker closed it; the tell at its end says so
    active.reported_steps.add(step)


def should_prune(active: ActiveTrial) -> bool:
    try:
        return active.trial.should_prune()
    except optuna.exceptions.UpdateFinishedTrialError:
        return False  # another worker closed it
