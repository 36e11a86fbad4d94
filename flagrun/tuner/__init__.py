"""Tuning jobs: Optuna's ask/tell over isolated trial processes.

``tune()`` validates everything first (the YAML, the script's flags, the options),
then creates or reopens a job folder (``setup``, ``shared``) and runs the loop
(``loop``) over an executor that starts the trials (``flagrun.executors``): on this
machine, or on a Dask cluster (``cluster=`` / ``--cluster``). The
budget and failure policy (``budget``) and a trial's life (``trial``) are their own
modules; ``job`` keeps the job's records.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from flagrun import storage
from flagrun.errors import RunError, UsageError
from flagrun.executors import Executor, LocalExecutor
from flagrun.gpus import parse_gpus
from flagrun.progress import make_progress
from flagrun.pruners import make_pruner
from flagrun.tuner.job import Job
from flagrun.tuner.loop import Tuner
from flagrun.tuner.request import JobResult, TuneRequest
from flagrun.tuner.setup import create_job, load_request_spec, resume_job

__all__ = ["JobResult", "TuneRequest", "Tuner", "check", "make_pruner", "tune"]

ARTIFACTS_ENV = "FLAGRUN_ARTIFACTS"
CLUSTER_ENV = "FLAGRUN_CLUSTER"  # a Dask scheduler's address (flagrun.executors.dask)
LOCAL = "none"  # --cluster none: run the trials on this machine


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
    cluster = request.cluster = _cluster_option(request.cluster)
    if cluster not in (None, LOCAL):
        _cluster_gpus(request.gpus)  # a usage error is said before the cluster is reached
    gpus = parse_gpus(request.gpus) if cluster in (None, LOCAL) else []
    # A cluster given now is reached before anything is created: an unreachable one
    # leaves no half-made job behind.
    connection = None if cluster in (None, LOCAL) else _connect(cluster)
    with contextlib.ExitStack() as cleanup:  # closed however the job ends
        if connection is not None:
            cleanup.callback(connection.close)
        if request.resume:
            job = resume_job(request)
        elif request.storage or request.study:
            from flagrun.tuner.shared import join_job

            job = join_job(request)
        else:
            job = create_job(request)
        cleanup.callback(job.close)  # the job's lock
        if cluster is None and request.resume and job.record.cluster:
            connection = _reconnect(job.record.cluster, job.job_dir.name)
            cleanup.callback(connection.close)
        progress = make_progress(request.progress, job.job_dir.name, job.spec)
        executor: Executor
        if connection is None:
            job.record.cluster = None
            executor = LocalExecutor(gpus, slots=job.spec.max_parallel_trials)
        else:
            executor = _dask_executor(connection, job, request, progress)
        return Tuner(job, executor, progress).run()


def check(request: TuneRequest, trials: int = 3) -> str:
    """Validate a tuning job as ``tune`` would and describe it; nothing is created or run.
    The library verb behind ``flagrun check`` and ``flagrun tune --dry-run``."""
    from flagrun.display import plan_text
    from flagrun.tuner.plan import first_trials, make_plan

    if request.resume or request.storage or request.study:
        raise UsageError(
            "check looks at a tuning file, not at a running job or a shared study",
            hint="drop --resume/--storage/--study",
        )
    request.runs_dir = Path(request.runs_dir)
    spec = load_request_spec(request)
    if spec.resume_job_id:
        return f"{spec.path}: valid: resumes job {spec.resume_job_id} with {spec.max_trials} trials"
    plan = make_plan(request, spec)
    return plan_text(plan, first_trials(plan, request.runs_dir, trials))


def _cluster_option(cluster: Any) -> Any:
    """The cluster asked for: the option, else FLAGRUN_CLUSTER; None when neither."""
    if cluster is None:
        cluster = os.environ.get(CLUSTER_ENV, "").strip() or None
    if isinstance(cluster, str) and cluster.strip().lower() == LOCAL:
        return LOCAL
    return cluster


def _reconnect(address: str, job_id: str) -> Any:
    """The cluster a resumed job last ran on (recorded in its job.json)."""
    try:
        return _connect(address)
    except RunError as exc:
        raise RunError(
            f"{exc.message} (job {job_id} last ran there)",
            hint="give the cluster it should use now with --cluster ADDRESS, "
            "or --cluster none to resume on this machine",
        ) from None


def _cluster_gpus(option: str | None) -> bool | None:
    """``--gpus`` on a cluster: left out, trials take a ``GPU`` worker resource when the
    workers offer one; ``none``, never."""
    if option is None:
        return None
    if option.strip().lower() in ("", "none"):
        return False
    raise UsageError(
        f"--gpus {option} names this machine's GPUs; trials on a cluster get the workers' "
        "GPU resources",
        hint="start GPU workers with `dask worker ADDRESS --resources GPU=N` and leave "
        "--gpus out (or give --gpus none for trials without a GPU)",
    )


def _connect(cluster: Any) -> Any:
    from flagrun.executors.dask import connect

    return connect(cluster)


def _dask_executor(connection: Any, job: Job, request: TuneRequest, progress: Any) -> Executor:
    from flagrun.executors.dask import DaskExecutor

    gpus = _cluster_gpus(request.gpus)
    job.record.cluster = connection.address
    workers = connection.client.scheduler_info(n_workers=-1).get("workers", {})
    threads = sum(info.get("nthreads", 0) for info in workers.values())
    job.notes += [
        f"trials run on the Dask cluster at {connection.address} "
        f"({len(workers)} workers, {threads} threads now)",
        *connection.notes,
    ]
    return DaskExecutor(
        connection,
        gpus=gpus,
        artifacts=job.artifacts.url if job.artifacts is not None else None,
        artifact_prefix=job.artifact_prefix,
        notify=progress.message,
    )
