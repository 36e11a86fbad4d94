"""Tests for flagrun.space: real in-memory Optuna studies over random specs."""

from __future__ import annotations

import dataclasses
import math
import statistics
import warnings
from pathlib import Path

import optuna
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flagrun import space
from flagrun.spec import LINEAR, LOG, REVERSE_LOG, ParamSpec, TuningSpec, load_spec

optuna.logging.set_verbosity(optuna.logging.WARNING)
SPECS = Path(__file__).parent / "data" / "specs"
FAST = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def make_spec(params, algorithm="TPE", max_trials=9, seed=0) -> TuningSpec:
    return TuningSpec(
        goal="MAXIMIZE",
        metric_tag="acc",
        max_trials=max_trials,
        algorithm=algorithm,
        params=tuple(params),
        seed=seed,
    )


@st.composite
def params(draw, name):
    kind = draw(st.sampled_from(["DOUBLE", "INTEGER", "CATEGORICAL", "DISCRETE"]))
    scale = draw(st.sampled_from([LINEAR, LOG, REVERSE_LOG]))
    if kind == "DOUBLE":
        low = draw(st.floats(1e-4, 100))
        high = low + draw(st.floats(0, 1000))
        return ParamSpec(name, kind, low, high, scale)
    if kind == "INTEGER":
        low = draw(st.integers(1, 1000))
        return ParamSpec(name, kind, low, low + draw(st.integers(0, 1000)), scale)
    if kind == "CATEGORICAL":
        words = draw(
            st.lists(st.text("abcxyz", min_size=1, max_size=4), min_size=1, max_size=5, unique=True)
        )
        return ParamSpec(name, kind, categorical_values=tuple(words))
    numbers = st.one_of(st.integers(-50, 50), st.floats(-50, 50).map(lambda x: round(x, 3)))
    values = draw(st.lists(numbers, min_size=1, max_size=6, unique_by=float))
    return ParamSpec(name, kind, discrete_values=tuple(sorted(values)))


@st.composite
def specs(draw):
    n = draw(st.integers(1, 4))
    return make_spec([draw(params(f"p{i}")) for i in range(n)], seed=draw(st.integers(0, 99)))


def check_value(p: ParamSpec, value) -> None:
    if p.type == "DOUBLE":
        assert type(value) is float and p.min_value <= value <= p.max_value
    elif p.type == "INTEGER":
        assert type(value) is int and p.min_value <= value <= p.max_value
    elif p.type == "CATEGORICAL":
        assert type(value) is str and value in p.categorical_values
    else:
        written = [v for v in p.discrete_values if v == value]
        assert written and type(written[0]) is type(value)


def run_study(spec: TuningSpec, sampler, n: int) -> list[dict]:
    study = optuna.create_study(direction="maximize", sampler=sampler)
    seen = []
    for _ in range(n):
        trial = study.ask()
        flags = space.suggest(trial, spec)
        assert space.flags_from_params(spec, trial.params) == flags
        numbers = [v for v in flags.values() if isinstance(v, int | float)]
        study.tell(trial, float(sum(numbers)) if numbers else 0.0)
        seen.append(flags)
    return seen


@FAST
@given(specs())
def test_random_sampler_values_are_in_bounds_and_typed(spec):
    for flags in run_study(spec, optuna.samplers.RandomSampler(seed=spec.seed), 6):
        assert set(flags) == {p.name for p in spec.params}
        for p in spec.params:
            check_value(p, flags[p.name])


@FAST
@given(specs())
def test_tpe_sampler_values_are_in_bounds_and_typed(spec):
    for flags in run_study(spec, space.make_sampler(spec), 9):
        for p in spec.params:
            check_value(p, flags[p.name])


def sample_median(scale: str, kind: str = "DOUBLE") -> float:
    p = (
        ParamSpec("x", kind, 1, 100, scale)
        if kind == "INTEGER"
        else ParamSpec("x", kind, 1.0, 100.0, scale)
    )
    spec = make_spec([p], algorithm="RANDOM_SEARCH", seed=3)
    return statistics.median(f["x"] for f in run_study(spec, space.make_sampler(spec), 300))


@pytest.mark.parametrize("kind", ["DOUBLE", "INTEGER"])
def test_reverse_log_concentrates_near_max_and_log_near_min(kind):
    midpoint = 50.5
    assert sample_median(REVERSE_LOG, kind) > midpoint + 20
    assert sample_median(LOG, kind) < midpoint - 20
    assert abs(sample_median(LINEAR, kind) - midpoint) < 15


def test_reverse_log_uses_a_reflected_optuna_param():
    p = ParamSpec("momentum", "DOUBLE", 0.5, 0.99, REVERSE_LOG)
    spec = make_spec([p])
    assert space.optuna_name(p) == "momentum__reflected"
    assert space.flags_from_params(spec, {"momentum__reflected": 0.5}) == {"momentum": 0.99}


def test_discrete_values_come_back_as_written():
    p = ParamSpec("x", "DISCRETE", discrete_values=(1, 2.5, 4))
    spec = make_spec([p], algorithm="RANDOM_SEARCH")
    got = {f["x"] for f in run_study(spec, space.make_sampler(spec), 40)}
    assert got == {1, 2.5, 4}
    assert {type(v) for v in got} == {int, float}


