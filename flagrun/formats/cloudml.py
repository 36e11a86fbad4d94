"""Cloud ML Engine's tuning YAML (``HyperparameterSpec``) -> ``TuningSpec``, mistakes first.

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

The ``hyperparameters`` fields are Cloud ML's, with the service's defaults (``goal``
MAXIMIZE, ``hyperparameterMetricTag`` training/hptuning/metric, ``maxTrials`` 1,
``maxParallelTrials`` 1, ``maxFailedTrials``, ``enableTrialEarlyStopping``,
``resumePreviousJobId``, ``algorithm``, ``params``); a null field is not given, and 0 in a
count means unset, as in the service's protobuf. A file that resumes a job
(``resumePreviousJobId``) needs no params: the resumed job has them. The params and
conditional params are described in ``flagrun.formats._params``. A job config without a
hyperparameters block tunes nothing and is refused.

Cloud ML's ``pythonModule``, ``args`` (every trial's fixed arguments) and ``jobDir``
(its ``--job-dir``) are read wherever they stand, usually under ``trainingInput``
(see ``flagrun.launch``). flagrun-only extensions, accepted in the hyperparameters block
or at the top level (or under ``trainingInput``): ``script`` (training script, relative
to the YAML), ``metricAggregation`` (last | max | min, default
last), ``trialTimeout`` (seconds a trial may run), ``maxRunningTime`` (seconds the job
may run: Cloud ML writes it as ``trainingInput.scheduling.maxRunningTime: 7200s``, and
that is read too), ``seed`` (int) and ``earlyStopping``
(``{pruner: median | percentile | successive_halving | hyperband | none, ...settings}``,
median when no pruner is named; giving it turns early stopping on unless
``enableTrialEarlyStopping: false`` says otherwise). The settings are keyword arguments of
the Optuna pruner, checked by building it (``flagrun.pruners``).
Numbers PyYAML reads as strings (``1e-3``) are accepted where a number is expected.

Every scalar field is a row of ``FIELDS``; the file is read with a safe loader and every
error names ``file:line`` and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flagrun import pruners
from flagrun.formats._fields import Field, Found, Kind, Place, look_up, read_field
from flagrun.formats._params import ParamReader
from flagrun.formats._source import Source
from flagrun.formats._yaml import Map, plain
from flagrun.spec import AGGREGATIONS, ALGORITHMS, DEFAULT_METRIC_TAG, GOALS, TuningSpec, closest

__all__ = [
    "CLOUD_FIELDS",
    "EXTENSION_FIELDS",
    "FIELDS",
    "HYPERPARAMETER_FIELDS",
    "parse",
]

HP, ANYWHERE = Place.HYPERPARAMETERS, Place.ANYWHERE

# Every scalar field of the file, in the order they are read. A default is the value assumed
# when the field is absent (None: unset; REQUIRED: absence is an error).
# fmt: off
FIELDS = (
    Field("goal", "goal", HP, Kind.ENUM, default="MAXIMIZE", choices=GOALS),
    Field("hyperparameterMetricTag", "metric_tag", HP, Kind.TEXT, default=DEFAULT_METRIC_TAG,
          hint="name the TensorBoard tag to optimize, e.g. hyperparameterMetricTag: val_acc"),
    Field("maxTrials", "max_trials", HP, Kind.WHOLE, default=1, minimum=1, zero_unset=True),
    Field("maxParallelTrials", "max_parallel_trials", HP, Kind.WHOLE, default=1, minimum=1,
          zero_unset=True),
    Field("maxFailedTrials", "max_failed_trials", HP, Kind.WHOLE, default=None, minimum=1,
          zero_unset=True),
    Field("enableTrialEarlyStopping", "early_stopping", HP, Kind.BOOLEAN, default=None),
    Field("resumePreviousJobId", "resume_job_id", HP, Kind.TEXT, default=None,
          hint="give the job id as text"),
    Field("algorithm", "algorithm", HP, Kind.ENUM, default="ALGORITHM_UNSPECIFIED",
          choices=ALGORITHMS),
    # flagrun's extensions
    Field("script", "script", ANYWHERE, Kind.NAME, default=None),
    Field("pythonModule", "python_module", ANYWHERE, Kind.NAME, default=None),
    Field("args", "args", ANYWHERE, Kind.ARGS, default=()),
    Field("jobDir", "job_dir", ANYWHERE, Kind.TEXT, default=None,
          hint="give the job folder as text, e.g. jobDir: output"),
    Field("metricAggregation", "metric_aggregation", ANYWHERE, Kind.ENUM, default="last",
          choices=AGGREGATIONS, case="lower",
          hint="last takes the final value; max/min the best over the trial"),
    Field("trialTimeout", "trial_timeout", ANYWHERE, Kind.DURATION, default=None,
          hint="write trialTimeout: 3600 for one hour"),
    # Cloud ML's own place for it is trainingInput.scheduling.maxRunningTime
    Field("maxRunningTime", "max_running_time", ANYWHERE, Kind.DURATION, default=None,
          hint="write maxRunningTime: 7200s for two hours"),
    Field("seed", "seed", ANYWHERE, Kind.WHOLE, default=None, minimum=0, maximum=2**32 - 1,
          hint="write seed: 42"),
    Field("earlyStopping", "early_stopping_config", ANYWHERE, Kind.MAPPING, default=None,
          hint="write earlyStopping: {pruner: median, n_warmup_steps: 2}"),
)
# fmt: on
HYPERPARAMETER_FIELDS = (*(f.name for f in FIELDS if f.place is HP), "params")
# Fields read wherever they appear (top level, trainingInput or hyperparameters).
EXTENSION_FIELDS = tuple(f.name for f in FIELDS if f.place is ANYWHERE)
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
    "encryptionConfig",
    "network",
    "serviceAccount",
    "useChiefInTfConfig",
    "enableWebAccess",
    # what `gcloud ai-platform jobs describe` adds to a job it prints
    "state",
    "createTime",
    "startTime",
    "endTime",
    "errorMessage",
)

# trainingInput.scheduling: the job's time limit is read, the rest is cloud-only.
SCHEDULING_FIELDS = ("maxRunningTime",)
SCHEDULING_CLOUD_FIELDS = ("maxWaitTime", "priority")
# Vertex AI's job fields: named in the hint when they turn up in a Cloud ML file.
VERTEX_FIELDS = ("studySpec", "trialJobSpec", "maxTrialCount", "parallelTrialCount")


def parse(doc: Any, path: Path) -> TuningSpec:
    """The ``TuningSpec`` of a YAML document read from ``path`` (see ``_yaml.read_yaml``)."""
    return _Reader(Source(path)).parse(doc)


class _Reader:
    """Reads one document: its shape, params, scalar fields and early stopping."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.fail = source.fail
        self.ignored: list[str] = []
        self.ext: dict[str, Found] = {}

    def parse(self, doc: Any) -> TuningSpec:
        hp = self._hyperparameters_block(doc)
        values = {f.attribute: read_field(self.source, f, self._found(f, hp)) for f in FIELDS}
        reader = ParamReader(self.source)
        if values["resume_job_id"] and hp.get("params") is None:
            params: tuple = ()  # the resumed job supplies them (and its goal and metric)
        else:
            params = reader.read(hp)
        if values["algorithm"] == "GRID_SEARCH":
            reader.check_grid(params)
        values["early_stopping"], values["early_stopping_config"] = self._early_stopping(values)
        return TuningSpec(
            **values, params=params, ignored_fields=tuple(self.ignored), path=self.source.path
        )

    def _found(self, field: Field, hp: Map) -> Found:
        if field.place is HP:
            return look_up(hp, field.name)
        return self.ext.get(field.name) or Found(None, hp.line, field.name)

    # -- document shape --------------------------------------------------------------------

    def _hyperparameters_block(self, doc: Any) -> Map:
        if doc is None:
            self.fail(
                1,
                "the file",
                "is empty",
                hint="a tuning file needs at least goal, "
                "hyperparameterMetricTag and params (see the Cloud ML example)",
            )
        if not isinstance(doc, Map):
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
            self._scan(training, "trainingInput.", own=("hyperparameters", "scheduling"))
            if "scheduling" in training:
                self._scheduling(self._mapping(training, "scheduling", "trainingInput."))
            if "hyperparameters" not in training:
                self.fail(
                    training.line,
                    "trainingInput.hyperparameters",
                    "is missing: this job config trains once, it tunes nothing",
                    hint="add a hyperparameters: block to tune, or run the trainer once "
                    "with `flagrun train`",
                )
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

    def _scheduling(self, scheduling: Map) -> None:
        """trainingInput.scheduling: maxRunningTime is the job's time limit, read as the
        maxRunningTime extension would be; maxWaitTime and priority are cloud-only."""
        prefix = "trainingInput.scheduling."
        self.source.reject_unknown_keys(
            scheduling,
            (*SCHEDULING_FIELDS, *SCHEDULING_CLOUD_FIELDS),
            prefix[:-1],
            "a scheduling field",
            fallback="Cloud ML's scheduling has maxRunningTime, maxWaitTime and priority",
        )
        for key, line in scheduling.lines.items():
            if key in SCHEDULING_FIELDS:
                self._extension(key, scheduling[key], line, prefix)
            else:
                self.ignored.append(prefix + key)

    def _mapping(self, m: Map, key: str, prefix: str) -> Map:
        value = m[key]
        if not isinstance(value, Map) or not value:
            self.fail(
                m.lines[key],
                f"{prefix}{key}",
                "is empty or not a mapping of fields",
                hint="indent its fields under it"
                if key != "hyperparameters"
                else "put goal, hyperparameterMetricTag and params under it",
            )
        return value

    def _scan(
        self, m: Map, prefix: str, own: tuple[str, ...], ignored_prefix: str | None = None
    ) -> None:
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
                near = closest(key, known)
                if key in VERTEX_FIELDS:
                    hint = (
                        f"{key} is Vertex AI's format (a HyperparameterTuningJob): put studySpec, "
                        "trialJobSpec and the trial counts at the top level of the file"
                    )
                elif near:
                    hint = f"did you mean {near}?"
                else:
                    hint = "see the HyperparameterSpec fields: " + ", ".join(HYPERPARAMETER_FIELDS)
                self.fail(line, prefix + key, "is not a known field", hint=hint)

    def _extension(self, key: str, value: Any, line: int, prefix: str) -> None:
        if key in self.ext:
            self.fail(
                line,
                prefix + key,
                f"is given twice (also at line {self.ext[key].line})",
                hint="keep one of them",
            )
        self.ext[key] = Found(value, line, prefix + key)

    # -- early stopping --------------------------------------------------------------------

    def _early_stopping(self, values: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        """(on?, the pruner and its settings) from enableTrialEarlyStopping and earlyStopping."""
        return early_stopping(
            self.source,
            values["early_stopping"],
            self.ext.get("earlyStopping"),
            values["max_parallel_trials"],
        )


def early_stopping(
    source: Source, enabled: bool | None, found: Found | None, max_parallel_trials: int
) -> tuple[bool, dict[str, Any]]:
    """(on?, the pruner and its settings) from the switch (None when not given) and the
    ``earlyStopping`` mapping as found (None when not given), the settings checked by
    building the pruner."""
    if found is None or found.value is None:
        return bool(enabled), {}
    given = found.value
    config = plain(given)
    problem = pruners.check_settings(config, max_parallel_trials)
    if problem is not None:
        source.fail(
            given.lines.get(problem.key, found.line),
            f"{found.where}.{problem.key}",
            problem.what,
            hint=problem.hint,
        )
    config["pruner"] = str(config.get("pruner", pruners.DEFAULT_PRUNER)).lower()
    return (config["pruner"] != "none") if enabled is None else enabled, config
