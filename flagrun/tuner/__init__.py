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
from flagrun.executors import LocalExecutor
from flagrun.gpus import parse_gpus
from flagrun.progress import make_progress
from flagrun.pruners import make_pruner
from flagrun.tuner.loop import Tuner
from flagrun.tuner.request import JobResult, TuneRequest
from flagrun.tuner.setup import create_job, resume_job

__all__ = ["JobResult", "TuneRequest", "Tuner", "make_pruner", "tune"]

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
    try:
        progress = make_progress(request.progress, job.job_dir.name, job.spec)
        return Tuner(job, LocalExecutor(gpus), progress).run()
    finally:
        job.close()
