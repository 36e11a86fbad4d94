"""Joining (or creating) a study shared by workers on several machines.

Validation is the same as for a local job. The first worker stores the job's spec
on the study; a worker that joins runs under it, with its own maxParallelTrials.
Locally the worker's trials live in ``<runs>/<study>/``, shared by every worker on
this machine.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flagrun import distributed, introspect, jobstore, storage, store
from flagrun.errors import FlagrunError, UsageError
from flagrun.launch import Trainer, find_trainer
from flagrun.records import JobRecord, Launch
from flagrun.spec import TuningSpec
from flagrun.tuner.job import Job, new_record, now
from flagrun.tuner.plan import make_plan
from flagrun.tuner.request import TuneRequest
from flagrun.tuner.setup import (
    apply_overrides,
    enqueue_grid,
    load_request_spec,
    open_artifacts,
    study_in,
)

if TYPE_CHECKING:
    import optuna


def join_job(
    request: TuneRequest,
    *,
    spec: TuningSpec | None = None,
    fixed: dict[str, Any] | None = None,
    launch: Launch | None = None,
) -> Job:
    """Join (or create) the shared study ``--study`` in the database ``--storage``."""
    if not request.storage or not request.study:
        raise UsageError(
            "a shared study needs both --storage URL (or FLAGRUN_STORAGE) and --study NAME",
            hint="e.g. flagrun tune --config tuning.yml "
            "--storage postgresql://USER@HOST/DB --study mnist",
        )
    name = distributed.check_study_name(request.study)
    plan = _worker_plan(request, spec, fixed, launch)
    backend = storage.open_database(request.storage)
    artifacts = open_artifacts(request.artifacts)
    job_dir = request.runs_dir / name
    staging, source_hash = _stage_source(plan.trainer, request.runs_dir, name)
    try:
        shared, spec, notes = _join_study(backend, name, plan, source_hash, request)
        _place_source(staging, job_dir)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    artifacts_url = request.artifacts or shared.meta.get("artifacts")
    if artifacts is None:
        artifacts = open_artifacts(artifacts_url)
    record = new_record(
        job_dir,
        spec,
        plan.trainer,
        config=request.config,
        fixed_flags=shared.meta.get("fixed_flags", {}),
        launch=plan.launch,
        storage=storage.mask(request.storage),
        study=name,
        artifacts=artifacts_url,
        source_hash=shared.meta.get("source_hash"),
        shared=True,
        created=_created_before(job_dir),
    )
    jobstore.write_job(job_dir, record)
    script_copy = job_dir / jobstore.SOURCE_DIR / plan.trainer.entry
    return Job(
        job_dir,
        record,
        shared.study,
        script_copy,
        Path.cwd(),
        notes,
        artifacts=artifacts,
        artifact_prefix=name,
    )


@dataclasses.dataclass
class _WorkerPlan:
    """What this worker brings to the study, checked as for a local job."""

    spec: TuningSpec
    trainer: Trainer
    fixed: dict[str, Any]
    launch: Launch
    notes: list[str]


def _worker_plan(
    request: TuneRequest,
    spec: TuningSpec | None,
    fixed: dict[str, Any] | None,
    launch: Launch | None,
) -> _WorkerPlan:
    """The tuning file's plan, or (``spec`` given) the one this machine's snapshot kept."""
    if spec is None:
        plan = make_plan(request, load_request_spec(request))
        ours = _WorkerPlan(plan.spec, plan.trainer, plan.fixed, plan.launch, plan.notes)
    else:  # rejoining from this machine's snapshot
        trainer = find_trainer(request.script, None, ())
        checked = introspect.check_flags(trainer.file, fixed or {})
        ours = _WorkerPlan(spec, trainer, checked, launch or Launch(), [])
    if ours.spec.resume_job_id:
        raise UsageError(
            "resumePreviousJobId does not apply to a shared study",
            hint="run the same command again: workers rejoin the study by its --study name",
        )
    return ours


def _join_study(
    backend: optuna.storages.BaseStorage,
    name: str,
    plan: _WorkerPlan,
    source_hash: str | None,
    request: TuneRequest,
) -> tuple[distributed.SharedStudy, TuningSpec, list[str]]:
    """Create the study with this worker's plan, or join it under the study's own spec."""
    meta = {
        "spec": plan.spec.to_dict(),
        "script": plan.trainer.entry,
        "fixed_flags": plan.fixed,
        "launch": plan.launch.to_dict(),
        "source_hash": source_hash,
        "artifacts": request.artifacts,
        "created": now(),
    }
    shared = distributed.join_study(
        backend,
        name,
        meta,
        lambda spec_dict, create: study_in(
            backend, name, _worker_spec(spec_dict, plan.spec), create=create
        ),
    )
    verb = "created" if shared.created else "joined"
    notes = [f"{verb} study {name} in {storage.mask(str(request.storage))}", *plan.notes]
    spec = plan.spec
    if not shared.created:
        spec = _adopt_study_spec(shared.meta, spec, request, name, notes)
        _check_same_fixed(shared.meta, plan.fixed, name)
        if source_hash and shared.meta.get("source_hash") != source_hash:
            notes.append(f"your source differs from the one study {name} started with")
    elif spec.algorithm == "GRID_SEARCH":
        enqueue_grid(shared.study, spec)
    return shared, spec, notes


def rejoin(request: TuneRequest, record: JobRecord, job_dir: Path) -> Job:
    """``--resume`` of a worker's job: join its shared study again."""
    recorded = record.storage or ""
    url = request.storage or (None if storage.MASK in recorded else recorded)
    if url is None or storage.mask(url) != recorded:
        raise UsageError(
            f"job {job_dir.name} shares study {record.study} in {recorded}",
            hint="give its URL with --storage or FLAGRUN_STORAGE to rejoin",
        )
    script = job_dir / jobstore.SOURCE_DIR / record.script
    fixed = {name: str(value) for name, value in record.fixed_flags.items()}
    again = dataclasses.replace(
        request,
        resume=None,
        storage=url,
        study=record.study,
        script=script,
        config=None,
        grid=None,
        fixed={},
        artifacts=request.artifacts or record.artifacts,
    )
    spec = apply_overrides(record.spec, again)
    return join_job(again, spec=spec, fixed=fixed, launch=record.launch)


