"""Median and percentile pruning over elapsed time, where a finished trial's curve holds.

With ``earlyStopping: {resource: time}`` a trial reports each point at the step of its
elapsed time (``pruners.Resource.step_of``). Optuna's percentile pruner compares a trial
at step s with the finished trials' values at exactly s; a fast trial that finished
before s has none there, so a slow trial would be judged against nobody. ``TimeAligned``
lets the pruner see each finished trial at s with the last value it reported by then.
"""

from __future__ import annotations

import copy
from typing import Any

import optuna


class TimeAligned(optuna.pruners.BasePruner):
    """A median or percentile pruner whose finished trials hold their last value."""

    def __init__(self, pruner: optuna.pruners.PercentilePruner) -> None:
        self.pruner = pruner

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        curves = _HeldCurves(study, trial.last_step)
        return self.pruner.prune(curves, trial)  # type: ignore[arg-type]


class _HeldCurves:
    """The study as the percentile pruner reads it (its direction and its trials), each
    trial holding at ``step`` the last value it had reported by then."""

    def __init__(self, study: optuna.Study, step: int | None) -> None:
        self._study = study
        self._step = step

    @property
    def direction(self) -> optuna.study.StudyDirection:
        return self._study.direction

    def get_trials(
        self, deepcopy: bool = True, states: Any = None
    ) -> list[optuna.trial.FrozenTrial]:
        trials = self._study.get_trials(deepcopy=False, states=states)
        return trials if self._step is None else [held(t, self._step) for t in trials]


def held(trial: optuna.trial.FrozenTrial, step: int) -> optuna.trial.FrozenTrial:
    """The trial with a value at ``step``: the last one it reported at or before it."""
    values = trial.intermediate_values
    earlier = [s for s in values if s <= step]
    if step in values or not earlier:
        return trial
    holding = copy.copy(trial)
    holding.intermediate_values = {**values, step: values[max(earlier)]}
    return holding
