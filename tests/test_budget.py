"""The budget and failure policy, on Optuna's in-memory storage: no processes."""

from __future__ import annotations

import optuna
import pytest

from flagrun.records import TrialState, empty_counts
from flagrun.tuner import budget


@pytest.fixture
def study() -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(direction="maximize")


def ask(study: optuna.Study) -> optuna.Trial:
    trial = study.ask()
    trial.suggest_float("x", 0.0, 1.0)
    return trial


def tally(study: optuna.Study) -> budget.Tally:
    return budget.Tally.of(study.get_trials(deepcopy=False))


def test_finished_and_running_trials_hold_budget(study: optuna.Study) -> None:
    study.tell(ask(study), 0.5)
    study.tell(ask(study), state=optuna.trial.TrialState.PRUNED)
    study.tell(ask(study), state=optuna.trial.TrialState.FAIL)
    ask(study)
    counted = tally(study)
    assert counted.counts == {**empty_counts(), "COMPLETE": 1, "PRUNED": 1, "FAILED": 1,
                              "RUNNING": 1}  # fmt: skip
    assert counted.claimed == 4 and counted.retries_waiting == 0
    assert counted.can_start(5) and not counted.can_start(4)


def test_an_interrupted_trial_gives_its_budget_to_its_queued_retry(study: optuna.Study) -> None:
    trial = ask(study)
    budget.fail_and_requeue(study, trial)
    counted = tally(study)
    assert counted.claimed == 1 and counted.retries_waiting == 1
    assert counted.counts[TrialState.FAILED] == 0  # the interrupted trial is not counted
    assert counted.can_start(1)  # the retry runs though the budget of 1 is claimed
    retry = study.ask()
    assert retry.suggest_float("x", 0.0, 1.0) == trial.params["x"]
    assert retry.user_attrs[budget.RETRY_OF] == trial.number + 1


def test_only_one_sweeper_requeues_a_dead_trial(study: optuna.Study) -> None:
    trial = ask(study)
    budget.fail_and_requeue(study, trial)
    frozen = study.get_trials(deepcopy=False)[0]
    with pytest.raises((ValueError, optuna.exceptions.UpdateFinishedTrialError)):
        budget.fail_and_requeue(study, optuna.Trial(study, frozen._trial_id))
    assert tally(study).retries_waiting == 1


def test_a_trial_asked_past_the_budget_is_given_back(study: optuna.Study) -> None:
    first, second = ask(study), ask(study)  # two workers asking for the last trial
    assert budget.within_budget(study, first, 1)
    assert not budget.within_budget(study, second, 1)
    budget.give_back(study, second)
    counted = tally(study)
    assert counted.claimed == 1 and counted.counts[TrialState.FAILED] == 0


def test_a_retry_popped_by_a_late_asker_stays_queued(study: optuna.Study) -> None:
    budget.fail_and_requeue(study, ask(study))
    late = study.ask()  # pops the retry, but another worker took the budget first
    budget.give_back(study, late)
    assert tally(study).retries_waiting == 1


@pytest.mark.parametrize(
    "limit, parallel, complete, failed, stops",
    [
        (None, 2, 0, 2, False),  # decide for me: 3 failures before anything worked
        (None, 2, 0, 3, True),
        (None, 4, 0, 3, False),  # ... or maxParallelTrials of them
        (None, 2, 1, 9, False),  # once a trial worked, failures alone do not stop the job
        (2, 1, 5, 1, False),
        (2, 1, 5, 2, True),  # maxFailedTrials
    ],
)
def test_the_failure_policy(limit, parallel, complete, failed, stops) -> None:
    policy = budget.FailurePolicy(limit, parallel)
    counts = {**empty_counts(), TrialState.COMPLETE: complete, TrialState.FAILED: failed}
    reason = policy.stop_reason(counts)
    assert (reason is not None) == stops
    if stops:
        assert str(failed) in reason