def test_evenly_spaced_discrete_is_an_ordered_distribution():
    spec = make_spec([ParamSpec("d", "DISCRETE", discrete_values=(0.1, 0.3, 0.5))])
    study = optuna.create_study(sampler=space.make_sampler(spec))
    trial = study.ask()
    space.suggest(trial, spec)
    dist = trial.distributions["d"]
    assert isinstance(dist, optuna.distributions.FloatDistribution) and dist.step == 0.2


@st.composite
def grid_specs(draw):
    parent = ParamSpec("layers", "INTEGER", 1, draw(st.integers(1, 3)))
    child = ParamSpec(
        "units",
        "DISCRETE",
        discrete_values=(8, 16, 32),
        parent="layers",
        parent_values=tuple(draw(st.sets(st.integers(1, parent.max_value), min_size=1))),
    )
    grandchild = ParamSpec(
        "act",
        "CATEGORICAL",
        categorical_values=("relu", "tanh"),
        parent="units",
        parent_values=(16,),
    )
    extra = ParamSpec("lr", "DISCRETE", discrete_values=(0.01, 0.1), scale=REVERSE_LOG)
    rev = ParamSpec("k", "INTEGER", 2, 4, REVERSE_LOG)
    chosen = [parent, child, grandchild, *draw(st.sets(st.sampled_from([extra, rev])))]
    return make_spec(chosen, algorithm="GRID_SEARCH")


def expected_grid_size(spec: TuningSpec) -> int:
    by = {p.name: p for p in spec.params}
    layers = by["layers"]
    per_layer = [
        (1 + 2 + 1) if n in by["units"].parent_values else 1  # units 8, 16 x 2 acts, 32
        for n in range(layers.min_value, layers.max_value + 1)
    ]
    rest = math.prod({"lr": 2, "k": 3}[name] for name in by if name in ("lr", "k"))
    return sum(per_layer) * rest


@FAST
@given(grid_specs())
def test_grid_covers_every_combination_once_with_conditionals(spec):
    points = space.grid_points(spec)
    assert len(points) == expected_grid_size(spec)
    assert points == space.grid_points(spec)  # deterministic
    study = optuna.create_study(sampler=space.make_sampler(spec))
    for point in points:
        study.enqueue_trial(point)
    seen = []
    for _ in points:
        trial = study.ask()
        flags = space.suggest(trial, spec)
        study.tell(trial, 0.0)
        seen.append(tuple(sorted(flags.items())))
        assert ("units" in flags) == (flags["layers"] in spec.params[1].parent_values)
        assert ("act" in flags) == (flags.get("units") == 16)
    assert len(set(seen)) == len(seen) == len(points)


def test_grid_of_the_conditional_example_file():
    spec = load_spec(SPECS / "good_conditional_grid.yml")
    points = space.grid_points(spec)
    assert len(points) == 2 + 3 * 2 + 3 * 3 * 2
    assert len({tuple(sorted(p.items())) for p in points}) == len(points)


def test_make_sampler_per_algorithm():
    p = ParamSpec("x", "INTEGER", 1, 3)
    assert isinstance(space.make_sampler(make_spec([p])), optuna.samplers.TPESampler)
    for algorithm in ("RANDOM_SEARCH", "GRID_SEARCH"):
        sampler = space.make_sampler(make_spec([p], algorithm=algorithm))
        assert isinstance(sampler, optuna.samplers.RandomSampler)


def test_seeded_samplers_repeat():
    spec = make_spec([ParamSpec("x", "DOUBLE", 0.0, 1.0)], seed=5)
    first = run_study(spec, space.make_sampler(spec), 12)
    assert first == run_study(spec, space.make_sampler(spec), 12)


def test_tpe_with_conditionals_gives_each_trial_only_its_flags():
    spec = dataclasses.replace(
        load_spec(SPECS / "good_conditional_grid.yml"), algorithm="TPE", max_trials=12
    )
    for flags in run_study(spec, space.make_sampler(spec), 12):
        assert ("units2" in flags) == (flags["num_layers"] in (2, 3))
        assert ("units3" in flags) == (flags["num_layers"] == 3)
        assert 10 <= flags.get("units2", 10) <= 12
        assert flags.get("units3", 0.1) in (0.1, 0.3, 0.5)


def test_enqueued_grid_points_are_inside_their_distributions():
    spec = load_spec(SPECS / "good_conditional_grid.yml")
    study = optuna.create_study(sampler=space.make_sampler(spec))
    points = space.grid_points(spec)
    for point in points:
        study.enqueue_trial(point)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Optuna warns when a fixed value is out of range
        for point in points:
            trial = study.ask()
            flags = space.suggest(trial, spec)
            assert trial.params == point
            assert space.flags_from_params(spec, point) == flags
            study.tell(trial, 0.0)


def test_partial_grid_is_a_seeded_sample_of_distinct_points():
    spec = load_spec(SPECS / "good_conditional_grid.yml")
    small = dataclasses.replace(spec, max_trials=5)
    full = space.grid_points(dataclasses.replace(spec, max_trials=10_000))
    sampled = space.grid_points(small)
    assert sorted(map(repr, sampled)) == sorted(map(repr, full))  # still every point once
    assert sampled != full and sampled == space.grid_points(small)
