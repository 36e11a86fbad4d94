"""Vertex AI's hyperparameter tuning job (``studySpec``) -> ``TuningSpec``, mistakes first.

The file ``gcloud ai hp-tuning-jobs create --config`` takes, a ``HyperparameterTuningJob``::

    maxTrialCount: 20
    parallelTrialCount: 2
    studySpec:
      metrics: [{metricId: accuracy, goal: MAXIMIZE}]
      parameters:
        - parameterId: learning_rate
          doubleValueSpec: {minValue: 0.0001, maxValue: 0.1}
          scaleType: UNIT_LOG_SCALE
      algorithm: RANDOM_SEARCH
    trialJobSpec:
      workerPoolSpecs:
        - machineSpec: {machineType: n1-standard-4}   # cloud-only
          pythonPackageSpec: {pythonModule: trainer.task, args: [--epochs, "5"]}

It maps onto the same internal spec as Cloud ML's ``HyperparameterSpec``:

==============================================  ==========================================
Vertex                                          flagrun
==============================================  ==========================================
``studySpec.metrics[0].metricId``, ``.goal``    metric tag, goal (one metric: no
                                                multi-objective tuning)
``studySpec.parameters[]``                      params: ``doubleValueSpec`` DOUBLE,
                                                ``integerValueSpec`` INTEGER,
                                                ``categoricalValueSpec`` CATEGORICAL,
                                                ``discreteValueSpec`` DISCRETE, ``scaleType``,
                                                ``conditionalParameterSpecs``
``studySpec.algorithm``                         algorithm (same words as Cloud ML)
``studySpec.measurementSelectionType``          ``BEST_MEASUREMENT``: the trial's best value
                                                (metricAggregation max/min); else its last
``studySpec.*StoppingSpec``                     early stopping (median: the median pruner;
                                                decay curve, convex: flagrun's default)
``maxTrialCount``, ``parallelTrialCount``,      maxTrials, maxParallelTrials,
``maxFailedTrialCount``                         maxFailedTrials (0 or absent: unset)
``trialJobSpec.workerPoolSpecs[0]``             ``pythonPackageSpec.pythonModule`` and
                                                ``.args``, or ``containerSpec.args``
``trialJobSpec.scheduling.timeout``             trialTimeout (each trial is a CustomJob,
                                                and this is its time limit)
==============================================  ==========================================

Everything else Vertex knows (machines, images, the other worker pools, labels, output
locations, observation noise...) is cloud-only: accepted and listed in
``spec.ignored_fields``. flagrun's extensions (``script``, ``metricAggregation``,
``trialTimeout``, ``maxRunningTime``, ``seed``, ``earlyStopping``) may stand at the top level;
a ``trialTimeout`` given there wins over ``trialJobSpec.scheduling.timeout``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from flagrun import pruners
from flagrun.formats import cloudml
from flagrun.formats._fields import REQUIRED, Field, Found, Kind, Place, look_up, read_field
from flagrun.formats._params import _NAME, ParamReader, Parent, Raw
from flagrun.formats._source import Source
from flagrun.formats._yaml import Map, Seq
from flagrun.spec import ALGORITHMS, GOALS, LINEAR, SCALES, ParamSpec, TuningSpec, closest

__all__ = ["CLOUD_FIELDS", "TOP_FIELDS", "looks_like_vertex", "parse"]

TOP = Place.HYPERPARAMETERS  # the job's own fields stand at the top of the file

# fmt: off
TOP_FIELDS = (
    Field("maxTrialCount", "max_trials", TOP, Kind.WHOLE, default=1, minimum=1,
          zero_unset=True),
    Field("parallelTrialCount", "max_parallel_trials", TOP, Kind.WHOLE, default=1, minimum=1,
          zero_unset=True),
    Field("maxFailedTrialCount", "max_failed_trials", TOP, Kind.WHOLE, default=None, minimum=1,
          zero_unset=True),
)
METRIC_ID = Field("metricId", "metric_tag", TOP, Kind.TEXT, default=REQUIRED,
                  hint="name the metric the trainer reports, e.g. metricId: accuracy")
GOAL = Field("goal", "goal", TOP, Kind.ENUM, default=REQUIRED, choices=GOALS)
ALGORITHM = Field("algorithm", "algorithm", TOP, Kind.ENUM, default="ALGORITHM_UNSPECIFIED",
                  choices=ALGORITHMS)
SELECTION = Field("measurementSelectionType", "metric_aggregation", TOP, Kind.ENUM,
                  default="LAST_MEASUREMENT",
                  choices={"MEASUREMENT_SELECTION_TYPE_UNSPECIFIED": "last",
                           "LAST_MEASUREMENT": "last", "BEST_MEASUREMENT": "best"})
SCALE = Field("scaleType", "scale", Place.PARAM, Kind.ENUM, default=LINEAR,
              choices={"SCALE_TYPE_UNSPECIFIED": LINEAR, **{scale: scale for scale in SCALES}})
PYTHON_MODULE = Field("pythonModule", "python_module", TOP, Kind.NAME, default=None)
ARGS = Field("args", "args", TOP, Kind.ARGS, default=())
TRIAL_TIMEOUT = Field("timeout", "trial_timeout", TOP, Kind.DURATION, default=None,
                      hint="write timeout: 3600s for one hour")  # trialJobSpec.scheduling
# fmt: on
# The stopping specs that turn early stopping on, and the pruner each becomes.
STOPPING = {
    "medianAutomatedStoppingSpec": "median",
    "decayCurveStoppingSpec": pruners.DEFAULT_PRUNER,
    "convexAutomatedStoppingSpec": pruners.DEFAULT_PRUNER,
    "convexStopConfig": pruners.DEFAULT_PRUNER,
}
STUDY_FIELDS = ("metrics", "parameters", "algorithm", "measurementSelectionType", *STOPPING)
# Vertex fields that mean nothing on this machine, by where they stand.
CLOUD_FIELDS = {
    "": (
        "name",
        "displayName",
        "labels",
        "encryptionSpec",
        "state",
        "createTime",
        "startTime",
        "endTime",
        "updateTime",
        "error",
        "trials",
        "satisfiesPzs",
        "satisfiesPzi",
    ),
    "studySpec.": ("observationNoise", "studyStoppingConfig"),
    "trialJobSpec.": (
        "serviceAccount",
        "network",
        "reservedIpRanges",
        "baseOutputDirectory",
        "protectedArtifactLocationId",
        "tensorboard",
        "enableWebAccess",
        "enableDashboardAccess",
        "experiment",
        "experimentRun",
        "models",
        "persistentResourceId",
        "pscInterfaceConfig",
    ),
    "workerPoolSpecs[0].": ("machineSpec", "replicaCount", "diskSpec", "nfsMounts"),
    "pythonPackageSpec.": ("executorImageUri", "packageUris", "env"),
    "containerSpec.": ("imageUri", "command", "env"),
    "scheduling.": ("restartJobOnWorkerRestart", "strategy", "disableRetries", "maxWaitDuration"),
}
KNOWN_TOP = ("studySpec", "trialJobSpec", *(f.name for f in TOP_FIELDS))
_SPECS = {
    "doubleValueSpec": "DOUBLE",
    "integerValueSpec": "INTEGER",
    "categoricalValueSpec": "CATEGORICAL",
    "discreteValueSpec": "DISCRETE",
}
PARAM_FIELDS = ("parameterId", *_SPECS, "scaleType", "conditionalParameterSpecs")


def looks_like_vertex(doc: Any) -> bool:
    """Whether a document is a Vertex AI tuning job rather than a Cloud ML one."""
    return isinstance(doc, dict) and any(key in doc for key in ("studySpec", "trialJobSpec"))


def parse(doc: Map, path: Path) -> TuningSpec:
    """The ``TuningSpec`` of a Vertex AI tuning job document read from ``path``."""
    return _Reader(Source(path)).parse(doc)


class _Reader:
    def __init__(self, source: Source) -> None:
        self.source = source
        self.fail = source.fail
        self.ignored: list[str] = []

    def parse(self, doc: Map) -> TuningSpec:
        ext = self._top(doc)
        study = self._mapping(doc, "studySpec", "", required=True)
        self._sort(study, "studySpec.", STUDY_FIELDS)
        metric_tag, goal = self._metric(study)
        values: dict[str, Any] = {
            f.attribute: read_field(self.source, f, look_up(doc, f.name)) for f in TOP_FIELDS
        }
        for field in cloudml.FIELDS:
            if field.place is Place.ANYWHERE:
                found = ext.get(field.name) or Found(None, doc.line, field.name)
                values[field.attribute] = read_field(self.source, field, found)
        values["algorithm"] = read_field(
            self.source, ALGORITHM, look_up(study, "algorithm", "studySpec.")
        )
        selection = read_field(
            self.source, SELECTION, look_up(study, "measurementSelectionType", "studySpec.")
        )
        if selection == "best" and "metricAggregation" not in ext:
            values["metric_aggregation"] = "max" if goal == "MAXIMIZE" else "min"
        module, args, timeout = self._trial_job(doc)
        values["python_module"] = values["python_module"] or module
        if "trialTimeout" not in ext:
            values["trial_timeout"] = timeout
        values["args"] = args or values["args"]
        reader = _ParamReader(self.source)
        params = reader.read_vertex(study)
        if values["algorithm"] == "GRID_SEARCH":
            reader.check_grid(params)
        values.update(self._early_stopping(study, values, ext))
        values.update(metric_tag=metric_tag, goal=goal, resume_job_id=None)
        return TuningSpec(
            **values, params=params, ignored_fields=tuple(self.ignored), path=self.source.path
        )

    # -- the document's shape ----------------------------------------------------------------

    def _top(self, doc: Map) -> dict[str, Found]:
        """Sort the top level; flagrun's extensions found there, by name."""
        ext: dict[str, Found] = {}
        for key, line in doc.lines.items():
            if key in cloudml.EXTENSION_FIELDS:
                ext[key] = Found(doc[key], line, key)
        self._sort(doc, "", (*KNOWN_TOP, *ext))
        return ext

    def _sort(self, m: Map, prefix: str, own: tuple[str, ...], cloud: str | None = None) -> None:
        """Keep a level's own keys, list its cloud-only ones, fail on any other."""
        cloud_only = CLOUD_FIELDS.get(prefix if cloud is None else cloud, ())
        for key, line in m.lines.items():
            if key in own:
                continue
            if key in cloud_only:
                self.ignored.append(prefix + key)
                continue
            known = (*own, *cloud_only)
            near = closest(key, known)
            if key in cloudml.HYPERPARAMETER_FIELDS and not prefix:
                hint = "this is a Vertex AI file (studySpec): see its fields in the README"
            else:
                hint = f"did you mean {near}?" if near else "known here: " + ", ".join(known)
            self.fail(line, prefix + key, "is not a known field", hint=hint)

    def _mapping(self, m: Map, key: str, prefix: str, *, required: bool = False) -> Map:
        value = m.get(key)
        if value is None and not required:
            empty = Map()
            empty.line, empty.lines = m.line, {}
            return empty
        if not isinstance(value, Map) or not value:
            self.fail(
                m.lines.get(key, m.line),
                prefix + key,
                "is missing" if value is None else "is empty or not a mapping of fields",
                hint="a Vertex AI tuning job needs studySpec with metrics and parameters",
            )
        return value

    def _metric(self, study: Map) -> tuple[str, str]:
        metrics = study.get("metrics")
        if not isinstance(metrics, Seq) or not metrics:
            self.fail(
                study.lines.get("metrics", study.line),
                "studySpec.metrics",
                "is missing or empty",
                hint="write metrics: [{metricId: accuracy, goal: MAXIMIZE}]",
            )
        if len(metrics) > 1:
            self.fail(
                metrics.lines[1],
                "studySpec.metrics[1]",
                "is a second metric: flagrun tunes one objective",
                hint="keep the metric to optimize; report the others as plain metrics",
            )
        metric = metrics[0]
        if not isinstance(metric, Map):
            self.fail(
                metrics.lines[0],
                "studySpec.metrics[0]",
                "is not a mapping",
                hint="write {metricId: accuracy, goal: MAXIMIZE}",
            )
        self.source.reject_unknown_keys(
            metric, ("metricId", "goal", "safetyConfig"), "studySpec.metrics[0]", "a metric field"
        )
        tag = read_field(
            self.source, METRIC_ID, look_up(metric, "metricId", "studySpec.metrics[0].")
        )
        goal = read_field(self.source, GOAL, look_up(metric, "goal", "studySpec.metrics[0]."))
        if "safetyConfig" in metric:
            self.ignored.append("studySpec.metrics[0].safetyConfig")
        return tag, goal

    def _trial_job(self, doc: Map) -> tuple[str | None, tuple[str, ...], float | None]:
        """The python module and fixed args of the first worker pool (the chief), and the
        trial's time limit."""
        job = self._mapping(doc, "trialJobSpec", "")
        self._sort(job, "trialJobSpec.", ("workerPoolSpecs", "scheduling"))
        scheduling = self._mapping(job, "scheduling", "trialJobSpec.")
        self._sort(scheduling, "trialJobSpec.scheduling.", ("timeout",), "scheduling.")
        timeout = read_field(
            self.source, TRIAL_TIMEOUT, look_up(scheduling, "timeout", "trialJobSpec.scheduling.")
        )
        module, args = self._chief(job)
        return module, args, timeout

    def _chief(self, job: Map) -> tuple[str | None, tuple[str, ...]]:
        """The python module and fixed args of the first worker pool (the chief)."""
        pools = job.get("workerPoolSpecs")
        if pools is None:
            return None, ()
        where = "trialJobSpec.workerPoolSpecs"
        if not isinstance(pools, Seq) or not pools or not isinstance(pools[0], Map):
            self.fail(
                job.lines["workerPoolSpecs"],
                where,
                "is not a list of worker pools",
                hint="write workerPoolSpecs: [{pythonPackageSpec: {...}}]",
            )
        if len(pools) > 1:
            self.ignored.append(f"{where}[1:] (only the first pool runs locally)")
        chief = pools[0]
        prefix = f"{where}[0]."
        self._sort(chief, prefix, ("pythonPackageSpec", "containerSpec"), "workerPoolSpecs[0].")
        for key, cloud in (
            ("pythonPackageSpec", "pythonPackageSpec."),
            ("containerSpec", "containerSpec."),
        ):
            spec = self._mapping(chief, key, prefix)
            if not spec:
                continue
            own = ("pythonModule", "args") if key == "pythonPackageSpec" else ("args",)
            self._sort(spec, f"{prefix}{key}.", own, cloud)
            module = read_field(
                self.source, PYTHON_MODULE, look_up(spec, "pythonModule", f"{prefix}{key}.")
            )
            args = read_field(self.source, ARGS, look_up(spec, "args", f"{prefix}{key}."))
            return (module if key == "pythonPackageSpec" else None), args
        return None, ()

    def _early_stopping(
        self, study: Map, values: dict[str, Any], ext: dict[str, Found]
    ) -> dict[str, Any]:
        """On with a stopping spec (its pruner; its own settings are cloud-only) or with the
        earlyStopping extension, which is checked like Cloud ML's."""
        given = [key for key in STOPPING if key in study]
        if given and "earlyStopping" not in ext:
            if isinstance(study[given[0]], Map) and study[given[0]]:
                self.ignored.append(f"studySpec.{given[0]} settings")
            return {"early_stopping": True, "early_stopping_config": {"pruner": STOPPING[given[0]]}}
        on, config = cloudml.early_stopping(
            self.source, None, ext.get("earlyStopping"), values["max_parallel_trials"]
        )
        return {"early_stopping": on, "early_stopping_config": config}


