"""Early stopping: one table of the pruners a tuning YAML may name, for checking and building.

``earlyStopping: {pruner: NAME, ...settings}`` names a row of ``PRUNERS``; the other keys
are keyword arguments of that row's Optuna class, on top of the row's defaults. The same
row serves both sides, so what the YAML check accepts is exactly what ``make_pruner``
builds: ``check_settings`` constructs the class with the given settings and turns Optuna's
TypeError/ValueError into a ``Problem`` naming the setting, and ``make_pruner`` constructs
it again for the job.

median (keep the top half at each step) is the default by measurement: at equal compute it
finds better models than percentile (keep the top 25%), the previous default, which saves
more compute per trial but, judging against the complete trials only (the survivors of
earlier cuts), cuts most trials that are not near the best at every epoch
(``scripts/bench_compute.py``; ``scripts/bench_pruning.py`` for compute per trial).

Four more keys are flagrun's own, not the class's (``FLAGRUN_SETTINGS``): ``resource``
says what trials are compared at, ``steps`` (their step numbers, epochs as a rule: the
default) or ``time`` (the seconds since each trial started, in ``timeStep`` units, so a
slow configuration is judged against what fast ones had reached in the same time, as
Ray Tune's ASHA ``time_attr`` and Vertex's ``use_elapsed_duration`` do). With ``time``
the median and percentile pruners hold each finished trial's curve at its last value
(``flagrun._time_aligned``): a trial that was done after a minute had reached that value at every
later time too. ``stopStalled: true`` has the median and percentile pruners also stop,
from the start, a trial that learned nothing since its first step and is far behind
(``flagrun._stalled``): diverged trials, which their start-up would let run. A stopped
trial stays in the pruner's bar as though it had trained to the end at its last value
(before, with it gone, the median rose and cut good trials: the race lost with it on).
Off by default until the race says otherwise (README).
``compareWith: reached`` has the median and percentile pruners judge a trial against every
trial that reached its step, pruned and running ones included, not the complete trials
only, and count their start-up per step (``flagrun._reached``); it needs no timed start-up.
``compareWith``, given to a pruner without a start-up (successive halving...), fails the
check; ``stopStalled`` serves every pruner but ``none``: successive halving lets the first
trial at a rung through alone, a diverged one too (in the 27-epoch races under asha, a
diverged first trial trained all its epochs at chance: 4% and 12% of the job's compute).

Optuna is imported inside the functions only: this module is imported by the YAML reader.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from flagrun.errors import SpecError
from flagrun.spec import closest

if TYPE_CHECKING:
    import optuna

    from flagrun.spec import TuningSpec

__all__ = [
    "DEFAULT_PRUNER",
    "FLAGRUN_SETTINGS",
    "PRUNERS",
    "STARTUP",
    "Problem",
    "Pruner",
    "Resource",
    "check_settings",
    "make_pruner",
    "pauses",
    "resource_of",
    "setting",
]


class _Startup:
    """Stands for max(5, maxParallelTrials) in a default: trials that finish before pruning."""

    def __repr__(self) -> str:
        return "max(5, maxParallelTrials)"


STARTUP: Any = _Startup()


@dataclass(frozen=True)
class Pruner:
    """A pruner a tuning YAML may name: its Optuna class and the settings flagrun adds."""

    class_name: str  # in optuna.pruners
    settings: Mapping[str, Any] = field(default_factory=dict)  # defaults over Optuna's
    pauses: bool = False  # a stopped trial with a checkpoint waits for a promotion

    def defaults(self, max_parallel_trials: int) -> dict[str, Any]:
        """The settings flagrun adds, for a job with that many slots."""
        startup = max(5, max_parallel_trials)
        return {k: startup if v is STARTUP else v for k, v in self.settings.items()}

    @property
    def has_start_up(self) -> bool:
        """Whether it waits for start-up trials (median, percentile): flagrun's
        ``compareWith`` applies to those only."""
        return "n_startup_trials" in self.settings

    def optuna_class(self) -> type[optuna.pruners.BasePruner]:
        """The Optuna class (imports optuna)."""
        import optuna

        cls: type[optuna.pruners.BasePruner] = getattr(optuna.pruners, self.class_name)
        return cls

    def keywords(self) -> dict[str, str]:
        """The settings the class accepts and their types, read from its ``__init__`` signature."""
        parameters = inspect.signature(self.optuna_class()).parameters.values()
        plain = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return {p.name: _type_name(p.annotation) for p in parameters if p.kind in plain}


# The order is the one error messages list them in.
PRUNERS: dict[str, Pruner] = {
    "median": Pruner("MedianPruner", {"n_startup_trials": STARTUP, "n_warmup_steps": 1}),
    "percentile": Pruner(
        "PercentilePruner",
        {"percentile": 25.0, "n_startup_trials": STARTUP, "n_warmup_steps": 1},
    ),
    "successive_halving": Pruner("SuccessiveHalvingPruner"),  # Optuna's defaults
    "hyperband": Pruner("HyperbandPruner"),
    # successive halving that pauses and promotes trials with checkpoints (tuner.promotion)
    "asha": Pruner("SuccessiveHalvingPruner", pauses=True),
    "none": Pruner("NopPruner"),
}
DEFAULT_PRUNER = "median"


@dataclass(frozen=True)
class Resource:
    """What the pruner compares trials at: their steps, or their elapsed time."""

    kind: str = "steps"  # one of RESOURCES
    time_step: float = 1.0  # seconds per step, with kind "time"

    @property
    def is_time(self) -> bool:
        return self.kind == "time"

    def step_of(self, step: int, elapsed: float) -> int:
        """The step a point is reported at: its own, or its time since the trial started
        in whole ``time_step`` units, rounded up (the value reached by the end of that step)."""
        if not self.is_time:
            return step
        return max(0, math.ceil(elapsed / self.time_step))


RESOURCES = ("steps", "time")
# earlyStopping keys that are flagrun's own, with their defaults; the rest go to the class.
FLAGRUN_SETTINGS: dict[str, Any] = {
    "resource": "steps",
    "timeStep": Resource.time_step,
    "stopStalled": False,
    "compareWith": "complete",
}
COMPARE_WITH = ("complete", "reached")


class Problem(NamedTuple):
    """What is wrong with an ``earlyStopping`` mapping: the key, what and a hint."""

    key: str
    what: str
    hint: str | None


def check_settings(config: Mapping[str, Any], max_parallel_trials: int = 1) -> Problem | None:
    """The first problem of an ``earlyStopping`` mapping (``pruner`` plus settings), or None.

    Builds the pruner exactly as ``make_pruner`` will (imports optuna).
    """
    settings = dict(config)
    given = settings.pop("pruner", DEFAULT_PRUNER)
    own = {key: settings.pop(key) for key in FLAGRUN_SETTINGS if key in settings}
    problem = _check_own(own)
    if problem is not None:
        return problem
    name = str(given).lower()
    row = PRUNERS.get(name)
    if row is None:
        near = closest(name, PRUNERS)
        return Problem(
            "pruner",
            f"{given!r} is not one of {', '.join(PRUNERS)}",
            f"did you mean {near}?" if near else None,
        )
    if not row.has_start_up:
        problem = _check_own_apply(own, name)
        if problem is not None:
            return problem
    accepted = row.keywords()
    for key in settings:
        if key not in accepted:
            near = closest(key, accepted)
            takes = f"it takes {', '.join(accepted)}" if accepted else "it takes no settings"
            return Problem(
                key,
                f"is not a setting of the {name} pruner",
                f"did you mean {near}?" if near else takes,
            )
    try:
        _build(row, settings, max_parallel_trials)
    except (TypeError, ValueError):
        pass
    else:
        return None
    # Which setting? The first one that fails on its own, over the row's defaults.
    for key, value in settings.items():
        try:
            _build(row, {key: value}, max_parallel_trials)
        except ValueError as exc:
            return Problem(key, f"{value!r} is not accepted by the {name} pruner", str(exc))
        except TypeError:
            return Problem(
                key,
                f"{value!r} is not accepted by the {name} pruner",
                f"{key} is {accepted[key]}" if accepted[key] else None,
            )
    return Problem(
        next(iter(settings), "pruner"),
        f"the settings together are not accepted by the {name} pruner",
        "see the Optuna documentation of " + row.class_name,
    )


# flagrun's settings (off by default) and the pruners they apply to, for error messages
_APPLIES_TO = {
    "compareWith": "the median and percentile pruners",
    "stopStalled": "every pruner but none",
}


def _check_own_apply(own: Mapping[str, Any], name: str) -> Problem | None:
    """The problem of a setting of flagrun's given to a pruner it does not apply to
    (``name``: a pruner without a start-up)."""
    keys = ["compareWith", "stopStalled"] if name == "none" else ["compareWith"]
    for key in keys:
        off = FLAGRUN_SETTINGS[key]
        if own.get(key, off) != off:
            return Problem(
                key,
                f"applies to {_APPLIES_TO[key]}, not {name}",
                f"drop {key}, or use pruner: median",
            )
    return None


def _check_own(own: Mapping[str, Any]) -> Problem | None:
    """The problem of flagrun's own keys (``FLAGRUN_SETTINGS``), or None."""
    kind = own.get("resource", FLAGRUN_SETTINGS["resource"])
    if kind not in RESOURCES:
        near = closest(str(kind), RESOURCES)
        return Problem(
            "resource",
            f"{kind!r} is not one of {', '.join(RESOURCES)}",
            f"did you mean {near}?"
            if near
            else "steps compares trials at equal steps, time at equal seconds since they started",
        )
    step = own.get("timeStep", FLAGRUN_SETTINGS["timeStep"])
    if isinstance(step, bool) or not isinstance(step, (int, float)) or not step > 0:
        hint = "write timeStep: 1.0 (the seconds one step of elapsed time lasts)"
        return Problem("timeStep", f"{step!r} is not a number of seconds above 0", hint)
    compare_with = own.get("compareWith", FLAGRUN_SETTINGS["compareWith"])
    if compare_with not in COMPARE_WITH:
        near = closest(str(compare_with), COMPARE_WITH)
        hint = "complete judges against the complete trials, reached against every trial"
        hint += " that reached the step"
        return Problem(
            "compareWith",
            f"{compare_with!r} is not one of {', '.join(COMPARE_WITH)}",
            f"did you mean {near}?" if near else hint,
        )
    stop_stalled = own.get("stopStalled", FLAGRUN_SETTINGS["stopStalled"])
    if not isinstance(stop_stalled, bool):
        hint = "write stopStalled: true or false"
        return Problem("stopStalled", f"{stop_stalled!r} is not true or false", hint)
    return None


