"""The budget and failure policy of a tuning job, over an Optuna study's trials.

Trial accounting follows Cloud ML Engine: ``maxTrials`` counts finished trials
(complete, pruned, or failed by the script). Trials cut short by the tuner itself
(Ctrl-C, a crash of the tuner, a dead worker) are marked FAILED with ``interrupted``
and their parameters are queued to run again; the retry holds the budget instead,
from the moment it is queued. A trial asked for beyond the budget (two workers asked
at the same instant for the last one) is given back at once as ``surplus``.

Everything here works on a study and its frozen trials only (no processes), so it is
tested against Optuna's in-memory storage.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import optuna

from flagrun.records import TrialState, empty_counts

# User attributes that mark a trial's role in the budget.
INTERRUPTED = "interrupted"  # cut short by the tuner; its parameters run again
SURPLUS = "surplus"  # asked beyond the budget and given back
RETRY_OF = "retryOf"  # on a queued retry: the trialId it runs again
PROMOTED = "promoted"  # on a retry that continues a paused trial (tuner.promotion)

_STATES = {
    optuna.trial.TrialState.COMPLETE: TrialState.COMPLETE,
    optuna.trial.TrialState.PRUNED: TrialState.PRUNED,
    optuna.trial.TrialState.RUNNING: TrialState.RUNNING,
}


def trial_state(trial: optuna.trial.FrozenTrial) -> TrialState | None:
    """A trial's state in flagrun's words; None for a trial still waiting to run."""
    if trial.state == optuna.trial.TrialState.WAITING:
        return None
    return _STATES.get(trial.state, TrialState.FAILED)


def holds_budget(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether a trial counts against maxTrials.

    Trials the tuner cut short (``interrupted``) or asked beyond the budget
    (``surplus``) do not; their parameters' retry does, from the moment it is
    queued. Grid points queued up front count once they run.
    """
    attrs = trial.user_attrs
    if trial.state == optuna.trial.TrialState.WAITING:
        return RETRY_OF in attrs
    if trial.state == optuna.trial.TrialState.FAIL:
        return not (attrs.get(INTERRUPTED) or attrs.get(SURPLUS))
    return True


@dataclass
class Tally:
    """A study's trials counted the way Cloud ML counts them, across every worker."""

    counts: dict[TrialState, int]  # as job.json shows them
    claimed: int  # trials holding budget: finished, running, or a retry waiting to run
    retries_waiting: int

    @property
    def running(self) -> int:
        return self.counts[TrialState.RUNNING]

    @classmethod
    def of(cls, trials: Iterable[optuna.trial.FrozenTrial]) -> Tally:
        counts = empty_counts()
        claimed = retries = 0
        for trial in trials:
            if not holds_budget(trial):
                continue
            claimed += 1
            state = trial_state(trial)
            if state is None:
                retries += 1
            else:
                counts[state] += 1
        return cls(counts, claimed, retries)

    def can_start(self, max_trials: int) -> bool:
        """Budget is left, or a retried trial waits to run (its budget is already counted)."""
        return self.claimed < max_trials or self.retries_waiting > 0


def within_budget(study: optuna.Study, trial: optuna.Trial, max_trials: int) -> bool:
    """Whether a just-asked trial fits in maxTrials.

    Optuna numbers new trials under a lock on the study, so every trial numbered
    before ours is visible: when more than maxTrials of them hold budget, ours is one
    too many (two workers asked at once for the last one).
    """
    holding = sum(
        1
        for frozen in study.get_trials(deepcopy=False)
        if frozen.number <= trial.number and holds_budget(frozen)
    )
    return holding <= max_trials


def give_back(study: optuna.Study, trial: optuna.Trial) -> None:
    """Close a trial asked beyond the budget so that nothing counts or shows it."""
    retry_of = trial.user_attrs.get(RETRY_OF)
    trial.set_user_attr(SURPLUS, True)
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    if retry_of is not None:  # a retry popped by the late asker stays queued
        marks = {
            key: trial.user_attrs[key] for key in (RETRY_OF, PROMOTED) if key in trial.user_attrs
        }
        study.enqueue_trial(dict(trial.params), user_attrs=marks)


def fail_and_requeue(study: optuna.Study, trial: optuna.Trial) -> None:
    """Fail a trial the tuner cut short, and queue its parameters to run again.

    Raises ``UpdateFinishedTrialError`` (or ValueError) when the trial is already
    finished: the storage refuses the second tell atomically, so when two workers
    sweep the same dead trial, only one of them queues the retry.
    """
    trial.set_user_attr(INTERRUPTED, True)
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    study.enqueue_trial(dict(trial.params), user_attrs={RETRY_OF: trial.number + 1})


@dataclass(frozen=True)
class FailurePolicy:
    """When failed trials stop the job: ``maxFailedTrials``, or Cloud ML's "decide for me"
    (the first ``max(3, maxParallelTrials)`` trials all failed)."""

    max_failed_trials: int | None
    max_parallel_trials: int

    def stop_reason(self, counts: dict[TrialState, int]) -> str | None:
        """Why the job must stop now, or None to go on."""
        failed = counts[TrialState.FAILED]
        if not failed:
            return None
        limit = self.max_failed_trials
        if limit:
            if failed >= limit:
                return f"{failed} trials failed (maxFailedTrials is {limit})"
            return None
        if counts[TrialState.COMPLETE] == 0 and failed >= max(3, self.max_parallel_trials):
            return f"the first {failed} trials all failed"
        return None
