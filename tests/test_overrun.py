"""Projecting a trial's run time from its pace (flagrun.tuner.overrun), on real points."""

from __future__ import annotations

import optuna
import pytest

from flagrun.pace import Pace
from flagrun.sources import Scalar
from flagrun.tuner import overrun

START = 1_000.0  # the wall time the trial's process started


def points(*seconds: float, before: int = 0) -> list[Scalar]:
    """Points at these seconds after START, after ``before`` points of an earlier process."""
    earlier = [Scalar(step, START - 100 + step, 0.5) for step in range(before)]
    return earlier + [Scalar(before + i, START + t, 0.5) for i, t in enumerate(seconds)]


def test_the_pace_between_points_projects_the_rest() -> None:
    # 10 s of start-up, then 20 s an epoch: 5 epochs end at 10 + 5 * 20 = 110 s.
    assert overrun.projected_seconds(points(30, 50), START, START + 55, 5) == 110


def test_with_one_point_its_time_from_the_start_is_the_pace() -> None:
    assert overrun.projected_seconds(points(30), START, START + 31, 5) == 150


def test_with_no_point_the_time_run_so_far_bounds_each_point_from_below() -> None:
    assert overrun.projected_seconds([], START, START + 40, 5) == 200


def test_the_start_up_of_the_jobs_finished_trials_is_not_counted_into_every_epoch() -> None:
    # As on a GPU: 6 s to import and compile, then ~1 s an epoch; 27 epochs end near 33 s.
    # Counted into each epoch, 6.5 s with no point would project 6.5 * 27 = 175 s.
    assert overrun.projected_seconds([], START, START + 6.5, 27, startup=6) == 6.5 + 26 * 0.5
    assert overrun.projected_seconds(points(7.2), START, START + 7.5, 27, startup=6) == (
        pytest.approx(7.2 + 26 * 1.2)
    )
    assert overrun.projected_seconds([], START, START + 4, 27, startup=6) == 4


def test_with_its_start_up_unknown_the_time_it_has_run_projects_nothing() -> None:
    assert overrun.projected_seconds([], START, START + 30, 27, startup=None) is None
    # once it wrote a point, its pace from the start counts as before
    assert overrun.projected_seconds(points(30), START, START + 31, 5, startup=None) == 150


def test_a_job_is_paced_when_a_finished_trial_said_its_progress() -> None:
    study = optuna.create_study()
    pruned = study.ask()
    pruned.set_user_attr(overrun.PACED_ATTR, True)
    study.tell(pruned, state=optuna.trial.TrialState.PRUNED)
    study.tell(study.ask(), 0.5)
    assert not overrun.job_paced(study.get_trials())
    paced = study.ask()
    paced.set_user_attr(overrun.PACED_ATTR, True)
    study.tell(paced, 0.6)
    assert overrun.job_paced(study.get_trials())


def test_a_finished_trials_start_up_is_its_first_point_less_its_pace() -> None:
    assert overrun.startup_seconds(points(10, 12, 14), START) == 8
    assert overrun.startup_seconds(points(1, 5, 9), START) == 0  # never below 0
    assert overrun.startup_seconds(points(10), START) is None  # one point: no pace
    assert overrun.startup_seconds(points(30, 32, before=3), START) == 28  # its own points


def test_expected_startup_is_the_longest_a_complete_trial_had() -> None:
    study = optuna.create_study()
    for state, startup in [("COMPLETE", 4.0), ("COMPLETE", 7.5), ("PRUNED", 30.0)]:
        trial = study.ask()
        trial.set_user_attr(overrun.STARTUP_ATTR, startup)
        value = 0.5 if state == "COMPLETE" else None
        study.tell(trial, value, state=optuna.trial.TrialState[state])
    study.tell(study.ask(), 0.5)  # a complete trial without one (a single point)
    assert overrun.expected_startup(study.get_trials()) == 7.5
    assert overrun.expected_startup([]) == 0


def test_points_from_before_a_resume_count_as_done_not_towards_the_pace() -> None:
    # 3 of 5 epochs were done by an earlier process; this one wrote one at 30 s.
    assert overrun.projected_seconds(points(30, before=3), START, START + 31, 5) == 60