def resource_of(spec: TuningSpec) -> Resource:
    """What the spec's early stopping compares trials at (steps when it says nothing)."""
    given = {**FLAGRUN_SETTINGS, **(spec.early_stopping_config or {})}
    return Resource(str(given["resource"]), float(given["timeStep"]))


def pauses(spec: TuningSpec) -> bool:
    """Whether the spec's pruner pauses stopped trials for a later promotion."""
    if not spec.early_stopping:
        return False
    row = PRUNERS.get(str((spec.early_stopping_config or {}).get("pruner", DEFAULT_PRUNER)))
    return row is not None and row.pauses


def setting(spec: TuningSpec, key: str) -> Any:
    """A setting of the spec's pruner as built: given, else flagrun's default, else Optuna's."""
    config = dict(spec.early_stopping_config or {})
    row = PRUNERS[str(config.pop("pruner", DEFAULT_PRUNER))]
    if key in config:
        return config[key]
    defaults = row.defaults(spec.max_parallel_trials)
    if key in defaults:
        return defaults[key]
    return inspect.signature(row.optuna_class()).parameters[key].default


def make_pruner(spec: TuningSpec) -> optuna.pruners.BasePruner:
    """The pruner for the spec's early stopping (a NopPruner when it is off)."""
    import optuna

    if not spec.early_stopping:
        return optuna.pruners.NopPruner()
    settings = dict(spec.early_stopping_config or {})
    own = {key: settings.pop(key, default) for key, default in FLAGRUN_SETTINGS.items()}
    name = str(settings.pop("pruner", DEFAULT_PRUNER)).lower()
    row = PRUNERS.get(name)
    if row is None:
        raise SpecError(
            f"earlyStopping.pruner {name!r} is unknown",
            hint="use one of " + ", ".join(PRUNERS),
        )
    pruner = _build(row, settings, spec.max_parallel_trials)
    if row.has_start_up and own["compareWith"] == "reached":
        from flagrun._reached import ReachedPeers

        # Its start-up counts the trials that reached each step: no timed end needed.
        pruner = ReachedPeers(pruner)
    elif row.has_start_up:
        pruner = _against_complete(spec, row, settings, pruner)
    if not own["stopStalled"]:
        return pruner
    from flagrun._stalled import StopStalled

    # Only the pruners that judge against complete trials hold a stalled one in their bar.
    return StopStalled(pruner, hold=row.has_start_up)