class _ParamReader(ParamReader):
    """Vertex's ``ParameterSpec`` list, read into the same ``Raw`` params as Cloud ML's."""

    def read_vertex(self, study: Map) -> tuple[ParamSpec, ...]:
        seq = study.get("parameters")
        if not isinstance(seq, Seq) or not seq:
            self.fail(
                study.lines.get("parameters", study.line),
                "studySpec.parameters",
                "is missing or empty",
                hint="list each hyperparameter as '- parameterId: NAME' with a value spec",
            )
        raws: list[Raw] = []
        for i, item in enumerate(seq):
            self._param(item, seq.lines[i], f"studySpec.parameters[{i}]", None, raws)
        return self.check_between(raws)

    def _param(
        self, item: Any, line: int, where: str, parent: Parent | None, out: list[Raw]
    ) -> None:
        if not isinstance(item, Map):
            self.fail(
                line,
                where,
                "is not a mapping",
                hint="write each parameter as '- parameterId: NAME' with a value spec",
            )
        name = item.get("parameterId")
        if not isinstance(name, str) or not _NAME.match(name):
            self.fail(
                item.lines.get("parameterId", item.line),
                f"{where}.parameterId",
                "is missing" if name is None else f"{name!r} is not an argument name",
                hint="name the trainer's argument this parameter sets: parameterId: lr",
            )
        label = f"{where} ({name})"
        self.source.reject_unknown_keys(item, PARAM_FIELDS, label, "a parameter field")
        specs = [key for key in _SPECS if key in item]
        if len(specs) != 1:
            self.fail(
                item.lines[specs[1]] if specs else item.line,
                label,
                "needs exactly one value spec" + (f", not {' and '.join(specs)}" if specs else ""),
                hint="give one of " + ", ".join(_SPECS),
            )
        key = specs[0]
        kind = _SPECS[key]
        self.where[name] = (label, item.lines[key])
        spec = self._typed_vertex(item, key, kind, f"{label}.{key}", name)
        if parent is not None:
            spec = replace(spec, parent=parent[0], parent_values=parent[1])
            out.append(Raw(spec, label, parent[2], parent[3]))
        else:
            out.append(Raw(spec, label))
        self._conditionals(item, label, name, out)

    def _typed_vertex(self, item: Map, key: str, kind: str, label: str, name: str) -> ParamSpec:
        values = item[key]
        if not isinstance(values, Map):
            self.fail(
                item.lines[key],
                label,
                "is not a mapping",
                hint="write it like {minValue: 1, maxValue: 10}",
            )
        own = ("values",) if kind in ("CATEGORICAL", "DISCRETE") else ("minValue", "maxValue")
        self.source.reject_unknown_keys(values, (*own, "defaultValue"), label, f"a {key} field")
        scale = read_field(self.source, SCALE, look_up(item, "scaleType", f"{label}."))
        line = item.line
        if kind == "CATEGORICAL":
            return ParamSpec(
                name, kind, categorical_values=self.categories(values, label, "values"), line=line
            )
        if kind == "DISCRETE":
            return ParamSpec(
                name,
                kind,
                scale=scale,
                discrete_values=self.discrete(values, label, "values"),
                line=line,
            )
        low, high = self.bounds(values, label, kind, scale)
        return ParamSpec(name, kind, low, high, scale, line=line)
