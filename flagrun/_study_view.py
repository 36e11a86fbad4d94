"""The study as Optuna's median and percentile pruners read it, each trial rewritten.

Those pruners read two things of a study: its direction, and its trials in some states
(the complete ones). flagrun's rules change what a trial looks like to them, not how they
cut: a finished trial holds its last value past its end (``flagrun._time_aligned``), every
trial that reached a step counts as complete there (``flagrun._reached``), a stalled trial
counts as complete at its last value (``flagrun._stalled``). Each is a ``StudyView`` with
its own rewrite of one trial; views nest, as the rules do.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Container

import optuna
from optuna.trial import FrozenTrial, TrialState

# A trial as a pruner should see it, or None to leave it out.
Rewrite = Callable[[FrozenTrial], FrozenTrial | None]


class StudyView:
    """``study``'s direction and trials, each trial as ``rewrite`` returns it."""

    def __init__(self, study: optuna.Study | StudyView, rewrite: Rewrite) -> None:
        self._study = study
        self._rewrite = rewrite

    @property
    def direction(self) -> optuna.study.StudyDirection:
        return self._study.direction

    def get_trials(
        self, deepcopy: bool = True, states: Container[TrialState] | None = None
    ) -> list[FrozenTrial]:
        rewritten = (self._rewrite(t) for t in self._study.get_trials(deepcopy=False))
        return [t for t in rewritten if t is not None and (states is None or t.state in states)]


def held(trial: FrozenTrial, step: int) -> FrozenTrial:
    """The trial with a value at ``step``: the last one it reported at or before it."""
    values = trial.intermediate_values
    earlier = [s for s in values if s <= step]
    if step in values or not earlier:
        return trial
    holding = copy.copy(trial)
    holding.intermediate_values = {**values, step: values[max(earlier)]}
    return holding


def as_complete(trial: FrozenTrial) -> FrozenTrial:
    """The trial as a complete one (a copy, unless it is complete)."""
    if trial.state == TrialState.COMPLETE:
        return trial
    complete = copy.copy(trial)
    complete.state = TrialState.COMPLETE
    return complete
