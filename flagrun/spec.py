"""The tuning YAML -> a frozen ``TuningSpec``, every mistake reported before anything runs.

Three shapes of the same file are read:

* Cloud ML Engine's job config, verbatim::

      trainingInput:
        scaleTier: CUSTOM            # cloud-only: kept in spec.ignored_fields
        hyperparameters:
          goal: MAXIMIZE
          hyperparameterMetricTag: acc
          params: [...]

* ``hyperparameters:`` at the top level, and
* the bare block: ``goal``, ``hyperparameterMetricTag``, ``params`` ... at the top level.

The ``hyperparameters`` fields are Cloud ML's (``goal``, ``hyperparameterMetricTag``,
``maxTrials`` default 1, ``maxParallelTrials`` default 1, ``maxFailedTrials``,
``enableTrialEarlyStopping``, ``resumePreviousJobId``, ``algorithm``, ``params``). A param has
``parameterName``, ``type`` (DOUBLE, INTEGER, CATEGORICAL, DISCRETE), ``minValue``/``maxValue``,
``scaleType``, ``categoricalValues`` or ``discreteValues``. Conditional params follow Vertex AI:
either a param with ``parentParameter: NAME`` plus one of ``parentCategoricalValues``,
``parentDiscreteValues``, ``parentIntValues``, or Vertex's nested form under the parent::

      conditionalParameterSpecs:
        - parameterSpec: {parameterName: units2, type: INTEGER, minValue: 16, maxValue: 256}
          parentIntValues: {values: [2, 3]}

flagrun-only extensions, accepted in the hyperparameters block or at the top level:
``script`` (training script, relative to the YAML), ``metricAggregation`` (last | max | min,
default last), ``trialTimeout`` (seconds), ``seed`` (int) and ``earlyStopping``
(``{pruner: median | percentile | successive_halving | hyperband | none, ...settings}``,
percentile when no pruner is named;
giving it turns early stopping on unless ``enableTrialEarlyStopping: false`` says otherwise).
Numbers PyYAML reads as strings (``1e-3``) are accepted where a number is expected.

The file is read with a safe loader only; line numbers are kept for every field.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NoReturn

from flagrun.errors import FlagError, SpecError, UsageError
from flagrun.flags import Flag, coerce
from flagrun.formats._yaml import Map as _Map
from flagrun.formats._yaml import Seq as _Seq
from flagrun.formats._yaml import plain as _plain
from flagrun.formats._yaml import read_yaml as _read_yaml
from flagrun.pruners import DEFAULT_PRUNER, PRUNERS

GOALS = ("MAXIMIZE", "MINIMIZE")
TYPES = ("DOUBLE", "INTEGER", "CATEGORICAL", "DISCRETE")
LINEAR, LOG, REVERSE_LOG = "UNIT_LINEAR_SCALE", "UNIT_LOG_SCALE", "UNIT_REVERSE_LOG_SCALE"
SCALES = (LINEAR, LOG, REVERSE_LOG)
ALGORITHMS = {
    "ALGORITHM_UNSPECIFIED": "TPE",
    "GRID_SEARCH": "GRID_SEARCH",
    "RANDOM_SEARCH": "RANDOM_SEARCH",
}
AGGREGATIONS = ("last", "max", "min")
MAX_GRID_INTEGERS = 10_000

HYPERPARAMETER_FIELDS = (
    "goal",
    "hyperparameterMetricTag",
    "maxTrials",
    "maxParallelTrials",
    "maxFailedTrials",
    "enableTrialEarlyStopping",
    "resumePreviousJobId",
    "algorithm",
    "params",
)
# Fields read wherever they appear (top level, trainingInput or hyperparameters).
EXTENSION_FIELDS = (
    "script",
    "metricAggregation",
    "trialTimeout",
    "seed",
    "earlyStopping",
    "pythonModule",
)
# Cloud ML Engine's Job and TrainingInput fields that mean nothing on this machine.
CLOUD_FIELDS = (
    "jobId",
    "labels",
    "etag",
    "trainingOutput",
    "scaleTier",
    "masterType",
    "masterConfig",
    "workerType",
    "workerConfig",
    "workerCount",
    "parameterServerType",
    "parameterServerConfig",
    "parameterServerCount",
    "evaluatorType",
    "evaluatorConfig",
    "evaluatorCount",
    "region",
    "runtimeVersion",
    "pythonVersion",
    "packageUris",
    "args",
    "jobDir",
    "encryptionConfig",
    "scheduling",
    "network",
    "serviceAccount",
    "useChiefInTfConfig",
    "enableWebAccess",
)
PARENT_VALUE_FIELDS = {
    "parentCategoricalValues": "CATEGORICAL",
    "parentDiscreteValues": "DISCRETE",
    "parentIntValues": "INTEGER",
}
PARAM_FIELDS = (
    "parameterName",
    "type",
    "minValue",
    "maxValue",
    "scaleType",
    "categoricalValues",
    "discreteValues",
    "parentParameter",
    *PARENT_VALUE_FIELDS,
    "conditionalParameterSpecs",
)
CONDITIONAL_FIELDS = ("parameterSpec", *PARENT_VALUE_FIELDS)
_NAME = re.compile(r"^[A-Za-z_][\w.-]*$")


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
    parent_values: tuple = ()
    line: int = 0

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
    metric_aggregation: str = "last"
    trial_timeout: float | None = None
    seed: int | None = None
    ignored_fields: tuple[str, ...] = ()
    path: Path | None = None

    def to_dict(self) -> dict:
        """JSON-able form, stored in job.json; ``from_dict`` restores it on resume."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["params"] = [p.to_dict() for p in self.params]
        d["ignored_fields"] = list(self.ignored_fields)
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
        values["early_stopping_config"] = dict(d.get("early_stopping_config") or {})
        if values.get("path") is not None:
            values["path"] = Path(values["path"])
        return cls(**values)


