"""``flagrun report``: one self-contained HTML page for a tuning job or a single run.

The page works offline: inline CSS, inline SVG drawn here in Python, and a few lines of
inline JavaScript that only sort the trials table. Nothing is fetched from the network.

A job's page is built from its folder (``job.json``, ``trials.jsonl``, each trial's
``run.json`` and event files), never from the Optuna study, which is slower to open.

The data comes first (``data``: the trials, their curves, parameter importances), then
the charts (``charts``: inline SVG) and the pages (``pages``) that lay it out.
"""

from __future__ import annotations

import os
from pathlib import Path

from flagrun import jobstore, store
from flagrun.errors import StoreError, UsageError
from flagrun.htmlreport.data import Trial, param_importances
from flagrun.htmlreport.pages import job_html, run_html

__all__ = ["Trial", "job_html", "param_importances", "resolve", "run_html", "write_report"]

REPORT_FILE = "report.html"


def write_report(
    ref: str | None = None,
    *,
    runs_dir: str | os.PathLike[str] = "runs",
    output: str | os.PathLike[str] | None = None,
) -> Path:
    """Write the HTML report of a job (default: the latest) or a run; return its path.

    ``ref`` is a job id, a run id, ``JOB/trials/N``, or a path to either folder. The page
    goes to ``output``, by default ``report.html`` inside that folder.
    """
    from flagrun._atomic import write_output, write_text_atomic

    kind, folder = resolve(Path(runs_dir), ref)
    page = job_html(folder) if kind == "job" else run_html(folder)
    target = Path(output) if output is not None else folder / REPORT_FILE
    try:
        if output is not None:
            write_output(target, page)
        else:
            write_text_atomic(target, page)
    except OSError as exc:
        raise StoreError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target


def resolve(runs_dir: Path, ref: str | None) -> tuple[str, Path]:
    """``("job", folder)`` or ``("run", folder)`` for what ``ref`` names."""
    if ref in (None, "", "latest"):
        return "job", jobstore.resolve_job(runs_dir, None)
    as_path = Path(ref)
    if jobstore.is_job_dir(as_path):
        return "job", as_path
    if (as_path / store.RUN_FILE).is_file():
        return "run", as_path
    try:
        return "job", jobstore.resolve_job(runs_dir, ref)
    except UsageError:
        pass
    try:
        return "run", store.resolve_run(runs_dir, ref)
    except UsageError:
        jobs = ", ".join(p.name for p in jobstore.list_jobs(runs_dir)[:3]) or "none"
        runs = ", ".join(r.id for r in store.list_runs(runs_dir)[:3]) or "none"
        raise UsageError(
            f"no job or run {ref!r} in {runs_dir}",
            hint=f"recent jobs: {jobs}; recent runs: {runs} (a trial is JOB/trials/N)",
        ) from None
