"""The tuning loop: Optuna's ask/tell over isolated trial processes.

``tune()`` validates everything first (the YAML, the script's flags), then
creates or reopens a job folder (see ``jobstore``) and keeps
``maxParallelTrials`` trial processes busy: as soon as a slot frees, Optuna is
asked for the next flag values. Each trial's objective is read from the
TensorBoard event files it writes; with early stopping on, its live series is
reported to an Optuna pruner and a hopeless trial is stopped.

Trial accounting follows Cloud ML Engine: ``maxTrials`` counts finished
trials (complete, pruned, or failed by the script). Trials cut short by the
tuner itself (Ctrl-C, a crash of the tuner) are marked FAILED with
``interrupted`` and their parameters are queued to run again on resume.
"""

from __future__ import annotations

import dataclasses
import math
import os
import select
import signal
import socket
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import optuna

from flagrun import hparams, introspect, jobstore, metrics, runner, space, store
from flagrun.errors import MetricsError, RunError, SpecError, UsageError
from flagrun.gpus import GpuPool, parse_gpus
from flagrun.progress import make_progress
from flagrun.spec import TuningSpec, check_against_flags, grid_spec, load_spec

POLL_SECONDS = 0.05
METRIC_POLL_SECONDS = 0.5
STOP_GRACE_SECONDS = 5.0
STUDY_NAME = "flagrun"

COMPLETE, PRUNED, FAILED, RUNNING = "COMPLETE", "PRUNED", "FAILED", "RUNNING"


@dataclass
class TuneRequest:
    """Everything ``flagrun tune`` accepts; each field mirrors a CLI option."""

    script: Path | None = None
    config: Path | None = None
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
    fixed: dict[str, str] = field(default_factory=dict)  # NAME=VALUE given to every trial


@dataclass
class JobResult:
    """What a finished (or stopped) tuning job reports."""

    job_dir: Path
    state: str
    counts: dict[str, int]
    best: dict[str, Any] | None
    reason: str | None = None

    @property
    def exit_code(self) -> int:
        if self.state == "INTERRUPTED":
            return 130
        return 0 if self.state == "COMPLETED" and self.counts.get(COMPLETE, 0) else 1


def tune(
    script: str | os.PathLike[str] | None = None,
    config: str | os.PathLike[str] | None = None,
    **options: Any,
) -> JobResult:
    """Run (or resume) a tuning job; the library verb behind ``flagrun tune``."""
    request = TuneRequest(
        script=Path(script) if script else None,
        config=Path(config) if config else None,
        **options,
    )
    request.runs_dir = Path(request.runs_dir).absolute()
    job = resume_job(request) if request.resume else create_job(request)
    return Tuner(job, request).run()


# --------------------------------------------------------------------------- job setup


@dataclass
class Job:
    """An open job: its folder, spec, Optuna study and what the trials run."""

    job_dir: Path
    record: dict[str, Any]
    spec: TuningSpec
    study: optuna.Study
    script: Path  # the script inside the job's source snapshot
    project_dir: Path
    notes: list[str] = field(default_factory=list)  # said once when the loop starts


def create_job(request: TuneRequest) -> Job:
    """Validate the request, then create the job folder, snapshot and study."""
    spec = _load_request_spec(request)
    script = _resolve_script(request, spec)
    declared = introspect.declared_flags(script)
    check_against_flags(spec, declared)
    fixed = _check_fixed_flags(request.fixed, spec, script)
    spec = _apply_overrides(spec, request)
    if spec.resume_job_id:
        return _resume_from_yaml(request, spec)

    # Everything is valid: from here on the job exists on disk.
    request.runs_dir.mkdir(parents=True, exist_ok=True)
    job_dir = store.new_run_dir(request.runs_dir)
    source_dir = job_dir / jobstore.SOURCE_DIR
    source_hash = store.snapshot_source(script.parent, source_dir)
    record = {
        "format": 1,
        "kind": "job",
        "id": job_dir.name,
        "state": "RUNNING",
        "reason": None,
        "script": script.name,
        "script_path": str(script),
        "config": str(request.config.resolve()) if request.config else None,
        "project_dir": str(Path.cwd()),
        "spec": spec.to_dict(),
        "fixed_flags": fixed,
        "storage": jobstore.STUDY_FILE,
        "study": STUDY_NAME,
        "source_hash": source_hash,
        "created": _now(),
        "updated": _now(),
        "ended": None,
        "counts": {},
        "best": None,
    }
    jobstore.write_job(job_dir, record)
    study = _open_study(job_dir, spec, create=True)
    if spec.algorithm == "GRID_SEARCH":
        for point in space.grid_points(spec):
            study.enqueue_trial(point)
    notes = []
    if spec.ignored_fields:
        notes.append(f"ignored locally (Cloud ML only): {', '.join(spec.ignored_fields)}")
    return Job(job_dir, record, spec, study, source_dir / script.name, Path.cwd(), notes)


