"""Tests for flagrun._stalled: a trial not learning, behind every learning trial, is stopped."""

from __future__ import annotations

import optuna
import pytest

from flagrun._stalled import MIN_LEARNING, TOLERANCE, StopStalled, stalled
from flagrun.pruners import check_settings, make_pruner
from flagrun.spec import TuningSpec

LEARNING = {0: 0.60, 1: 0.75, 2: 0.80}  # a curve that rises
DIVERGED = {0: 0.10, 1: 0.10, 2: 0.10}  # at chance from the first step on


def study_with(*curves: dict[int, float], direction: str = "maximize") -> optuna.Study:
    """A study whose trials finished with these curves (nothing else prunes them)."""
    study = optuna.create_study(direction=direction, pruner=optuna.pruners.NopPruner())
    for curve in curves:
        trial = study.ask()
        for step, value in curve.items():
            trial.report(value, step)
        study.tell(trial, list(curve.values())[-1])
    return study


def judged(study: optuna.Study, curve: dict[int, float]) -> bool:
    """Whether a new trial with this curve so far is stalled."""
    trial = study.ask()
    for step, value in curve.items():
        trial.report(value, step)
    return stalled(study, study.trials[trial.number])


def test_a_diverged_trial_is_stalled_once_enough_other_trials_are_learning() -> None:
    assert (MIN_LEARNING, TOLERANCE) == (2, 0.01)
    assert not judged(study_with(LEARNING), {0: 0.1, 1: 0.1})  # one fast trial is not enough
    assert judged(study_with(LEARNING, LEARNING), {0: 0.1, 1: 0.1})
    assert not judged(study_with(LEARNING, LEARNING), {0: 0.1})  # one point: nothing to compare


def test_chance_values_that_wander_by_a_few_thousandths_are_not_learning() -> None:
    # A diverged classifier's accuracy is the share of the class it predicts, which changes.
    study = study_with(LEARNING, LEARNING)
    assert judged(study, {0: 0.1021, 1: 0.1023})
    assert judged(study, {0: 0.1021, 1: 0.0968})


def test_a_trial_still_learning_is_not_stalled_however_far_behind() -> None:
    assert not judged(study_with(LEARNING, LEARNING), {0: 0.10, 1: 0.12, 2: 0.13})


def test_a_flat_trial_ahead_of_a_learning_one_is_not_stalled() -> None:
    slow = {0: 0.30, 1: 0.50, 2: 0.70}
    assert not judged(study_with(LEARNING, slow), {0: 0.72, 1: 0.72})  # ahead of slow at 1
    assert judged(study_with(LEARNING, slow), {0: 0.72, 1: 0.72, 2: 0.70})  # behind both at 2


def test_other_diverged_trials_do_not_lower_the_bar() -> None:
    # Diverged trials sit at slightly different chance values (the class each one predicts);
    # they are not learning, so they are not what a stalled trial is compared with.
    lower = {0: 0.098, 1: 0.098, 2: 0.098}
    assert judged(study_with(LEARNING, LEARNING, lower, DIVERGED), {0: 0.101, 1: 0.101})


def test_finished_trials_count_with_their_last_value_running_ones_only_once_there() -> None:
    study = study_with(LEARNING, {0: 0.5, 1: 0.6})  # the second stopped at step 1
    assert judged(study, {0: 0.1, 1: 0.1, 2: 0.1, 3: 0.1})  # both count at step 3
    running = study_with(LEARNING)
    ahead = running.ask()
    ahead.report(0.5, 0)
    ahead.report(0.6, 1)
    assert not judged(running, {0: 0.1, 1: 0.1, 2: 0.1})  # it has not reached step 2 yet
    ahead.report(0.7, 2)
    assert judged(running, {0: 0.1, 1: 0.1, 2: 0.1})


def test_when_minimizing_not_learning_means_not_lower() -> None:
    falling = {0: 2.0, 1: 1.0, 2: 0.5}
    study = study_with(falling, falling, direction="minimize")
    assert judged(study, {0: 2.3, 1: 2.3})
    assert not judged(study, {0: 2.3, 1: 2.2})


def test_the_wrapped_pruner_still_judges_and_nan_is_left_to_it() -> None:
    study = study_with(LEARNING, LEARNING)
    assert not judged(study, {0: 0.1, 1: float("nan")})
    trial = study.ask()
    trial.report(0.5, 0)  # one point: not stalled, but below the threshold
    frozen = study.trials[trial.number]
    assert not StopStalled(optuna.pruners.NopPruner()).prune(study, frozen)
    assert StopStalled(optuna.pruners.ThresholdPruner(lower=0.99)).prune(study, frozen)


def spec_with(config: dict) -> TuningSpec:
    return TuningSpec(
        goal="MAXIMIZE", metric_tag="val_acc", early_stopping=True, early_stopping_config=config
    )


@pytest.mark.parametrize("name", ["median", "percentile"])
def test_the_pruners_with_a_start_up_stop_stalled_trials_unless_told_not_to(name: str) -> None:
    assert isinstance(make_pruner(spec_with({"pruner": name})), StopStalled)
    off = make_pruner(spec_with({"pruner": name, "stopStalled": False}))
    assert not isinstance(off, StopStalled)
    for other in ("successive_halving", "hyperband", "asha", "none"):
        assert not isinstance(make_pruner(spec_with({"pruner": other})), StopStalled)


def test_stop_stalled_must_be_true_or_false() -> None:
    assert check_settings({"stopStalled": False}) is None
    problem = check_settings({"stopStalled": "no"})
    assert problem is not None
    assert (problem.key, problem.hint) == ("stopStalled", "write stopStalled: true or false")
