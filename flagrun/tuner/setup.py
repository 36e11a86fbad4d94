"""Opening a job: validate everything first, then create (or reopen) its folder and study.

Nothing is created on disk until the YAML, the script's flags and every option have
been checked, so a mistake leaves no half-made job behind.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import optuna

from flagrun import _paths, introspect, joblock, jobstore, journal, space, storage, store
from flagrun.errors import SpecError, StoreError, UsageError
from flagrun.launch import find_trainer
from flagrun.pruners import make_pruner
from flagrun.spec import TuningSpec, grid_spec, load_spec
from flagrun.tuner.job import STUDY_NAME, Job, new_record
from flagrun.tuner.plan import apply_overrides, cap_parallel, make_plan, spec_notes
from flagrun.tuner.request import TuneRequest

__all__ = [
    "apply_overrides",
    "check_resume_options",
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
    job_dir = store.new_run_dir(request.runs_dir)
    try:
        lock = joblock.lock_job(job_dir)
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
    except BaseException:  # a full disk, Ctrl-C during the snapshot: leave nothing half-made
        shutil.rmtree(job_dir, ignore_errors=True)
        raise
    return Job(
        job_dir,
        record,
        study,
        source_dir / trainer.entry,
        Path.cwd(),
        plan.notes,
        artifacts=artifacts,
        artifact_prefix=job_dir.name,
        lock=lock,
    )


def resume_job(request: TuneRequest, parallel: int | None = None) -> Job:
    """Reopen a job: same spec, same source snapshot, same study (``parallel``: the
    maxParallelTrials of the file that resumes it).

    The job's lock is taken first (one tuner per job), then the files a killed tuner
    may have left torn are repaired (``flagrun.journal``) before anything is appended.
    """
    check_resume_options(request)
    job_dir = jobstore.resolve_job(request.runs_dir, request.resume)
    record = jobstore.read_job(job_dir)
    if record.shared:
        from flagrun.tuner.shared import rejoin

        return rejoin(request, record, job_dir)
    lock = joblock.lock_job(job_dir)
    try:
        record = jobstore.read_job(job_dir)  # as the last tuner left it, now that it is gone
        notes = journal.check_journal(job_dir / jobstore.STUDY_FILE)
        index = job_dir / jobstore.INDEX_FILE
        if index.is_file() and journal.drop_torn_tail(index):
            notes.append(f"{jobstore.INDEX_FILE}: dropped a torn last line a killed tuner left")
        spec = apply_overrides(record.spec, request)
        if parallel is not None and request.parallel is None:
            spec = dataclasses.replace(spec, max_parallel_trials=parallel)
        record.spec, note = cap_parallel(spec, request)
        notes += [note] if note else []
        study = open_study(job_dir, record.spec, create=False)
        script = _paths.inside(job_dir / jobstore.SOURCE_DIR, record.script, "job.json script")
        artifacts = open_artifacts(request.artifacts or record.artifacts)
    except BaseException:
        lock.release()
        raise
    project_dir = Path(record.project_dir or job_dir)
    return Job(
        job_dir,
        record,
        study,
        script,
        project_dir,
        notes,
        artifacts=artifacts,
        artifact_prefix=job_dir.name,
        lock=lock,
    )


# What shapes a job's search and its trials: fixed when it starts, so a resume that names
# one is refused rather than silently ignoring it.
_SPEC_OPTIONS = (
    ("script", "a training script"),
    ("module", "-m MODULE"),
    ("config", "--config"),
    ("grid", "--grid"),
    ("sample", "--sample"),
    ("metric", "--metric"),
    ("goal", "--goal"),
    ("fixed", "NAME=VALUE flags"),
    ("args", "arguments after --"),
    ("job_dir", "--job-dir"),
)


def check_resume_options(request: TuneRequest) -> None:
    """--resume continues a job as it was started: refuse what would change its search."""
    given = [label for name, label in _SPEC_OPTIONS if getattr(request, name)]
    if given:
        raise UsageError(
            f"--resume continues a job with its own script, search space and flags; "
            f"{', '.join(given)} cannot change them",
            hint="drop them (--max-trials and --parallel may change), or start a new job",
        )


def _resume_from_yaml(request: TuneRequest, spec: TuningSpec) -> Job:
    """``resumePreviousJobId``: continue that job's study with this YAML's budget (a file
    that lists params must list the same ones)."""
    again = dataclasses.replace(
        request,
        resume=spec.resume_job_id,
        max_trials=spec.max_trials,
        script=None,  # the file that resumes the job, and what it names, are not the job's
        module=None,
        config=None,
        metric=None,
        goal=None,
    )
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
    if request.sample is not None:
        raise UsageError(
            "--sample applies to --grid only",
            hint="a YAML's GRID_SEARCH runs maxTrials points of its grid: set maxTrials instead",
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
    path = job_dir / jobstore.STUDY_FILE
    try:
        return study_in(storage.open_journal(path), STUDY_NAME, spec, create=create)
    except KeyError:
        raise StoreError(
            f"{path} holds no study {STUDY_NAME!r}: the job's study is gone",
            hint="start a new job to go on",
        ) from None
    except ValueError as exc:  # a record Optuna cannot parse (json's errors are ValueErrors)
        raise journal.unreadable_journal(path, exc) from None


def study_in(
    backend: optuna.storages.BaseStorage, name: str, spec: TuningSpec, *, create: bool
) -> optuna.Study:
    """Create (``create``) or load study ``name`` with the sampler and pruner for ``spec``.

    Loading never creates: a study that is not there is a KeyError.
    """
    sampler, pruner = space.make_sampler(spec), make_pruner(spec)
    if not create:
        return optuna.load_study(study_name=name, storage=backend, sampler=sampler, pruner=pruner)
    return optuna.create_study(
        storage=backend,
        study_name=name,
        direction="maximize" if spec.maximize else "minimize",
        sampler=sampler,
        pruner=pruner,
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