def _resume_from_yaml(request: TuneRequest, spec: TuningSpec) -> Job:
    """``resumePreviousJobId``: continue that job's study with this YAML's budget."""
    job = resume_job(
        dataclasses.replace(
            request,
            resume=spec.resume_job_id,
            max_trials=spec.max_trials,
            parallel=spec.max_parallel_trials,
        )
    )
    if _search_space(job.spec) != _search_space(spec):
        raise SpecError(
            f"{spec.path}: resumePreviousJobId {spec.resume_job_id} searched other params",
            hint="a resumed job keeps its search space: use the same params, or start a new job",
        )
    return job


def _search_space(spec: TuningSpec) -> list[dict[str, Any]]:
    """The params without where they stand in their YAML file."""
    return [{**param.to_dict(), "line": None} for param in spec.params]


def resume_job(request: TuneRequest) -> Job:
    """Reopen a job: same spec, same source snapshot, same study."""
    if request.fixed:
        raise UsageError(
            "NAME=VALUE flags are fixed when a job starts; a resumed job keeps its own",
            hint="start a new job to change them",
        )
    job_dir = jobstore.resolve_job(request.runs_dir, request.resume)
    record = jobstore.read_job(job_dir)
    owner = record.get("tuner")
    if record.get("state") == "RUNNING" and owner and store.is_alive(owner):
        raise UsageError(
            f"job {job_dir.name} is still being tuned by process {owner.get('pid')}",
            hint="wait for it, or stop it with Ctrl-C before resuming",
        )
    spec = _apply_overrides(TuningSpec.from_dict(record["spec"]), request)
    record["spec"] = spec.to_dict()
    study = _open_study(job_dir, spec, create=False)
    script = job_dir / jobstore.SOURCE_DIR / record["script"]
    return Job(job_dir, record, spec, study, script, Path(record["project_dir"]))


def _load_request_spec(request: TuneRequest) -> TuningSpec:
    if request.grid:
        if request.config:
            raise UsageError("give either --config or --grid, not both")
        script = request.script or Path("train.py")
        declared = introspect.declared_flags(_existing_script(script))
        return grid_spec(
            request.grid,
            declared,
            sample=request.sample,
            metric_tag=request.metric,
            goal=(request.goal or "MAXIMIZE").upper(),
        )
    if request.config is None:
        raise UsageError(
            "flagrun tune needs a tuning YAML",
            hint="pass --config tuning.yml, or --grid NAME=V1,V2 for a grid without YAML",
        )
    spec = load_spec(request.config)
    if request.metric or request.goal:
        spec = dataclasses.replace(
            spec,
            metric_tag=request.metric or spec.metric_tag,
            goal=(request.goal or spec.goal).upper(),
        )
    return spec


def _resolve_script(request: TuneRequest, spec: TuningSpec) -> Path:
    """The training script: YAML `script:`, the argument, pythonModule, or train.py."""
    yaml_script = None
    if spec.script:
        base = spec.path.parent if spec.path else Path.cwd()
        yaml_script = (base / spec.script).resolve()
    given = request.script.resolve() if request.script else None
    if yaml_script and given and yaml_script != given:
        raise UsageError(
            f"two training scripts named: {request.script} on the command line and "
            f"script: {spec.script} in {spec.path}",
            hint="drop one of them",
        )
    if yaml_script or given:
        return _existing_script(yaml_script or given)
    if spec.python_module:
        return _existing_script(Path(*spec.python_module.split(".")).with_suffix(".py"))
    return _existing_script(Path("train.py"))


