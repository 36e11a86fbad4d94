"""The few places flagrun reaches past Optuna's public API, each with the reason why.

Everything else uses ``optuna.Study``'s public methods; keeping these together means
an Optuna upgrade that moves them breaks one module, found by its tests.
"""

from __future__ import annotations

from typing import Any

import optuna


def set_system_attr(
    study: optuna.Study, trial: optuna.Trial | optuna.trial.FrozenTrial, key: str, value: Any
) -> None:
    """Set a *system* attribute on a running trial (a pruner gets it frozen).

    Why private: ``Trial.set_system_attr`` was removed from the public API, and a user
    attribute would show our bookkeeping (which worker runs the trial, its heartbeat)
    among the user's own attributes in optuna-dashboard.
    """
    study._storage.set_trial_system_attr(trial._trial_id, key, value)


def trial_of(study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> optuna.Trial:
    """A live ``Trial`` handle on a trial this process did not ask for.

    Why private: a worker that fails a dead worker's trial must mark it (a user
    attribute) before telling it, and only a ``Trial`` sets attributes; Optuna has no
    public way to get one for an existing trial (``study.tell`` alone takes a number).
    """
    return optuna.Trial(study, frozen._trial_id)


def cached(storage: optuna.storages.RDBStorage) -> optuna.storages.BaseStorage:
    """The database storage behind the cache Optuna puts in front of it.

    Why private: ``create_study`` adds this cache (finished trials are read once) only
    when it is handed an ``RDBStorage`` itself; flagrun hands it a wrapper that retries
    lost connections (``flagrun.reconnect``), so it adds the cache under the wrapper.
    """
    return optuna.storages._CachedStorage(storage)
