"""A job's start-up that also ends when a third of its time limit has passed.

TPE samples at random until ``n_startup_trials`` trials have finished (complete or pruned),
then from its model of them; the median and percentile pruners prune nothing until
``n_startup_trials`` trials are complete. Both are sized in trials (TPE's to a third of
maxTrials, at most 10; the pruners' to max(5, maxParallelTrials)): a job given a time limit
(``maxRunningTime``) rather than a trial count would spend a short budget of slow trials
all at random and without early stopping. So with a time limit each start-up ends at
whichever comes first, its trials or ``STARTUP_SHARE`` of the time:

- ``TimedStart``: TPE whose random start-up ends then. Each trial is sampled one way
  throughout (decided in ``before_trial``); with the same seed, the random trials are the
  draws TPE's own start-up makes.
- ``TimedStartPruner``: the pruner as configured until then, after it the same pruner
  judging from the first complete trial on (``n_startup_trials=1``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)  # the trials TPE's start-up counts
STARTUP_SHARE = 1 / 3  # of the time limit, at most, that a start-up may take


class TimedStart(optuna.samplers.BaseSampler):
    """A TPE sampler (made with ``n_startup_trials=0``) behind a start-up of random
    trials that ends after ``n_startup_trials`` finished trials or ``seconds``."""

    def __init__(
        self,
        tpe: optuna.samplers.TPESampler,
        n_startup_trials: int,
        seconds: float,
        seed: int | None,
    ) -> None:
        self._tpe = tpe
        self._random = optuna.samplers.RandomSampler(seed=seed)
        self._n_startup_trials = n_startup_trials
        self._until = time.monotonic() + seconds
        self._guided: dict[int, bool] = {}  # trial number -> sampled by TPE's model?

    def guided(self, study: optuna.Study) -> bool:
        """Whether a trial asked for now is sampled by TPE's model rather than at random."""
        if time.monotonic() >= self._until:
            return True
        finished = study.get_trials(deepcopy=False, states=_FINISHED)
        return len(finished) >= self._n_startup_trials

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._guided[trial.number] = self.guided(study)
        self._tpe.before_trial(study, trial)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._tpe.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not self._guided.get(trial.number, True):
            return {}
        return self._tpe.sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        sampler = self._tpe if self._guided.get(trial.number, True) else self._random
        return sampler.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._guided.pop(trial.number, None)
        self._tpe.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._tpe.reseed_rng()
        self._random.reseed_rng()


class TimedStartPruner(optuna.pruners.BasePruner):
    """``pruner`` for ``seconds``, then ``after`` (the same pruner with a shorter start-up)."""

    def __init__(
        self,
        pruner: optuna.pruners.BasePruner,
        after: optuna.pruners.BasePruner,
        seconds: float,
    ) -> None:
        self._pruner = pruner
        self._after = after
        self._until = time.monotonic() + seconds

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        pruner = self._after if time.monotonic() >= self._until else self._pruner
        return pruner.prune(study, trial)
