"""Tests for flagrun.hparams: what TensorBoard's own hparams plugin reads back.

TensorBoard's loaders import TensorFlow when it is installed; the reading side runs in
a subprocess that installs ``tensorboard.compat.notf`` first, which makes TensorBoard use
its TensorFlow-free stub (the same code path as a TensorBoard installed without TF).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flagrun import hparams, jobstore, metrics, store
from flagrun.writer import MetricsWriter
from tests.factories import job_record, run_record, spec_of

# The hparams dashboard's two requests, answered by the plugin's own handlers over
# TensorBoard's own event multiplexer and data provider.
READER = """
import json, sys, types
sys.modules["tensorboard.compat.notf"] = types.ModuleType("tensorboard.compat.notf")
from google.protobuf import json_format
from tensorboard import context
from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
from tensorboard.plugins import base_plugin
from tensorboard.plugins.hparams import (
    api_pb2, backend_context, get_experiment, list_session_groups)

logdir = sys.argv[1]
mux = plugin_event_multiplexer.EventMultiplexer()
mux.AddRunsFromDirectory(logdir)
mux.Reload()
tb = base_plugin.TBContext(
    data_provider=data_provider.MultiplexerDataProvider(mux, logdir), logdir=logdir)
ctx, backend = context.RequestContext(), backend_context.Context(tb)
experiment = get_experiment.Handler(ctx, backend, "", api_pb2.GetExperimentRequest()).run()
request = api_pb2.ListSessionGroupsRequest(
    allowed_statuses=api_pb2.Status.values(),
    start_index=0, slice_size=100)
groups = list_session_groups.Handler(ctx, backend, "", request).run()
print(json.dumps({
    "modules": "tensorflow" in sys.modules,
    "experiment": json_format.MessageToDict(experiment),
    "groups": json_format.MessageToDict(groups),
}))
"""

PARAMS = [
    {"name": "units", "type": "INTEGER", "min_value": 16, "max_value": 256},
    {"name": "dropout", "type": "DOUBLE", "min_value": 0.1, "max_value": 0.5},
    {"name": "optimizer", "type": "CATEGORICAL", "categorical_values": ["adam", "sgd"]},
    {"name": "batch", "type": "DISCRETE", "discrete_values": [32, 64, 128]},
]
TRIALS = {  # trial id -> (flags, status, last val accuracy)
    1: ({"units": 32, "dropout": 0.2, "optimizer": "adam", "batch": 32}, "COMPLETED", 0.81),
    2: ({"units": 128, "dropout": 0.4, "optimizer": "sgd", "batch": 64}, "FAILED", 0.42),
    3: ({"units": 64, "dropout": 0.3, "optimizer": "adam", "batch": 128}, "PRUNED", 0.55),
}
STATUS = {"COMPLETED": "STATUS_SUCCESS", "FAILED": "STATUS_FAILURE", "PRUNED": "STATUS_UNKNOWN"}


def tensorboard_view(logdir: Path) -> dict:
    """The experiment and session groups as TensorBoard's hparams plugin serves them."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(READER), str(logdir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    view = json.loads(done.stdout)
    assert view["modules"] is False  # the reader really ran without TensorFlow
    return view


def write_keras_like_run(run_dir: Path, flags: dict, status: str, val_acc: float) -> None:
    """A run folder as a Keras trial leaves it: run.json and train/validation events."""
    run_dir.mkdir(parents=True)
    for side, final in (("train", val_acc + 0.1), ("validation", val_acc)):
        writer = MetricsWriter(run_dir / "logs" / side)
        writer.log({"epoch_accuracy": final - 0.2, "epoch_loss": 1.0})
        writer.log({"epoch_accuracy": final, "epoch_loss": 0.5})
        writer.close()
    store.write_run(
        run_dir,
        run_record(
            run_dir.name,
            status,
            flags=flags,
            start="2024-05-01T10:00:00.000Z",
            end="2024-05-01T10:01:00.000Z",
            metrics=metrics.summarize(run_dir),
        ),
    )


def make_job(tmp_path: Path) -> Path:
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    spec = spec_of(PARAMS, goal="MAXIMIZE", metric_tag="val_acc")
    jobstore.write_job(job_dir, job_record(spec=spec))
    for trial_id, (flags, status, val_acc) in TRIALS.items():
        write_keras_like_run(jobstore.trial_dir(job_dir, trial_id), flags, status, val_acc)
    return job_dir


def sessions_by_name(view: dict) -> dict[str, dict]:
    groups = view["groups"].get("sessionGroups", [])
    assert all(len(group["sessions"]) == 1 for group in groups)
    return {group["sessions"][0]["name"]: group for group in groups}


def status_of(session: dict) -> str:
    return session.get("status", "STATUS_UNKNOWN")  # MessageToDict leaves out the default


def metric(group: dict, group_name: str, tag: str) -> float:
    values = group["sessions"][0].get("metricValues", [])
    found = [v["value"] for v in values if v["name"] == {"group": group_name, "tag": tag}]
    assert found, f"no {group_name}/{tag} in {values}"
    return found[0]


