"""Tuning jobs: Optuna's ask/tell over isolated trial processes.

``tune()`` validates everything first (the YAML, the script's flags, the options),
then creates or reopens a job folder (``setup``, ``shared``) and runs the loop
(``loop``) over an executor that starts the trials (``flagrun.executors``). The
budget and failure policy (``budget``) and a trial's life (``trial``) are their own
modules; ``job`` keeps the job's records.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flagrun import storage
from flagrun.errors import UsageError
from flagrun.executors import LocalExecutor
from flagrun.gpus import parse_gpus
from flagrun.progress import make_progress
from flagrun.pruners import make_pruner
from flagrun.tuner.loop import Tuner
from flagrun.tuner.request import JobResult, TuneRequest
from flagrun.tuner.setup import create_job, load_request_spec, resume_job

__all__ = ["JobResult", "TuneRequest", "Tuner", "check", "make_pruner", "tune"]

ARTIFACTS_ENV = "FLAGRUN_ARTIFACTS"


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
    gpus = parse_gpus(request.gpus)
    if request.resume:
        job = resume_job(request)
    elif request.storage or request.study:
        from flagrun.tuner.shared import join_job

        job = join_job(request)
    else:
        job = create_job(request)
    progress = make_progress(request.progress, job.job_dir.name, job.spec)
    return Tuner(job, LocalExecutor(gpus), progress).run()


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
