"""Opening a job: validate everything first, then create (or reopen) its folder and study.

Nothing is created on disk until the YAML, the script's flags and every option have
been checked, so a mistake leaves no half-made job behind.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import optuna

from flagrun import introspect, jobstore, space, storage, store
from flagrun.errors import SpecError, UsageError
from flagrun.launch import find_trainer
from flagrun.pruners import make_pruner
from flagrun.records import JobState
from flagrun.spec import TuningSpec, grid_spec, load_spec
from flagrun.tuner.job import STUDY_NAME, Job, new_record
from flagrun.tuner.plan import apply_overrides, cap_parallel, make_plan, spec_notes
from flagrun.tuner.request import TuneRequest

__all__ = [
    "apply_overrides",
    "create_job",
    "enqueue_grid",
    "load_request_spec",
    "open_artifacts",
    "open_study",
    "resume_job",
    "search_space",
    "spec_notes",
    "study_in",
]


def create_job(request: TuneRequest) -> Job:
    """Validate the request, then create the job folder, snapshot and study."""
    spec = load_request_spec(request)
    if spec.resume_job_id:
        return _resume_from_yaml(request, spec)
    plan = make_plan(request, spec)
    spec, trainer = plan.spec, plan.trainer
    artifacts = open_artifacts(request.artifacts)

    # Everything is valid: from here on the job exists on disk.
    request.runs_dir.mkdir(parents=True, exist_ok=True)
    job_dir = store.new_run_dir(request.runs_dir)
    source_dir = job_dir / jobstore.SOURCE_DIR
    source_hash = store.snapshot_source(trainer.root, source_dir)
    record = new_record(
        job_dir,
        spec,
        trainer,
        config=request.config,
        fixed_flags=plan.fixed,
        launch=plan.launch,
        storage=jobstore.STUDY_FILE,
        study=STUDY_NAME,
        artifacts=request.artifacts,
        source_hash=source_hash,
    )
    jobstore.write_job(job_dir, record)
    study = open_study(job_dir, spec, create=True)
    if spec.algorithm == "GRID_SEARCH":
        enqueue_grid(study, spec)
    return Job(
        job_dir,
        record,
        study,
        source_dir / trainer.entry,
        Path.cwd(),
        plan.notes,
        artifacts=artifacts,
        artifact_prefix=job_dir.name,
    )


def resume_job(request: TuneRequest, parallel: int | None = None) -> Job:
    """Reopen a job: same spec, same source snapshot, same study (``parallel``: the
    maxParallelTrials of the file that resumes it)."""
    if request.fixed or request.args:
        raise UsageError(
            "NAME=VALUE flags and arguments after -- are fixed when a job starts; "
            "a resumed job keeps its own",
            hint="start a new job to change them",
        )
    job_dir = jobstore.resolve_job(request.runs_dir, request.resume)
    record = jobstore.read_job(job_dir)
    if record.shared:
        from flagrun.tuner.shared import rejoin

        return rejoin(request, record, job_dir)
    owner = record.tuner
    if record.state == JobState.RUNNING and owner and store.is_alive(owner):
        raise UsageError(
            f"job {job_dir.name} is still being tuned by process {owner.pid}",
            hint="wait for it, or stop it with Ctrl-C before resuming",
        )
    spec = apply_overrides(record.spec, request)
    if parallel is not None and request.parallel is None:
        spec = dataclasses.replace(spec, max_parallel_trials=parallel)
    record.spec, note = cap_parallel(spec, request)
    study = open_study(job_dir, record.spec, create=False)
    script = job_dir / jobstore.SOURCE_DIR / record.script
    project_dir = Path(record.project_dir or job_dir)
    return Job(
        job_dir,
        record,
        study,
        script,
        project_dir,
        [note] if note else [],
        artifacts=open_artifacts(request.artifacts or record.artifacts),
        artifact_prefix=job_dir.name,
    )


def _resume_from_yaml(request: TuneRequest, spec: TuningSpec) -> Job:
    """``resumePreviousJobId``: continue that job's study with this YAML's budget (a file
    that lists params must list the same ones)."""
    again = dataclasses.replace(request, resume=spec.resume_job_id, max_trials=spec.max_trials)
    job = resume_job(again, parallel=spec.max_parallel_trials)
    if spec.params and search_space(job.spec) != search_space(spec):
        raise SpecError(
            f"{spec.path}: resumePreviousJobId {spec.resume_job_id} searched other params",
            hint="a resumed job keeps its search space: use the same params, or start a new job",
        )
    return job


def search_space(spec: TuningSpec | dict[str, Any]) -> list[dict[str, Any]]:
    """The params without where they stand in their YAML file."""
    params = spec.get("params", []) if isinstance(spec, dict) else spec.to_dict()["params"]
    return [{**param, "line": None} for param in params]


# -- the request's parts -------------------------------------------------------------------


def load_request_spec(request: TuneRequest) -> TuningSpec:
    """The spec from ``--config`` (with ``--metric``/``--goal`` over it), or from ``--grid``."""
    if request.grid:
        if request.config:
            raise UsageError("give either --config or --grid, not both")
        trainer = find_trainer(request.script or Path("train.py"), request.module, [Path.cwd()])
        declared = introspect.declared_arguments(trainer)
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


# -- the study -------------------------------------------------------------------------------


def open_study(job_dir: Path, spec: TuningSpec, *, create: bool) -> optuna.Study:
    # Optuna's journal file, not SQLite: the tuner's traffic costs 3 ms per trial on it
    # against 33 ms on SQLite, and a resume reopens it 7x faster (scripts/bench_storage.py).
    backend = storage.open_journal(job_dir / jobstore.STUDY_FILE)
    return study_in(backend, STUDY_NAME, spec, create=create)


def study_in(
    backend: optuna.storages.BaseStorage, name: str, spec: TuningSpec, *, create: bool
) -> optuna.Study:
    """Create (``create``) or load study ``name`` with the sampler and pruner for ``spec``."""
    return optuna.create_study(
        storage=backend,
        study_name=name,
        direction="maximize" if spec.maximize else "minimize",
        sampler=space.make_sampler(spec),
        pruner=make_pruner(spec),
        load_if_exists=not create,
    )


def enqueue_grid(study: optuna.Study, spec: TuningSpec) -> None:
    for point in space.grid_points(spec):
        study.enqueue_trial(point)


def open_artifacts(url: str | None) -> Any:
    if not url:
        return None
    from flagrun.artifacts import open_artifacts as open_store

    artifacts = open_store(url)
    artifacts.check()  # an unusable store fails the start, not every trial's upload
    return artifacts