def test_tensorboard_shows_every_trial_of_a_job(tmp_path):
    job_dir = make_job(tmp_path)
    hparams.write_job_hparams(job_dir)
    hparams.write_job_hparams(job_dir)  # idempotent: no second session per trial

    view = tensorboard_view(job_dir)

    experiment = view["experiment"]
    infos = {info["name"]: info for info in experiment["hparamInfos"]}
    assert infos["units"]["domainInterval"] == {"minValue": 16.0, "maxValue": 256.0}
    assert infos["dropout"]["domainInterval"] == {"minValue": 0.1, "maxValue": 0.5}
    assert infos["optimizer"]["type"] == "DATA_TYPE_STRING"
    assert infos["optimizer"]["domainDiscrete"] == ["adam", "sgd"]
    assert infos["batch"]["domainDiscrete"] == [32.0, 64.0, 128.0]
    objective = experiment["metricInfos"][0]
    assert objective["name"] == {"group": "logs/validation", "tag": "epoch_accuracy"}
    assert objective["displayName"] == "val_acc" and "MAXIMIZE" in objective["description"]
    others = {(m["name"]["group"], m["name"]["tag"]) for m in experiment["metricInfos"][1:]}
    assert ("logs/train", "epoch_loss") in others and ("logs/validation", "epoch_loss") in others

    sessions = sessions_by_name(view)
    assert set(sessions) == {f"trials/{trial_id}" for trial_id in TRIALS}
    for trial_id, (flags, status, val_acc) in TRIALS.items():
        group = sessions[f"trials/{trial_id}"]
        assert group["hparams"] == flags
        assert status_of(group["sessions"][0]) == STATUS[status]
        assert metric(group, "logs/validation", "epoch_accuracy") == pytest.approx(val_acc)
        assert group["sessions"][0]["endTimeSecs"] - group["sessions"][0]["startTimeSecs"] == 60


def test_a_plain_run_is_a_session_with_inferred_experiment(tmp_path):
    runs = tmp_path / "runs"
    run_dir = runs / "2024-05-01T10-00-00Z"
    write_keras_like_run(run_dir, {"units": 8, "act": "relu", "note": None}, "COMPLETED", 0.7)
    hparams.write_run_session(run_dir)

    view = tensorboard_view(runs)  # a run at the logdir root (".") would get no metrics

    names = {info["name"] for info in view["experiment"]["hparamInfos"]}
    assert names == {"units", "act"}  # None is left out
    group = sessions_by_name(view)[run_dir.name]
    assert group["hparams"] == {"units": 8, "act": "relu"}
    assert status_of(group["sessions"][0]) == "STATUS_SUCCESS"
    assert metric(group, "logs/validation", "epoch_accuracy") == pytest.approx(0.7)


def test_running_session_gets_its_status_when_it_ends(tmp_path):
    runs = tmp_path / "runs"
    run_dir = runs / "r1"
    write_keras_like_run(run_dir, {"units": 8}, "RUNNING", 0.5)
    hparams.write_session(run_dir, {"units": 8}, "RUNNING", start_time=100.0)
    assert not (run_dir / hparams.END_FILE).exists()
    session = sessions_by_name(tensorboard_view(runs))["r1"]["sessions"][0]
    assert status_of(session) == "STATUS_UNKNOWN" and "endTimeSecs" not in session

    hparams.write_session(run_dir, {"units": 8}, "KILLED", start_time=100.0, end_time=160.0)
    session = sessions_by_name(tensorboard_view(runs))["r1"]["sessions"][0]
    assert status_of(session) == "STATUS_UNKNOWN" and session["endTimeSecs"] == 160.0


def test_experiment_before_any_trial_guesses_the_keras_tag(tmp_path):
    hparams.write_experiment(tmp_path, PARAMS, "val_acc", "maximize")
    experiment = tensorboard_view(tmp_path)["experiment"]
    assert sorted(info["name"] for info in experiment["hparamInfos"]) == sorted(
        p["name"] for p in PARAMS
    )
    objective = experiment["metricInfos"]
    assert objective == [
        {
            "name": {"group": "logs/validation", "tag": "epoch_accuracy"},
            "displayName": "val_acc",
            "description": "tuning objective (MAXIMIZE)",
        }
    ]
    assert hparams._objective_name("val_acc", {}) == ("logs/validation", "epoch_accuracy")
    assert hparams._objective_name("my_score", {}) == ("logs", "my_score")
    assert hparams._objective_name("eval/f1", {}) == ("logs/eval", "f1")


def test_metrics_reader_still_sees_only_the_scalars(tmp_path):
    job_dir = make_job(tmp_path)
    trial = jobstore.trial_dir(job_dir, 1)
    before = metrics.read_scalars(trial)
    hparams.write_job_hparams(job_dir)
    assert (trial / hparams.START_FILE).is_file() and (trial / hparams.END_FILE).is_file()
    after = metrics.read_scalars(trial)
    assert after == before
    assert sorted(after) == [
        "train/epoch_accuracy",
        "train/epoch_loss",
        "validation/epoch_accuracy",
        "validation/epoch_loss",
    ]
    assert not list(job_dir.rglob(".flagrun-hparams-*"))  # no temp files left behind


def test_tags_under_logs_keep_their_slashes():
    folders = ["logs", "logs/validation", ""]
    assert hparams._split("validation/epoch_accuracy", folders) == (
        "logs/validation",
        "epoch_accuracy",
    )
    assert hparams._split("val_acc", folders) == ("logs", "val_acc")
    assert hparams._split("eval/f1", ["logs"]) == ("logs", "eval/f1")
