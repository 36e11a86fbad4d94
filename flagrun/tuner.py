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

import contextlib
import dataclasses
import math
import os
import select
import shutil
import signal
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import optuna

from flagrun import (
    distributed,
    hparams,
    introspect,
    jobstore,
    metrics,
    objective,
    runner,
    space,
    storage,
    store,
)
from flagrun.errors import FlagrunError, MetricsError, RunError, SpecError, UsageError
from flagrun.gpus import GpuPool, parse_gpus
from flagrun.progress import make_progress
from flagrun.spec import TuningSpec, check_against_flags, grid_spec, load_spec

POLL_SECONDS = 0.05
METRIC_POLL_SECONDS = 0.5
STOP_GRACE_SECONDS = 5.0
SHARED_POLL_SECONDS = 1.0  # how often a worker of a shared study looks at the others' trials
STUDY_NAME = "flagrun"
DEFAULT_PRUNER = "percentile"
ARTIFACTS_ENV = "FLAGRUN_ARTIFACTS"

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
    storage: str | None = None  # a database URL shared by workers (else FLAGRUN_STORAGE)
    study: str | None = None  # the shared study's name
    artifacts: str | None = None  # where finished trials' folders are uploaded


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
    request.storage = storage.resolve_url(request.storage)
    request.artifacts = request.artifacts or os.environ.get(ARTIFACTS_ENV) or None
    if request.resume:
        job = resume_job(request)
    elif request.storage or request.study:
        job = join_job(request)
    else:
        job = create_job(request)
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
    shared: bool = False  # the study lives in a database other workers use too
    artifacts: Any = None  # an ArtifactStore that finished trials are uploaded to
    artifact_prefix: str = ""


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
    artifacts = _open_artifacts(request.artifacts)

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
        "artifacts": request.artifacts,
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
        _enqueue_grid(study, spec)
    script = source_dir / script.name
    job = Job(job_dir, record, spec, study, script, Path.cwd(), _spec_notes(spec))
    job.artifacts, job.artifact_prefix = artifacts, job_dir.name
    return job


def _spec_notes(spec: TuningSpec) -> list[str]:
    if not spec.ignored_fields:
        return []
    return [f"ignored locally (Cloud ML only): {', '.join(spec.ignored_fields)}"]


def _enqueue_grid(study: optuna.Study, spec: TuningSpec) -> None:
    for point in space.grid_points(spec):
        study.enqueue_trial(point)


def _open_artifacts(url: str | None) -> Any:
    if not url:
        return None
    from flagrun.artifacts import open_artifacts

    artifacts = open_artifacts(url)
    artifacts.check()  # an unusable store fails the start, not every trial's upload
    return artifacts


def join_job(
    request: TuneRequest, *, spec: TuningSpec | None = None, fixed: dict[str, str] | None = None
) -> Job:
    """Join (or create) the shared study ``--study`` in the database ``--storage``.

    Validation is the same as for a local job. The study keeps the job's spec;
    a worker that joins runs under it, with its own maxParallelTrials. Locally
    the worker's trials live in ``<runs>/<study>/``, shared by every worker on
    this machine.
    """
    if not request.storage or not request.study:
        raise UsageError(
            "a shared study needs both --storage URL (or FLAGRUN_STORAGE) and --study NAME",
            hint="e.g. flagrun tune --config tuning.yml "
            "--storage postgresql://USER@HOST/DB --study mnist",
        )
    name = distributed.check_study_name(request.study)
    if spec is None:
        spec = _load_request_spec(request)
        script = _resolve_script(request, spec)
        check_against_flags(spec, introspect.declared_flags(script))
        fixed = _check_fixed_flags(request.fixed, spec, script)
        spec = _apply_overrides(spec, request)
    else:
        script = _existing_script(request.script)
        fixed = runner.check_flags(script, fixed or {})
    if spec.resume_job_id:
        raise UsageError(
            "resumePreviousJobId does not apply to a shared study",
            hint="run the same command again: workers rejoin the study by its --study name",
        )
    backend = storage.open_database(request.storage)
    artifacts = _open_artifacts(request.artifacts)
    job_dir = request.runs_dir / name
    staging, source_hash = _stage_source(script, request.runs_dir, name)
    try:
        meta = {
            "spec": spec.to_dict(),
            "script": script.name,
            "fixed_flags": fixed,
            "source_hash": source_hash,
            "artifacts": request.artifacts,
            "created": _now(),
        }
        shared = distributed.join_study(
            backend,
            name,
            meta,
            lambda spec_dict, create: _study_in(
                backend, name, _worker_spec(spec_dict, spec), create=create
            ),
        )
        verb = "created" if shared.created else "joined"
        notes = [f"{verb} study {name} in {storage.mask(request.storage)}", *_spec_notes(spec)]
        if not shared.created:
            spec, notes = _adopt_study_spec(shared.meta, spec, request, name, notes)
            _check_same_fixed(shared.meta, fixed, name)
            if source_hash and shared.meta.get("source_hash") != source_hash:
                notes.append(f"your source differs from the one study {name} started with")
        elif spec.algorithm == "GRID_SEARCH":
            _enqueue_grid(shared.study, spec)
        _place_source(staging, job_dir)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    artifacts_url = request.artifacts or shared.meta.get("artifacts")
    if artifacts is None:
        artifacts = _open_artifacts(artifacts_url)
    record = _shared_job_record(job_dir, script, request, spec, shared.meta, artifacts_url)
    jobstore.write_job(job_dir, record)
    script_copy = job_dir / jobstore.SOURCE_DIR / script.name
    job = Job(job_dir, record, spec, shared.study, script_copy, Path.cwd(), notes, shared=True)
    job.artifacts, job.artifact_prefix = artifacts, name
    return job


