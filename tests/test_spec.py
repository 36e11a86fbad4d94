"""Tests for flagrun.spec: the tuning YAML, its validation and the --grid spec."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from flagrun.errors import SpecError, UsageError
from flagrun.flags import Flag
from flagrun.spec import TuningSpec, check_against_flags, grid_spec, load_spec

SPECS = Path(__file__).parent / "data" / "specs"


class Declared(dict):
    """What introspect.declared_flags returns: name -> Flag, plus ``complete``."""

    def __init__(self, *flags: Flag, complete: bool = True) -> None:
        super().__init__({f.name: f for f in flags})
        self.complete = complete


MNIST_FLAGS = Declared(
    Flag("dense_units1", "integer", 128),
    Flag("dropout1", "numeric", 0.4),
    Flag("dense_units2", "integer", 128),
    Flag("dropout2", "numeric", 0.3),
)

# file -> (line, fragment of the message, fragment of the hint)
BAD = {
    "bad_empty.yml": (1, "the file is empty", "goal"),
    "bad_not_mapping.yml": (1, "not a mapping", "trainingInput"),
    "bad_malformed.yml": ("5:10", "not valid YAML", "indentation"),
    "bad_missing_params.yml": (1, "params is missing", "params"),
    "bad_empty_params.yml": (3, "params is empty", "parameterName"),
    "bad_unknown_type.yml": (5, "params[0] (dropout).type 'FLOAT' is not one of", "DOUBLE"),
    "bad_unknown_scale.yml": (8, "params[0] (dropout).scaleType 'LOG'", "UNIT_LOG_SCALE"),
    "bad_min_gt_max.yml": (
        10,
        "params[1] (dropout2).minValue 0.9 is greater than maxValue 0.5",
        "swap minValue and maxValue",
    ),
    "bad_log_min_zero.yml": (6, "params[0] (lr).minValue 0 is not above 0", "raise minValue"),
    "bad_reverse_log_negative.yml": (6, "UNIT_REVERSE_LOG_SCALE needs", "raise minValue"),
    "bad_integer_bounds.yml": (6, "(units).minValue 1.5 is not a whole number", "DOUBLE"),
    "bad_missing_categorical.yml": (4, "categoricalValues is missing", "categoricalValues:"),
    "bad_empty_discrete.yml": (6, "(batch).discreteValues is empty", "discreteValues:"),
    "bad_discrete_non_numeric.yml": (6, "discreteValues[1] 'large' is not a number", "CATEGORICAL"),
    "bad_duplicate_name.yml": (8, "'units' is already used by params[0]", "one param"),
    "bad_max_trials_negative.yml": (3, "maxTrials -3 is less than 1", "1 or more"),
    "bad_max_parallel_negative.yml": (3, "maxParallelTrials -1 is less than 1", "1 or more"),
    "bad_grid_double.yml": (10, "params[1] (dropout).type DOUBLE cannot be searched", "DISCRETE"),
    "bad_unknown_goal.yml": (1, "goal 'MAXIMISE' is not one of", "MAXIMIZE"),
    "bad_typo_field.yml": (3, "maxTrails is not a known field", "did you mean maxTrials?"),
    "bad_param_typo.yml": (7, "(units).maxVal is not a param field", "did you mean maxValue?"),
    "bad_missing_bound.yml": (4, "(units).maxValue is missing", "minValue and maxValue"),
    "bad_parent_missing.yml": (13, "'num_layer' is not another param", "did you mean num_layers?"),
    "bad_parent_value.yml": (13, "parentIntValues 5 is not a value of num_layers", "1..3"),
    "bad_nested_parent_value.yml": (9, "'rmsprop' is not a value of optimizer", "adam, sgd"),
    "bad_duplicate_key.yml": ("6:5", "duplicate key 'type'", "indentation"),
    "bad_pruner.yml": (3, "earlyStopping.pruner 'medain'", "did you mean median?"),
    "bad_pruner_setting.yml": (
        3,
        "earlyStopping.n_warmup is not a setting of the median pruner",
        "did you mean n_warmup_steps?",
    ),
    "bad_pruner_value.yml": (5, "earlyStopping.percentile 500 is not accepted", "0 and 100"),
    "bad_aggregation.yml": (3, "metricAggregation 'mean' is not one of", "last"),
    "bad_cloud_misplaced.yml": (11, "trainingInput.maxTrials belongs in the hyper", "indent"),
    "bad_seed.yml": (3, "seed 'lucky' is not a whole number", "seed: 42"),
    "bad_scheduling.yml": (
        4,
        "trainingInput.scheduling.maxRuntime is not a scheduling field",
        "did you mean maxRunningTime?",
    ),
    "bad_max_running_time.yml": (
        3,
        "trainingInput.scheduling.maxRunningTime '2h' is not a positive number of seconds",
        "7200s",
    ),
}


def test_every_bad_file_has_an_expectation():
    assert {p.name for p in SPECS.glob("bad_*.yml")} == set(BAD)
    assert len(BAD) >= 20


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_spec_names_file_line_field_and_fix(name):
    line, fragment, hint = BAD[name]
    with pytest.raises(SpecError) as info:
        load_spec(SPECS / name)
    message = str(info.value).splitlines()[0]
    assert message.startswith(f"{SPECS / name}:{line}: "), message
    assert fragment in message
    assert hint in info.value.hint


def test_a_whole_cloudml_job_config_parses():
    spec = load_spec(SPECS / "good_cloudml_job.yml")
    assert (spec.goal, spec.metric_tag, spec.max_trials, spec.max_parallel_trials) == (
        "MAXIMIZE",
        "acc",
        10,
        2,
    )
    assert [(p.name, p.type, p.min_value, p.max_value) for p in spec.params] == [
        ("dropout1", "DOUBLE", 0.2, 0.6),
        ("dropout2", "DOUBLE", 0.1, 0.5),
    ]
    assert spec.ignored_fields == ("trainingInput.scaleTier", "trainingInput.masterType")
    assert spec.algorithm == "TPE"
    check_against_flags(spec, MNIST_FLAGS)


def test_three_shapes_give_the_same_spec(tmp_path):
    params = "params:\n- {parameterName: u, type: INTEGER, minValue: 1, maxValue: 4}\n"
    head = "goal: MINIMIZE\nhyperparameterMetricTag: loss\n"
    shapes = {
        "bare": head + params,
        "top": "hyperparameters:\n" + _indent(head + params),
        "cloud": "trainingInput:\n  region: x\n  hyperparameters:\n" + _indent(head + params, 4),
    }
    specs = []
    for name, text in shapes.items():
        (tmp_path / f"{name}.yml").write_text(text)
        spec = load_spec(tmp_path / f"{name}.yml")
        params_no_line = tuple(dataclasses.replace(p, line=0) for p in spec.params)
        specs.append((spec.goal, spec.metric_tag, params_no_line, spec.max_trials))
    assert specs[0] == specs[1] == specs[2]
    assert specs[0][3] == 1  # Cloud ML's default maxTrials


def _indent(text: str, n: int = 2) -> str:
    return "".join(" " * n + line + "\n" for line in text.splitlines())


def test_extensions_and_defaults_are_read():
    spec = load_spec(SPECS / "good_extensions.yml")
    assert spec.script == "train.py"
    assert spec.metric_aggregation == "max"
    assert spec.trial_timeout == 600.0
    assert spec.seed == 7
    assert spec.early_stopping is True
    assert spec.early_stopping_config == {"pruner": "hyperband", "min_resource": 1}
    assert spec.max_failed_trials == 3
    assert spec.resume_job_id == "job_1"
    by_name = {p.name: p for p in spec.params}
    assert by_name["lr"].min_value == 1e-4 and by_name["lr"].scale == "UNIT_LOG_SCALE"
    assert by_name["batch"].discrete_values == (32, 64, 128)
    assert by_name["nesterov"].parent == "optimizer"
    assert by_name["nesterov"].parent_values == ("sgd",)


def test_nested_conditionals_are_flattened_parents_first():
    spec = load_spec(SPECS / "good_conditional_grid.yml")
    names = [p.name for p in spec.params]
    assert names.index("num_layers") < names.index("units3")
    units3 = spec.params[names.index("units3")]
    assert (units3.parent, units3.parent_values) == ("num_layers", (3,))
    assert units3.discrete_values == (0.1, 0.3, 0.5)
    assert spec.algorithm == "GRID_SEARCH"


def test_to_dict_is_json_and_round_trips():
    for name in ("good_cloudml.yml", "good_extensions.yml", "good_conditional_grid.yml"):
        spec = load_spec(SPECS / name)
        restored = TuningSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
        assert restored == spec


def test_unknown_flag_names_script_declared_and_closest():
    spec = load_spec(SPECS / "good_cloudml.yml")
    declared = Declared(Flag("dropout_1", "numeric", 0.4), Flag("dropout2", "numeric", 0.3))
    with pytest.raises(SpecError) as info:
        check_against_flags(spec, declared)
    message = str(info.value)
    assert "good_cloudml.yml:10: params (dropout1)" in message
    assert "declared: dropout2, dropout_1" in message
    assert "did you mean dropout_1?" in info.value.hint


def test_unknown_flag_is_skipped_when_declarations_are_incomplete():
    spec = load_spec(SPECS / "good_cloudml.yml")
    incomplete = Declared(Flag("dropout2", "numeric", 0.3), complete=False)
    assert check_against_flags(spec, incomplete) is None  # dropout1 may well exist
    wrong_type = Declared(Flag("dropout2", "integer", 3), complete=False)
    with pytest.raises(SpecError, match="dropout2"):  # a declared one is still checked
        check_against_flags(spec, wrong_type)


@pytest.mark.parametrize(
    ("param", "flag_type", "fragment"),
    [
        ("{parameterName: u, type: DOUBLE, minValue: 1, maxValue: 4}", "integer", "is DOUBLE"),
        (
            "{parameterName: u, type: CATEGORICAL, categoricalValues: [a, b]}",
            "numeric",
            "not numeric",
        ),
        (
            "{parameterName: u, type: CATEGORICAL, categoricalValues: [yes, maybe]}",
            "boolean",
            "bool",
        ),
        ("{parameterName: u, type: DISCRETE, discreteValues: [1, 2.5]}", "integer", "fractional"),
        ("{parameterName: u, type: INTEGER, minValue: 1, maxValue: 4}", "boolean", "boolean"),
    ],
)
def test_type_mismatch_with_the_flag_is_reported(tmp_path, param, flag_type, fragment):
    path = tmp_path / "t.yml"
    path.write_text(f"goal: MAXIMIZE\nhyperparameterMetricTag: acc\nparams:\n- {param}\n")
    with pytest.raises(SpecError, match=fragment) as info:
        check_against_flags(load_spec(path), Declared(Flag("u", flag_type, 1)))
    assert f"{path}:4:" in str(info.value)


@pytest.mark.parametrize(
    ("values", "flag_type"),
    [("[true, false]", "boolean"), ("['1', '2']", "integer"), ("[0.1, 1e-3]", "numeric")],
)
def test_categorical_values_the_flag_parser_accepts_pass(tmp_path, values, flag_type):
    path = tmp_path / "t.yml"
    param = f"{{parameterName: u, type: CATEGORICAL, categoricalValues: {values}}}"
    path.write_text(f"goal: MAXIMIZE\nhyperparameterMetricTag: acc\nparams:\n- {param}\n")
    check_against_flags(load_spec(path), Declared(Flag("u", flag_type, None)))
    assert load_spec(path).params[0].categorical_values == tuple(
        values[1:-1].replace("'", "").split(", ")
    )


def test_missing_file_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "nope.yml")


def test_yaml_tags_are_refused_by_the_safe_loader(tmp_path):
    path = tmp_path / "t.yml"
    path.write_text("!!python/object/apply:os.system ['true']\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(path)


def test_grid_spec_types_values_by_flags_and_samples():
    declared = Declared(
        Flag("dropout", "numeric", 0.2), Flag("units", "integer", 64), Flag("act", "string", "")
    )
    spec = grid_spec(
        {"dropout": ["0.3", "0.2"], "units": ["64", "128"], "act": ["relu", "tanh"]}, declared
    )
    assert spec.algorithm == "GRID_SEARCH" and spec.max_trials == 8
    by_name = {p.name: p for p in spec.params}
    assert by_name["dropout"].discrete_values == (0.2, 0.3)
    assert by_name["units"].discrete_values == (64, 128)
    assert by_name["act"].categorical_values == ("relu", "tanh")
    assert grid_spec({"units": ["1", "2", "3"]}, declared, sample=0.5).max_trials == 2


def test_grid_spec_refuses_bad_values_and_unknown_flags():
    declared = Declared(Flag("units", "integer", 64))
    with pytest.raises(UsageError, match="not a whole number"):
        grid_spec({"units": ["64", "1.5"]}, declared)
    with pytest.raises(UsageError, match="declares no flag") as info:
        grid_spec({"unit": ["1"]}, declared)
    assert "units" in info.value.hint
    with pytest.raises(UsageError, match="--sample"):
        grid_spec({"units": ["1"]}, declared, sample=1.5)


def test_grid_spec_booleans_and_undeclared_flags_of_an_incomplete_script():
    declared = Declared(Flag("bn", "boolean", False), complete=False)
    spec = grid_spec({"bn": ["TRUE", "no"], "units": ["8", "16"], "act": ["relu"]}, declared)
    by_name = {p.name: p for p in spec.params}
    assert by_name["bn"].categorical_values == ("true", "false")
    assert by_name["units"].discrete_values == (8, 16)
    assert by_name["act"].categorical_values == ("relu",)
    assert (spec.metric_tag, spec.max_trials) == ("val_accuracy", 4)
    with pytest.raises(UsageError, match="true or false"):
        grid_spec({"bn": ["maybe"]}, declared)


def test_every_scalar_attribute_of_the_spec_is_one_row_of_the_field_table():
    from flagrun.formats.cloudml import FIELDS

    attributes = [f.attribute for f in FIELDS]
    assert len(set(attributes)) == len(attributes)
    not_scalar = {"params", "ignored_fields", "path"}
    assert set(attributes) == {f.name for f in dataclasses.fields(TuningSpec)} - not_scalar


def test_a_field_written_empty_counts_as_not_given(tmp_path):
    path = tmp_path / "t.yml"
    path.write_text(
        "goal: MAXIMIZE\nhyperparameterMetricTag: acc\nmaxTrials:\nmetricAggregation:\n"
        "seed:\nparams:\n- {parameterName: u, type: INTEGER, minValue: 1, maxValue: 4}\n"
    )
    spec = load_spec(path)
    assert (spec.max_trials, spec.metric_aggregation, spec.seed) == (1, "last", None)


def test_importing_the_spec_loads_neither_yaml_nor_optuna():
    import subprocess
    import sys

    probe = (
        "import sys, flagrun.spec, flagrun.formats, flagrun.pruners\n"
        "print(sorted(m for m in ('yaml', 'optuna') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("kind", ["CATEGORICAL", "DISCRETE"])
def test_a_hundred_thousand_values_read_in_linear_time(tmp_path, kind):
    import time

    if kind == "CATEGORICAL":
        param = {"type": kind, "categoricalValues": [f"v{i}" for i in range(100_000)]}
    else:
        param = {"type": kind, "discreteValues": list(range(100_000))}
    hyper = {"goal": "MAXIMIZE", "hyperparameterMetricTag": "acc", "maxTrials": 1,
             "params": [{"parameterName": "p", **param}]}  # fmt: skip
    path = tmp_path / "big.yml"
    path.write_text(json.dumps({"trainingInput": {"hyperparameters": hyper}}))
    started = time.monotonic()
    spec = load_spec(path)
    took = time.monotonic() - started
    [read] = spec.params
    assert len(read.categorical_values or read.discrete_values) == 100_000
    assert took < 10, f"{took:.1f} s"  # was ~115 s: each value was looked for in a list
