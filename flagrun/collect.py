"""Looking at and gathering a job's results: ``trials``, ``collect`` and ``jobs``.

A one-machine job is read from its folder only (``job.json`` and the trials
index), never Optuna, so they answer fast and work on a copy of ``runs/``. A
study shared by several workers is read from its database, which has every
worker's trials; their files come from the study's artifact store.
"""

from __future__ import annotations

import math
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flagrun import _paths, jobstore, store
from flagrun.errors import StoreError, UsageError
from flagrun.records import JobRecord, JobState, TrialRow, TrialState
from flagrun.spec import TuningSpec

if TYPE_CHECKING:
    import optuna

# Best first: complete trials by objective, then running, pruned and failed ones.
STATE_ORDER = {
    TrialState.COMPLETE: 0,
    TrialState.RUNNING: 1,
    TrialState.PRUNED: 2,
    TrialState.FAILED: 3,
}


@dataclass
class TrialsTable:
    """A job's trials, best first, as ``flagrun trials`` shows them."""

    job: str
    job_dir: Path
    goal: str
    metric: str
    state: JobState
    max_trials: int
    params: list[str]
    trials: list[TrialRow] = field(default_factory=list)
    artifacts: str | None = None  # the shared study's artifact store
    notes: list[str] = field(default_factory=list)  # said above the table (damage found...)

    def to_dict(self) -> dict[str, Any]:
        """The ``--format json`` document (cloudml's job_trials shape)."""
        job_dir = str(self.job_dir.absolute())
        return {
            "job": self.job,
            "goal": self.goal,
            "metric": self.metric,
            "trials": [
                {
                    "trialId": row.trial_id,
                    "state": row.state.value,
                    "objectiveValue": row.objective_value,
                    "trainingStep": row.training_step,
                    "hyperparameters": row.hyperparameters,
                    "runDir": os.path.join(job_dir, row.run_dir),
                    "duration": row.duration,
                    **({"resumedFrom": row.resumed_from} if row.resumed_from else {}),
                }
                for row in self.trials
            ],
        }

    def best(self) -> TrialRow | None:
        """The best complete trial, or None."""
        first = self.trials[0] if self.trials else None
        return first if first and first.state == TrialState.COMPLETE else None


def trials(
    job: str | None = None,
    *,
    runs_dir: str | os.PathLike[str] = "runs",
    storage: str | None = None,
    study: str | None = None,
) -> TrialsTable:
    """A job's trials, best first (default: the latest job).

    With ``study`` (and ``storage`` or ``FLAGRUN_STORAGE``), the trials of that
    shared study, from every worker.
    """
    runs_dir = Path(runs_dir)
    if study is not None:
        return _shared_table(_storage_url(storage), study, runs_dir)
    job_dir = jobstore.resolve_job(runs_dir, job)
    record = jobstore.read_job(job_dir)
    notes = []
    if record.shared and record.study:
        url = _recorded_url(record, storage)
        if url is not None:
            return _shared_table(url, record.study, runs_dir)
        notes.append(
            f"this worker's trials only: give --storage (or FLAGRUN_STORAGE) for every "
            f"worker's trials of study {record.study}"
        )
    index = jobstore.read_index(job_dir)
    state = jobstore.job_state(record)
    return _table(job_dir, record.spec, state, index.rows, record.artifacts, notes + index.notes)


def _table(
    job_dir: Path,
    spec: TuningSpec,
    state: JobState,
    rows: list[TrialRow],
    artifacts: str | None,
    notes: list[str] | None = None,
) -> TrialsTable:
    maximize = spec.maximize
    rows.sort(key=lambda row: _rank(row, maximize))
    return TrialsTable(
        job=job_dir.name,
        job_dir=job_dir,
        goal=spec.goal,
        metric=spec.metric_tag,
        state=state,
        max_trials=spec.max_trials,
        params=[param.name for param in spec.params],
        trials=rows,
        artifacts=artifacts,
        notes=notes or [],
    )


def _storage_url(given: str | None) -> str:
    from flagrun.storage import resolve_url

    url = resolve_url(given)
    if url is None:
        raise UsageError(
            "--study names a shared study: say where it is with --storage URL or FLAGRUN_STORAGE"
        )
    return url


def _recorded_url(record: JobRecord, given: str | None) -> str | None:
    """The URL of a worker's shared study, when we have it (job.json's is masked)."""
    from flagrun.storage import MASK, mask, resolve_url

    recorded = record.storage or ""
    url = resolve_url(given)
    if url is not None and mask(url) == recorded:
        return url
    return recorded if MASK not in recorded and "://" in recorded else None