def _worker_spec(study_spec: dict[str, Any], ours: TuningSpec) -> TuningSpec:
    """The study's spec with this worker's parallelism, and its own sampler seed."""
    spec = TuningSpec.from_dict(study_spec)
    seed = None if spec.seed is None else spec.seed + os.getpid()  # no twin proposals
    return dataclasses.replace(spec, max_parallel_trials=ours.max_parallel_trials, seed=seed)


def _adopt_study_spec(
    meta: dict[str, Any], ours: TuningSpec, request: TuneRequest, name: str, notes: list[str]
) -> tuple[TuningSpec, list[str]]:
    distributed.check_same_search(ours.to_dict(), meta["spec"], name)
    spec = _worker_spec(meta["spec"], ours)
    if request.max_trials is not None and request.max_trials != spec.max_trials:
        raise UsageError(
            f"study {name} has maxTrials {spec.max_trials}; --max-trials cannot change it "
            "from one worker",
            hint="drop --max-trials, or start a new --study",
        )
    if ours.max_trials != spec.max_trials:
        notes.append(f"maxTrials is the study's: {spec.max_trials}")
    return spec, notes


def _check_same_fixed(meta: dict[str, Any], fixed: dict[str, Any], name: str) -> None:
    if meta.get("fixed_flags", {}) != fixed:
        raise UsageError(
            f"study {name} fixes flags {meta.get('fixed_flags') or 'none'}, you gave "
            f"{fixed or 'none'}",
            hint="give every worker the same NAME=VALUE flags",
        )


def _stage_source(script: Path, runs_dir: Path, name: str) -> tuple[Path | None, str | None]:
    """Snapshot the source next to the job folder; None when rejoining from the snapshot."""
    if script.parent.name == jobstore.SOURCE_DIR and script.parent.parent.name == name:
        return None, None
    runs_dir.mkdir(parents=True, exist_ok=True)
    staging = runs_dir / f".{name}.source-{os.getpid()}"
    return staging, store.snapshot_source(script.parent, staging, exclude=[runs_dir])


def _place_source(staging: Path | None, job_dir: Path) -> None:
    """Move the staged snapshot in, unless a worker on this machine was first (keep theirs)."""
    job_dir.mkdir(parents=True, exist_ok=True)
    if staging is not None and not (job_dir / jobstore.SOURCE_DIR).exists():
        with contextlib.suppress(OSError):  # lost the race to another worker here
            os.rename(staging, job_dir / jobstore.SOURCE_DIR)