def _closest(name: str, choices) -> str | None:
    found = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def _number(value: Any) -> int | float | None:
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
        return int(number) if re.fullmatch(r"\s*[-+]?\d+\s*", value) else number
    return None


# --------------------------------------------------------------------------- the parser


@dataclass
class _Raw:
    """A param as read, before the whole list is cross-checked."""

    spec: ParamSpec
    label: str  # e.g. "params[1] (dropout2)"
    parent_field: str | None = None
    parent_line: int = 0


class _Parser:
    """Reads one YAML document into a TuningSpec; knows the file for error messages."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ignored: list[str] = []
        self.ext: dict[str, tuple[Any, int, str]] = {}
        self.where: dict[str, tuple[str, int]] = {}  # param name -> (label, line of its type)

    def fail(self, line: int, where: str, what: str, hint: str | None = None) -> NoReturn:
        raise SpecError(f"{self.path}:{line}: {where} {what}".replace("  ", " "), hint=hint)

    # -- document shape --------------------------------------------------------------------

    def parse(self, doc: Any) -> TuningSpec:
        hp = self._hyperparameters_block(doc)
        params = self._params(hp)
        return self._spec(hp, params)

    def _hyperparameters_block(self, doc: Any) -> _Map:
        if doc is None:
            self.fail(
                1,
                "the file",
                "is empty",
                hint="a tuning file needs at least goal, "
                "hyperparameterMetricTag and params (see the Cloud ML example)",
            )
        if not isinstance(doc, _Map):
            kind = "a list" if isinstance(doc, list) else f"the value {doc!r}"
            self.fail(
                getattr(doc, "line", 1),
                "the file",
                f"holds {kind}, not a mapping of fields",
                hint="start the file with trainingInput:, hyperparameters: or goal:",
            )
        if "trainingInput" in doc:
            self._scan(doc, "", own=("trainingInput",))
            training = self._mapping(doc, "trainingInput", "")
            self._scan(training, "trainingInput.", own=("hyperparameters",))
            hp = self._mapping(training, "hyperparameters", "trainingInput.")
            self._scan(
                hp, "", own=HYPERPARAMETER_FIELDS, ignored_prefix="trainingInput.hyperparameters."
            )
            return hp
        if "hyperparameters" in doc:
            self._scan(doc, "", own=("hyperparameters",))
            hp = self._mapping(doc, "hyperparameters", "")
            self._scan(hp, "", own=HYPERPARAMETER_FIELDS, ignored_prefix="hyperparameters.")
            return hp
        self._scan(doc, "", own=HYPERPARAMETER_FIELDS)
        return doc

    def _mapping(self, m: _Map, key: str, prefix: str) -> _Map:
        value = m[key]
        if not isinstance(value, _Map) or not value:
            self.fail(
                m.lines[key],
                f"{prefix}{key}",
                "is empty or not a mapping of fields",
                hint="indent its fields under it"
                if key != "hyperparameters"
                else "put goal, hyperparameterMetricTag and params under it",
            )
        return value

    def _scan(self, m: _Map, prefix: str, own: tuple, ignored_prefix: str | None = None) -> None:
        """Sort a level's keys: its own fields, extensions, cloud-only fields, mistakes."""
        ignored_prefix = prefix if ignored_prefix is None else ignored_prefix
        for key, line in m.lines.items():
            if key in own:
                continue
            if key in EXTENSION_FIELDS:
                self._extension(key, m[key], line, prefix)
            elif key in CLOUD_FIELDS:
                self.ignored.append(ignored_prefix + key)
            elif key in HYPERPARAMETER_FIELDS:
                self.fail(
                    line,
                    prefix + key,
                    "belongs in the hyperparameters block",
                    hint=f"indent {key} under hyperparameters:",
                )
            else:
                known = (*own, *EXTENSION_FIELDS, *CLOUD_FIELDS, *HYPERPARAMETER_FIELDS)
                near = _closest(key, known)
                self.fail(
                    line,
                    prefix + key,
                    "is not a known field",
                    hint=f"did you mean {near}?"
                    if near
                    else "see the HyperparameterSpec fields: " + ", ".join(HYPERPARAMETER_FIELDS),
                )

    def _reject_unknown_keys(
        self, mapping: Any, allowed: Any, where: str, what: str, fallback: str | None = None
    ) -> None:
        """Fail on the first key of ``mapping`` not in ``allowed``, naming the closest one."""
        for key, line in mapping.lines.items():
            if key not in allowed:
                near = _closest(key, allowed)
                hint = f"did you mean {near}?" if near else fallback
                self.fail(line, f"{where}.{key}", f"is not {what}", hint=hint)

    def _extension(self, key: str, value: Any, line: int, prefix: str) -> None:
        if key in self.ext:
            self.fail(
                line,
                prefix + key,
                f"is given twice (also at line {self.ext[key][1]})",
                hint="keep one of them",
            )
        self.ext[key] = (value, line, prefix + key)

    # -- scalar fields ---------------------------------------------------------------------

    def _enum(self, m: _Map, key: str, choices, default: str | None, where: str = "") -> str:
        if key not in m or m[key] is None:
            if default is None:
                self.fail(
                    m.line,
                    where + key,
                    "is missing",
                    hint=f"add {key}: one of {', '.join(choices)}",
                )
            return default
        value = m[key]
        text = str(value).upper() if isinstance(value, str) else None
        if text not in choices:
            near = _closest(str(value).upper(), choices)
            self.fail(
                m.lines[key],
                where + key,
                f"{value!r} is not one of {', '.join(choices)}",
                hint=f"did you mean {near}?" if near else f"use one of {', '.join(choices)}",
            )
        return text

    def _int(self, m: _Map, key: str, default: int | None, minimum: int) -> int | None:
        if key not in m or m[key] is None:
            return default
        value = m[key]
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(
                m.lines[key],
                key,
                f"{value!r} is not a whole number",
                hint=f"write {key}: as an integer such as {max(minimum, 1)}",
            )
        if value < minimum:
            self.fail(
                m.lines[key],
                key,
                f"{value} is less than {minimum}",
                hint=f"set {key} to {minimum} or more",
            )
        return value

    def _bool(self, m: _Map, key: str) -> bool | None:
        if key not in m or m[key] is None:
            return None
        if not isinstance(m[key], bool):
            self.fail(
                m.lines[key],
                key,
                f"{m[key]!r} is not true or false",
                hint=f"write {key}: true or {key}: false",
            )
        return m[key]

    def _str(self, m: _Map, key: str, required: bool = False, hint: str | None = None):
        if key not in m or m[key] is None or m[key] == "":
            if required:
                self.fail(m.line, key, "is missing", hint=hint)
            return None
        if not isinstance(m[key], str):
            self.fail(m.lines[key], key, f"{m[key]!r} is not text", hint=hint)
        return m[key]

    # -- the whole spec --------------------------------------------------------------------

    def _spec(self, hp: _Map, params: tuple[ParamSpec, ...]) -> TuningSpec:
        algorithm = ALGORITHMS[self._enum(hp, "algorithm", ALGORITHMS, "ALGORITHM_UNSPECIFIED")]
        if algorithm == "GRID_SEARCH":
            self._check_grid(params)
        early, config = self._early_stopping(hp)
        return TuningSpec(
            goal=self._enum(hp, "goal", GOALS, None),
            metric_tag=self._str(
                hp,
                "hyperparameterMetricTag",
                required=True,
                hint="name the TensorBoard tag to optimize, e.g. hyperparameterMetricTag: val_acc",
            ),
            max_trials=self._int(hp, "maxTrials", 1, 1),
            max_parallel_trials=self._int(hp, "maxParallelTrials", 1, 1),
            max_failed_trials=self._int(hp, "maxFailedTrials", None, 0),
            early_stopping=early,
            early_stopping_config=config,
            resume_job_id=self._str(hp, "resumePreviousJobId", hint="give the job id as text"),
            algorithm=algorithm,
            params=params,
            script=self._ext_str("script"),
            python_module=self._ext_str("pythonModule"),
            metric_aggregation=self._aggregation(),
            trial_timeout=self._timeout(),
            seed=self._seed(),
            ignored_fields=tuple(self.ignored),
            path=self.path,
        )

    def _ext_str(self, key: str) -> str | None:
        if key not in self.ext or self.ext[key][0] is None:
            return None
        value, line, where = self.ext[key]
        if not isinstance(value, str) or not value:
            self.fail(line, where, f"{value!r} is not text", hint=f"write {key}: as a path/name")
        return value

    def _aggregation(self) -> str:
        if "metricAggregation" not in self.ext:
            return "last"
        value, line, where = self.ext["metricAggregation"]
        text = str(value).lower()
        if text not in AGGREGATIONS:
            self.fail(
                line,
                where,
                f"{value!r} is not one of {', '.join(AGGREGATIONS)}",
                hint="last takes the final value; max/min the best over the trial",
            )
        return text

    def _timeout(self) -> float | None:
        if "trialTimeout" not in self.ext or self.ext["trialTimeout"][0] is None:
            return None
        value, line, where = self.ext["trialTimeout"]
        number = _number(value)
        if number is None or number <= 0:
            self.fail(
                line,
                where,
                f"{value!r} is not a positive number of seconds",
                hint="write trialTimeout: 3600 for one hour",
            )
        return float(number)

    def _seed(self) -> int | None:
        if "seed" not in self.ext or self.ext["seed"][0] is None:
            return None
        value, line, where = self.ext["seed"]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
            self.fail(
                line,
                where,
                f"{value!r} is not a whole number from 0 to 2**32-1",
                hint="write seed: 42",
            )
        return value

    def _early_stopping(self, hp: _Map) -> tuple[bool, dict]:
        enabled = self._bool(hp, "enableTrialEarlyStopping")
        if "earlyStopping" not in self.ext or self.ext["earlyStopping"][0] is None:
            return bool(enabled), {}
        value, line, where = self.ext["earlyStopping"]
        if not isinstance(value, dict):
            self.fail(
                line,
                where,
                "is not a mapping",
                hint="write earlyStopping: {pruner: median, n_warmup_steps: 2}",
            )
        config = _plain(value)
        pruner = str(config.get("pruner", DEFAULT_PRUNER)).lower()
        if pruner not in PRUNERS:
            near = _closest(pruner, PRUNERS)
            self.fail(
                value.lines.get("pruner", line),
                where + ".pruner",
                f"{config['pruner']!r} is not one of {', '.join(PRUNERS)}",
                hint=f"did you mean {near}?" if near else None,
            )
        config["pruner"] = pruner
        return (pruner != "none") if enabled is None else enabled, config

    # -- params ----------------------------------------------------------------------------

    def _params(self, hp: _Map) -> tuple[ParamSpec, ...]:
        if "params" not in hp:
            self.fail(
                hp.line,
                "params",
                "is missing",
                hint="list the hyperparameters to tune under params:",
            )
        seq = hp["params"]
        if not isinstance(seq, _Seq) or not seq:
            self.fail(
                hp.lines["params"],
                "params",
                "is empty or not a list",
                hint="list each hyperparameter as '- parameterName: NAME'",
            )
        raws: list[_Raw] = []
        for i, item in enumerate(seq):
            self._param(item, seq.lines[i], f"params[{i}]", None, raws)
        self._check_names(raws)
        by_name = {r.spec.name: r for r in raws}
        for raw in raws:
            self._check_parent(raw, by_name)
        return tuple(r.spec for r in self._parents_first(raws, by_name))

    def _param(self, item: Any, line: int, where: str, inherited, out: list[_Raw]) -> None:
        if not isinstance(item, _Map):
            self.fail(
                line,
                where,
                "is not a mapping",
                hint="write each param as '- parameterName: NAME' with its fields below",
            )
        name = self._param_name(item, where)
        label = f"{where} ({name})"
        self._reject_unknown_keys(
            item, PARAM_FIELDS, label, "a param field", "a param has " + ", ".join(PARAM_FIELDS)
        )
        kind = self._enum(item, "type", TYPES, None, where=f"{label}.")
        self.where[name] = (label, item.lines["type"])
        spec = self._typed(item, label, name, kind)
        parent, values, parent_field, parent_line = self._parent_of(item, label, inherited)
        spec = ParamSpec(**{**spec.__dict__, "parent": parent, "parent_values": values})
        out.append(_Raw(spec, label, parent_field, parent_line))
        self._conditionals(item, label, name, out)

    def _param_name(self, item: _Map, where: str) -> str:
        name = item.get("parameterName")
        if name is None:
            self.fail(
                item.line,
                f"{where}.parameterName",
                "is missing",
                hint="name the flag this param sets: parameterName: dropout1",
            )
        if not isinstance(name, str) or not _NAME.match(name):
            self.fail(
                item.lines["parameterName"],
                f"{where}.parameterName",
                f"{name!r} is not a flag name",
                hint="use the flag's name as declared in the script, e.g. dense_units1",
            )
        return name

    def _typed(self, item: _Map, label: str, name: str, kind: str) -> ParamSpec:
        allowed = {
            "DOUBLE": ("minValue", "maxValue", "scaleType"),
            "INTEGER": ("minValue", "maxValue", "scaleType"),
            "CATEGORICAL": ("categoricalValues",),
            "DISCRETE": ("discreteValues", "scaleType"),
        }[kind]
        for key in ("minValue", "maxValue", "scaleType", "categoricalValues", "discreteValues"):
            if key in item and key not in allowed:
                self.fail(
                    item.lines[key],
                    f"{label}.{key}",
                    f"does not apply to type {kind}",
                    hint=f"type {kind} takes {' and '.join(allowed)}",
                )
        line = item.line
        if kind == "CATEGORICAL":
            return ParamSpec(
                name, kind, categorical_values=self._categories(item, label), line=line
            )
        scale = self._enum(item, "scaleType", SCALES, LINEAR, where=f"{label}.")
        if kind == "DISCRETE":
            values = self._discrete(item, label)
            return ParamSpec(name, kind, scale=scale, discrete_values=values, line=line)
        low, high = self._bounds(item, label, kind, scale)
        return ParamSpec(name, kind, low, high, scale, line=line)

    def _bounds(self, item: _Map, label: str, kind: str, scale: str) -> tuple:
        bounds = []
        for key in ("minValue", "maxValue"):
            if item.get(key) is None:
                self.fail(
                    item.line,
                    f"{label}.{key}",
                    "is missing",
                    hint=f"type {kind} needs minValue and maxValue",
                )
            value = _number(item[key])
            if value is None:
                self.fail(
                    item.lines[key],
                    f"{label}.{key}",
                    f"{item[key]!r} is not a number",
                    hint=f"write {key}: as a number such as 0.5",
                )
            if kind == "INTEGER":
                if float(value) != int(value):
                    self.fail(
                        item.lines[key],
                        f"{label}.{key}",
                        f"{value} is not a whole number",
                        hint="INTEGER bounds are whole numbers; use type DOUBLE for fractions",
                    )
                value = int(value)
            else:
                value = float(value)
            bounds.append(value)
        low, high = bounds
        if low > high:
            self.fail(
                item.lines["minValue"],
                f"{label}.minValue",
                f"{item['minValue']} is greater than maxValue {item['maxValue']}",
                hint="swap minValue and maxValue",
            )
        if scale != LINEAR and low <= 0:
            self.fail(
                item.lines["minValue"],
                f"{label}.minValue",
                f"{item['minValue']} is not above 0, which {scale} needs",
                hint="raise minValue above 0, or use scaleType: UNIT_LINEAR_SCALE",
            )
        return low, high

    def _values(self, item: _Map, key: str, label: str, example: str) -> _Seq:
        seq = item.get(key)
        if seq is None:
            self.fail(item.line, f"{label}.{key}", "is missing", hint=f"write {key}: {example}")
        if not isinstance(seq, _Seq) or not seq:
            self.fail(
                item.lines[key],
                f"{label}.{key}",
                "is empty or not a list",
                hint=f"write {key}: {example}",
            )
        return seq

    def _categories(self, item: _Map, label: str) -> tuple[str, ...]:
        seq = self._values(item, "categoricalValues", label, "[relu, tanh]")
        out: list[str] = []
        for i, raw in enumerate(seq.raw):
            where = f"{label}.categoricalValues[{i}]"
            if raw is None:
                self.fail(
                    seq.lines[i],
                    where,
                    "is not a plain value",
                    hint="list plain words: [relu, tanh, sigmoid]",
                )
            if raw in out:
                self.fail(seq.lines[i], where, f"{raw!r} is listed twice", hint="drop one")
            out.append(raw)
        return tuple(out)

    def _discrete(self, item: _Map, label: str) -> tuple[float | int, ...]:
        seq = self._values(item, "discreteValues", label, "[16, 32, 64]")
        out: list[float | int] = []
        for i, value in enumerate(seq):
            where = f"{label}.discreteValues[{i}]"
            number = _number(value)
            if number is None:
                self.fail(
                    seq.lines[i],
                    where,
                    f"{value!r} is not a number",
                    hint="DISCRETE takes numbers; use type CATEGORICAL for words",
                )
            if number in out:
                self.fail(seq.lines[i], where, f"{number} is listed twice", hint="drop one")
            out.append(number)
        return tuple(sorted(out))

    # -- conditional params ----------------------------------------------------------------

    def _parent_of(self, item: _Map, label: str, inherited) -> tuple:
        """(parent, parent values, the field naming them, its line) for a param."""
        given = [k for k in PARENT_VALUE_FIELDS if k in item]
        if inherited is not None:
            if "parentParameter" in item or given:
                key = "parentParameter" if "parentParameter" in item else given[0]
                self.fail(
                    item.lines[key],
                    f"{label}.{key}",
                    "is set inside conditionalParameterSpecs, which already names the parent",
                    hint="put the parent values beside parameterSpec, not inside it",
                )
            return inherited
        if "parentParameter" not in item:
            if given:
                self.fail(
                    item.lines[given[0]],
                    f"{label}.{given[0]}",
                    "is given without parentParameter",
                    hint="add parentParameter: NAME of the param it depends on",
                )
            return None, (), None, 0
        parent = item["parentParameter"]
        if not isinstance(parent, str):
            self.fail(
                item.lines["parentParameter"],
                f"{label}.parentParameter",
                f"{parent!r} is not a param name",
                hint="name the parent param",
            )
        if len(given) != 1:
            self.fail(
                item.lines["parentParameter"],
                f"{label}.parentParameter",
                "needs exactly one of " + ", ".join(PARENT_VALUE_FIELDS),
                hint="say for which of the parent's values this param applies",
            )
        key = given[0]
        values = self._parent_values(item, key, f"{label}.{key}")
        return parent, values, key, item.lines[key]

    def _parent_values(self, m: _Map, key: str, where: str) -> tuple:
        value = m[key]
        if isinstance(value, _Map) and set(value) == {"values"}:
            value = value["values"]
        if not isinstance(value, _Seq) or not value:
            self.fail(
                m.lines[key],
                where,
                "is empty or not a list",
                hint=f"write {key}: [v1, v2] (or {{values: [v1, v2]}})",
            )
        if key == "parentCategoricalValues":
            if None in value.raw:
                self.fail(
                    m.lines[key], where, "holds a value that is not plain", hint="list plain words"
                )
            return tuple(value.raw)
        numbers = tuple(_number(v) for v in value)
        if None in numbers:
            self.fail(
                m.lines[key],
                where,
                "holds a value that is not a number",
                hint=f"{key} lists numbers",
            )
        return numbers

    def _conditionals(self, item: _Map, label: str, name: str, out: list[_Raw]) -> None:
        if "conditionalParameterSpecs" not in item:
            return
        seq = item["conditionalParameterSpecs"]
        base = f"{label}.conditionalParameterSpecs"
        if not isinstance(seq, _Seq) or not seq:
            self.fail(
                item.lines["conditionalParameterSpecs"],
                base,
                "is empty or not a list",
                hint="list '- parameterSpec: {...}' entries with their parent values",
            )
        for i, cond in enumerate(seq):
            where = f"{base}[{i}]"
            if not isinstance(cond, _Map) or not isinstance(cond.get("parameterSpec"), _Map):
                self.fail(
                    seq.lines[i],
                    f"{where}.parameterSpec",
                    "is missing or not a mapping",
                    hint="write parameterSpec: {parameterName: ..., type: ...}",
                )
            self._reject_unknown_keys(cond, CONDITIONAL_FIELDS, where, "a conditional spec field")
            given = [k for k in PARENT_VALUE_FIELDS if k in cond]
            if len(given) != 1:
                self.fail(
                    cond.line,
                    where,
                    "needs exactly one of " + ", ".join(PARENT_VALUE_FIELDS),
                    hint="say for which parent values the param applies",
                )
            values = self._parent_values(cond, given[0], f"{where}.{given[0]}")
            inherited = (name, values, given[0], cond.lines[given[0]])
            self._param(
                cond["parameterSpec"],
                cond.lines["parameterSpec"],
                f"{where}.parameterSpec",
                inherited,
                out,
            )

    def _check_names(self, raws: list[_Raw]) -> None:
        seen: dict[str, _Raw] = {}
        for raw in raws:
            first = seen.get(raw.spec.name)
            if first is not None:
                self.fail(
                    raw.spec.line,
                    f"{raw.label}.parameterName",
                    f"{raw.spec.name!r} is already used by {first.label} at line {first.spec.line}",
                    hint="each flag may be tuned by one param only",
                )
            seen[raw.spec.name] = raw

    def _check_parent(self, raw: _Raw, by_name: dict[str, _Raw]) -> None:
        spec = raw.spec
        if spec.parent is None:
            return
        where = f"{raw.label}.{raw.parent_field}"
        parent = by_name.get(spec.parent)
        if parent is None or spec.parent == spec.name:
            near = _closest(spec.parent, [n for n in by_name if n != spec.name])
            self.fail(
                raw.parent_line,
                f"{raw.label}.parentParameter",
                f"{spec.parent!r} is not another param of this file",
                hint=f"did you mean {near}?" if near else "name a param listed in params",
            )
        expected = PARENT_VALUE_FIELDS[raw.parent_field]
        if parent.spec.type != expected:
            right = {v: k for k, v in PARENT_VALUE_FIELDS.items()}.get(parent.spec.type)
            self.fail(
                raw.parent_line,
                where,
                f"does not fit parent {spec.parent} of type {parent.spec.type}",
                hint=f"use {right}"
                if right
                else "a DOUBLE param cannot be a parent; make it DISCRETE or INTEGER",
            )
        allowed = _parent_choices(parent.spec)
        for value in spec.parent_values:
            if not allowed(value):
                self.fail(
                    raw.parent_line,
                    where,
                    f"{value!r} is not a value of {spec.parent}",
                    hint=f"pick among {spec.parent}'s values: {_describe(parent.spec)}",
                )

    def _parents_first(self, raws: list[_Raw], by_name: dict[str, _Raw]) -> list[_Raw]:
        ordered: list[_Raw] = []
        state: dict[str, str] = {}

        def visit(raw: _Raw) -> None:
            if state.get(raw.spec.name) == "done":
                return
            if state.get(raw.spec.name) == "visiting":
                self.fail(
                    raw.parent_line,
                    f"{raw.label}.parentParameter",
                    f"makes a cycle through {raw.spec.parent}",
                    hint="a param cannot depend, directly or not, on itself",
                )
            state[raw.spec.name] = "visiting"
            if raw.spec.parent is not None:
                visit(by_name[raw.spec.parent])
            state[raw.spec.name] = "done"
            ordered.append(raw)

        for raw in raws:
            visit(raw)
        return ordered

    def _check_grid(self, params: tuple[ParamSpec, ...]) -> None:
        for p in params:
            label, type_line = self.where.get(p.name, (f"params ({p.name})", p.line))
            if p.type == "DOUBLE":
                self.fail(
                    type_line,
                    f"{label}.type",
                    "DOUBLE cannot be searched on a grid",
                    hint="use type DISCRETE with discreteValues, or algorithm RANDOM_SEARCH",
                )
            if p.type == "INTEGER" and p.max_value - p.min_value >= MAX_GRID_INTEGERS:
                self.fail(
                    p.line,
                    label,
                    f"spans {p.max_value - p.min_value + 1} integers, too many for a grid",
                    hint="use type DISCRETE with the values to try",
                )


