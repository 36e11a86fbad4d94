"""Tests for flagrun.pruners: one table checks the YAML's earlyStopping and builds the pruner."""

from __future__ import annotations

import time

import optuna
import pytest

from flagrun import pruners
from flagrun._timed_start import TimedStartPruner
from flagrun.errors import SpecError
from flagrun.pruners import DEFAULT_PRUNER, PRUNERS, check_settings, make_pruner
from flagrun.spec import TuningSpec


def _spec(**kwargs) -> TuningSpec:
    return TuningSpec(goal="MAXIMIZE", metric_tag="val_acc", **kwargs)


def test_the_default_pruner_is_the_measured_one_and_settings_reach_it() -> None:
    assert isinstance(make_pruner(_spec(max_parallel_trials=2)), optuna.pruners.NopPruner)
    default = make_pruner(_spec(early_stopping=True))
    assert DEFAULT_PRUNER == "median"
    assert type(default) is optuna.pruners.MedianPruner
    assert (default._n_startup_trials, default._n_warmup_steps) == (5, 1)
    chosen = make_pruner(
        _spec(
            early_stopping=True,
            early_stopping_config={"pruner": "hyperband", "min_resource": 2},
        )
    )
    assert isinstance(chosen, optuna.pruners.HyperbandPruner)
    assert chosen._min_resource == 2


def test_defaults_wait_for_one_trial_per_slot_and_one_warmup_step() -> None:
    for name in ("median", "percentile"):
        built = make_pruner(
            _spec(
                early_stopping=True, max_parallel_trials=8, early_stopping_config={"pruner": name}
            )
        )
        assert (built._n_startup_trials, built._n_warmup_steps) == (8, 1)
    small = make_pruner(_spec(early_stopping=True, early_stopping_config={"pruner": "median"}))
    assert small._n_startup_trials == 5


def test_given_settings_override_the_defaults() -> None:
    config = {"pruner": "percentile", "percentile": 50.0, "n_warmup_steps": 3}
    built = make_pruner(_spec(early_stopping=True, early_stopping_config=config))
    assert (built._percentile, built._n_warmup_steps) == (50.0, 3)


def test_every_row_builds_with_its_defaults() -> None:
    classes = {
        name: type(make_pruner(_spec(early_stopping=True, early_stopping_config={"pruner": name})))
        for name in PRUNERS
    }
    assert classes == {
        "median": optuna.pruners.MedianPruner,
        "percentile": optuna.pruners.PercentilePruner,
        "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
        "hyperband": optuna.pruners.HyperbandPruner,
        "asha": optuna.pruners.SuccessiveHalvingPruner,  # it pauses (tuner.promotion)
        "none": optuna.pruners.NopPruner,
    }
    assert [name for name, row in PRUNERS.items() if row.pauses] == ["asha"]


def test_an_unknown_pruner_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match="'medain' is unknown"):
        make_pruner(_spec(early_stopping=True, early_stopping_config={"pruner": "medain"}))


def test_check_settings_names_the_key_and_the_fix() -> None:
    assert check_settings({"pruner": "median", "n_warmup_steps": 2}) is None
    assert check_settings({}) is None
    unknown = check_settings({"pruner": "median", "n_warmup": 2})
    assert unknown is not None
    assert (unknown.key, unknown.hint) == ("n_warmup", "did you mean n_warmup_steps?")
    bad = check_settings({"pruner": "percentile", "percentile": 500})
    assert bad is not None and bad.key == "percentile"
    assert "between 0 and 100" in (bad.hint or "")
    wrong_type = check_settings({"pruner": "percentile", "n_warmup_steps": "two"})
    assert wrong_type is not None
    assert (wrong_type.key, wrong_type.hint) == ("n_warmup_steps", "n_warmup_steps is int")
    name = check_settings({"pruner": "medain"})
    assert name is not None and (name.key, name.hint) == ("pruner", "did you mean median?")
    nop = check_settings({"pruner": "none", "n_warmup_steps": 2})
    assert nop is not None and nop.hint == "it takes no settings"


def test_accepted_keywords_come_from_the_optuna_signature() -> None:
    assert "n_warmup_steps" in PRUNERS["median"].keywords()
    assert "n_min_trials" in PRUNERS["percentile"].keywords()
    assert PRUNERS["none"].keywords() == {}
    assert list(pruners.PRUNERS["hyperband"].keywords())[0] == "min_resource"
    assert PRUNERS["percentile"].keywords()["percentile"] == "float"


def test_early_stopping_settings_without_a_pruner_get_the_default_pruner(tmp_path) -> None:
    from flagrun.spec import load_spec

    path = tmp_path / "tuning.yml"
    path.write_text(
        "goal: MAXIMIZE\nhyperparameterMetricTag: acc\n"
        "earlyStopping: {n_warmup_steps: 4}\n"
        "params:\n- {parameterName: u, type: INTEGER, minValue: 1, maxValue: 4}\n"
    )
    spec = load_spec(path)
    assert spec.early_stopping is True
    built = make_pruner(spec)
    assert type(built) is optuna.pruners.MedianPruner
    assert built._n_warmup_steps == 4
    assert spec.early_stopping_config == {"pruner": "median", "n_warmup_steps": 4}


