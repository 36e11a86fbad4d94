"""Tuning files of the kinds found in public Cloud ML and Vertex AI projects (our own
equivalents, in tests/data/cloudml): accepted or rejected as the services would, and no
input at all ends in a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flagrun.errors import SpecError
from flagrun.spec import DEFAULT_METRIC_TAG, load_spec

FILES = Path(__file__).parent / "data" / "cloudml"


def test_hyphenated_param_names_are_kept_as_written():
    spec = load_spec(FILES / "census_hyphens.yml")
    assert [p.name for p in spec.params] == ["first-layer-size", "num-layers", "scale-factor"]
    assert spec.early_stopping and spec.max_parallel_trials == 2


def test_the_services_defaults_fill_what_a_file_leaves_out():
    no_tag = load_spec(FILES / "no_metric_tag.yml")
    assert no_tag.metric_tag == DEFAULT_METRIC_TAG == "training/hptuning/metric"
    zero = load_spec(FILES / "zero_parallel_no_goal.yml")
    assert (zero.goal, zero.max_parallel_trials, zero.max_failed_trials) == ("MAXIMIZE", 1, None)


def test_null_fields_of_a_param_count_as_not_given():
    spec = load_spec(FILES / "null_discrete_values.yml")
    units, batch = spec.params
    assert (units.type, units.min_value, units.max_value) == ("INTEGER", 16, 256)
    assert (batch.type, batch.discrete_values) == ("DISCRETE", (32, 64, 128))


def test_a_resume_only_file_takes_everything_else_from_the_resumed_job():
    spec = load_spec(FILES / "resume_only.yml")
    assert (spec.resume_job_id, spec.max_trials, spec.params) == ("census_tuning_1", 12, ())


def test_a_job_config_gives_module_args_and_job_dir():
    spec = load_spec(FILES / "job_with_args.yml")
    assert spec.python_module == "trainer.task"
    assert spec.args == (
        "--train-steps",
        "100",
        "--eval-steps",
        "10",
        "--learning-rate-decay",
        "1e-3",
    )  # numbers kept as written
    assert spec.job_dir == "output"
    assert spec.max_running_time == 7200.0  # trainingInput.scheduling.maxRunningTime: 7200s
    assert "trainingInput.scheduling.maxWaitTime" in spec.ignored_fields
    assert "trainingInput.packageUris" in spec.ignored_fields
    assert "trainingInput.args" not in spec.ignored_fields


def test_a_trial_timeout_given_as_flagrun_extension_wins_over_vertex_scheduling(tmp_path):
    text = (FILES / "vertex_study.yml").read_text()
    (tmp_path / "job.yml").write_text("trialTimeout: 60\nmaxRunningTime: 600s\n" + text)
    spec = load_spec(tmp_path / "job.yml")
    assert (spec.trial_timeout, spec.max_running_time) == (60.0, 600.0)


def test_a_vertex_study_maps_onto_the_same_spec():
    spec = load_spec(FILES / "vertex_study.yml")
    assert (spec.goal, spec.metric_tag, spec.max_trials, spec.max_parallel_trials) == (
        "MAXIMIZE",
        "accuracy",
        6,
        2,
    )
    assert spec.max_failed_trials is None  # 0: unset
    assert spec.algorithm == "RANDOM_SEARCH"
    assert spec.metric_aggregation == "max"  # BEST_MEASUREMENT of a MAXIMIZE metric
    assert spec.early_stopping and spec.early_stopping_config == {"pruner": "median"}
    assert (spec.python_module, spec.args) == ("trainer.task", ("--epochs", "3"))
    assert spec.trial_timeout == 1800.0  # trialJobSpec.scheduling.timeout: each trial's limit
    assert "trialJobSpec.scheduling.restartJobOnWorkerRestart" in spec.ignored_fields
    by_name = {p.name: p for p in spec.params}
    assert by_name["learning_rate"].scale == "UNIT_LOG_SCALE"
    assert by_name["learning_rate"].bounds == (0.0001, 0.1)
    assert by_name["num-layers"].bounds == (1, 3)  # int64 written as text
    assert (by_name["third-layer-size"].parent, by_name["third-layer-size"].parent_values) == (
        "num-layers",
        (3,),
    )
    assert by_name["optimizer"].categorical_values == ("adam", "sgd")
    assert by_name["batch_size"].discrete_values == (16, 32, 64)
    assert "trialJobSpec.workerPoolSpecs[0].machineSpec" in spec.ignored_fields
    assert "displayName" in spec.ignored_fields


def test_a_vertex_and_a_cloudml_file_of_one_search_give_one_search_space(tmp_path):
    cloud = tmp_path / "cloud.yml"
    cloud.write_text(
        "trainingInput:\n  hyperparameters:\n    goal: MINIMIZE\n"
        "    hyperparameterMetricTag: loss\n    maxTrials: 5\n    params:\n"
        "      - {parameterName: lr, type: DOUBLE, minValue: 0.001, maxValue: 0.1,"
        " scaleType: UNIT_LOG_SCALE}\n"
        "      - {parameterName: units, type: DISCRETE, discreteValues: [8, 16]}\n"
    )
    vertex = tmp_path / "vertex.yml"
    vertex.write_text(
        "maxTrialCount: 5\nstudySpec:\n  metrics: [{metricId: loss, goal: MINIMIZE}]\n"
        "  parameters:\n"
        "    - {parameterId: lr, doubleValueSpec: {minValue: 0.001, maxValue: 0.1},"
        " scaleType: UNIT_LOG_SCALE}\n"
        "    - {parameterId: units, discreteValueSpec: {values: [8, 16]}}\n"
    )
    a, b = load_spec(cloud), load_spec(vertex)
    assert [p.to_dict() | {"line": 0} for p in a.params] == [
        p.to_dict() | {"line": 0} for p in b.params
    ]
    assert (a.goal, a.metric_tag, a.max_trials) == (b.goal, b.metric_tag, b.max_trials)


# file -> (line, fragment of the message, fragment of the hint)
BAD = {
    "bad_training_only.yml": (3, "trainingInput.hyperparameters is missing", "flagrun train"),
    "bad_vertex_in_cloudml.yml": (3, "trainingInput.studySpec is not a known", "Vertex AI"),
    "bad_vertex_two_metrics.yml": (4, "studySpec.metrics[1] is a second metric", "keep"),
    "bad_vertex_two_value_specs.yml": (7, "needs exactly one value spec", "integerValueSpec"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_files_get_one_line_with_file_line_and_field(name):
    line, fragment, hint = BAD[name]
    with pytest.raises(SpecError) as info:
        load_spec(FILES / name)
    first = str(info.value).splitlines()[0]
    assert first.startswith(f"{FILES / name}:{line}: "), first
    assert fragment in first
    assert hint in (info.value.hint or "")


def test_every_file_here_is_checked():
    assert {p.name for p in FILES.glob("bad_*.yml")} == set(BAD)


# -- no input gets a traceback -------------------------------------------------------------

KEYS = [
    "trainingInput", "hyperparameters", "params", "goal", "hyperparameterMetricTag",
    "maxTrials", "maxParallelTrials", "parameterName", "type", "minValue", "maxValue",
    "discreteValues", "categoricalValues", "scaleType", "args", "jobDir", "studySpec",
    "metrics", "metricId", "parameters", "parameterId", "doubleValueSpec",
    "integerValueSpec", "discreteValueSpec", "categoricalValueSpec", "values",
    "trialJobSpec", "workerPoolSpecs", "pythonPackageSpec", "conditionalParameterSpecs",
    "parameterSpec", "parentIntValues", "earlyStopping", "pruner", "resumePreviousJobId",
]  # fmt: skip
WORDS = ["DOUBLE", "INTEGER", "DISCRETE", "CATEGORICAL", "MAXIMIZE", "UNIT_LOG_SCALE", "x"]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 5),
    st.floats(allow_nan=True),
    st.sampled_from(WORDS),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_any_document_is_read_or_refused_in_one_line(tmp_path_factory, doc):
    path = tmp_path_factory.mktemp("fuzz") / "t.yml"
    path.write_text(yaml.safe_dump(doc))
    try:
        load_spec(path)
    except SpecError as exc:
        assert str(exc).startswith(str(path)), str(exc)


def _cloud(params: object) -> object:
    return {"trainingInput": {"hyperparameters": {"goal": "MAXIMIZE", "params": params}}}


def _vertex(params: object) -> object:
    return {"studySpec": {"metrics": [{"metricId": "m", "goal": "MAXIMIZE"}], "parameters": params}}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([_cloud, _vertex]), st.lists(documents, min_size=1, max_size=3))
def test_any_params_in_a_valid_frame_are_read_or_refused_in_one_line(
    tmp_path_factory, frame, params
):
    path = tmp_path_factory.mktemp("fuzz") / "t.yml"
    path.write_text(yaml.safe_dump(frame(params)))
    try:
        load_spec(path)
    except SpecError as exc:
        assert str(exc).startswith(str(path)), str(exc)