def _check_fixed_flags(values: dict[str, str], spec: TuningSpec, script: Path) -> dict[str, Any]:
    """Flags every trial gets as given: typed by the script, never a tuned parameter."""
    tuned = {param.name for param in spec.params}
    clash = sorted(tuned & set(values))
    if clash:
        raise UsageError(
            f"{', '.join(clash)} is tuned by the YAML and also fixed on the command line",
            hint="drop the NAME=VALUE, or the parameter from params",
        )
    return runner.check_flags(script, values)


def _existing_script(script: Path) -> Path:
    if not script.is_file():
        raise UsageError(
            f"training script {script} not found",
            hint="name it as the first argument: flagrun tune SCRIPT --config tuning.yml",
        )
    return script.resolve()


def _apply_overrides(spec: TuningSpec, request: TuneRequest) -> TuningSpec:
    changes: dict[str, Any] = {}
    if request.max_trials is not None:
        if request.max_trials < 1:
            raise UsageError("--max-trials must be at least 1")
        changes["max_trials"] = request.max_trials
    if request.parallel is not None:
        if request.parallel < 1:
            raise UsageError("--parallel must be at least 1")
        changes["max_parallel_trials"] = request.parallel
    if spec.algorithm == "GRID_SEARCH":
        grid_size = len(space.grid_points(spec))
        changes["max_trials"] = min(changes.get("max_trials", spec.max_trials), grid_size)
    return dataclasses.replace(spec, **changes) if changes else spec


def _open_study(job_dir: Path, spec: TuningSpec, *, create: bool) -> optuna.Study:
    # Optuna's journal file, not SQLite: the tuner's traffic costs 3 ms per trial on it
    # against 33 ms on SQLite, and a resume reopens it 7x faster (scripts/bench_storage.py).
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    backend = optuna.storages.journal.JournalFileBackend(str(job_dir / jobstore.STUDY_FILE))
    storage = optuna.storages.JournalStorage(backend)
    direction = "maximize" if spec.goal == "MAXIMIZE" else "minimize"
    return optuna.create_study(
        storage=storage,
        study_name=STUDY_NAME,
        direction=direction,
        sampler=space.make_sampler(spec),
        pruner=make_pruner(spec),
        load_if_exists=not create,
    )


def make_pruner(spec: TuningSpec) -> optuna.pruners.BasePruner:
    """The pruner for ``enableTrialEarlyStopping`` (NopPruner when it is off)."""
    if not spec.early_stopping:
        return optuna.pruners.NopPruner()
    config = dict(spec.early_stopping_config or {})
    name = str(config.pop("pruner", "median")).lower()
    startup = max(5, spec.max_parallel_trials)
    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "median":
        return optuna.pruners.MedianPruner(
            **{"n_startup_trials": startup, "n_warmup_steps": 1, **config}
        )
    if name == "percentile":
        return optuna.pruners.PercentilePruner(
            **{"percentile": 25.0, "n_startup_trials": startup, "n_warmup_steps": 1, **config}
        )
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(**config)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(**config)
    raise SpecError(
        f"earlyStopping.pruner {name!r} is unknown",
        hint="use one of median, percentile, successive_halving, hyperband, none",
    )


# --------------------------------------------------------------------------- the loop


@dataclass
class ActiveTrial:
    """A trial whose process is running."""

    trial: optuna.Trial
    trial_id: int
    flags: dict[str, Any]
    handle: runner.RunHandle
    reader: metrics.EventReader
    gpu: str | None
    exit_fd: int | None  # a pidfd that becomes readable when the process exits (Linux)
    started: float = field(default_factory=time.monotonic)
    tag: str | None = None
    reported: int = 0  # how many points of the metric series went to the pruner
    pruned_at: int | None = None
    interrupted: bool = False

    @property
    def series(self) -> list[metrics.Scalar]:
        return self.reader.scalars.get(self.tag, []) if self.tag else []


