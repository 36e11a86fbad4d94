"""An interrupted trial's parameters continue from its checkpoint instead of starting over.

A trial the tuner cut short (Ctrl-C, a crash of the tuner, a stale worker) is failed and
its parameters queued again; the queued trial carries the interrupted one's id
(``budget.RETRY_OF``). When it starts, ``carry_over`` looks at that trial's run folder:
if its checkpoint folder (``flagrun.checkpoints``) holds a file, the event files and the
hypertune metrics file are copied into the new run folder, then the checkpoint folder is
moved there. The script restores from it and writes the epochs that are left, so the new
trial's curve holds every step and the pruner judges all of it.

The move of the checkpoint folder is the one step that commits: a crash before it leaves
the checkpoint where it was (the copies in the new folder are left over, never read as a
checkpoint), a crash after it leaves it in the new trial's folder. Either way the next
retry finds it by following ``RETRY_OF`` back through the retries that never got it.
A trial's folder is ``trials/<id>`` under the job folder, resolved through
``_paths.inside``: an id or a link read from storage cannot lead elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import optuna

from flagrun import _paths
from flagrun.checkpoints import CHECKPOINT_SUBDIR, has_checkpoint
from flagrun.sources.events import HPARAMS_MARK, SKIP_DIRS
from flagrun.sources.hypertune import METRIC_FILE
from flagrun.store import TRIALS_DIR
from flagrun.tuner.budget import RETRY_OF

RESUMED_FROM = "resumedFrom"  # on a trial that continued an interrupted one: its trialId


def carry_over(
    study: optuna.Study, trial: optuna.Trial, job_dir: Path, run_dir: Path
) -> int | None:
    """Give ``trial``'s empty run folder the checkpoint of the interrupted trial it runs
    again, with that trial's metrics; that trial's id, or None when there is nothing to
    continue from (the trial starts over, as a script without checkpoints always does).

    Raises StoreError when a trial folder leads outside the job folder, OSError when the
    files cannot be copied or moved (``run_dir`` is then left empty).
    """
    source = _source(study, trial, job_dir)
    if source is None:
        return None
    trial_id, folder = source
    try:
        _copy_metrics(folder, run_dir)
        os.replace(folder / CHECKPOINT_SUBDIR, run_dir / CHECKPOINT_SUBDIR)
    except OSError:  # the trial starts over, from an empty folder as it would have
        _empty(run_dir)
        raise
    _fsync_dir(run_dir)
    _fsync_dir(folder)
    return trial_id


def _source(study: optuna.Study, trial: optuna.Trial, job_dir: Path) -> tuple[int, Path] | None:
    """The nearest trial up the chain of retries whose folder holds a checkpoint."""
    own = trial.number + 1
    retry_of = _earlier_trial(trial.user_attrs.get(RETRY_OF), own)
    trials: dict[int, optuna.trial.FrozenTrial] | None = None
    while retry_of is not None:  # each retry names an earlier trial, so the walk ends
        folder = _paths.inside(job_dir, f"{TRIALS_DIR}/{retry_of}", "trial folder")
        if has_checkpoint(folder):
            return retry_of, folder
        if trials is None:
            trials = {frozen.number + 1: frozen for frozen in study.get_trials(deepcopy=False)}
        earlier = trials.get(retry_of)
        if earlier is None:
            return None
        retry_of = _earlier_trial(earlier.user_attrs.get(RETRY_OF), retry_of)
    return None


def _earlier_trial(value: object, before: int) -> int | None:
    """A trialId read from the study, when it names a trial before ``before``."""
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value < before:
        return value
    return None


def _copy_metrics(source: Path, dest: Path) -> None:
    """Copy the event files (not flagrun's HParams files) and the hypertune file of
    ``source`` into the same places under ``dest``; links are not followed."""
    for folder, dirs, files in os.walk(source):
        here = Path(folder)
        if here == source:
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS and d != CHECKPOINT_SUBDIR]
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            path = here / name
            relative = path.relative_to(source)
            wanted = "tfevents" in name and HPARAMS_MARK not in name
            if (wanted or relative.as_posix() == METRIC_FILE) and not path.is_symlink():
                _copy_file(path, dest / relative)


def _copy_file(path: Path, dest: Path) -> None:
    """Copy under a temp name, then rename: no reader ever sees half a file."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".flagrun-", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        shutil.copy2(path, tmp)
        with open(tmp, "rb+") as handle:  # on disk before the checkpoint's move commits
            os.fsync(handle.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _empty(folder: Path) -> None:
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a power loss keeps it)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