def _shared_job_record(
    job_dir: Path,
    script: Path,
    request: TuneRequest,
    spec: TuningSpec,
    meta: dict[str, Any],
    artifacts_url: str | None,
) -> dict[str, Any]:
    try:
        record = jobstore.read_job(job_dir)
    except FlagrunError:
        record = {"format": 1, "kind": "job", "id": job_dir.name, "created": _now()}
    record.update(
        state="RUNNING",
        reason=None,
        script=script.name,
        script_path=str(script),
        config=str(request.config.resolve()) if request.config else None,
        project_dir=str(Path.cwd()),
        spec=spec.to_dict(),
        fixed_flags=meta.get("fixed_flags", {}),
        storage=storage.mask(request.storage),
        study=job_dir.name,
        shared=True,
        artifacts=artifacts_url,
        source_hash=meta.get("source_hash"),
        updated=_now(),
        ended=None,
    )
    record.setdefault("counts", {})
    record.setdefault("best", None)
    return record


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
    if record.get("shared"):
        return _rejoin(request, record, job_dir)
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
    job = Job(job_dir, record, spec, study, script, Path(record["project_dir"]))
    job.artifacts = _open_artifacts(request.artifacts or record.get("artifacts"))
    job.artifact_prefix = job_dir.name
    return job


def _rejoin(request: TuneRequest, record: dict[str, Any], job_dir: Path) -> Job:
    """``--resume`` of a worker's job: join its shared study again."""
    recorded = record["storage"]
    url = request.storage or (None if storage.MASK in recorded else recorded)
    if url is None or storage.mask(url) != recorded:
        raise UsageError(
            f"job {job_dir.name} shares study {record['study']} in {recorded}",
            hint="give its URL with --storage or FLAGRUN_STORAGE to rejoin",
        )
    script = job_dir / jobstore.SOURCE_DIR / record["script"]
    fixed = {name: str(value) for name, value in (record.get("fixed_flags") or {}).items()}
    rejoin = dataclasses.replace(
        request,
        resume=None,
        storage=url,
        study=record["study"],
        script=script,
        config=None,
        grid=None,
        fixed={},
        artifacts=request.artifacts or record.get("artifacts"),
    )
    spec = _apply_overrides(TuningSpec.from_dict(record["spec"]), rejoin)
    return join_job(rejoin, spec=spec, fixed=fixed)


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
    backend = storage.open_journal(job_dir / jobstore.STUDY_FILE)
    return _study_in(backend, STUDY_NAME, spec, create=create)


def _study_in(
    backend: optuna.storages.BaseStorage, name: str, spec: TuningSpec, *, create: bool
) -> optuna.Study:
    """Create (``create``) or load study ``name`` with the sampler and pruner for ``spec``."""
    return optuna.create_study(
        storage=backend,
        study_name=name,
        direction="maximize" if spec.goal == "MAXIMIZE" else "minimize",
        sampler=space.make_sampler(spec),
        pruner=make_pruner(spec),
        load_if_exists=not create,
    )