class Tuner:
    """Keeps the slots busy until the budget is spent, the job fails, or Ctrl-C."""

    def __init__(self, job: Job, request: TuneRequest) -> None:
        self.job = job
        self.spec = job.spec
        self.study = job.study
        self.gpus = GpuPool(parse_gpus(request.gpus))
        self.active: dict[int, ActiveTrial] = {}
        self.counts: dict[str, int] | None = None  # refreshed whenever a trial finishes
        self.stop_reason: str | None = None
        self.abort: Exception | None = None
        self.progress = make_progress(request.progress, job.job_dir.name, self.spec)
        self._last_metric_poll = 0.0

    # -- public -------------------------------------------------------------------------

    def run(self) -> JobResult:
        self._mark_tuner_running()
        self._requeue_stale_trials()
        self._write_hparams(
            hparams.write_experiment,
            self.job.job_dir,
            [param.to_dict() for param in self.spec.params],
            self.spec.metric_tag,
            self.spec.goal,
        )
        previous = {sig: signal.signal(sig, self._on_signal) for sig in _STOP_SIGNALS}
        try:
            self.progress.start(self._summary())
            for note in self.job.notes:
                self.progress.message(note)
            while self._step():
                self._wait_for_an_exit()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._stop_all(interrupted=True)
            result = self._finish()
            self._write_hparams(hparams.write_job_hparams, self.job.job_dir)
            self.progress.close(self._summary(), result.state, result.reason)
        if self.abort is not None:
            raise self.abort
        return result

    # -- one turn of the loop ----------------------------------------------------------------

    def _step(self) -> bool:
        """Reap, poll, refill; False when the job is over."""
        changed = self.counts is None
        for active in list(self.active.values()):
            if active.handle.poll() is not None:
                self._finish_trial(active)
                changed = True
        now = time.monotonic()
        if now - self._last_metric_poll >= METRIC_POLL_SECONDS:
            self._last_metric_poll = now
            for active in list(self.active.values()):
                self._poll_metrics(active)
            self.progress.update(self._summary(), self._active_rows())
        if changed:
            self.counts = self._count_trials()
            if self.stop_reason is None:
                self._check_budget()
        if self.stop_reason == "interrupted" and self.active:
            self._stop_all(interrupted=True)
        if self.stop_reason is None:
            while len(self.active) < self.spec.max_parallel_trials and self._budget_left() > 0:
                self._start_trial()
        return bool(self.active) or (self.stop_reason is None and self._budget_left() > 0)

    def _check_budget(self) -> None:
        counts = self.counts
        if counts[FAILED] and self._too_many_failures(counts):
            limit = self.spec.max_failed_trials
            self.stop_reason = (
                f"{counts[FAILED]} trials failed (maxFailedTrials is {limit})"
                if limit
                else f"the first {counts[FAILED]} trials all failed"
            )
            self.progress.message(f"stopping: {self.stop_reason}; see each trial's output.log")

    def _too_many_failures(self, counts: dict[str, int]) -> bool:
        limit = self.spec.max_failed_trials
        if limit:
            return counts[FAILED] >= limit
        # Cloud ML's "decide for me": stop when nothing has worked yet.
        return counts[COMPLETE] == 0 and counts[FAILED] >= max(3, self.spec.max_parallel_trials)

    def _budget_left(self) -> int:
        counts = self.counts or self._count_trials()
        finished = counts[COMPLETE] + counts[PRUNED] + counts[FAILED]
        return self.spec.max_trials - finished - len(self.active)

    def _wait_for_an_exit(self) -> None:
        """Sleep until a trial exits or the next poll is due, whichever comes first.

        On Linux the children's pidfds wake us the moment one exits, so a freed
        slot is refilled at once; elsewhere we poll every POLL_SECONDS.
        """
        fds = [active.exit_fd for active in self.active.values() if active.exit_fd is not None]
        timeout = max(0.0, self._last_metric_poll + METRIC_POLL_SECONDS - time.monotonic())
        if fds and len(fds) == len(self.active):
            select.select(fds, [], [], timeout)
        else:
            time.sleep(min(POLL_SECONDS, timeout))

    # -- starting and finishing trials ------------------------------------------------------

    def _start_trial(self) -> None:
        trial = self.study.ask()
        flags = space.suggest(trial, self.spec)
        trial_id = trial.number + 1
        run_dir = jobstore.trial_dir(self.job.job_dir, trial_id)
        run_dir.mkdir(parents=True)
        gpu = self.gpus.acquire()
        trial.set_user_attr("trialId", trial_id)
        trial.set_user_attr("flags", flags)
        trial.set_user_attr("runDir", str(run_dir.relative_to(self.job.job_dir)))
        spec = runner.RunSpec(
            script=self.job.script,
            run_dir=run_dir,
            source_dir=self.job.job_dir / jobstore.SOURCE_DIR,
            project_dir=self.job.project_dir,
            flags={**self.job.record.get("fixed_flags", {}), **flags},
            timeout=self.spec.trial_timeout,
            env={
                "FLAGRUN_JOB_DIR": str(self.job.job_dir),
                "FLAGRUN_TRIAL_ID": str(trial_id),
                **GpuPool.env(gpu),
            },
            echo=False,
            extra={"job": self.job.job_dir.name, "trialId": trial_id},
            source_hash=self.job.record.get("source_hash"),
        )
        handle = runner.start(spec)
        active = ActiveTrial(
            trial, trial_id, flags, handle, metrics.EventReader(run_dir), gpu, _exit_fd(handle.pid)
        )
        self.active[trial_id] = active
        self._record(active, RUNNING)
        self._write_hparams(hparams.write_session, run_dir, flags, RUNNING)
        self.progress.trial_started(trial_id, flags, gpu)

    def _finish_trial(self, active: ActiveTrial) -> None:
        if self.active.pop(active.trial_id, None) is None:
            return  # already finished (an abort stops every trial from inside this method)
        result = active.handle.wait()
        if active.exit_fd is not None:
            os.close(active.exit_fd)
        self.gpus.release(active.gpu)
        active.reader.poll()
        self._report_new_points(active)
        if active.pruned_at is not None:
            state, value, step, reason = PRUNED, *self._last_point(active), result.reason
            self.study.tell(active.trial, state=optuna.trial.TrialState.PRUNED)
        elif active.interrupted:
            state, value, step = FAILED, None, None
            reason = result.reason or "interrupted"
            self._tell_interrupted(active.trial)
        else:
            state, value, step, reason = self._judge(active, result)
            if state == COMPLETE:
                self.study.tell(active.trial, value)
            else:
                active.trial.set_user_attr("reason", reason)
                self.study.tell(active.trial, state=optuna.trial.TrialState.FAIL)
        self._record(active, state, value, step, reason, result.duration)
        self._write_hparams(hparams.write_run_session, active.handle.run_dir)
        self.progress.trial_finished(active.trial_id, state, value, reason)

    def _judge(
        self, active: ActiveTrial, result: runner.RunResult
    ) -> tuple[str, float | None, int | None, str | None]:
        """Decide a finished trial's state and objective value."""
        if result.status != "COMPLETED":
            return FAILED, None, None, result.reason or f"exit code {result.exit_code}"
        tags = active.reader.tags()
        tag = metrics.find_tag(self.spec.metric_tag, tags)
        if tag is None:
            reason = _missing_tag_message(self.spec.metric_tag, tags)
            if (self.counts or self._count_trials())[COMPLETE] == 0:
                self._abort_missing_tag(active, tags)
            return FAILED, None, None, reason
        value, step = metrics.aggregate(active.reader.scalars[tag], self.spec.metric_aggregation)
        if not math.isfinite(value):
            return FAILED, None, step, f"objective {self.spec.metric_tag} is {value} at step {step}"
        return COMPLETE, value, step, None

    def _abort_missing_tag(self, active: ActiveTrial, tags: list[str]) -> None:
        """A typo in hyperparameterMetricTag must not burn the budget: stop the job now."""
        try:
            metrics.resolve_tag(self.spec.metric_tag, tags)
        except MetricsError as exc:
            self.abort = MetricsError(
                f"trial {active.trial_id} finished without the metric tag "
                f"{self.spec.metric_tag!r} ({self._where_spec()}hyperparameterMetricTag); "
                f"stopping the job. {exc.message}",
                hint=exc.hint,
            )
        else:  # resolve_tag found it after all; nothing to stop for
            return
        self.stop_reason = "the metric tag is missing"
        self._stop_all(interrupted=True)

    def _poll_metrics(self, active: ActiveTrial) -> None:
        """Read a running trial's new events; prune it when it falls behind."""
        if active.reader.poll() or active.tag is None:
            self._report_new_points(active)
        if not self.spec.early_stopping or active.pruned_at is not None or not active.reported:
            return
        if active.trial.should_prune():
            active.pruned_at = active.series[-1].step
            active.handle.stop(
                status="PRUNED",
                reason=f"pruned at step {active.pruned_at}",
                grace=STOP_GRACE_SECONDS,
            )

    def _report_new_points(self, active: ActiveTrial) -> None:
        """Give the pruner the metric points it has not seen (every trial's whole curve
        must reach it, or later trials are judged against nothing)."""
        if active.tag is None:
            active.tag = metrics.find_tag(self.spec.metric_tag, active.reader.tags())
        if not self.spec.early_stopping:
            return
        series = active.series
        for point in series[active.reported :]:
            if math.isfinite(point.value):
                active.trial.report(point.value, point.step)
        active.reported = len(series)

    # -- interruption and resume -----------------------------------------------------------

    def _on_signal(self, signum: int, frame: object) -> None:
        # Only set a flag here: the loop stops the trials and records them.
        if self.stop_reason is None:
            self.stop_reason = "interrupted"
            self.progress.message("interrupted: stopping the running trials")

    def _stop_all(self, *, interrupted: bool) -> None:
        for active in list(self.active.values()):
            active.interrupted = interrupted
            active.handle.stop(
                status="KILLED", reason="interrupted: the tuner stopped", grace=STOP_GRACE_SECONDS
            )
        for active in list(self.active.values()):
            self._finish_trial(active)

    def _tell_interrupted(self, trial: optuna.Trial) -> None:
        """Fail a trial the tuner cut short, and queue its parameters to run again."""
        trial.set_user_attr("interrupted", True)
        self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        self.study.enqueue_trial(dict(trial.params))

    def _requeue_stale_trials(self) -> None:
        """Trials left RUNNING by a dead tuner: mark them FAILED and run their parameters again."""
        running = self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        for frozen in running:
            self._tell_interrupted(optuna.Trial(self.study, frozen._trial_id))
            trial_id = frozen.number + 1
            run_dir = jobstore.trial_dir(self.job.job_dir, trial_id)
            reason = "interrupted: the tuner died; parameters queued again"
            if (run_dir / store.RUN_FILE).is_file():
                record = store.read_run(run_dir)
                if record.get("status") == "RUNNING":
                    record.update(status="FAILED", reason=reason)
                    store.write_run(run_dir, record)
            jobstore.append_trial(
                self.job.job_dir,
                _index_row(trial_id, FAILED, frozen.user_attrs.get("flags", {}), reason=reason),
            )
            self.progress.message(f"trial {trial_id}: {reason}")

    # -- records ----------------------------------------------------------------------------

    def _record(
        self,
        active: ActiveTrial,
        state: str,
        value: float | None = None,
        step: int | None = None,
        reason: str | None = None,
        duration: float | None = None,
    ) -> None:
        row = _index_row(active.trial_id, state, active.flags, value, step, reason, duration)
        row["runDir"] = str(active.handle.run_dir.relative_to(self.job.job_dir))
        if state != RUNNING:
            run = store.read_run(active.handle.run_dir)
            run["trial"] = {
                k: row[k] for k in ("state", "objectiveValue", "trainingStep", "reason")
            }
            store.write_run(active.handle.run_dir, run)
        jobstore.append_trial(self.job.job_dir, row)
        self.job.record.update(updated=_now(), counts=self._count_trials(), best=self._best())
        jobstore.write_job(self.job.job_dir, self.job.record)

    def _write_hparams(self, write: Any, *args: Any) -> None:
        """TensorBoard HParams data is a view of the job: failing to write it is said, not fatal."""
        try:
            write(*args)
        except (OSError, ValueError) as exc:
            self.progress.message(f"could not write TensorBoard hparams data: {exc}")

    def _mark_tuner_running(self) -> None:
        self.job.record.update(
            state="RUNNING", reason=None, ended=None, updated=_now(), tuner=store.runner_identity()
        )
        jobstore.write_job(self.job.job_dir, self.job.record)

    def _finish(self) -> JobResult:
        counts = self._count_trials()
        if self.stop_reason == "interrupted":
            state, reason = "INTERRUPTED", "interrupted; resume with `flagrun tune --resume`"
        elif self.stop_reason is not None:
            state, reason = "FAILED", self.stop_reason
        elif counts[COMPLETE] == 0:
            state, reason = "FAILED", "no trial completed"
        else:
            state, reason = "COMPLETED", None
        best = self._best()
        self.job.record.update(
            state=state, reason=reason, ended=_now(), updated=_now(), counts=counts, best=best
        )
        jobstore.write_job(self.job.job_dir, self.job.record)
        if state == "FAILED" and self.abort is None and self.stop_reason != "interrupted":
            self.abort = RunError(
                f"tuning job {self.job.job_dir.name} failed: {reason}",
                hint=f"see the trials' output with `flagrun trials {self.job.job_dir.name}`",
            )
        return JobResult(self.job.job_dir, state, counts, best, reason)

    # -- views of the study -----------------------------------------------------------------

    def _count_trials(self) -> dict[str, int]:
        counts = {COMPLETE: 0, PRUNED: 0, FAILED: 0, RUNNING: len(self.active)}
        states = optuna.trial.TrialState
        for trial in self.study.get_trials(deepcopy=False):
            if trial.state == states.COMPLETE:
                counts[COMPLETE] += 1
            elif trial.state == states.PRUNED:
                counts[PRUNED] += 1
            elif trial.state == states.FAIL and not trial.user_attrs.get("interrupted"):
                counts[FAILED] += 1
        return counts

    def _best(self) -> dict[str, Any] | None:
        try:
            best = self.study.best_trial
        except ValueError:
            return None
        return {
            "trialId": best.number + 1,
            "objectiveValue": best.value,
            "hyperparameters": best.user_attrs.get("flags", {}),
        }

    def _summary(self) -> dict[str, Any]:
        return {
            "job": self.job.job_dir.name,
            "maxTrials": self.spec.max_trials,
            "counts": self.counts or self._count_trials(),
            "best": self._best(),
            "metric": self.spec.metric_tag,
            "goal": self.spec.goal,
        }

    def _active_rows(self) -> list[dict[str, Any]]:
        rows = []
        for active in self.active.values():
            last = active.series[-1] if active.series else None
            rows.append(
                {
                    "trialId": active.trial_id,
                    "flags": active.flags,
                    "step": last.step if last else None,
                    "value": last.value if last else None,
                    "elapsed": time.monotonic() - active.started,
                    "gpu": active.gpu,
                }
            )
        return rows

    def _last_point(self, active: ActiveTrial) -> tuple[float | None, int | None]:
        series = active.series
        return (series[-1].value, series[-1].step) if series else (None, None)

    def _where_spec(self) -> str:
        return f"{self.spec.path}: " if self.spec.path else ""


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _index_row(
    trial_id: int,
    state: str,
    flags: dict[str, Any],
    value: float | None = None,
    step: int | None = None,
    reason: str | None = None,
    duration: float | None = None,
) -> dict[str, Any]:
    return {
        "trialId": trial_id,
        "state": state,
        "objectiveValue": value,
        "trainingStep": step,
        "hyperparameters": flags,
        "runDir": f"{jobstore.TRIALS_DIR}/{trial_id}",
        "duration": duration,
        "reason": reason,
        "time": _now(),
        "host": socket.gethostname(),
    }


def _exit_fd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # not Linux >= 5.3, or the process is already gone
        return None


def _missing_tag_message(tag: str, tags: list[str]) -> str:
    shown = ", ".join(tags) if tags else "none"
    return f"metric tag {tag!r} not found; tags written: {shown}"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