def _parent_choices(parent: ParamSpec):
    if parent.type == "CATEGORICAL":
        return lambda v: v in parent.categorical_values
    if parent.type == "DISCRETE":
        return lambda v: v in parent.discrete_values
    return lambda v: float(v).is_integer() and parent.min_value <= v <= parent.max_value


def _describe(p: ParamSpec) -> str:
    if p.type == "CATEGORICAL":
        return ", ".join(p.categorical_values)
    if p.type == "DISCRETE":
        return ", ".join(str(v) for v in p.discrete_values)
    return f"{p.min_value}..{p.max_value}"


# --------------------------------------------------------------------------- public API


def load_spec(path: Path) -> TuningSpec:
    """Read and validate a tuning YAML; raise SpecError naming file:line and field."""
    path = Path(path)
    return _Parser(path).parse(_read_yaml(path))


def check_against_flags(spec: TuningSpec, declared) -> None:
    """Check every param against the script's declared flags (a mapping name -> Flag).

    Unknown names are only reported when ``declared.complete`` is true (every
    declaration's name was a literal).
    """
    complete = getattr(declared, "complete", True)
    script = getattr(declared, "script", None) or spec.script or spec.python_module
    script = script or "the training script"
    for p in spec.params:
        flag = declared.get(p.name)
        if flag is None:
            if complete:
                _unknown_flag(spec, p, declared, script)
            continue
        problem = _type_problem(p, getattr(flag, "type", "string"))
        if problem:
            what, hint = problem
            raise SpecError(f"{_where(spec, p)} {what} of {script}", hint=hint)