def test_resource_and_time_step_are_checked_and_stay_out_of_the_optuna_class() -> None:
    assert check_settings({"pruner": "median", "resource": "time", "timeStep": 5}) is None
    assert check_settings({"resource": "steps"}) is None
    typo = check_settings({"resource": "tiem"})
    assert typo is not None and (typo.key, typo.hint) == ("resource", "did you mean time?")
    for bad in (0, -1, "5s", True):
        problem = check_settings({"resource": "time", "timeStep": bad})
        assert problem is not None and problem.key == "timeStep", bad
    config = {"pruner": "median", "n_warmup_steps": 3, "resource": "time", "timeStep": 2.5}
    built = make_pruner(_spec(early_stopping=True, early_stopping_config=config))
    assert isinstance(built.pruner, optuna.pruners.MedianPruner)
    assert built.pruner._n_warmup_steps == 3
    assert pruners.resource_of(_spec(early_stopping_config=config)) == pruners.Resource("time", 2.5)
    rungs = {"pruner": "hyperband", "resource": "time"}  # rung pruners compare all trials' rungs
    assert isinstance(
        make_pruner(_spec(early_stopping=True, early_stopping_config=rungs)),
        optuna.pruners.HyperbandPruner,
    )


def test_a_point_is_reported_at_its_step_or_at_its_elapsed_time_rounded_up() -> None:
    assert pruners.Resource().step_of(7, 123.0) == 7
    time_steps = pruners.Resource("time", 2.0)
    assert [time_steps.step_of(7, s) for s in (0.0, 0.5, 2.0, 2.1, -3.0)] == [0, 1, 1, 2, 0]


def finished_trial(study: optuna.Study, curve: dict[int, float]) -> None:
    trial = study.ask()
    for step, value in curve.items():
        trial.report(value, step)
    study.tell(trial, list(curve.values())[-1])


def test_over_time_a_slow_trial_meets_what_finished_trials_had_reached_by_then() -> None:
    # Five fast trials (the default start-up) reached 0.9 by second 10; a slow one has 0.5 at 60.
    def pruned(base: optuna.pruners.BasePruner) -> bool:
        study = optuna.create_study(direction="maximize", pruner=base)
        for _ in range(5):
            finished_trial(study, {2: 0.5, 6: 0.8, 10: 0.9})
        slow = study.ask()
        slow.report(0.5, 60)
        return slow.should_prune()

    config = {"pruner": "median", "resource": "time"}
    aligned = make_pruner(_spec(early_stopping=True, early_stopping_config=config))
    assert pruned(aligned)
    assert not pruned(aligned.pruner)  # alone, it finds no finished trial at second 60


def test_before_its_first_point_a_finished_trial_has_nothing_to_hold() -> None:
    config = {"pruner": "median", "resource": "time", "n_startup_trials": 1}
    study = optuna.create_study(
        direction="maximize",
        pruner=make_pruner(_spec(early_stopping=True, early_stopping_config=config)),
    )
    finished_trial(study, {30: 0.9})
    early = study.ask()
    early.report(0.1, 5)  # the finished trial had no value yet at second 5
    assert not early.should_prune()


def test_a_bad_time_step_in_a_file_names_its_line_and_the_fix(tmp_path) -> None:
    from flagrun.spec import load_spec

    path = tmp_path / "tuning.yml"
    path.write_text(
        "goal: MAXIMIZE\nhyperparameterMetricTag: acc\n"
        "earlyStopping:\n  resource: time\n  timeStep: 0\n"
        "params:\n- {parameterName: u, type: INTEGER, minValue: 1, maxValue: 4}\n"
    )
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert "tuning.yml:5: earlyStopping.timeStep 0 is not" in str(caught.value)
    assert "timeStep: 1.0" in (caught.value.hint or "")


def test_setting_reads_the_given_value_then_flagruns_default_then_optunas() -> None:
    spec = _spec(early_stopping=True, early_stopping_config={"pruner": "asha"})
    assert pruners.pauses(spec)
    assert pruners.setting(spec, "reduction_factor") == 4  # Optuna's default
    given = _spec(
        early_stopping=True, early_stopping_config={"pruner": "asha", "reduction_factor": 3}
    )
    assert pruners.setting(given, "reduction_factor") == 3
    assert pruners.setting(_spec(max_parallel_trials=8), "n_startup_trials") == 8
    assert not pruners.pauses(_spec(early_stopping=True))


def behind_after_one_finished(pruner: optuna.pruners.BasePruner) -> bool:
    """Whether a trial below the only finished one at step 1 is pruned."""
    study = optuna.create_study(direction="maximize", pruner=pruner)
    finished_trial(study, {0: 0.8, 1: 0.85, 2: 0.86})
    behind = study.ask()
    for step, value in {0: 0.1, 1: 0.1}.items():
        behind.report(value, step)
    return behind.should_prune()


def test_with_a_time_limit_pruning_starts_from_one_finished_trial_after_a_third_of_it() -> None:
    limited = make_pruner(_spec(early_stopping=True, max_running_time=6.0))
    assert isinstance(limited, TimedStartPruner)
    assert not behind_after_one_finished(limited)  # within its start-up: 5 trials to finish
    time.sleep(2.1)  # a third of 6 s has passed
    assert behind_after_one_finished(limited)
    # Without a limit, or with n_startup_trials given, the start-up is in trials only.
    assert not behind_after_one_finished(make_pruner(_spec(early_stopping=True)))
    given = {"pruner": "median", "n_startup_trials": 3}
    settled = make_pruner(
        _spec(early_stopping=True, max_running_time=0.0001, early_stopping_config=given)
    )
    assert type(settled) is optuna.pruners.MedianPruner
    asha = {"pruner": "asha"}  # successive halving has no start-up to shorten
    halving = make_pruner(
        _spec(early_stopping=True, max_running_time=60, early_stopping_config=asha)
    )
    assert isinstance(halving, optuna.pruners.SuccessiveHalvingPruner)
