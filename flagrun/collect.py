"""Looking at and gathering a job's results: ``trials``, ``collect`` and ``jobs``.

These read the job folder only (``job.json`` and the trials index), never
Optuna, so they answer fast and work on a copy of ``runs/``.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flagrun import jobstore, store
from flagrun.errors import UsageError

# Best first: complete trials by objective, then running, pruned and failed ones.
STATE_ORDER = {"COMPLETE": 0, "RUNNING": 1, "PRUNED": 2, "FAILED": 3}


@dataclass
class TrialsTable:
    """A job's trials, best first, as ``flagrun trials`` shows them."""

    job: str
    job_dir: Path
    goal: str
    metric: str
    state: str
    max_trials: int
    params: list[str]
    trials: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The ``--format json`` document (cloudml's job_trials shape)."""
        job_dir = str(self.job_dir.absolute())
        return {
            "job": self.job,
            "goal": self.goal,
            "metric": self.metric,
            "trials": [
                {
                    "trialId": row["trialId"],
                    "state": row["state"],
                    "objectiveValue": row.get("objectiveValue"),
                    "trainingStep": row.get("trainingStep"),
                    "hyperparameters": row.get("hyperparameters", {}),
                    "runDir": os.path.join(job_dir, row["runDir"]),
                    "duration": row.get("duration"),
                }
                for row in self.trials
            ],
        }

    def best(self) -> dict[str, Any] | None:
        """The best complete trial, or None."""
        first = self.trials[0] if self.trials else None
        return first if first and first["state"] == "COMPLETE" else None


def trials(job: str | None = None, *, runs_dir: str | os.PathLike[str] = "runs") -> TrialsTable:
    """A job's trials, best first (default: the latest job)."""
    job_dir = jobstore.resolve_job(Path(runs_dir), job)
    record = jobstore.read_job(job_dir)
    spec = record["spec"]
    rows = jobstore.read_trials(job_dir)
    maximize = spec["goal"] == "MAXIMIZE"
    rows.sort(key=lambda row: _rank(row, maximize))
    return TrialsTable(
        job=job_dir.name,
        job_dir=job_dir,
        goal=spec["goal"],
        metric=spec["metric_tag"],
        state=_job_state(record),
        max_trials=spec["max_trials"],
        params=[param["name"] for param in spec["params"]],
        trials=rows,
    )


def _rank(row: dict[str, Any], maximize: bool) -> tuple[int, float, int]:
    value = row.get("objectiveValue")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        key = math.inf
    else:
        key = -value if maximize else value
    return (STATE_ORDER.get(row["state"], 9), key, row["trialId"])


def _job_state(record: dict[str, Any]) -> str:
    if record.get("state") == "RUNNING" and not store.is_alive(record.get("tuner") or {}):
        return "CRASHED"
    return record.get("state", "UNKNOWN")


@dataclass
class Collected:
    """What ``collect`` gathered."""

    job: str
    dest: Path
    trial_ids: list[int]
    best_flags_file: Path | None


def collect(
    job: str | None = None,
    *,
    which: str | list[int] = "best",
    dest: str | os.PathLike[str] | None = None,
    runs_dir: str | os.PathLike[str] = "runs",
) -> Collected:
    """Copy the best (``which="best"``), all (``"all"``) or chosen trials' run folders.

    They land in ``dest`` (default ``collected/<job-id>``) as ``trial-<id>/``, with
    ``best_flags.yml`` holding the best trial's flags, ready for
    ``flagrun train SCRIPT --flags best_flags.yml``.
    """
    table = trials(job, runs_dir=runs_dir)
    chosen = _choose(table, which)
    target = Path(dest) if dest is not None else Path("collected") / table.job
    target.mkdir(parents=True, exist_ok=True)
    for row in chosen:
        source = table.job_dir / row["runDir"]
        destination = target / f"trial-{row['trialId']}"
        if source.is_dir():
            shutil.copytree(source, destination, symlinks=True, dirs_exist_ok=True)
    best = table.best()
    flags_file = None
    if best is not None:
        flags_file = target / "best_flags.yml"
        _write_flags_yaml(flags_file, _resolved_flags(table.job_dir / best["runDir"], best))
    return Collected(table.job, target, [row["trialId"] for row in chosen], flags_file)


def _choose(table: TrialsTable, which: str | list[int]) -> list[dict[str, Any]]:
    if which == "all":
        return list(table.trials)
    if which == "best":
        best = table.best()
        if best is None:
            raise UsageError(
                f"job {table.job} has no complete trial to collect",
                hint="collect some anyway with --all or --trials N,M",
            )
        return [best]
    by_id = {row["trialId"]: row for row in table.trials}
    missing = [trial_id for trial_id in which if trial_id not in by_id]
    if missing:
        known = ", ".join(str(trial_id) for trial_id in sorted(by_id)) or "none"
        raise UsageError(
            f"job {table.job} has no trial {', '.join(map(str, missing))}",
            hint=f"trials: {known}",
        )
    return [by_id[trial_id] for trial_id in which]


def _resolved_flags(run_dir: Path, row: dict[str, Any]) -> dict[str, Any]:
    """Every flag value the trial ran with (defaults included), else its hyperparameters."""
    try:
        flags = store.read_run(run_dir).get("flags")
    except (OSError, ValueError):
        flags = None
    return flags if isinstance(flags, dict) and flags else dict(row.get("hyperparameters", {}))


def _write_flags_yaml(path: Path, flags: dict[str, Any]) -> None:
    import yaml

    from flagrun._atomic import write_text_atomic

    write_text_atomic(path, yaml.safe_dump(flags, sort_keys=False, default_flow_style=False))


def jobs(runs_dir: str | os.PathLike[str] = "runs") -> list[dict[str, Any]]:
    """Every job under ``runs_dir``, newest first, with state, progress and best value."""
    listing = []
    for job_dir in jobstore.list_jobs(Path(runs_dir)):
        record = jobstore.read_job(job_dir)
        counts = record.get("counts") or {}
        best = record.get("best") or {}
        listing.append(
            {
                "job": job_dir.name,
                "state": _job_state(record),
                "script": record.get("script"),
                "metric": record["spec"]["metric_tag"],
                "goal": record["spec"]["goal"],
                "done": sum(counts.get(state, 0) for state in ("COMPLETE", "PRUNED", "FAILED")),
                "maxTrials": record["spec"]["max_trials"],
                "best": best.get("objectiveValue"),
                "bestTrial": best.get("trialId"),
                "created": record.get("created"),
            }
        )
    return listing
