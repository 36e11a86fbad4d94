"""Tests for flagrun._study_view: the study as a pruner reads it, each trial rewritten."""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

from flagrun._study_view import StudyView, as_complete, held


def study_of_a_complete_and_a_pruned_trial() -> optuna.Study:
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    done = study.ask()
    done.report(0.5, 0)
    study.tell(done, 0.5)
    cut = study.ask()
    cut.report(0.2, 0)
    cut.report(0.3, 2)
    study.tell(cut, state=TrialState.PRUNED)
    return study


def numbers(trials: list[FrozenTrial]) -> list[int]:
    return [t.number for t in trials]


def test_the_states_asked_for_are_those_of_the_rewritten_trials() -> None:
    study = study_of_a_complete_and_a_pruned_trial()
    view = StudyView(study, as_complete)
    assert numbers(view.get_trials(states=(TrialState.COMPLETE,))) == [0, 1]
    assert study.trials[1].state == TrialState.PRUNED  # the study itself is untouched
    assert view.direction == optuna.study.StudyDirection.MAXIMIZE


def test_a_rewrite_returning_none_leaves_the_trial_out_and_views_nest() -> None:
    study = study_of_a_complete_and_a_pruned_trial()
    only_cut = StudyView(study, lambda t: t if t.state == TrialState.PRUNED else None)
    holding = StudyView(only_cut, lambda t: held(t, 5))
    [trial] = holding.get_trials()
    assert trial.number == 1
    assert trial.intermediate_values == {0: 0.2, 2: 0.3, 5: 0.3}
    assert study.trials[1].intermediate_values == {0: 0.2, 2: 0.3}


def test_held_adds_no_value_before_the_first_point_or_where_there_is_one() -> None:
    trial = study_of_a_complete_and_a_pruned_trial().trials[1]
    assert held(trial, 2) is trial
    assert held(trial, 1).intermediate_values == {0: 0.2, 2: 0.3, 1: 0.2}
    late = optuna.create_study().ask()
    late.report(0.1, 3)
    frozen = late.study.trials[0]
    assert held(frozen, 1) is frozen