def make_pruner(spec: TuningSpec) -> optuna.pruners.BasePruner:
    """The pruner for ``enableTrialEarlyStopping`` (NopPruner when it is off)."""
    if not spec.early_stopping:
        return optuna.pruners.NopPruner()
    config = dict(spec.early_stopping_config or {})
    # percentile (keep the top 25% at each step) is the default by measurement: the only
    # pruner to save about 2x compute at a best value within noise (scripts/bench_pruning.py).
    name = str(config.pop("pruner", DEFAULT_PRUNER)).lower()
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
        self.tally: Tally | None = None  # the study's trial counts, refreshed when stale
        self.tally_time = 0.0
        self.stop_reason: str | None = None
        self.abort: Exception | None = None
        self.progress = make_progress(request.progress, job.job_dir.name, self.spec)
        self._last_metric_poll = 0.0
        self.heartbeats = (
            distributed.Heartbeats(self.study, distributed.heartbeat_seconds())
            if job.shared
            else None
        )

    # -- public -------------------------------------------------------------------------

    def run(self) -> JobResult:
        self._mark_tuner_running()
        if not self.job.shared:  # a shared study's other workers may be alive: sweep instead
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
        """Reap, poll, beat, refill; False when the job is over."""
        for active in list(self.active.values()):
            if active.handle.poll() is not None:
                self._finish_trial(active)
        now = time.monotonic()
        if now - self._last_metric_poll >= METRIC_POLL_SECONDS:
            self._last_metric_poll = now
            for active in list(self.active.values()):
                self._poll_metrics(active)
            self.progress.update(self._summary(), self._active_rows())
        if self.heartbeats is not None and self.heartbeats.due():
            self.heartbeats.beat(active.trial for active in self.active.values())
            self._sweep_stale_trials()
        if self.stop_reason is None:
            self._check_failures(self._current_tally())
        if self.stop_reason == "interrupted" and self.active:
            self._stop_all(interrupted=True)
        if self.stop_reason is None:
            while len(self.active) < self.spec.max_parallel_trials and self._can_start():
                if not self._start_trial():
                    break
        return self._more_to_do()

    def _more_to_do(self) -> bool:
        if self.active:
            return True
        if self.stop_reason is not None:
            return False
        # A shared study's worker waits for the others' trials too: one of them may die
        # and its trial come back to be run again.
        return self._can_start() or (self.job.shared and self._current_tally().running > 0)

    def _check_failures(self, tally: Tally) -> None:
        failed = tally.counts[FAILED]
        if not failed or not self._too_many_failures(tally.counts):
            return
        limit = self.spec.max_failed_trials
        self.stop_reason = (
            f"{failed} trials failed (maxFailedTrials is {limit})"
            if limit
            else f"the first {failed} trials all failed"
        )
        self.progress.message(f"stopping: {self.stop_reason}; see each trial's output.log")

    def _too_many_failures(self, counts: dict[str, int]) -> bool:
        limit = self.spec.max_failed_trials
        if limit:
            return counts[FAILED] >= limit
        # Cloud ML's "decide for me": stop when nothing has worked yet.
        return counts[COMPLETE] == 0 and counts[FAILED] >= max(3, self.spec.max_parallel_trials)

    def _can_start(self) -> bool:
        """Budget is left, or a retried trial waits to run (its budget is already counted)."""
        tally = self._current_tally()
        return tally.claimed < self.spec.max_trials or tally.retries_waiting > 0

    def _current_tally(self) -> Tally:
        """The study's counts; a shared study is looked at again every SHARED_POLL_SECONDS."""
        now = time.monotonic()
        stale = self.job.shared and now - self.tally_time >= SHARED_POLL_SECONDS
        if self.tally is None or stale:
            self.tally = Tally.of(self.study.get_trials(deepcopy=False))
            self.tally_time = now
        return self.tally

    def _within_budget(self, trial: optuna.Trial) -> bool:
        """Whether a just-asked trial fits in maxTrials.

        Optuna numbers new trials under a lock on the study, so every trial
        numbered before ours is visible: when more than maxTrials of them hold
        budget, ours is one too many (two workers asked at once for the last one).
        """
        holding = [
            frozen
            for frozen in self.study.get_trials(deepcopy=False)
            if frozen.number <= trial.number and _holds_budget(frozen)
        ]
        return len(holding) <= self.spec.max_trials

    def _wait_for_an_exit(self) -> None:
        """Sleep until a trial exits or the next poll is due, whichever comes first.

        On Linux the children's pidfds wake us the moment one exits, so a freed
        slot is refilled at once; elsewhere we poll every POLL_SECONDS.
        """
        fds = [active.exit_fd for active in self.active.values() if active.exit_fd is not None]
        timeout = max(0.0, self._last_metric_poll + METRIC_POLL_SECONDS - time.monotonic())
        if not self.active and self.job.shared:  # idle, waiting on the other workers
            timeout = SHARED_POLL_SECONDS
        if fds and len(fds) == len(self.active):
            select.select(fds, [], [], timeout)
        else:
            time.sleep(min(POLL_SECONDS, timeout))

    # -- starting and finishing trials ------------------------------------------------------

    def _start_trial(self) -> bool:
        """Ask Optuna for a trial and start its process; False when it was one too many."""
        trial = self.study.ask()
        self.tally = None
        if not self._within_budget(trial):
            self._give_back(trial)
            return False
        flags = space.suggest(trial, self.spec)
        trial_id = trial.number + 1
        run_dir = jobstore.trial_dir(self.job.job_dir, trial_id)
        run_dir.mkdir(parents=True)
        gpu = self.gpus.acquire()
        trial.set_user_attr("trialId", trial_id)
        trial.set_user_attr("flags", flags)
        trial.set_user_attr("runDir", str(run_dir.relative_to(self.job.job_dir)))
        trial.set_user_attr("host", socket.gethostname())
        if self.heartbeats is not None:
            worker = f"{socket.gethostname()}:{os.getpid()}"
            self.study._storage.set_trial_system_attr(
                trial._trial_id, distributed.WORKER_ATTR, worker
            )
            self.heartbeats.beat([trial])
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
                objective.METRIC_TAG_ENV: self.spec.metric_tag,
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
        self._record(self._index_row(active, RUNNING))
        self._write_hparams(hparams.write_session, run_dir, flags, RUNNING)
        self.progress.trial_started(trial_id, flags, gpu)
        return True

    def _give_back(self, trial: optuna.Trial) -> None:
        """Close a trial asked beyond the budget so that nothing counts or shows it."""
        retry_of = trial.user_attrs.get("retryOf")
        trial.set_user_attr("surplus", True)
        self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        if retry_of is not None:  # a retry popped by the late asker stays queued
            self.study.enqueue_trial(dict(trial.params), user_attrs={"retryOf": retry_of})

    def _finish_trial(self, active: ActiveTrial) -> None:
        if self.active.pop(active.trial_id, None) is None:
            return  # already finished (an abort stops every trial from inside this method)
        result = active.handle.wait()
        if active.exit_fd is not None:
            os.close(active.exit_fd)
        self.gpus.release(active.gpu)
        active.reader.poll()
        self._report_new_points(active)
        self.tally = None
        if active.pruned_at is not None:
            state, value, step, reason = PRUNED, *self._last_point(active), result.reason
        elif active.interrupted:
            state, value, step = FAILED, None, None
            reason = result.reason or "interrupted"
        else:
            state, value, step, reason = self._judge(active, result)
        row = self._index_row(active, state, value, step, reason, result.duration)
        self._write_trial_result(active, row)
        if active.interrupted:
            self._close(active, lambda: self._tell_interrupted(active.trial))
        else:
            self._annotate(active.trial, value, step, reason, result.duration)
            self._upload(active)  # after the run folder is final
            self._close(active, lambda: self._tell(active.trial, state, value))
        self._record(row)
        self.progress.trial_finished(active.trial_id, state, value, reason)

    def _write_trial_result(self, active: ActiveTrial, row: dict[str, Any]) -> None:
        """The trial's outcome in its own run.json, and its HParams session end."""
        run = store.read_run(active.handle.run_dir)
        run["trial"] = {k: row[k] for k in ("state", "objectiveValue", "trainingStep", "reason")}
        store.write_run(active.handle.run_dir, run)
        self._write_hparams(hparams.write_run_session, active.handle.run_dir)

    def _tell(self, trial: optuna.Trial, state: str, value: float | None) -> None:
        states = optuna.trial.TrialState
        if state == COMPLETE:
            self.study.tell(trial, value)
        else:
            self.study.tell(trial, state=states.PRUNED if state == PRUNED else states.FAIL)

    def _close(self, active: ActiveTrial, tell: Any) -> None:
        """Tell Optuna; a trial another worker already closed (it took us for dead) stays so."""
        try:
            tell()
        except (ValueError, optuna.exceptions.UpdateFinishedTrialError):
            self.progress.message(
                f"trial {active.trial_id}: another worker closed it (this worker's heartbeat "
                "stopped too long); its results stay in its run folder"
            )

    def _annotate(
        self,
        trial: optuna.Trial,
        value: float | None,
        step: int | None,
        reason: str | None,
        duration: float | None,
    ) -> None:
        """What ``flagrun trials`` shows of a trial from any machine, kept on the trial."""
        attrs = {"lastValue": value, "trainingStep": step, "reason": reason, "duration": duration}
        try:
            for key, attr in attrs.items():
                if attr is not None:
                    trial.set_user_attr(key, attr)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # closed by another worker; _close says so

    def _upload(self, active: ActiveTrial) -> None:
        """Copy the trial's folder to the artifact store, so any machine can collect it."""
        if self.job.artifacts is None:
            return
        key = f"{self.job.artifact_prefix}/{jobstore.TRIALS_DIR}/{active.trial_id}"
        try:
            self.job.artifacts.upload(active.handle.run_dir, key)
            active.trial.set_user_attr("artifact", key)
        except FlagrunError as exc:
            self.progress.message(f"trial {active.trial_id}: not uploaded: {exc.message}")
        except optuna.exceptions.UpdateFinishedTrialError:
            pass

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
            if self._current_tally().counts[COMPLETE] == 0:
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
        if _should_prune(active.trial):
            active.pruned_at = active.series[-1].step
            # Scripts that ask flagrun.should_stop() see this before the SIGTERM.
            (active.handle.run_dir / objective.STOP_FILE).touch()
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
        try:
            for point in series[active.reported :]:
                if math.isfinite(point.value):
                    active.trial.report(point.value, point.step)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # another worker closed it; _close says so when it ends
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
        """Fail a trial the tuner cut short, and queue its parameters to run again.

        Raises when the trial is already finished (another worker swept it first),
        so that only one worker queues the retry.
        """
        trial.set_user_attr("interrupted", True)
        self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        self.study.enqueue_trial(dict(trial.params), user_attrs={"retryOf": trial.number + 1})
        self.tally = None

    def _sweep_stale_trials(self) -> None:
        """Fail the trials of workers that stopped beating, and queue them to run again."""
        mine = {active.trial._trial_id for active in self.active.values()}
        for frozen in self.heartbeats.stale(mine):
            try:
                self._tell_interrupted(optuna.Trial(self.study, frozen._trial_id))
            except (ValueError, optuna.exceptions.UpdateFinishedTrialError):
                continue  # another worker swept it first
            worker = frozen.system_attrs.get(distributed.WORKER_ATTR, "a worker")
            self.progress.message(
                f"trial {frozen.number + 1}: {worker} stopped beating; "
                "failed it and queued its parameters again"
            )

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

    def _index_row(
        self,
        active: ActiveTrial,
        state: str,
        value: float | None = None,
        step: int | None = None,
        reason: str | None = None,
        duration: float | None = None,
    ) -> dict[str, Any]:
        row = _index_row(active.trial_id, state, active.flags, value, step, reason, duration)
        row["runDir"] = str(active.handle.run_dir.relative_to(self.job.job_dir))
        return row

    def _record(self, row: dict[str, Any]) -> None:
        """A trial's state change: one line in the trials index, then job.json."""
        jobstore.append_trial(self.job.job_dir, row)
        counts = self._current_tally().counts
        self.job.record.update(updated=_now(), counts=counts, best=self._best())
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
        self.tally = None
        counts = self._current_tally().counts
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
            "counts": self._current_tally().counts,
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