@pytest.mark.parametrize(("series", "expected"), [(points(1, 2, 3), 3), ([], 0)])
def test_nothing_is_projected_when_done_or_when_nothing_is_known(
    series: list[Scalar], expected: int
) -> None:
    assert overrun.projected_seconds(series, START, START + 5, expected) is None


def test_a_trial_is_stopped_only_past_the_timeout_and_its_margin() -> None:
    # projected 150 s: inside 140 s plus 10%, outside 130 s plus 10%
    assert overrun.overrun_reason(points(30), START, START + 31, 5, 140) is None
    reason = overrun.overrun_reason(points(30), START, START + 31, 5, 130)
    assert reason == (
        "stopped after 31 s with 1 of 5 points: at its pace it would need ~150 s, "
        "past trialTimeout 130 s"
    )


def test_expected_points_come_from_complete_trials_only() -> None:
    study = optuna.create_study()
    for state, count in [("COMPLETE", 4), ("COMPLETE", 5), ("PRUNED", 9), ("FAIL", 12)]:
        trial = study.ask()
        trial.set_user_attr(overrun.POINTS_ATTR, count)
        value = 1.0 if state == "COMPLETE" else None
        study.tell(trial, value, state=optuna.trial.TrialState[state])
    assert overrun.expected_points(study.get_trials()) == 5
    assert overrun.expected_points([]) == 0


def reading(epoch: int, done: int, at: float, steps: int = 100, epochs: int = 5) -> Pace:
    return Pace(epoch, done, steps, epochs, START + at)


def test_before_its_first_point_the_pace_of_its_batches_projects_the_rest() -> None:
    # 30 of 100 batches done at 14 s, at 20 s an epoch: 14 s to go in the first, then 4
    # more epochs: 14 + 14 + 80 = 108 s, where the time run alone says 75 s.
    epoch_time = (reading(0, 30, 14), 20.0)
    assert overrun.projected_seconds([], START, START + 15, 5, epoch_time) == pytest.approx(108)
    reason = overrun.overrun_reason([], START, START + 15, 5, 60, epoch_time)
    assert reason == (
        "stopped after 15 s with 0 of 5 points: at the pace of its batches (~20 s an epoch) "
        "it would need ~108 s, past trialTimeout 60 s"
    )


def test_the_pace_of_its_batches_never_projects_less_than_the_time_run_so_far() -> None:
    # A reading long past (the script stopped reporting): the lower bound still holds.
    epoch_time = (reading(0, 99, 2), 2.0)
    assert overrun.projected_seconds([], START, START + 40, 5, epoch_time) == 200


def test_once_it_wrote_a_point_the_pace_between_points_projects_not_its_batches() -> None:
    epoch_time = (reading(0, 30, 14), 1_000.0)
    now = START + 31
    assert overrun.projected_seconds(points(30), START, now, 5, epoch_time) == 150
    reason = overrun.overrun_reason(points(30), START, now, 5, 1, epoch_time)
    assert reason is not None and "at its pace it would need ~150 s" in reason


def test_before_any_trial_finished_its_batches_say_when_its_training_ends() -> None:
    # Nothing says how many points a trial writes yet; its reading says 5 epochs.
    epoch_time = (reading(0, 30, 14), 20.0)
    assert overrun.projected_seconds([], START, START + 15, 0) is None
    assert overrun.projected_seconds([], START, START + 15, 0, epoch_time) == pytest.approx(108)
    reason = overrun.overrun_reason([], START, START + 15, 0, 60, epoch_time)
    assert reason is not None and reason.startswith("stopped after 15 s with 0 points: at the")


def test_its_batches_count_epochs_whatever_points_it_writes() -> None:
    # An objective written every 10 batches: 50 points, 5 epochs of 20 s.
    epoch_time = (reading(0, 30, 14), 20.0)
    assert overrun.projected_seconds([], START, START + 15, 50, epoch_time) == 750  # 15 * 50
    assert overrun.projected_seconds([], START, START + 1, 50, epoch_time) == pytest.approx(108)


def test_a_resumed_trial_paces_the_epochs_left() -> None:
    # 3 of 5 epochs done before; 10 s an epoch from its batches, half of epoch 3 to go.
    epoch_time = (reading(3, 50, 8), 10.0)
    assert (
        overrun.projected_seconds(points(before=3), START, START + 9, 5, epoch_time) == 8 + 5 + 10
    )
