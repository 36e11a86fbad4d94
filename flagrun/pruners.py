"""Early stopping: one table of the pruners a tuning YAML may name, for checking and building.

``earlyStopping: {pruner: NAME, ...settings}`` names a row of ``PRUNERS``; the other keys
are keyword arguments of that row's Optuna class, on top of the row's defaults. The same
row serves both sides, so what the YAML check accepts is exactly what ``make_pruner``
builds: ``check_settings`` constructs the class with the given settings and turns Optuna's
TypeError/ValueError into a ``Problem`` naming the setting, and ``make_pruner`` constructs
it again for the job.

percentile (keep the top 25% at each step) is the default by measurement: the only pruner
to save about 2x compute at a best value within noise (``scripts/bench_pruning.py``).

Optuna is imported inside the functions only: this module is imported by the YAML reader.
"""

from __future__ import annotations

import inspect
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
    "PRUNERS",
    "STARTUP",
    "Problem",
    "Pruner",
    "check_settings",
    "make_pruner",
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

    def defaults(self, max_parallel_trials: int) -> dict[str, Any]:
        """The settings flagrun adds, for a job with that many slots."""
        startup = max(5, max_parallel_trials)
        return {k: startup if v is STARTUP else v for k, v in self.settings.items()}

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
    "none": Pruner("NopPruner"),
}
DEFAULT_PRUNER = "percentile"


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
    name = str(given).lower()
    row = PRUNERS.get(name)
    if row is None:
        near = closest(name, PRUNERS)
        return Problem(
            "pruner",
            f"{given!r} is not one of {', '.join(PRUNERS)}",
            f"did you mean {near}?" if near else None,
        )
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


def make_pruner(spec: TuningSpec) -> optuna.pruners.BasePruner:
    """The pruner for the spec's early stopping (a NopPruner when it is off)."""
    import optuna

    if not spec.early_stopping:
        return optuna.pruners.NopPruner()
    settings = dict(spec.early_stopping_config or {})
    name = str(settings.pop("pruner", DEFAULT_PRUNER)).lower()
    row = PRUNERS.get(name)
    if row is None:
        raise SpecError(
            f"earlyStopping.pruner {name!r} is unknown",
            hint="use one of " + ", ".join(PRUNERS),
        )
    return _build(row, settings, spec.max_parallel_trials)


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
