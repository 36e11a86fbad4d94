"""Tests for flagrun.hparams: what TensorBoard's own hparams plugin reads back."""

from __future__ import annotations

from pathlib import Path

import pytest

from flagrun import hparams, jobstore, metrics, store
from flagrun.records import TrialOutcome, TrialState
from flagrun.writer import MetricsWriter
from tests.factories import job_record, run_record, spec_of
from tests.tbview import metric, sessions_by_name, tensorboard_view

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


def write_run(
    run_dir: Path,
    flags: dict,
    status: str,
    series: dict[str, list[float]],
    *,
    trial: TrialOutcome | None = None,
) -> None:
    """A run folder as a finished run leaves it: run.json, and ``series`` (event folder
    relative to the run / tag -> values) written by a real event writer."""
    run_dir.mkdir(parents=True)
    for path, values in series.items():
        folder, _, tag = path.rpartition("/")
        writer = MetricsWriter(run_dir / folder)
        for step, value in enumerate(values):
            writer.log({tag: value}, step=step)
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
            job="job" if trial else None,
            trial=trial,
        ),
    )


def keras_series(val_acc: float, folder: str = "logs") -> dict[str, list[float]]:
    """What Keras' TensorBoard callback writes into ``folder``: train/ and validation/."""
    out = {}
    for side, final in (("train", val_acc + 0.1), ("validation", val_acc)):
        out[f"{folder}/{side}/epoch_accuracy"] = [final - 0.2, final]
        out[f"{folder}/{side}/epoch_loss"] = [1.0, 0.5]
    return out


def make_job(tmp_path: Path, series_of=keras_series, metric_tag: str = "val_acc") -> Path:
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    spec = spec_of(PARAMS, goal="MAXIMIZE", metric_tag=metric_tag)
    jobstore.write_job(job_dir, job_record(spec=spec))
    for trial_id, (flags, status, val_acc) in TRIALS.items():
        state = TrialState.COMPLETE if status == "COMPLETED" else TrialState(status)
        value = None if status == "FAILED" else val_acc
        outcome = TrialOutcome(state, value, 1 if value is not None else None)
        trial_dir = jobstore.trial_dir(job_dir, trial_id)
        write_run(trial_dir, flags, status, series_of(val_acc, trial_id), trial=outcome)
    return job_dir


def status_of(session: dict) -> str:
    return session.get("status", "STATUS_UNKNOWN")  # MessageToDict leaves out the default


def test_tensorboard_shows_every_trial_of_a_job(tmp_path):
    job_dir = make_job(tmp_path, lambda val_acc, _: keras_series(val_acc))
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
    assert objective["name"] == {"tag": "val_acc"}
    assert objective["displayName"] == "val_acc" and "MAXIMIZE" in objective["description"]
    others = [m["name"] for m in experiment["metricInfos"][1:]]
    assert others == [{"tag": "train/epoch_accuracy"}, {"tag": "train/epoch_loss"},
                      {"tag": "validation/epoch_loss"}]  # fmt: skip

    sessions = sessions_by_name(view)
    assert set(sessions) == {f"trials/{trial_id}" for trial_id in TRIALS}
    for trial_id, (flags, status, val_acc) in TRIALS.items():
        group = sessions[f"trials/{trial_id}"]
        assert group["hparams"] == flags
        assert status_of(group["sessions"][0]) == STATUS[status]
        assert metric(group, "", "val_acc") == pytest.approx(val_acc)  # the objective
        assert metric(group, "", "validation/epoch_loss") == 0.5
        assert group["sessions"][0]["endTimeSecs"] - group["sessions"][0]["startTimeSecs"] == 60


def test_objective_column_when_events_sit_directly_in_logs(tmp_path):
    # TF1's FileWriter("logs") and flagrun.log_metrics: plain tags in logs/, beside the
    # session files in the run folder. Which folder the tag was in used to depend on
    # os.walk's order.
    job_dir = make_job(tmp_path, lambda val_acc, _: {"logs/val_acc": [0.1, val_acc]})
    hparams.write_job_hparams(job_dir)
    sessions = sessions_by_name(tensorboard_view(job_dir))
    for trial_id, (_, _, val_acc) in TRIALS.items():
        assert metric(sessions[f"trials/{trial_id}"], "", "val_acc") == pytest.approx(val_acc)


