"""TPE's random start-up bounded by time as well as trials (flagrun._timed_start), on real
Optuna studies."""

from __future__ import annotations

import time
import warnings

import optuna
import pytest

from flagrun import space
from flagrun._timed_start import TimedStart
from flagrun.spec import ParamSpec, TuningSpec

optuna.logging.set_verbosity(optuna.logging.WARNING)


def tpe(n_startup_trials: int) -> optuna.samplers.TPESampler:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            seed=7, multivariate=True, constant_liar=True, n_startup_trials=n_startup_trials
        )


def objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", 0.0, 1.0)
    units = trial.suggest_int("units", 16, 512, log=True)
    return (x - 0.3) ** 2 + units / 1000


def draws(sampler: optuna.samplers.BaseSampler, n: int) -> list[dict]:
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=n)
    return [trial.params for trial in study.trials]


def test_within_its_time_the_start_up_is_the_draws_tpe_itself_makes() -> None:
    timed = draws(TimedStart(tpe(0), 4, seconds=3600, seed=7), 6)
    plain = draws(tpe(4), 6)
    # random for 4 trials (the same seed's draws), then TPE's model on the same trials
    assert timed == plain
    assert len({trial["x"] for trial in timed}) == 6


def test_once_its_time_is_up_every_trial_is_sampled_by_the_model() -> None:
    sampler = TimedStart(tpe(0), 10, seconds=0.2, seed=7)
    study = optuna.create_study(sampler=sampler)
    assert not sampler.guided(study)  # no trial finished, time left
    time.sleep(0.3)
    assert sampler.guided(study)
    assert draws(TimedStart(tpe(0), 10, seconds=0, seed=7), 3) == draws(tpe(0), 3)


def test_finished_trials_end_the_start_up_as_before() -> None:
    sampler = TimedStart(tpe(0), 2, seconds=3600, seed=7)
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=2)
    assert sampler.guided(study)


@pytest.mark.parametrize(("limit", "timed"), [(None, False), (1800.0, True)])
def test_the_job_sampler_takes_the_time_limit_into_account(
    limit: float | None, timed: bool
) -> None:
    spec = TuningSpec(
        goal="MAXIMIZE",
        metric_tag="acc",
        max_trials=100,
        max_running_time=limit,
        params=(ParamSpec("x", "DOUBLE", min_value=0.0, max_value=1.0),),
    )
    assert isinstance(space.make_sampler(spec), TimedStart) is timed
