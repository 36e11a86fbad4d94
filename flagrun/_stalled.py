"""Stop a trial that has stopped learning and is behind every trial still learning.

A configuration whose training diverged (a learning rate far too high: validation accuracy
at chance from the first epoch to the last) learns nothing however long it runs. Optuna's
median and percentile pruners judge nothing until their start-up trials are complete, so
such trials train to the end meanwhile: in the Fashion-MNIST race they took 28-40% of a
30-minute job's compute.

``StopStalled`` stops a trial, whatever the pruner it wraps says, when at its latest step

- it is not learning: it has gained less than ``TOLERANCE`` of the spread of every value
  the study has seen since its first step (a diverged trial's accuracy moves by a few
  thousandths as the class it predicts changes: the spread makes that nothing), and
- it is behind every other trial that is learning there (by the same measure), of which
  there are at least ``MIN_LEARNING``. A trial that finished before that step counts with
  its last value; one still running that has not reached it yet does not.

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
TOLERANCE = 0.01  # a gain below this share of the study's spread of values is no learning


class StopStalled(optuna.pruners.BasePruner):
    """``pruner``, and also stop a trial not learning that every learning trial is ahead of."""

    def __init__(self, pruner: optuna.pruners.BasePruner) -> None:
        self.pruner = pruner
        self.stalled_trials: set[int] = set()  # the numbers of the trials it stopped itself

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        if stalled(study, trial):
            self.stalled_trials.add(trial.number)
            return True
        return self.pruner.prune(study, trial)


def stopped_stalled(pruner: optuna.pruners.BasePruner, number: int) -> bool:
    """Whether ``pruner`` stopped trial ``number`` for not learning (rather than its pruner)."""
    return isinstance(pruner, StopStalled) and number in pruner.stalled_trials


def stalled(study: optuna.Study, trial: FrozenTrial) -> bool:
    """Whether ``trial`` is not learning at its latest step and behind every learning trial."""
    step = trial.last_step
    if step is None or len(trial.intermediate_values) < 2:
        return False
    value = trial.intermediate_values[step]
    if math.isnan(value):
        return False  # the wrapped pruner's call
    others = [t for t in study.get_trials(deepcopy=False) if t.number != trial.number]
    seen = [v for t in [trial, *others] for v in t.intermediate_values.values()]
    seen = [v for v in seen if not math.isnan(v)]
    sign = 1.0 if study.direction == StudyDirection.MAXIMIZE else -1.0
    enough = TOLERANCE * (max(seen) - min(seen))

    def learning(t: FrozenTrial, reached: float) -> bool:
        return sign * (reached - t.intermediate_values[min(t.intermediate_values)]) >= enough

    if learning(trial, value):
        return False
    learners = [
        reached
        for other in others
        if (reached := _value_at(other, step)) is not None and learning(other, reached)
    ]
    return len(learners) >= MIN_LEARNING and all(sign * (value - v) <= 0 for v in learners)


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
