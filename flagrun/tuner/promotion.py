"""Promotion, not only stopping: asynchronous successive halving with paused trials.

With ``earlyStopping: {pruner: asha}`` a trial is judged at rungs as Optuna's
SuccessiveHalvingPruner judges it (it records the trial's value at each rung it reaches
as the system attribute ``completed_rung_K``, and stops a trial that is not in the top
1/reduction_factor of the values recorded at that rung so far). Optuna cannot suspend a
trial, so a trial judged early, against few others, is stopped for good even when the
trials after it turn out worse. Here a trial stopped at a rung while its run folder
holds a checkpoint (``flagrun.checkpoints``) is *paused*: PRUNED for Optuna, marked
``paused``, its checkpoint kept. Whenever a slot frees, ``next_promotion`` looks for a
paused trial that is now in the top 1/reduction_factor of its rung (the rule of the ASHA
paper, Li et al. 2020); its parameters are queued as a retry of it, the retry inherits
its rung values and continues from its checkpoint (``tuner.resume``), to be judged at
the next rung. A promotion runs as a trial of its own and counts against maxTrials.
"""

from __future__ import annotations

from collections.abc import Sequence

import optuna

from flagrun import _optuna
from flagrun.tuner.budget import PROMOTED, RETRY_OF

PAUSED = "paused"  # on a trial stopped at a rung with its checkpoint kept for a promotion
RUNG_PREFIX = "completed_rung_"  # Optuna's SuccessiveHalvingPruner's system attributes


def rungs(trial: optuna.trial.FrozenTrial) -> list[float]:
    """The values a trial recorded at rungs 0, 1, ... (Optuna's attributes, in order)."""
    values: list[float] = []
    while f"{RUNG_PREFIX}{len(values)}" in trial.system_attrs:
        values.append(trial.system_attrs[f"{RUNG_PREFIX}{len(values)}"])
    return values


def next_promotion(
    trials: Sequence[optuna.trial.FrozenTrial],
    reduction_factor: int,
    direction: optuna.study.StudyDirection,
) -> optuna.trial.FrozenTrial | None:
    """The paused trial to continue now: of those in the top 1/reduction_factor of the
    values recorded at their last rung, the one at the highest rung, best first; None
    when none is. A paused trial that some trial already retries is not a candidate."""
    taken = {t.user_attrs.get(RETRY_OF) for t in trials}
    best: tuple[int, float, optuna.trial.FrozenTrial] | None = None
    for trial in trials:
        if trial.state != optuna.trial.TrialState.PRUNED or not trial.user_attrs.get(PAUSED):
            continue
        if trial.number + 1 in taken:
            continue
        values = rungs(trial)
        if not values:
            continue
        rung, value = len(values) - 1, values[-1]
        at_rung = [
            t.system_attrs[f"{RUNG_PREFIX}{rung}"]
            for t in trials
            if f"{RUNG_PREFIX}{rung}" in t.system_attrs
        ]
        if not _in_top(value, at_rung, reduction_factor, direction):
            continue
        score = value if direction == optuna.study.StudyDirection.MAXIMIZE else -value
        if best is None or (rung, score) > best[:2]:
            best = (rung, score, trial)
    return None if best is None else best[2]


def _in_top(
    value: float,
    values: list[float],
    reduction_factor: int,
    direction: optuna.study.StudyDirection,
) -> bool:
    """Whether ``value`` is among the best len(values) // reduction_factor of ``values``
    (never, before there are that many values to choose from)."""
    keep = len(values) // reduction_factor
    if keep == 0:
        return False
    ordered = sorted(values, reverse=direction == optuna.study.StudyDirection.MAXIMIZE)
    cut = ordered[keep - 1]
    if direction == optuna.study.StudyDirection.MAXIMIZE:
        return value >= cut
    return value <= cut


def promote(study: optuna.Study, paused: optuna.trial.FrozenTrial) -> None:
    """Queue the paused trial's parameters as a retry of it, marked as a promotion."""
    study.enqueue_trial(
        dict(paused.params), user_attrs={RETRY_OF: paused.number + 1, PROMOTED: True}
    )


def inherit_rungs(study: optuna.Study, trial: optuna.Trial) -> int | None:
    """Give a promotion the rung values of the trial it continues, so the pruner judges
    it next at the rung above (not again at rung 0 with its later, better values);
    that trial's id, or None when ``trial`` is no promotion."""
    if not trial.user_attrs.get(PROMOTED):
        return None
    paused_id = trial.user_attrs.get(RETRY_OF)
    if not isinstance(paused_id, int):
        return None
    frozen = study.get_trials(deepcopy=False)
    paused = next((t for t in frozen if t.number + 1 == paused_id), None)
    if paused is None:
        return None
    for rung, value in enumerate(rungs(paused)):
        _optuna.set_system_attr(study, trial, f"{RUNG_PREFIX}{rung}", value)
    return paused_id
