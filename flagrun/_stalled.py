"""Stop a trial that has learned nothing since its first step and is far behind.

A configuration whose training diverged (a learning rate far too high: validation accuracy
at chance from the first epoch to the last) learns nothing however long it runs. Optuna's
median and percentile pruners judge nothing until their start-up trials are complete, so
such trials train to the end meanwhile: in the Fashion-MNIST race they took 24-42% of a
30-minute job's compute.

``StopStalled`` stops a trial, whatever the pruner it wraps says, when

- it has learned nothing: in ``PATIENCE`` steps or more after its first, no value gained
  ``LEARNED`` of the spread of every value the study has seen on its first value (a
  diverged trial's accuracy wanders by a few thousandths as the class it predicts changes:
  the spread makes that nothing), and
- it is far behind: another trial had reached, by its latest step, a value ahead of its
  own by ``FAR`` of that spread or more.

A slow configuration is not stopped by it while it learns, nor is one whose early epochs
dip: the trap of judging early epochs against the fast trials alone (a start-up floor that
did, stopping trials worse than every complete one, lost the race and was reverted).

A stalled trial stays in the bar of a median or percentile pruner it wraps (``hold``), as
though it had trained to the end at its last value: complete, holding that value at every
later step. Without that, stopping the diverged trials lifted the median (they were what
held it down) and it cut good trials early: the Fashion-MNIST race lost 0.882 to 0.858 on
it (README). Successive halving has no such bar (it judges a trial against the values
recorded at its rung, a stalled trial's among them): it gets the study as it is, and the
stop catches the diverged trials it lets through a rung for being first there. The trial
is marked in the study (``STALLED``), so the hold outlives this process: a resumed job, or
another machine of a shared study, judges against it the same way.
"""

from __future__ import annotations

import math

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial

from flagrun import _optuna
from flagrun._study_view import StudyView, as_complete, held

PATIENCE = 2  # steps after the first, at least, before a trial is judged
LEARNED = 0.01  # a gain on the first value below this share of the spread is no learning
FAR = 0.5  # behind another trial by this share of the spread, at least
STALLED = "flagrun:stalled"  # system attribute of a trial this rule stopped


class StopStalled(optuna.pruners.BasePruner):
    """``pruner``, and also stop a trial that learned nothing and is far behind; with
    ``hold``, ``pruner`` sees a stalled trial as complete at its last value."""

    def __init__(self, pruner: optuna.pruners.BasePruner, hold: bool = True) -> None:
        self.pruner = pruner
        self.hold = hold

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        if stalled(study, trial):
            _optuna.set_system_attr(study, trial, STALLED, True)
            return True
        if not self.hold:
            return self.pruner.prune(study, trial)
        step = trial.last_step

        def as_finished(other: FrozenTrial) -> FrozenTrial:
            """A stalled trial as complete, holding at ``step`` its last value."""
            if not stopped_stalled(other):
                return other
            return as_complete(held(other, step) if step is not None else other)

        return self.pruner.prune(StudyView(study, as_finished), trial)  # type: ignore[arg-type]


def stopped_stalled(trial: FrozenTrial) -> bool:
    """Whether the stop of stalled trials stopped ``trial`` (rather than its pruner)."""
    return bool(trial.system_attrs.get(STALLED))


def stalled(study: optuna.Study, trial: FrozenTrial) -> bool:
    """Whether ``trial`` learned nothing since its first step and is far behind."""
    curve = _curve(trial)
    if len(curve) <= PATIENCE:
        return False
    others = [_curve(t) for t in study.get_trials(deepcopy=False) if t.number != trial.number]
    seen = [value for points in [curve, *others] for _, value in points]
    spread = max(seen) - min(seen)  # 0 makes every curve count as learning, below
    sign = 1.0 if study.direction == StudyDirection.MAXIMIZE else -1.0
    first = curve[0][1]
    if any(sign * (value - first) >= LEARNED * spread for _, value in curve[1:]):
        return False
    step, value = curve[-1]
    reached = [v for points in others if (v := _value_at(points, step)) is not None]
    return any(sign * (v - value) >= FAR * spread for v in reached)


def _curve(trial: FrozenTrial) -> list[tuple[int, float]]:
    """The trial's (step, value) points in step order, NaN left out."""
    points = sorted(trial.intermediate_values.items())
    return [(step, value) for step, value in points if not math.isnan(value)]


def _value_at(curve: list[tuple[int, float]], step: int) -> float | None:
    """The value a curve had reached by ``step`` (at its last step up to it), or None."""
    before = [value for s, value in curve if s <= step]
    return before[-1] if before else None