def _created_before(job_dir: Path) -> str | None:
    """When this machine's folder of the study was first made (a worker rejoining)."""
    try:
        return jobstore.read_job(job_dir).created
    except FlagrunError:
        return None


def _worker_spec(study_spec: dict[str, Any], ours: TuningSpec) -> TuningSpec:
    """The study's spec with this worker's parallelism, and its own sampler seed."""
    spec = TuningSpec.from_dict(study_spec)
    seed = None if spec.seed is None else spec.seed + os.getpid()  # no twin proposals
    return dataclasses.replace(spec, max_parallel_trials=ours.max_parallel_trials, seed=seed)


def _adopt_study_spec(
    meta: dict[str, Any], ours: TuningSpec, request: TuneRequest, name: str, notes: list[str]
) -> TuningSpec:
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
    return spec


def _check_same_fixed(meta: dict[str, Any], fixed: dict[str, Any] | None, name: str) -> None:
    if meta.get("fixed_flags", {}) != (fixed or {}):
        raise UsageError(
            f"study {name} fixes flags {meta.get('fixed_flags') or 'none'}, you gave "
            f"{fixed or 'none'}",
            hint="give every worker the same NAME=VALUE flags",
        )


def _stage_source(trainer: Trainer, runs_dir: Path, name: str) -> tuple[Path | None, str | None]:
    """Snapshot the source next to the job folder; None when rejoining from the snapshot."""
    root = trainer.root
    if root.name == jobstore.SOURCE_DIR and root.parent.name == name:
        return None, None
    runs_dir.mkdir(parents=True, exist_ok=True)
    staging = runs_dir / f".{name}.source-{os.getpid()}"
    return staging, store.snapshot_source(root, staging, exclude=[runs_dir])


def _place_source(staging: Path | None, job_dir: Path) -> None:
    """Move the staged snapshot in, unless a worker on this machine was first (keep theirs)."""
    job_dir.mkdir(parents=True, exist_ok=True)
    if staging is not None and not (job_dir / jobstore.SOURCE_DIR).exists():
        with contextlib.suppress(OSError):  # lost the race to another worker here
            os.rename(staging, job_dir / jobstore.SOURCE_DIR)
