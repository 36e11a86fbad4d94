"""A TuningSpec's params as an Optuna search space: suggestions, samplers and the grid.

Optuna params and flag values differ in two cases, mapped both ways here:

* ``UNIT_REVERSE_LOG_SCALE``: Optuna samples ``y`` log-uniformly in [min, max] under the
  name ``NAME__reflected`` and the flag gets ``x = min + max - y``, so values near
  maxValue get the fine resolution (e.g. momentum 0.9 .. 0.999).
* ``DISCRETE``: evenly spaced values become a stepped Int/FloatDistribution (ordered, so
  TPE can learn from neighbours); other value sets a categorical. The flag gets the value
  exactly as written in the YAML.

A conditional param is asked for only when its parent was asked for and took one of
``parent_values``; the YAML reader lists params parents first.
"""

from __future__ import annotations

import itertools
import random
import warnings
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from flagrun.errors import SpecError
from flagrun.spec import LINEAR, REVERSE_LOG, ParamSpec, TuningSpec

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution

REVERSE_SUFFIX = "__reflected"


def optuna_name(p: ParamSpec) -> str:
    """The name Optuna knows this param by."""
    return p.name + REVERSE_SUFFIX if _reversed(p) else p.name


def distribution(p: ParamSpec) -> BaseDistribution:
    """The Optuna distribution of ``optuna_name(p)``."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if p.type == "CATEGORICAL":
        return CategoricalDistribution(list(p.categorical_values))
    if p.type == "DISCRETE":
        return _discrete_distribution(p.discrete_values)
    log = p.scale != LINEAR
    low, high = p.bounds
    if p.type == "INTEGER":
        return IntDistribution(int(low), int(high), log=log)
    return FloatDistribution(float(low), float(high), log=log)


def _discrete_distribution(values: tuple[float | int, ...]) -> BaseDistribution:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    step = _even_step(values)
    if step is None:
        return CategoricalDistribution(list(values))
    low, high = values[0], values[-1]
    if isinstance(low, int) and isinstance(high, int) and all(isinstance(v, int) for v in values):
        return IntDistribution(low, high, step=int(step))
    return FloatDistribution(float(low), float(high), step=float(step))


def _even_step(values: tuple[float | int, ...]) -> Decimal | None:
    """The common difference of sorted values (exact, in decimal), or None when uneven."""
    if len(values) < 2:
        return None
    exact = [Decimal(str(v)) for v in values]
    steps = {b - a for a, b in itertools.pairwise(exact)}
    return steps.pop() if len(steps) == 1 else None


def _reversed(p: ParamSpec) -> bool:
    return p.scale == REVERSE_LOG and p.type in ("DOUBLE", "INTEGER")


def _applies(p: ParamSpec, chosen: dict[str, Any]) -> bool:
    if p.parent is None:
        return True
    return p.parent in chosen and chosen[p.parent] in p.parent_values


def _flag_value(p: ParamSpec, value: Any) -> Any:
    """Optuna's value of ``optuna_name(p)`` -> the flag's value."""
    if p.type == "CATEGORICAL":
        return str(value)
    if p.type == "DISCRETE":
        return min(p.discrete_values, key=lambda v: abs(v - value))
    if p.type == "INTEGER":
        value = int(value)
        return int(sum(p.bounds)) - value if _reversed(p) else value
    value = float(value)
    if _reversed(p):
        low, high = p.bounds
        value = min(max(low + high - value, low), high)
    return value


def _optuna_value(p: ParamSpec, value: Any) -> Any:
    """A flag's value -> Optuna's value of ``optuna_name(p)`` (inverse of ``_flag_value``)."""
    if _reversed(p):
        return sum(p.bounds) - value
    if p.type == "DISCRETE" and not isinstance(value, int):
        return float(value)
    return value


def suggest(trial: optuna.Trial, spec: TuningSpec) -> dict[str, Any]:
    """Ask the trial for every applicable param; return the flag values for the script."""
    chosen: dict[str, Any] = {}
    for p in spec.params:
        if _applies(p, chosen):
            chosen[p.name] = _flag_value(p, _ask(trial, optuna_name(p), distribution(p)))
    return chosen


def _ask(trial: optuna.Trial, name: str, dist: BaseDistribution) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    assert isinstance(dist, FloatDistribution)
    return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)


def flags_from_params(spec: TuningSpec, params: dict[str, Any]) -> dict[str, Any]:
    """Optuna ``trial.params`` -> the flag values they stand for."""
    chosen: dict[str, Any] = {}
    for p in spec.params:
        name = optuna_name(p)
        if name in params and _applies(p, chosen):
            chosen[p.name] = _flag_value(p, params[name])
    return chosen


def make_sampler(spec: TuningSpec) -> optuna.samplers.BaseSampler:
    """TPE (multivariate, constant liar, grouped when there are conditionals) or random.

    GRID_SEARCH gets a RandomSampler: the tuner enqueues every ``grid_points`` entry, which
    works with conditionals and survives resume, unlike Optuna's GridSampler. TPE's random
    start is a third of the budget so short jobs still get guided trials: a third of
    maxTrials (1 to 10 trials), and with maxRunningTime also no more than a third of the
    time (``flagrun._timed_start``).
    """
    import optuna

    if spec.algorithm != "TPE":
        return optuna.samplers.RandomSampler(seed=spec.seed)
    startup = min(10, max(1, spec.max_trials // 3))
    limit = spec.max_running_time
    conditional = any(p.parent is not None for p in spec.params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        tpe = optuna.samplers.TPESampler(
            seed=spec.seed,
            multivariate=True,
            group=conditional,
            constant_liar=True,
            n_startup_trials=startup if limit is None else 0,
        )
    if limit is None:
        return tpe
    from flagrun._timed_start import STARTUP_SHARE, TimedStart

    return TimedStart(tpe, startup, limit * STARTUP_SHARE, spec.seed)


def grid_points(spec: TuningSpec) -> list[dict[str, Any]]:
    """Every combination once, conditionals respected, as params for ``study.enqueue_trial``.

    The order is lexicographic (params in spec order, values ascending as listed) when the
    whole grid fits in ``max_trials``; otherwise it is shuffled with ``spec.seed`` (0 when
    unset) so the trials that do run are a uniform sample, as tfruns' ``sample`` does.
    """
    combos: list[dict[str, Any]] = [{}]
    for p in spec.params:
        values = _grid_values(p)
        combos = [
            {**c, p.name: v} if _applies(p, c) else c
            for c in combos
            for v in (values if _applies(p, c) else [None])
        ]
    by_name = {p.name: p for p in spec.params}
    points = [
        {optuna_name(by_name[n]): _optuna_value(by_name[n], v) for n, v in c.items()}
        for c in combos
    ]
    if spec.max_trials < len(points):
        random.Random(spec.seed or 0).shuffle(points)
    return points


def _grid_values(p: ParamSpec) -> list[Any]:
    if p.type == "CATEGORICAL":
        return list(p.categorical_values)
    if p.type == "DISCRETE":
        return list(p.discrete_values)
    if p.type == "INTEGER":
        low, high = p.bounds
        return list(range(int(low), int(high) + 1))
    raise SpecError(
        f"param {p.name} is DOUBLE, which cannot be searched on a grid",
        hint="use type DISCRETE with discreteValues, or algorithm RANDOM_SEARCH",
    )
