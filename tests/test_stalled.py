"""Tests for flagrun._stalled: a trial that learned nothing and is far behind is stopped."""

from __future__ import annotations

import optuna
import pytest

from flagrun._reached import ReachedPeers
from flagrun._stalled import FAR, LEARNED, PATIENCE, StopStalled, stalled, stopped_stalled
from flagrun.pruners import check_settings, make_pruner
from flagrun.spec import TuningSpec

FAST = {0: 0.84, 1: 0.84, 2: 0.85, 3: 0.86}  # a small model, near its best after one epoch


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


def test_a_diverged_trial_is_stalled_after_its_patience() -> None:
    assert (PATIENCE, LEARNED, FAR) == (2, 0.01, 0.5)
    study = study_with(FAST)
    assert not judged(study, {0: 0.10, 1: 0.10})  # one step after its first: too soon
    assert judged(study, {0: 0.10, 1: 0.10, 2: 0.10})
    # A diverged classifier's accuracy is the share of the class it predicts, which changes.
    assert judged(study, {0: 0.1021, 1: 0.1023, 2: 0.0968})


def test_a_trial_that_learns_or_has_learned_is_not_stalled() -> None:
    study = study_with(FAST)
    assert not judged(study, {0: 0.10, 1: 0.11, 2: 0.12})  # slow, but learning
    assert not judged(study, {0: 0.50, 1: 0.45, 2: 0.65, 3: 0.60})  # an early dip, then up
    assert not judged(study, {0: 0.70, 1: 0.69, 2: 0.69})  # flat, but not far behind 0.85


def test_far_behind_is_measured_against_the_spread_of_what_the_study_has_seen() -> None:
    # Every trial so far is good: the spread is small, so it takes little to be far behind,
    # and a trial flat for two epochs at the bottom of it is stopped; one within it is not.
    assert judged(study_with(FAST, FAST), {0: 0.83, 1: 0.83, 2: 0.83})
    assert not judged(study_with(FAST, FAST), {0: 0.845, 1: 0.845, 2: 0.845})
    # Against chance-level trials the same flat curve is no longer behind by half the spread.
    chance = {0: 0.10, 1: 0.10, 2: 0.10}
    assert not judged(study_with(FAST, chance), {0: 0.80, 1: 0.80, 2: 0.80})


def test_a_finished_trial_counts_with_the_value_it_had_reached_by_then() -> None:
    study = study_with({0: 0.8})  # stopped after its first step
    assert judged(study, {0: 0.1, 1: 0.1, 2: 0.1, 3: 0.1})
    assert not judged(study_with({5: 0.9}), {0: 0.1, 1: 0.1, 2: 0.1})  # its first is later


def test_when_minimizing_learning_means_going_down() -> None:
    falling = {0: 1.0, 1: 0.5, 2: 0.3}
    study = study_with(falling, direction="minimize")
    assert judged(study, {0: 2.3, 1: 2.3, 2: 2.31})
    assert not judged(study, {0: 2.3, 1: 2.2, 2: 2.1})


def test_the_wrapped_pruner_still_judges_and_the_study_knows_which_trials_it_stopped() -> None:
    study = study_with(FAST)
    wrapper = StopStalled(optuna.pruners.ThresholdPruner(lower=0.5))
    low = study.ask()
    low.report(0.3, 0)  # one point: not stalled, but below the threshold
    assert wrapper.prune(study, study.trials[low.number])
    assert not stopped_stalled(study.trials[low.number])
    flat = study.ask()
    for step in range(3):
        flat.report(0.1, step)
    assert wrapper.prune(study, study.trials[flat.number])
    assert stopped_stalled(study.trials[flat.number])


GOOD = {0: 0.80, 1: 0.83, 2: 0.84, 3: 0.85, 4: 0.86, 5: 0.87}
BEHIND = {step: 0.70 + 0.02 * step for step in range(6)}  # learning, 0.80 by step 5


