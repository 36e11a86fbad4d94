"""Tests for flagrun.pruners: one table checks the YAML's earlyStopping and builds the pruner."""

from __future__ import annotations

import time

import optuna
import pytest

from flagrun import pruners
from flagrun._startup_floor import StartupFloor
from flagrun._time_aligned import TimeAligned
from flagrun._timed_start import TimedStartPruner
from flagrun.errors import SpecError
from flagrun.pruners import DEFAULT_PRUNER, PRUNERS, check_settings, make_pruner
from flagrun.spec import TuningSpec


def _spec(**kwargs) -> TuningSpec:
    return TuningSpec(goal="MAXIMIZE", metric_tag="val_acc", **kwargs)


def _configured(built: optuna.pruners.BasePruner) -> optuna.pruners.BasePruner:
    """The pruner as configured, without the floor flagrun adds to its start-up."""
    return built.pruner if isinstance(built, StartupFloor) else built


def test_the_default_pruner_is_the_measured_one_and_settings_reach_it() -> None:
    assert isinstance(make_pruner(_spec(max_parallel_trials=2)), optuna.pruners.NopPruner)
    default = _configured(make_pruner(_spec(early_stopping=True)))
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
        assert isinstance(built, StartupFloor) and built.n_startup_trials == 8
        assert (built.pruner._n_startup_trials, built.pruner._n_warmup_steps) == (8, 1)
    small = make_pruner(_spec(early_stopping=True, early_stopping_config={"pruner": "median"}))
    assert _configured(small)._n_startup_trials == 5


def test_given_settings_override_the_defaults() -> None:
    config = {"pruner": "percentile", "percentile": 50.0, "n_warmup_steps": 3}
    built = make_pruner(_spec(early_stopping=True, early_stopping_config=config))
    assert (built.pruner._percentile, built.pruner._n_warmup_steps) == (50.0, 3)
    assert (built.floor._percentile, built.floor._n_warmup_steps) == (100.0, 3)


def test_every_row_builds_with_its_defaults() -> None:
    classes = {
        name: type(
            _configured(
                make_pruner(_spec(early_stopping=True, early_stopping_config={"pruner": name}))
            )
        )
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
    built = _configured(make_pruner(spec))
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
    aligned = built.pruner  # behind the start-up floor, aligned over time
    assert isinstance(aligned.pruner, optuna.pruners.MedianPruner)
    assert aligned.pruner._n_warmup_steps == 3
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
    built = make_pruner(_spec(early_stopping=True, early_stopping_config=config))
    assert pruned(built)
    aligned = built.pruner  # the configured pruner, behind the start-up floor
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


def pruned_after(pruner: optuna.pruners.BasePruner, finished: int, value: float) -> bool:
    """Whether a trial at ``value`` by step 1 is pruned after ``finished`` trials ended,
    the first at 0.85 by step 1, the others at 0.5."""
    study = optuna.create_study(direction="maximize", pruner=pruner)
    for number in range(finished):
        finished_trial(study, {0: 0.8, 1: 0.85, 2: 0.86} if number == 0 else {0: 0.4, 1: 0.5})
    behind = study.ask()
    for step, reached in {0: value, 1: value}.items():
        behind.report(reached, step)
    return behind.should_prune()


def test_before_its_start_up_is_complete_the_pruner_stops_trials_worse_than_every_complete_one():
    for name in ("median", "percentile"):
        built = make_pruner(_spec(early_stopping=True, early_stopping_config={"pruner": name}))
        assert not pruned_after(built, 0, 0.1)  # nothing to judge by
        assert pruned_after(built, 1, 0.1)  # collapsed, worse than the only complete trial
        assert pruned_after(built, 2, 0.4)  # worse than both
        assert not pruned_after(built, 2, 0.6)  # below the median of two, above the floor
        assert pruned_after(built, 5, 0.45)  # five complete: the configured pruner judges
    # An n_startup_trials given in the YAML is Optuna's start-up: nothing stopped before it.
    given = {"pruner": "median", "n_startup_trials": 5}
    optunas = make_pruner(_spec(early_stopping=True, early_stopping_config=given))
    assert type(optunas) is optuna.pruners.MedianPruner
    assert not pruned_after(optunas, 1, 0.1)


def test_over_time_the_floor_holds_finished_curves_too() -> None:
    config = {"pruner": "median", "resource": "time", "timeStep": 5}
    built = make_pruner(_spec(early_stopping=True, early_stopping_config=config))
    assert isinstance(built.floor, TimeAligned) and isinstance(built.pruner, TimeAligned)


def test_with_a_time_limit_pruning_starts_from_one_finished_trial_after_a_third_of_it() -> None:
    limited = make_pruner(_spec(early_stopping=True, max_running_time=6.0))
    assert isinstance(limited, TimedStartPruner)
    assert not pruned_after(limited, 2, 0.6)  # within its start-up: only the floor
    time.sleep(2.1)  # a third of 6 s has passed
    assert pruned_after(limited, 2, 0.6)  # the median of two complete trials
    # Without a limit, or with n_startup_trials given, the start-up is in trials only.
    assert not pruned_after(make_pruner(_spec(early_stopping=True)), 2, 0.6)
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