def _against_complete(
    spec: TuningSpec,
    row: Pruner,
    settings: Mapping[str, Any],
    built: optuna.pruners.BasePruner,
) -> optuna.pruners.BasePruner:
    """``built`` judging against the complete trials: with a time limit its start-up also
    ends after a share of it (``flagrun._timed_start``), unless n_startup_trials is given."""
    pruner = _aligned(spec, built)
    if spec.max_running_time is None or "n_startup_trials" in settings:
        return pruner
    from flagrun._timed_start import STARTUP_SHARE, TimedStartPruner

    after = _build(row, {**settings, "n_startup_trials": 1}, spec.max_parallel_trials)
    seconds = spec.max_running_time * STARTUP_SHARE
    return TimedStartPruner(pruner, _aligned(spec, after), seconds)


def _aligned(spec: TuningSpec, pruner: optuna.pruners.BasePruner) -> optuna.pruners.BasePruner:
    """The pruner, its finished trials' curves held over time with ``resource: time``."""
    import optuna

    if resource_of(spec).is_time and isinstance(pruner, optuna.pruners.PercentilePruner):
        from flagrun._time_aligned import TimeAligned

        return TimeAligned(pruner)
    return pruner


def _build(
    row: Pruner, settings: Mapping[str, Any], max_parallel_trials: int
) -> optuna.pruners.BasePruner:
    return row.optuna_class()(**{**row.defaults(max_parallel_trials), **settings})


def _type_name(annotation: Any) -> str:
    """'int', 'str | int', ... from a signature annotation ('' when there is none)."""
    if annotation is inspect.Parameter.empty:
        return ""
    if isinstance(annotation, str):
        return annotation
    return getattr(annotation, "__name__", str(annotation))
