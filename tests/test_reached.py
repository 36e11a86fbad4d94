"""Tests for flagrun._reached: judging a trial against every trial that reached its step."""

from __future__ import annotations

import optuna
import pytest

from flagrun._reached import ReachedPeers, reached
from flagrun._timed_start import TimedStartPruner
from flagrun.pruners import check_settings, make_pruner
from flagrun.spec import TuningSpec

COMPLETE, PRUNED = optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED


def study_with(*trials: tuple[dict[int, float], optuna.trial.TrialState | None]) -> optuna.Study:
    """A study of trials with these curves, told these states (None: still running)."""
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    for curve, state in trials:
        trial = study.ask()
        for step, value in curve.items():
            trial.report(value, step)
        if state == COMPLETE:
            study.tell(trial, list(curve.values())[-1])
        elif state is not None:
            study.tell(trial, state=state)
    return study


def judged(study: optuna.Study, curve: dict[int, float], pruner: optuna.pruners.BasePruner) -> bool:
    """Whether ``pruner`` stops a new trial with this curve so far."""
    trial = study.ask()
    for step, value in curve.items():
        trial.report(value, step)
    return pruner.prune(study, study.trials[trial.number])


def median_over_reached(n_startup_trials: int = 2) -> ReachedPeers:
    return ReachedPeers(optuna.pruners.MedianPruner(n_startup_trials=n_startup_trials))


def test_pruned_and_running_trials_count_at_the_steps_they_reached() -> None:
    # No trial is complete: Optuna's median pruner judges nothing; over reached trials the
    # median at step 1 is 0.6, and a trial at 0.3 is cut.
    study = study_with(({0: 0.4, 1: 0.5}, PRUNED), ({0: 0.6, 1: 0.7, 2: 0.8}, None))
    assert not judged(study, {0: 0.2, 1: 0.3}, optuna.pruners.MedianPruner(n_startup_trials=1))
    assert judged(study, {0: 0.2, 1: 0.3}, median_over_reached())
    assert not judged(study, {0: 0.6, 1: 0.65}, median_over_reached())


def test_the_start_up_counts_the_trials_that_reached_the_step() -> None:
    study = study_with(({0: 0.4, 1: 0.5}, PRUNED), ({0: 0.6, 1: 0.7, 2: 0.8}, None))
    # At step 2 only the running trial is there: one peer is short of a start-up of two.
    assert not judged(study, {0: 0.1, 1: 0.1, 2: 0.1}, median_over_reached())
    assert judged(study, {0: 0.1, 1: 0.1, 2: 0.1}, median_over_reached(n_startup_trials=1))


def test_trials_cut_early_keep_the_bar_where_they_were() -> None:
    # One fast model finished; three were cut at step 1 far below it. A slow model at 0.6
    # is below the complete trial but above the median of all four that reached step 1.
    fast = ({0: 0.84, 1: 0.85, 2: 0.86}, COMPLETE)
    cut = [({0: 0.3, 1: 0.35}, PRUNED), ({0: 0.4, 1: 0.45}, PRUNED), ({0: 0.5, 1: 0.55}, PRUNED)]
    study = study_with(fast, *cut)
    slow = {0: 0.5, 1: 0.6}
    assert judged(study, slow, optuna.pruners.MedianPruner(n_startup_trials=1))
    assert not judged(study, slow, median_over_reached())


def test_a_complete_trial_holds_its_last_value_past_its_end() -> None:
    done = study_with(({0: 0.8}, COMPLETE)).trials[0]
    stopped = study_with(({0: 0.8}, PRUNED)).trials[0]
    later = study_with(({3: 0.8}, COMPLETE)).trials[0]
    assert reached(done, 0) and reached(done, 5)
    assert reached(stopped, 0) and not reached(stopped, 1)
    assert not reached(later, 2)  # nothing reported by step 2
    study = study_with(({0: 0.8}, COMPLETE), ({0: 0.9}, COMPLETE))
    assert judged(study, {0: 0.7, 1: 0.7, 2: 0.7}, median_over_reached())


def test_a_trial_is_not_its_own_peer() -> None:
    study = study_with(({0: 0.8, 1: 0.8}, COMPLETE))
    # Alone with one peer and a start-up of two, nothing is judged, however low it is.
    assert not judged(study, {0: 0.1, 1: 0.1}, median_over_reached())


def spec_with(config: dict, max_running_time: float | None = None) -> TuningSpec:
    return TuningSpec(
        goal="MAXIMIZE",
        metric_tag="val_acc",
        early_stopping=True,
        early_stopping_config=config,
        max_running_time=max_running_time,
    )


@pytest.mark.parametrize("name", ["median", "percentile", "Median"])
def test_the_pruners_with_a_start_up_compare_with_reached_trials_when_told_to(name: str) -> None:
    pruner = make_pruner(spec_with({"pruner": name, "compareWith": "reached"}))
    assert isinstance(pruner, ReachedPeers)
    # A time limit does not cut its start-up short: it is counted per step already.
    timed = make_pruner(spec_with({"pruner": name, "compareWith": "reached"}, 60.0))
    assert isinstance(timed, ReachedPeers)
    assert isinstance(make_pruner(spec_with({"pruner": name}, 60.0)), TimedStartPruner)
    for other in ("successive_halving", "hyperband", "asha", "none"):
        config = {"pruner": other, "compareWith": "reached"}
        assert not isinstance(make_pruner(spec_with(config)), ReachedPeers)


def test_compare_with_is_checked_and_names_the_fix() -> None:
    assert check_settings({"compareWith": "reached"}) is None
    assert check_settings({"compareWith": "complete"}) is None
    near = check_settings({"compareWith": "reach"})
    assert near is not None
    assert (near.key, near.hint) == ("compareWith", "did you mean reached?")
    other = check_settings({"compareWith": 3})
    assert other is not None and other.key == "compareWith"
    assert other.what == "3 is not one of complete, reached"


@pytest.mark.parametrize(
    ("key", "pruner", "applies_to"),
    [
        ("compareWith", "hyperband", "the median and percentile pruners"),
        ("compareWith", "asha", "the median and percentile pruners"),
        ("stopStalled", "none", "every pruner but none"),
    ],
)
def test_a_setting_given_to_a_pruner_it_does_not_apply_to_is_named(
    key: str, pruner: str, applies_to: str
) -> None:
    on = {"compareWith": "reached", "stopStalled": True}[key]
    problem = check_settings({"pruner": pruner, key: on})
    assert problem is not None
    assert problem == (
        key,
        f"applies to {applies_to}, not {pruner}",
        f"drop {key}, or use pruner: median",
    )
    off = {"compareWith": "complete", "stopStalled": False}[key]
    assert check_settings({"pruner": pruner, key: off}) is None
