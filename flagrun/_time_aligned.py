"""Median and percentile pruning over elapsed time, where a finished trial's curve holds.

With ``earlyStopping: {resource: time}`` a trial reports each point at the step of its
elapsed time (``pruners.Resource.step_of``). Optuna's percentile pruner compares a trial
at step s with the finished trials' values at exactly s; a fast trial that finished
before s has none there, so a slow trial would be judged against nobody. ``TimeAligned``
lets the pruner see each finished trial at s with the last value it reported by then.
"""

from __future__ import annotations

import optuna

from flagrun._study_view import StudyView, held


class TimeAligned(optuna.pruners.BasePruner):
    """A median or percentile pruner whose finished trials hold their last value."""

    def __init__(self, pruner: optuna.pruners.PercentilePruner) -> None:
        self.pruner = pruner

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        step = trial.last_step
        if step is None:
            return self.pruner.prune(study, trial)
        curves = StudyView(study, lambda t: held(t, step))
        return self.pruner.prune(curves, trial)  # type: ignore[arg-type]
