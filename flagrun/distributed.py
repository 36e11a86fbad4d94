"""One study, many workers: joining a shared study, and keeping it alive when a worker dies.

Workers on any number of machines run the same ``flagrun tune ... --storage
URL --study NAME``. The first one creates the study and stores the job's
spec on it; the others join and run under that spec. Each worker keeps a
heartbeat on the trials it runs (a trial system attribute it rewrites every
few seconds), because Optuna's own heartbeat works with ``optimize()`` only.
Every worker sweeps: a RUNNING trial whose heartbeat has not changed for
``STALE_BEATS`` beats of *its own* clock belonged to a dead worker, so it is
failed (marked ``interrupted``) and its parameters are queued again. Watching
for change rather than comparing timestamps keeps clock skew between machines
out of it.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import optuna

from flagrun import _optuna, storage
from flagrun.errors import SpecError, UsageError

HEARTBEAT_ENV = "FLAGRUN_HEARTBEAT_SECONDS"
DEFAULT_HEARTBEAT_SECONDS = 10.0
STALE_BEATS = 6
HEARTBEAT_ATTR = "flagrun:heartbeat"
WORKER_ATTR = "flagrun:worker"
META_WAIT_SECONDS = 10.0


def heartbeat_seconds() -> float:
    """The beat interval: ``FLAGRUN_HEARTBEAT_SECONDS`` or 10 s."""
    text = os.environ.get(HEARTBEAT_ENV)
    if not text:
        return DEFAULT_HEARTBEAT_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise UsageError(f"{HEARTBEAT_ENV}={text!r} is not a positive number of seconds")
    return value


def check_study_name(name: str) -> str:
    """A study name doubles as the local job folder's name: keep it a plain name."""
    allowed = name.replace("-", "").replace("_", "").replace(".", "")
    if not name or name.startswith(".") or not allowed.isalnum() or not name.isascii():
        raise UsageError(
            f"study name {name!r} must be letters, digits, '-', '_' or '.'",
            hint="e.g. --study mnist-dropout",
        )
    return name


@dataclass
class SharedStudy:
    """A study opened by one worker: its storage-side meta and whether we created it."""

    study: optuna.Study
    meta: dict[str, Any]
    created: bool


def join_study(
    backend: optuna.storages.BaseStorage, name: str, meta: dict[str, Any], open_with: Any
) -> SharedStudy:
    """Create study ``name`` with ``meta``, or join the one that exists.

    ``open_with(spec_dict, create)`` opens the study with the sampler and pruner
    for a spec; a joining worker uses the spec stored on the study.
    """
    try:
        study = open_with(meta["spec"], True)
        study.set_user_attr(storage.META_KEY, meta)
        return SharedStudy(study, meta, created=True)
    except optuna.exceptions.DuplicatedStudyError:
        pass
    found = _wait_for_meta(backend, name)
    return SharedStudy(open_with(found["spec"], False), found, created=False)


def _wait_for_meta(backend: optuna.storages.BaseStorage, name: str) -> dict[str, Any]:
    """The meta of an existing study; its creator may be a moment away from writing it."""
    deadline = time.monotonic() + META_WAIT_SECONDS
    while True:
        study = optuna.load_study(study_name=name, storage=backend)
        found = storage.study_meta(study)
        if found is not None:
            return found
        if study.trials or time.monotonic() > deadline:
            raise UsageError(
                f"study {name!r} was not made by flagrun tune",
                hint="choose another --study name",
            )
        time.sleep(0.2)


def check_same_search(ours: dict[str, Any], theirs: dict[str, Any], name: str) -> None:
    """A joining worker must search what the study searches."""
    for key in ("goal", "metric_tag", "algorithm"):
        if ours.get(key) != theirs.get(key):
            raise SpecError(
                f"study {name!r} has {key} {theirs.get(key)!r}, your YAML {ours.get(key)!r}",
                hint="run every worker with the same tuning YAML, or choose another --study",
            )
    if _params(ours) != _params(theirs):
        raise SpecError(
            f"study {name!r} searches other params than your YAML",
            hint="run every worker with the same tuning YAML, or choose another --study",
        )


def _params(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [{**param, "line": None} for param in spec.get("params", [])]


class Heartbeats:
    """Beats for this worker's trials; finds the trials of workers that stopped beating."""

    def __init__(self, study: optuna.Study, interval: float) -> None:
        self.study = study
        self.interval = interval
        self.next_beat = 0.0
        self.seen: dict[int, tuple[Any, float]] = {}  # trial number -> (last beat, when it changed)

    def due(self) -> bool:
        return time.monotonic() >= self.next_beat

    def beat(self, trials: Iterable[optuna.Trial]) -> None:
        """Rewrite the heartbeat of every trial this worker runs."""
        now = time.time()
        for trial in trials:
            # A trial swept by another worker while we were busy: its tell will say so.
            with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
                _optuna.set_system_attr(self.study, trial, HEARTBEAT_ATTR, now)
        self.next_beat = time.monotonic() + self.interval

    def stale(self, mine: set[int]) -> list[optuna.trial.FrozenTrial]:
        """RUNNING trials of other workers (``mine``: this worker's trial numbers) whose
        heartbeat stood still for STALE_BEATS beats."""
        now = time.monotonic()
        running = self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        stale = []
        for trial in running:
            if trial.number in mine:
                continue
            beat = trial.system_attrs.get(HEARTBEAT_ATTR)
            last, since = self.seen.get(trial.number, (None, None))
            if since is None or beat != last:
                self.seen[trial.number] = (beat, now)
            elif now - since >= STALE_BEATS * self.interval:
                stale.append(trial)
        running_ids = {trial.number for trial in running}
        self.seen = {key: value for key, value in self.seen.items() if key in running_ids}
        return stale