def _where(spec: TuningSpec, p: ParamSpec) -> str:
    if spec.path is None:
        return f"--grid {p.name}:"
    return f"{spec.path}:{p.line}: params ({p.name})"


def _unknown_flag(spec: TuningSpec, p: ParamSpec, declared, script: str) -> NoReturn:
    names = sorted(declared)
    near = _closest(p.name, names)
    listing = ", ".join(names) if names else "none"
    hint = f"did you mean {near}? " if near else ""
    raise SpecError(
        f"{_where(spec, p)} {p.name!r} is not a flag declared by {script} (declared: {listing})",
        hint=hint + f"or declare it in the script: flags(flag_...({p.name!r}, DEFAULT))",
    )


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


def _is_int(text: str) -> bool:
    return re.fullmatch(r"\s*[-+]?\d+\s*", text) is not None


def grid_spec(
    values: dict[str, list[str]],
    declared,
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


def _grid_param(name: str, texts: list[str], declared) -> ParamSpec:
    flag = declared.get(name)
    if flag is None and getattr(declared, "complete", True):
        near = _closest(name, sorted(declared))
        raise UsageError(
            f"--grid {name}: the script declares no flag {name!r}",
            hint=f"did you mean {near}?"
            if near
            else "declared flags: " + (", ".join(sorted(declared)) or "none"),
        )
    texts = [t.strip() for t in texts if t.strip()]
    if not texts:
        raise UsageError(f"--grid {name} lists no values", hint=f"e.g. --grid {name}=V1,V2")
    flag_type = getattr(flag, "type", None) if flag is not None else _guess_type(texts)
    typed = [_grid_value(name, flag_type, t) for t in texts]
    if len(set(typed)) != len(typed):
        raise UsageError(f"--grid {name} lists a value twice", hint="list each value once")
    if flag_type in ("integer", "numeric"):
        return ParamSpec(name, "DISCRETE", discrete_values=tuple(sorted(typed)))
    return ParamSpec(name, "CATEGORICAL", categorical_values=tuple(typed))


def _guess_type(texts: list[str]) -> str:
    if all(_is_int(t) for t in texts):
        return "integer"
    if all(_number(t) is not None for t in texts):
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
