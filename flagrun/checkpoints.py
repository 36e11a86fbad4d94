"""The checkpoint contract: where a run keeps what it needs to continue after an interruption.

Every run under flagrun (``flagrun train`` and each trial of ``flagrun tune``) has a
checkpoint folder, ``<run dir>/checkpoint/``, named to the script by
``FLAGRUN_CHECKPOINT_DIR`` and returned by ``flagrun.checkpoint_dir()``. A script that
saves its state there, and restores from there when it starts, resumes: when a trial is
interrupted (Ctrl-C or a crash of the tuner, a stale worker of a shared study), the run
of its parameters on ``flagrun tune --resume`` starts with the interrupted trial's
checkpoint folder and event files in its own run folder (``flagrun.tuner.resume``).
Keras needs no code: ``flagrun.capture`` gives ``Model.fit`` a ``BackupAndRestore``
writing below this folder.

Run by hand (no ``FLAGRUN_RUN_DIR``), the folder is ``./checkpoint`` in the current
folder, so a script stopped by hand resumes when started again from the same place.

Stdlib only: this runs inside every training process.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = [
    "CHECKPOINT_DIR_ENV",
    "CHECKPOINT_SUBDIR",
    "KERAS_BACKUP_PREFIX",
    "checkpoint_dir",
    "has_checkpoint",
    "remove_keras_backups",
]

CHECKPOINT_DIR_ENV = "FLAGRUN_CHECKPOINT_DIR"
CHECKPOINT_SUBDIR = "checkpoint"  # inside a run folder
RUN_DIR_ENV = "FLAGRUN_RUN_DIR"
KERAS_BACKUP_PREFIX = "keras-fit-"  # capture's BackupAndRestore folders: keras-fit-1, ...


def checkpoint_dir() -> Path:
    """The folder where this run saves and finds its checkpoint; created if missing.

    Under flagrun it is ``<run dir>/checkpoint`` (``FLAGRUN_CHECKPOINT_DIR``, else
    ``FLAGRUN_RUN_DIR``); run by hand, ``./checkpoint``. Whatever is in it when the
    script starts is the state of an interrupted run of the same parameters, to continue
    from; an empty folder means start from the beginning.
    """
    value = os.environ.get(CHECKPOINT_DIR_ENV)
    run_dir = os.environ.get(RUN_DIR_ENV)
    if value:
        folder = Path(value)
    else:
        folder = (Path(run_dir) if run_dir else Path.cwd()) / CHECKPOINT_SUBDIR
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def has_checkpoint(run_dir: Path) -> bool:
    """Whether a run folder's checkpoint folder holds a file (a real folder, not a link)."""
    folder = Path(run_dir) / CHECKPOINT_SUBDIR
    if folder.is_symlink() or not folder.is_dir():
        return False
    return any(files for _, _, files in os.walk(folder))


def remove_keras_backups(run_dir: Path) -> None:
    """Remove the Keras backups flagrun's capture made in a run that ended for good
    (pruned, failed): nothing resumes it, and a big model's backup weighs hundreds of MB.
    What the script saved there itself stays."""
    folder = Path(run_dir) / CHECKPOINT_SUBDIR
    if folder.is_symlink() or not folder.is_dir():
        return
    try:
        entries = list(folder.iterdir())
    except OSError:  # the script locked it: it stays as the script left it
        return
    for entry in entries:
        if entry.name.startswith(KERAS_BACKUP_PREFIX) and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