@dataclass
class Tally:
    """A study's trials counted the way Cloud ML counts them, across every worker."""

    counts: dict[str, int]  # COMPLETE / PRUNED / FAILED / RUNNING, as job.json shows them
    claimed: int  # trials holding budget: finished, running, or a retry waiting to run
    retries_waiting: int

    @property
    def running(self) -> int:
        return self.counts[RUNNING]

    @classmethod
    def of(cls, trials: list[optuna.trial.FrozenTrial]) -> Tally:
        states = optuna.trial.TrialState
        names = {states.COMPLETE: COMPLETE, states.PRUNED: PRUNED, states.RUNNING: RUNNING}
        counts = {COMPLETE: 0, PRUNED: 0, FAILED: 0, RUNNING: 0}
        claimed = retries = 0
        for trial in trials:
            if not _holds_budget(trial):
                continue
            claimed += 1
            if trial.state == states.WAITING:
                retries += 1
            else:
                counts[names.get(trial.state, FAILED)] += 1
        return cls(counts, claimed, retries)


def _holds_budget(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether a trial counts against maxTrials.

    Trials the tuner cut short (``interrupted``) or asked beyond the budget
    (``surplus``) do not; their parameters' retry does, from the moment it is
    queued. Grid points queued up front count once they run.
    """
    states = optuna.trial.TrialState
    attrs = trial.user_attrs
    if trial.state == states.WAITING:
        return "retryOf" in attrs
    if trial.state == states.FAIL:
        return not (attrs.get("interrupted") or attrs.get("surplus"))
    return True


def _should_prune(trial: optuna.Trial) -> bool:
    try:
        return trial.should_prune()
    except optuna.exceptions.UpdateFinishedTrialError:
        return False


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
