"""How a trial is launched: Cloud ML Engine's contract with a trainer, on this machine.

A trainer is a script file (``train.py``) or a module of a package run as
``python -m trainer.task`` from the package root, as Cloud ML runs ``pythonModule``: the
root (the folder holding ``trainer/``) is what is snapshotted and put first on the path,
so ``from trainer import model`` works. A script inside a package (``trainer/task.py``)
is run the same way.

Every trial gets, in this order: the fixed arguments (``trainingInput.args``, then what
follows ``--`` on the command line), ``--job-dir`` (the job dir given by the file or the
command line, or the trial's own run folder when the trainer declares ``--job-dir`` and
none is given), then the hyperparameters as ``--name=value`` spelled as the tuning file
writes them. Its environment carries what Cloud ML sets: ``TF_CONFIG`` whose
``task.trial`` is the trial number (from 1, as text), ``CLOUD_ML_TRIAL_ID``, and
``CLOUD_ML_HP_METRIC_FILE``/``CLOUD_ML_HP_METRIC_TAG`` pointing into the trial's run
folder, where ``cloudml-hypertune`` writes the metric that ``flagrun.sources`` reads.

``TF_CONFIG`` names no cluster and the task type ``worker``: that is TensorFlow's local
mode (``tf.estimator`` refuses any other task type without a cluster), so a trainer
that reads the trial number works and none tries to reach a parameter server.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from flagrun.errors import UsageError
from flagrun.records import Launch
from flagrun.sources.hypertune import METRIC_FILE

__all__ = [
    "JOB_DIR_OPTIONS",
    "Trainer",
    "find_trainer",
    "given_options",
    "trial_args",
    "trial_env",
]

JOB_DIR_OPTIONS = ("job-dir", "job_dir")  # how trainers spell Cloud ML's --job-dir
TF_CONFIG_ENV = "TF_CONFIG"
TRIAL_ID_ENV = "CLOUD_ML_TRIAL_ID"
METRIC_FILE_ENV = "CLOUD_ML_HP_METRIC_FILE"
METRIC_TAG_ENV = "CLOUD_ML_HP_METRIC_TAG"


@dataclass(frozen=True)
class Trainer:
    """What a trial runs: a script, or a module of the package rooted at ``root``."""

    root: Path  # the folder that is snapshotted and put first on sys.path
    entry: str  # the entry file, relative to root (posix): "train.py", "trainer/task.py"
    module: str | None = None  # run as `python -m module` when set

    @property
    def file(self) -> Path:
        return self.root / self.entry

    @property
    def name(self) -> str:
        """How messages name it: ``train.py`` or ``trainer.task``."""
        return self.module or self.entry

    def target(self, root: Path | None = None) -> list[str]:
        """What ``flagrun._bootstrap`` (and ``_describe``) take to run it from ``root``
        (a snapshot of ``self.root``; default the original)."""
        base = self.root if root is None else root
        if self.module:
            return ["-m", str(base), self.module]
        return [str(base / self.entry)]


def find_trainer(script: Path | None, module: str | None, bases: Sequence[Path]) -> Trainer:
    """The trainer named by a script path or a module name (looked for under ``bases``)."""
    if module is not None:
        return _find_module(module, bases)
    if script is None or not script.is_file():
        raise UsageError(
            f"training script {script} not found",
            hint="name it: flagrun tune SCRIPT --config tuning.yml "
            "(or -m trainer.task for a package, as pythonModule in the YAML)",
        )
    script = script.resolve()
    root, parts = script.parent, [script.stem]
    while (root / "__init__.py").is_file():
        parts.insert(0, root.name)
        root = root.parent
    if len(parts) == 1:
        return Trainer(script.parent, script.name)
    if parts[-1] == "__main__":
        parts.pop()
    return Trainer(root, script.relative_to(root).as_posix(), ".".join(parts))


def _find_module(module: str, bases: Sequence[Path]) -> Trainer:
    parts = module.split(".")
    if not all(part.isidentifier() for part in parts):
        raise UsageError(
            f"{module!r} is not a module name", hint="write it as python -m takes it: trainer.task"
        )
    for base in dict.fromkeys(b.resolve() for b in bases):
        for entry in (Path(*parts).with_suffix(".py"), Path(*parts, "__main__.py")):
            if (base / entry).is_file():
                return Trainer(base, entry.as_posix(), module)
    where = " or ".join(str(b) for b in dict.fromkeys(bases))
    raise UsageError(
        f"module {module} not found under {where}",
        hint=f"run flagrun from the folder that holds the {parts[0]}/ package",
    )


def given_options(args: Sequence[str]) -> set[str]:
    """The option names in an argument list: ``--job-dir x`` and ``--lr=1`` give job-dir, lr."""
    return {a[2:].partition("=")[0] for a in args if a.startswith("--") and len(a) > 2}


def trial_args(launch: Launch, run_dir: Path) -> list[str]:
    """What a trial gets before its hyperparameters: the fixed args, then --job-dir."""
    args = list(launch.args)
    if launch.job_dir_option:
        args.append(f"--{launch.job_dir_option}={launch.job_dir or run_dir}")
    return args


def trial_env(run_dir: Path, trial_id: int, metric_tag: str) -> dict[str, str]:
    """The environment Cloud ML gives a trial, pointing into its run folder."""
    task = {"type": "worker", "index": 0, "trial": str(trial_id)}
    return {
        TF_CONFIG_ENV: json.dumps({"task": task}),
        TRIAL_ID_ENV: str(trial_id),
        METRIC_FILE_ENV: str(run_dir / METRIC_FILE),
        METRIC_TAG_ENV: metric_tag,
    }
