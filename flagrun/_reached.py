"""Median and percentile pruning against every trial that reached the step.

Optuna's median and percentile pruners judge a trial at step s against the complete
trials' values at s, and judge nothing until ``n_startup_trials`` trials are complete. In a
job of slow trials that start-up is most of the job; ended early (a timed start-up,
``flagrun._timed_start``), the few complete trials are the fast, good ones every later trial
is cut against, and the trials cut before are missing from the bar.

With ``earlyStopping: {compareWith: reached}`` (``ReachedPeers``) the pruner judges a trial
at step s against every other trial that reached s: complete, pruned, failed or running,
each at the last value it had reported by s (a complete trial holds its last value past
its end), and its start-up counts those trials: a step is judged once
``n_startup_trials`` other trials have reached it. This is the rung of asynchronous
successive halving (ASHA) with the pruner's percentile as the cut: a trial pruned at step 3
still counts at steps 0-3, so the poor trials cut early keep the bar where they were.
"""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial

from flagrun._study_view import StudyView, as_complete, held


class ReachedPeers(optuna.pruners.BasePruner):
    """A median or percentile pruner that judges against every trial that reached the step."""

    def __init__(self, pruner: optuna.pruners.BasePruner) -> None:
        self.pruner = pruner

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None:
            return False

        def peer(other: FrozenTrial) -> FrozenTrial | None:
            """Another trial that reached ``step``, as complete, holding its value there."""
            if other.number == trial.number or not reached(other, step):
                return None
            return as_complete(held(other, step))

        return self.pruner.prune(StudyView(study, peer), trial)  # type: ignore[arg-type]


def reached(trial: FrozenTrial, step: int) -> bool:
    """Whether ``trial`` had reported a value by ``step`` and got that far (or completed)."""
    steps = trial.intermediate_values.keys()
    if not any(s <= step for s in steps):
        return False
    return trial.state == optuna.trial.TrialState.COMPLETE or max(steps) >= step