def test_timestamped_writer_folders_share_one_set_of_columns(tmp_path):
    # Keras' tutorial: TensorBoard(log_dir="logs/fit/" + datetime.now().strftime(...)).
    def tutorial(val_acc: float, trial_id: int) -> dict[str, list[float]]:
        return keras_series(val_acc, f"logs/fit/20261202-05542{trial_id}")

    job_dir = make_job(tmp_path, tutorial, metric_tag="accuracy")
    hparams.write_job_hparams(job_dir)
    view = tensorboard_view(job_dir)
    names = [m["name"]["tag"] for m in view["experiment"]["metricInfos"]]
    assert names == ["accuracy", "train/epoch_loss", "validation/epoch_accuracy",
                     "validation/epoch_loss"]  # fmt: skip
    sessions = sessions_by_name(view)
    for trial_id, (_, status, val_acc) in TRIALS.items():
        group = sessions[f"trials/{trial_id}"]
        # 'accuracy' is train/epoch_accuracy (Keras' name for the training side); a failed
        # trial has no objective value, so its column shows the metric's last point.
        expected = val_acc if status != "FAILED" else val_acc + 0.1
        assert metric(group, "", "accuracy") == pytest.approx(expected)
        assert metric(group, "", "validation/epoch_accuracy") == pytest.approx(val_acc)


def test_a_plain_run_is_a_session_with_its_metrics_by_name(tmp_path):
    runs = tmp_path / "runs"
    run_dir = runs / "2024-05-01T10-00-00Z"
    flags = {"units": 8, "act": "relu", "note": None}
    write_run(run_dir, flags, "COMPLETED", keras_series(0.7, "logs/fit/20240501-100000"))
    hparams.write_run_session(run_dir)

    view = tensorboard_view(runs)  # a run at the logdir root (".") would get no metrics

    names = {info["name"] for info in view["experiment"]["hparamInfos"]}
    assert names == {"units", "act"}  # None is left out
    group = sessions_by_name(view)[run_dir.name]
    assert group["hparams"] == {"units": 8, "act": "relu"}
    assert status_of(group["sessions"][0]) == "STATUS_SUCCESS"
    assert metric(group, "", "validation/epoch_accuracy") == pytest.approx(0.7)


def test_running_session_gets_its_status_when_it_ends(tmp_path):
    runs = tmp_path / "runs"
    run_dir = runs / "r1"
    write_run(run_dir, {"units": 8}, "RUNNING", keras_series(0.5))
    hparams.write_session(run_dir, {"units": 8}, "RUNNING", start_time=100.0)
    assert not (run_dir / hparams.END_FILE).exists()
    session = sessions_by_name(tensorboard_view(runs))["r1"]["sessions"][0]
    assert status_of(session) == "STATUS_UNKNOWN" and "endTimeSecs" not in session

    hparams.write_session(run_dir, {"units": 8}, "KILLED", start_time=100.0, end_time=160.0)
    session = sessions_by_name(tensorboard_view(runs))["r1"]["sessions"][0]
    assert status_of(session) == "STATUS_UNKNOWN" and session["endTimeSecs"] == 160.0


def test_experiment_before_any_trial_names_the_objective_by_the_yaml_tag(tmp_path):
    hparams.write_experiment(tmp_path, PARAMS, "val_acc", "maximize")
    experiment = tensorboard_view(tmp_path)["experiment"]
    assert sorted(info["name"] for info in experiment["hparamInfos"]) == sorted(
        p["name"] for p in PARAMS
    )
    assert experiment["metricInfos"] == [
        {
            "name": {"tag": "val_acc"},
            "displayName": "val_acc",
            "description": "tuning objective (MAXIMIZE)",
        }
    ]


def test_metrics_reader_still_sees_only_the_scalars(tmp_path):
    job_dir = make_job(tmp_path, lambda val_acc, _: keras_series(val_acc))
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