def _shared_table(url: str, name: str, runs_dir: Path) -> TrialsTable:
    from flagrun.storage import load_shared_study, study_meta

    shared = load_shared_study(url, name)
    meta = study_meta(shared) or {}
    try:
        spec = TuningSpec.from_dict(meta["spec"])
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise StoreError(
            f"study {name!r}: the job spec flagrun stored on it is damaged ({exc})",
            hint="a worker of another flagrun version, or an edit, changed it",
        ) from None
    rows = study_rows(shared)
    state = _study_state(rows, spec.max_trials)
    return _table(runs_dir / name, spec, state, rows, meta.get("artifacts"))


def study_rows(study: optuna.Study) -> list[TrialRow]:
    """Every asked trial of a study as a trials-index row, by trialId."""
    from flagrun.tuner import budget
    from flagrun.tuner.resume import RESUMED_FROM

    rows = []
    for trial in study.get_trials(deepcopy=False):
        state = budget.trial_state(trial)
        attrs = trial.user_attrs
        if state is None or attrs.get(budget.SURPLUS):
            continue  # queued and not started yet, or asked beyond the budget and given back
        reason = attrs.get("reason")
        if attrs.get(budget.INTERRUPTED):
            reason = reason or "interrupted; its parameters were run again"
        complete = state == TrialState.COMPLETE
        run_dir = attrs.get("runDir")  # anyone who can write the study can write this
        if not isinstance(run_dir, str) or not _paths.is_plain_relative(run_dir):
            run_dir = f"{jobstore.TRIALS_DIR}/{trial.number + 1}"
        rows.append(
            TrialRow(
                trial_id=trial.number + 1,
                state=state,
                hyperparameters=attrs.get("flags", dict(trial.params)),
                run_dir=run_dir,
                objective_value=trial.value if complete else attrs.get("lastValue"),
                training_step=attrs.get("trainingStep"),
                duration=attrs.get("duration"),
                reason=reason,
                host=attrs.get("host"),
                artifact=attrs.get("artifact"),
                interrupted=bool(attrs.get(budget.INTERRUPTED)),
                resumed_from=_trial_id_or_none(attrs.get(RESUMED_FROM)),
            )
        )
    return rows


