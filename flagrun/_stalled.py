"""Stop a trial that has stopped learning and is behind every trial still learning.

A configuration whose training diverged (a learning rate far too high: validation accuracy
at chance from the first epoch to the last) learns nothing however long it runs. Optuna's
median and percentile pruners judge nothing until their start-up trials are complete, so
such trials train to the end meanwhile: in the Fashion-MNIST race they took 28-40% of a
30-minute job's compute.

``StopStalled`` stops a trial, whatever the pruner it wraps says, when at its latest step

- it is not learning: its value there is no better than at its first step, and
- it is behind every other trial that is learning there (better than at its own first
  step), of which there are at least ``MIN_LEARNING``. A trial that finished before that
  step counts with its last value; one still running that has not reached it yet does not.

A slow configuration that is still learning is never stopped by it, nor is a trial judged
against a single fast one: the trap of judging early epochs against the complete trials
alone, which are the fast ones (a start-up floor built that way lost the race and was
reverted).
"""

from __future__ import annotations

import math

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

MIN_LEARNING = 2  # other trials learning at the step, at least, before one is judged


class StopStalled(optuna.pruners.BasePruner):
    """``pruner``, and also stop a trial not learning that every learning trial is ahead of."""

    def __init__(self, pruner: optuna.pruners.BasePruner) -> None:
        self.pruner = pruner

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        return stalled(study, trial) or self.pruner.prune(study, trial)


def stalled(study: optuna.Study, trial: FrozenTrial) -> bool:
    """Whether ``trial`` is not learning at its latest step and behind every learning trial."""
    step = trial.last_step
    values = trial.intermediate_values
    if step is None or len(values) < 2:
        return False
    value = values[step]
    if math.isnan(value):
        return False  # the wrapped pruner's call
    maximize = study.direction == StudyDirection.MAXIMIZE

    def better(a: float, b: float) -> bool:
        return a > b if maximize else a < b

    if better(value, values[min(values)]):
        return False  # learning
    learning = [
        reached
        for other in study.get_trials(deepcopy=False)
        if other.number != trial.number
        and (reached := _value_at(other, step)) is not None
        and better(reached, other.intermediate_values[min(other.intermediate_values)])
    ]
    return len(learning) >= MIN_LEARNING and not any(better(value, v) for v in learning)


def _value_at(trial: FrozenTrial, step: int) -> float | None:
    """What ``trial`` had reached at ``step``: its value there or at its last step before;
    None when it has no point by then, or is running and has not reached ``step`` yet."""
    values = trial.intermediate_values
    if not values or (trial.state == TrialState.RUNNING and max(values) < step):
        return None
    before = [s for s in values if s <= step]
    if not before:
        return None
    value = values[max(before)]
    return None if math.isnan(value) else value
