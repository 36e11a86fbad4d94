"""The internal tuning spec: what a job tunes, as frozen dataclasses, whatever file it came from.

``TuningSpec`` (goal, metric, budget, algorithm, early stopping, flagrun's extensions) and its
``ParamSpec`` params are what the tuner, the search space (``flagrun.space``) and the job
records work with; ``to_dict``/``from_dict`` keep them in job.json. The tuning files that
produce them are read by ``flagrun.formats`` (``load_spec`` delegates there); tfruns-style
``--grid name=v1,v2`` values become a spec through ``grid_spec``; ``check_against_flags``
checks a spec against the flags a script declares.

This module imports neither yaml nor optuna: the records module that ``flagrun trials``
loads imports it.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from os import PathLike
from pathlib import Path
from typing import Any, NoReturn

from flagrun.errors import FlagError, SpecError, UsageError
from flagrun.flags import Flag, coerce

__all__ = [
    "AGGREGATIONS",
    "ALGORITHMS",
    "DEFAULT_METRIC_TAG",
    "GOALS",
    "LINEAR",
    "LOG",
    "MAX_GRID_INTEGERS",
    "REVERSE_LOG",
    "SCALES",
    "TYPES",
    "ParamSpec",
    "TuningSpec",
    "as_number",
    "check_against_flags",
    "closest",
    "grid_spec",
    "load_spec",
]

GOALS = ("MAXIMIZE", "MINIMIZE")
TYPES = ("DOUBLE", "INTEGER", "CATEGORICAL", "DISCRETE")
LINEAR, LOG, REVERSE_LOG = "UNIT_LINEAR_SCALE", "UNIT_LOG_SCALE", "UNIT_REVERSE_LOG_SCALE"
SCALES = (LINEAR, LOG, REVERSE_LOG)
# Cloud ML's algorithm names -> the sampler flagrun uses.
ALGORITHMS = {
    "ALGORITHM_UNSPECIFIED": "TPE",
    "GRID_SEARCH": "GRID_SEARCH",
    "RANDOM_SEARCH": "RANDOM_SEARCH",
}
AGGREGATIONS = ("last", "max", "min")
# The metric tag both services assume when a file names none (cloudml-hypertune's default).
DEFAULT_METRIC_TAG = "training/hptuning/metric"
MAX_GRID_INTEGERS = 10_000


# --------------------------------------------------------------------------- the result


@dataclass(frozen=True)
class ParamSpec:
    """One hyperparameter: the flag it sets, its type and the values it may take."""

    name: str
    type: str
    min_value: float | int | None = None
    max_value: float | int | None = None
    scale: str = LINEAR
    categorical_values: tuple[str, ...] = ()
    discrete_values: tuple[float | int, ...] = ()
    parent: str | None = None
    parent_values: tuple[Any, ...] = ()
    line: int = 0

    @property
    def bounds(self) -> tuple[float, float]:
        """``(minValue, maxValue)`` of a DOUBLE or INTEGER param (ints stay ints)."""
        if self.min_value is None or self.max_value is None:
            raise ValueError(f"param {self.name} of type {self.type} has no bounds")
        return self.min_value, self.max_value

    def to_dict(self) -> dict:
        """JSON-able form."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        for key in ("categorical_values", "discrete_values", "parent_values"):
            d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ParamSpec:
        """Inverse of ``to_dict``."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in d.items() if k in known}
        for key in ("categorical_values", "discrete_values", "parent_values"):
            values[key] = tuple(values.get(key, ()))
        return cls(**values)


@dataclass(frozen=True)
class TuningSpec:
    """A validated tuning job: goal, metric, budget, algorithm and search space."""

    goal: str
    metric_tag: str
    max_trials: int = 1
    max_parallel_trials: int = 1
    max_failed_trials: int | None = None
    early_stopping: bool = False
    early_stopping_config: dict = field(default_factory=dict)
    resume_job_id: str | None = None
    algorithm: str = "TPE"
    params: tuple[ParamSpec, ...] = ()
    script: str | None = None
    python_module: str | None = None
    args: tuple[str, ...] = ()  # Cloud ML's trainingInput.args: given to every trial first
    job_dir: str | None = None  # Cloud ML's trainingInput.jobDir: passed as --job-dir
    metric_aggregation: str = "last"
    trial_timeout: float | None = None
    max_running_time: float | None = None  # seconds the job may run (Cloud ML's scheduling)
    seed: int | None = None
    ignored_fields: tuple[str, ...] = ()
    path: Path | None = None

    @property
    def maximize(self) -> bool:
        """Whether the goal is to maximize the metric."""
        return self.goal == "MAXIMIZE"

    def to_dict(self) -> dict:
        """JSON-able form, stored in job.json; ``from_dict`` restores it on resume."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["params"] = [p.to_dict() for p in self.params]
        d["ignored_fields"] = list(self.ignored_fields)
        d["args"] = list(self.args)
        d["early_stopping_config"] = dict(self.early_stopping_config)
        d["path"] = str(self.path) if self.path is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TuningSpec:
        """Inverse of ``to_dict``."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in d.items() if k in known}
        values["params"] = tuple(ParamSpec.from_dict(p) for p in d.get("params", ()))
        values["ignored_fields"] = tuple(d.get("ignored_fields", ()))
        values["args"] = tuple(d.get("args", ()))
        values["early_stopping_config"] = dict(d.get("early_stopping_config") or {})
        if values.get("path") is not None:
            values["path"] = Path(values["path"])
        return cls(**values)


# --------------------------------------------------------------------------- values and names


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The choice most like ``name`` (for "did you mean ...?" hints), or None."""
    found = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def as_number(value: Any) -> int | float | None:
    """An int or float, also from a numeric string such as '1e-3'; None when not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        if not math.isfinite(number):
            return None
        return int(number) if _is_int(value) else number
    return None


def _is_int(text: str) -> bool:
    return re.fullmatch(r"\s*[-+]?\d+\s*", text) is not None


# --------------------------------------------------------------------------- public API


def load_spec(path: str | PathLike[str]) -> TuningSpec:
    """Read and validate a tuning file; raise SpecError naming file:line and field."""
    from flagrun.formats import read_spec

    return read_spec(Path(path))


def check_against_flags(spec: TuningSpec, declared: Mapping[str, Flag]) -> None:
    """Check every param against the trainer's declared arguments (a mapping name -> Flag,
    usually ``introspect.DeclaredFlags``: its ``find`` matches both spellings of a name
    where the trainer's parser does).

    Unknown names are only reported when ``declared.complete`` is true (every
    declaration's name was a literal).
    """
    complete = getattr(declared, "complete", True)
    script = getattr(declared, "script", None) or spec.script or spec.python_module
    script = script or "the training script"
    find = getattr(declared, "find", declared.get)
    for p in spec.params:
        flag = find(p.name)
        if flag is None:
            if complete:
                _unknown_flag(spec, p, declared, script)
            continue
        problem = _type_problem(p, getattr(flag, "type", "string"))
        problem = problem or _value_problem(p, flag.name, declared)
        if problem:
            what, hint = problem
            raise SpecError(f"{_where(spec, p)} {what} of {script}", hint=hint)


def _where(spec: TuningSpec, p: ParamSpec) -> str:
    if spec.path is None:
        return f"--grid {p.name}:"
    return f"{spec.path}:{p.line}: params ({p.name})"


def _unknown_flag(
    spec: TuningSpec, p: ParamSpec, declared: Mapping[str, Flag], script: str
) -> NoReturn:
    names = sorted(declared)
    listing = ", ".join(names) if names else "none"
    other = getattr(declared, "other_spelling", lambda name: None)(p.name)
    parser = getattr(declared, "parser", "flagrun flags()")
    if other is not None:
        raise SpecError(
            f"{_where(spec, p)} {p.name!r} is spelled --{other} by {script}, whose {parser} "
            "takes only that spelling",
            hint=f"write the name as the trainer does: {other}",
        )
    near = closest(p.name, names)
    hint = f"did you mean {near}? " if near else ""
    if parser == "flagrun flags()":
        suggestion = p.name.replace("-", "_")
        hint += f"or declare it in the script: flags(flag_...({suggestion!r}, DEFAULT))"
    else:
        hint += f"or add the argument --{p.name} to its {parser} parser"
    raise SpecError(
        f"{_where(spec, p)} {p.name!r} is not an argument declared by {script} "
        f"(declared: {listing})",
        hint=hint,
    )


def _value_problem(p: ParamSpec, name: str, declared: Mapping[str, Flag]) -> tuple[str, str] | None:
    """(what is wrong, hint) when the argument takes no value or not these values."""
    if name in getattr(declared, "switches", ()):
        return (
            f"sets --{name}, which takes no value (a switch such as store_true)",
            f"make --{name} take a value (e.g. type=int), or drop the param",
        )
    allowed = getattr(declared, "choices", {}).get(name)
    if not allowed:
        return None
    values = p.categorical_values or tuple(_format(v) for v in p.discrete_values)
    if p.type in ("DOUBLE", "INTEGER") or not values:
        return None  # a range: the trainer's own check decides each value
    outside = [v for v in values if v not in allowed]
    if not outside:
        return None
    return (
        f"lists {', '.join(outside)}, not among the choices ({', '.join(allowed)})",
        "list only values the trainer's argument accepts",
    )


def _format(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _type_problem(p: ParamSpec, flag_type: str) -> tuple[str, str] | None:
    """(what is wrong, hint) when a param of this type cannot set a flag of that type."""
    if p.type == "CATEGORICAL":
        if all(_fits(flag_type, v) for v in p.categorical_values):
            return None
        return (
            f"is CATEGORICAL with values that are not {flag_type} for the {flag_type} flag",
            "list values of the flag's type, or declare the flag with flag_string",
        )
    if flag_type == "boolean":
        return (
            f"is {p.type} but sets the boolean flag",
            "use type: CATEGORICAL with categoricalValues: [true, false]",
        )
    if flag_type != "integer":
        return None
    if p.type == "DOUBLE":
        return (
            "is DOUBLE but sets the integer flag",
            "use type: INTEGER, or declare the flag with flag_numeric",
        )
    if p.type == "DISCRETE" and any(float(v) != int(v) for v in p.discrete_values):
        return (
            "has fractional discreteValues for the integer flag",
            "list whole numbers, or declare the flag with flag_numeric",
        )
    return None


def _fits(flag_type: str, text: str) -> bool:
    """Whether the script's flag parser accepts ``text`` for a flag of this type."""
    try:
        coerce(Flag("x", flag_type, None), text)
    except FlagError:
        return False
    return True


def grid_spec(
    values: dict[str, list[str]],
    declared: Mapping[str, Flag],
    *,
    sample: float | None = None,
    metric_tag: str | None = None,
    goal: str = "MAXIMIZE",
) -> TuningSpec:
    """A GRID_SEARCH spec from tfruns-style ``--grid name=v1,v2`` values, typed by the flags.

    ``sample`` (0 < sample <= 1) runs ``ceil(sample * n)`` of the n combinations.
    Without ``metric_tag`` the metric is val_accuracy (MAXIMIZE) or val_loss (MINIMIZE).
    """
    if not values:
        raise UsageError("--grid needs at least one NAME=V1,V2", hint="e.g. --grid dropout=0.2,0.4")
    goal = goal.upper()
    if goal not in GOALS:
        raise UsageError(f"goal {goal!r} is not one of {', '.join(GOALS)}")
    params = tuple(_grid_param(name, texts, declared) for name, texts in values.items())
    total = math.prod(len(p.categorical_values or p.discrete_values) for p in params)
    max_trials = total
    if sample is not None:
        if not 0 < sample <= 1:
            raise UsageError(f"--sample {sample} is not in (0, 1]", hint="e.g. --sample 0.3")
        max_trials = max(1, math.ceil(sample * total))
    default_tag = "val_accuracy" if goal == "MAXIMIZE" else "val_loss"
    return TuningSpec(
        goal=goal,
        metric_tag=metric_tag or default_tag,
        max_trials=max_trials,
        algorithm="GRID_SEARCH",
        params=params,
    )


def _grid_param(name: str, texts: list[str], declared: Mapping[str, Flag]) -> ParamSpec:
    flag = declared.get(name)
    if flag is None and getattr(declared, "complete", True):
        near = closest(name, sorted(declared))
        raise UsageError(
            f"--grid {name}: the script declares no flag {name!r}",
            hint=f"did you mean {near}?"
            if near
            else "declared flags: " + (", ".join(sorted(declared)) or "none"),
        )
    texts = [t.strip() for t in texts if t.strip()]
    if not texts:
        raise UsageError(f"--grid {name} lists no values", hint=f"e.g. --grid {name}=V1,V2")
    flag_type = flag.type if flag is not None else _guess_type(texts)
    typed = [_grid_value(name, flag_type, t) for t in texts]
    if len(set(typed)) != len(typed):
        raise UsageError(f"--grid {name} lists a value twice", hint="list each value once")
    if flag_type in ("integer", "numeric"):
        return ParamSpec(name, "DISCRETE", discrete_values=tuple(sorted(typed)))
    return ParamSpec(name, "CATEGORICAL", categorical_values=tuple(typed))


def _guess_type(texts: list[str]) -> str:
    if all(_is_int(t) for t in texts):
        return "integer"
    if all(as_number(t) is not None for t in texts):
        return "numeric"
    return "string"


def _grid_value(name: str, flag_type: str, text: str) -> Any:
    """A --grid value typed like its flag; booleans stay text (true/false) for the argv."""
    try:
        value = coerce(Flag(name, flag_type, None), text)
    except FlagError as exc:
        what = exc.message.removeprefix(f"flag {name}: ")
        raise UsageError(f"--grid {name}: {what}", hint=exc.hint) from None
    if flag_type == "boolean":
        return "true" if value else "false"
    return value