def stop_two_diverged(study: optuna.Study) -> None:
    """Two trials at chance for three steps, stopped as stalled and told PRUNED."""
    for _ in range(2):
        trial = study.ask()
        for step in range(3):
            trial.report(0.10, step)
        assert StopStalled(optuna.pruners.NopPruner()).prune(study, study.trials[trial.number])
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)


@pytest.mark.parametrize("compare_with", ["complete", "reached"])
def test_a_stalled_trial_stays_in_the_bar_as_though_it_had_run_to_the_end(
    compare_with: str,
) -> None:
    # Two good trials and two stopped at chance: had those trained to the end, the median
    # at step 5 would be 0.485 and a trial at 0.80 there would go on; without them in the
    # bar it is 0.86 and it would be cut. The check runs in a pruner built afresh, as a
    # resumed job's is: the study, not the pruner, remembers which trials stalled.
    study = study_with(GOOD, {**GOOD, 5: 0.86})
    stop_two_diverged(study)
    median = optuna.pruners.MedianPruner(n_startup_trials=2)
    inner = median if compare_with == "complete" else ReachedPeers(median)
    assert not judged_by(StopStalled(inner), study, BEHIND)
    assert judged_by(inner, study, BEHIND)  # the bar without them


def judged_by(pruner: optuna.pruners.BasePruner, study: optuna.Study, curve: dict) -> bool:
    trial = study.ask()
    for step, value in curve.items():
        trial.report(value, step)
    decision = pruner.prune(study, study.trials[trial.number])
    study.tell(trial, state=optuna.trial.TrialState.FAIL)  # out of the next judgement's way
    return decision


def spec_with(config: dict) -> TuningSpec:
    return TuningSpec(
        goal="MAXIMIZE", metric_tag="val_acc", early_stopping=True, early_stopping_config=config
    )


@pytest.mark.parametrize("name", ["median", "percentile"])
def test_the_pruners_with_a_start_up_stop_stalled_trials_when_told_to(name: str) -> None:
    assert isinstance(make_pruner(spec_with({"pruner": name, "stopStalled": True})), StopStalled)
    assert not isinstance(make_pruner(spec_with({"pruner": name})), StopStalled)  # off
    named = spec_with({"pruner": name.capitalize(), "stopStalled": True})  # as check accepts
    assert isinstance(make_pruner(named), StopStalled)
    built = make_pruner(spec_with({"pruner": name, "stopStalled": True}))
    assert isinstance(built, StopStalled) and built.hold


@pytest.mark.parametrize("name", ["successive_halving", "hyperband", "asha"])
def test_successive_halving_stops_stalled_trials_when_told_to_without_a_bar_to_hold_them_in(
    name: str,
) -> None:
    # It lets the first trial at a rung through alone, a diverged one too.
    pruner = make_pruner(spec_with({"pruner": name, "stopStalled": True}))
    assert isinstance(pruner, StopStalled) and not pruner.hold
    assert not isinstance(make_pruner(spec_with({"pruner": name})), StopStalled)  # off


def test_stop_stalled_must_be_true_or_false() -> None:
    assert check_settings({"stopStalled": False}) is None
    problem = check_settings({"stopStalled": "no"})
    assert problem is not None
    assert (problem.key, problem.hint) == ("stopStalled", "write stopStalled: true or false")


def test_a_diverged_trial_successive_halving_lets_through_alone_is_stopped() -> None:
    # The learning trial finished without reaching a rung: the diverged one is the first at
    # rung 0 (step 1), where halving lets it through; halving records its rung value in
    # the study itself, so it gets the study, not a view of it.
    halving = optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    study = study_with(FAST)
    assert not judged_by(halving, study, {0: 0.10, 1: 0.10, 2: 0.10})
    assert judged_by(StopStalled(halving, hold=False), study, {0: 0.10, 1: 0.10, 2: 0.10})
    assert not judged_by(StopStalled(halving, hold=False), study, {0: 0.80, 1: 0.84})
    assert study.trials[-1].system_attrs["completed_rung_0"] == 0.84