def _trial_id_or_none(value: Any) -> int | None:
    """A trialId read from a study (anyone who can write the study can write it)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _study_state(rows: list[TrialRow], max_trials: int) -> JobState:
    running = TrialState.RUNNING
    done = sum(1 for row in rows if row.state != running and not row.interrupted)
    if done >= max_trials:
        return JobState.COMPLETED
    return JobState.RUNNING if any(row.state == running for row in rows) else JobState.STOPPED


def _rank(row: TrialRow, maximize: bool) -> tuple[int, float, int]:
    value = row.objective_value
    if value is None or math.isnan(value):
        value = -math.inf if maximize else math.inf
    return (STATE_ORDER.get(row.state, 9), -value if maximize else value, row.trial_id)


@dataclass
class Collected:
    """What ``collect`` gathered."""

    job: str
    dest: Path
    trial_ids: list[int]
    best_flags_file: Path | None
    skipped: list[str] = field(default_factory=list)  # what was not copied, and why
    notes: list[str] = field(default_factory=list)  # damage found in the job's records


def collect(
    job: str | None = None,
    *,
    which: str | list[int] = "best",
    dest: str | os.PathLike[str] | None = None,
    runs_dir: str | os.PathLike[str] = "runs",
    storage: str | None = None,
    study: str | None = None,
    artifacts: str | None = None,
) -> Collected:
    """Copy the best (``which="best"``), all (``"all"``) or chosen trials' run folders.

    They land in ``dest`` (default ``collected/<job-id>``) as ``trial-<id>/``, with
    ``best_flags.yml`` holding the best trial's flags, ready for
    ``flagrun train SCRIPT --flags best_flags.yml``. Trials of a shared study
    that ran on another machine are downloaded from its artifact store
    (``artifacts`` or ``FLAGRUN_ARTIFACTS`` overrides where that is).
    """
    table = trials(job, runs_dir=runs_dir, storage=storage, study=study)
    chosen = _choose(table, which)
    store_url = artifacts or os.environ.get("FLAGRUN_ARTIFACTS") or table.artifacts
    target = Path(dest) if dest is not None else Path("collected") / table.job
    _make_dest(target)
    skipped: list[str] = []
    for row in chosen:
        skipped += _fetch(table, row, target / f"trial-{row.trial_id}", store_url)
    best = table.best()
    flags_file = None
    if best is not None:
        flags_file = target / "best_flags.yml"
        run_dir = target / f"trial-{best.trial_id}"
        if not run_dir.is_dir():
            run_dir = _run_path(table, best)
        _write_flags_yaml(flags_file, _resolved_flags(run_dir, best))
    ids = [row.trial_id for row in chosen]
    return Collected(table.job, target, ids, flags_file, skipped, table.notes)


def _make_dest(target: Path) -> None:
    """The destination folder, made when missing; one clear line when it cannot be one."""
    if target.is_symlink() and not target.exists():
        raise UsageError(f"--dest {target} is a symlink to nothing", hint="give a folder")
    if target.exists() and not target.is_dir():
        raise UsageError(f"--dest {target} is a file, not a folder", hint="give a folder")
    target.mkdir(parents=True, exist_ok=True)


def _run_path(table: TrialsTable, row: TrialRow) -> Path:
    return _paths.inside(table.job_dir, row.run_dir, f"trial {row.trial_id}'s runDir")


def _fetch(
    table: TrialsTable, row: TrialRow, destination: Path, store_url: str | None
) -> list[str]:
    """Copy a trial's folder from here, else download it from the artifact store; what
    was skipped."""
    source = _run_path(table, row)
    if source.is_dir():
        return copy_run_folder(source, destination)
    if row.artifact is None or store_url is None:
        if row.state == TrialState.RUNNING:
            return []  # nothing to gather yet
        where = f" on {row.host}" if row.host else " elsewhere"
        raise UsageError(
            f"trial {row.trial_id}'s files are{where}, not in {table.job_dir}, "
            "and no artifact store holds them",
            hint="run workers with --artifacts PATH (a shared folder) or s3://BUCKET/PREFIX",
        )
    from flagrun.artifacts import open_artifacts

    open_artifacts(store_url).download(row.artifact, destination)
    return []


def copy_run_folder(source: Path, destination: Path) -> list[str]:
    """Copy a run folder: files, folders and symlinks (as links); what is none of those
    (a FIFO, a socket, a device) is skipped and returned as ``path: why``."""
    skipped: list[str] = []

    def special(folder: str, names: list[str]) -> set[str]:
        odd = set()
        for name in names:
            mode = os.lstat(os.path.join(folder, name)).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
                odd.add(name)
                skipped.append(f"{os.path.join(folder, name)}: not a regular file")
        return odd

    shutil.copytree(source, destination, symlinks=True, ignore=special, dirs_exist_ok=True)
    return skipped


def _choose(table: TrialsTable, which: str | list[int]) -> list[TrialRow]:
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
    if isinstance(which, str):
        raise UsageError(f"collect {which!r}: say best, all, or a list of trial ids")
    by_id = {row.trial_id: row for row in table.trials}
    missing = [trial_id for trial_id in which if trial_id not in by_id]
    if missing:
        known = ", ".join(str(trial_id) for trial_id in sorted(by_id)) or "none"
        raise UsageError(
            f"job {table.job} has no trial {', '.join(map(str, missing))}",
            hint=f"trials: {known}",
        )
    return [by_id[trial_id] for trial_id in which]


def _resolved_flags(run_dir: Path, row: TrialRow) -> dict[str, Any]:
    """Every flag value the trial ran with (defaults included), else its hyperparameters."""
    try:
        flags = store.read_run(run_dir).flags
    except StoreError:
        flags = {}
    return flags or dict(row.hyperparameters)


def _write_flags_yaml(path: Path, flags: dict[str, Any]) -> None:
    import yaml

    from flagrun._atomic import write_output

    write_output(path, yaml.safe_dump(flags, sort_keys=False, default_flow_style=False))


def jobs(
    runs_dir: str | os.PathLike[str] = "runs", damaged: list[StoreError] | None = None
) -> list[dict[str, Any]]:
    """Every job under ``runs_dir``, newest first, with state, progress and best value.

    A job whose ``job.json`` cannot be read is left out; its error goes to ``damaged``
    when given (the CLI says one line for each).
    """
    listing = []
    for job_dir in jobstore.list_jobs(Path(runs_dir)):
        try:
            record = jobstore.read_job(job_dir)
        except StoreError as exc:
            if damaged is not None:
                damaged.append(exc)
            continue
        best = record.best
        listing.append(
            {
                "job": job_dir.name,
                "state": jobstore.job_state(record).value,
                "script": record.script,
                "metric": record.spec.metric_tag,
                "goal": record.spec.goal,
                "done": record.finished_trials,
                "maxTrials": record.spec.max_trials,
                "best": best.objective_value if best else None,
                "bestTrial": best.trial_id if best else None,
                "created": record.created,
            }
        )
    return listing
