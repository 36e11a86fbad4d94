"""Cloud ML trainers as they are, tuned by real `flagrun tune` processes: an argparse package
run as `python -m trainer.task` (hyphenated args, sibling imports, a required --job-dir,
outputs kept apart by TF_CONFIG's trial), reporting through the real cloudml-hypertune;
the same package from a Vertex AI file; `flagrun check` on good and bad files."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.helpers import flagrun, only_job

pytest.importorskip("hypertune")  # cloudml-hypertune, from the dev extras

MODEL = """
def accuracy(size, rate, epoch):
    return 1.0 - abs(size - 200) / 1000 - abs(rate - 0.01) - 0.1 / (epoch + 1)
"""
TASK = """
import argparse
import json
import os
import time

import hypertune

from trainer import model


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--job-dir", required=True)
    parser.add_argument("--train-files", required=True)
    parser.add_argument("--first-layer-size", type=int, default=100)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--sleep", type=float, default=0.0)
    args, _ = parser.parse_known_args()
    trial = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {}).get("trial", "")
    output = os.path.join(args.job_dir, trial)
    os.makedirs(output, exist_ok=True)
    with open(os.path.join(output, "model.json"), "w") as f:
        json.dump({"size": args.first_layer_size, "files": args.train_files}, f)
    reporter = hypertune.HyperTune()
    for epoch in range(args.epochs):
        time.sleep(args.sleep)
        value = model.accuracy(args.first_layer_size, args.learning_rate, epoch)
        reporter.report_hyperparameter_tuning_metric(
            hyperparameter_metric_tag=os.environ.get("CLOUD_ML_HP_METRIC_TAG", "accuracy"),
            metric_value=value,
            global_step=epoch,
        )


if __name__ == "__main__":
    main()
"""
HPTUNING = """
trainingInput:
  scaleTier: STANDARD_1
  hyperparameters:
    goal: MAXIMIZE
    hyperparameterMetricTag: accuracy
    maxTrials: 4
    maxParallelTrials: 30
    params:
      - parameterName: first-layer-size
        type: INTEGER
        minValue: 50
        maxValue: 500
      - parameterName: learning-rate
        type: DOUBLE
        minValue: 0.001
        maxValue: 0.1
        scaleType: UNIT_LOG_SCALE
"""
VERTEX = """
displayName: trainer-tuning
maxTrialCount: 3
parallelTrialCount: 2
studySpec:
  metrics: [{metricId: accuracy, goal: MAXIMIZE}]
  parameters:
    - parameterId: first-layer-size
      integerValueSpec: {minValue: "50", maxValue: "500"}
    - parameterId: learning-rate
      doubleValueSpec: {minValue: 0.001, maxValue: 0.1}
      scaleType: UNIT_LOG_SCALE
trialJobSpec:
  workerPoolSpecs:
    - machineSpec: {machineType: n1-standard-4}
      replicaCount: 1
      pythonPackageSpec:
        executorImageUri: us-docker.pkg.dev/vertex-ai/training/sklearn-cpu.1-0:latest
        packageUris: [gs://bucket/trainer-0.1.tar.gz]
        pythonModule: trainer.task
        args: [--train-files, data/train.csv]
"""


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """A Cloud ML trainer package, unchanged: trainer/{__init__,model,task}.py."""
    (tmp_path / "trainer").mkdir()
    (tmp_path / "trainer" / "__init__.py").write_text("")
    (tmp_path / "trainer" / "model.py").write_text(MODEL)
    (tmp_path / "trainer" / "task.py").write_text(TASK)
    (tmp_path / "hptuning_config.yaml").write_text(HPTUNING)
    (tmp_path / "vertex.yaml").write_text(VERTEX)
    return tmp_path


def test_an_argparse_package_tunes_unchanged(package):
    done = flagrun(
        package,
        "tune",
        "-m",
        "trainer.task",
        "--config",
        "hptuning_config.yaml",
        "--progress",
        "plain",
        "--job-dir",
        "output",
        "--",
        "--train-files",
        "data/train.csv",
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "running 2 at a time; --parallel N overrides" in done.stdout  # 30 > 2 cores
    job = only_job(package)
    rows = [json.loads(line) for line in (job / "trials.jsonl").read_text().splitlines()]
    final = {r["trialId"]: r for r in rows if r["state"] != "RUNNING"}
    assert sorted(final) == [1, 2, 3, 4]
    assert all(r["state"] == "COMPLETE" for r in final.values())
    for trial_id, row in final.items():
        # TF_CONFIG's trial kept each trial's output apart under the one --job-dir
        written = json.loads((package / "output" / str(trial_id) / "model.json").read_text())
        assert written == {
            "size": row["hyperparameters"]["first-layer-size"],
            "files": "data/train.csv",
        }
        run = json.loads((job / "trials" / str(trial_id) / "run.json").read_text())
        assert run["argv"][:3] == ["python", "-m", "trainer.task"]
        assert run["argv"][3:6] == [
            "--train-files",
            "data/train.csv",
            f"--job-dir={package / 'output'}",
        ]
        assert f"--first-layer-size={row['hyperparameters']['first-layer-size']}" in run["argv"]
        # the objective came from the hypertune file, read as the trial ran
        assert run["metrics"]["accuracy"]["step"] == 2
        assert row["objectiveValue"] == pytest.approx(run["metrics"]["accuracy"]["value"])


def test_each_trial_gets_its_run_folder_as_job_dir_when_none_is_given(package):
    done = flagrun(
        package,
        "tune",
        "trainer/task.py",  # a script inside a package runs as python -m trainer.task
        "--config",
        "hptuning_config.yaml",
        "--max-trials",
        "2",
        "--progress",
        "quiet",
        "--",
        "--train-files",
        "x.csv",
    )
    assert done.returncode == 0, done.stderr
    job = only_job(package)
    for trial_id in (1, 2):
        trial_dir = job / "trials" / str(trial_id)
        assert (trial_dir / str(trial_id) / "model.json").is_file()
        assert (trial_dir / "hypertune" / "output.metrics").is_file()


def test_a_vertex_file_runs_the_same_package(package):
    done = flagrun(package, "tune", "--config", "vertex.yaml", "--progress", "plain")
    assert done.returncode == 0, done.stderr
    job = only_job(package)
    record = json.loads((job / "job.json").read_text())
    assert record["launch"]["module"] == "trainer.task"
    assert record["launch"]["args"] == ["--train-files", "data/train.csv"]
    assert record["counts"]["COMPLETE"] == 3
    assert "trialJobSpec.workerPoolSpecs[0].machineSpec" in done.stdout


@pytest.mark.slow
def test_a_hypertune_trainer_is_pruned_from_its_live_reports(package):
    config = package / "pruned.yaml"
    config.write_text(  # a grid whose last trial is hopeless: it must be pruned live
        textwrap.dedent(
            """
            trainingInput:
              hyperparameters:
                goal: MAXIMIZE
                hyperparameterMetricTag: accuracy
                algorithm: GRID_SEARCH
                maxTrials: 4
                earlyStopping: {pruner: median, n_startup_trials: 3}
                params:
                  - {parameterName: first-layer-size, type: DISCRETE,
                     discreteValues: [200, 210, 220, 900]}
            """
        )
    )
    done = flagrun(
        package,
        "tune",
        "-m",
        "trainer.task",
        "--config",
        "pruned.yaml",
        "--progress",
        "plain",
        "--",
        "--train-files",
        "x",
        "--epochs",
        "8",
        "--sleep",
        "0.6",
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    record = json.loads((only_job(package) / "job.json").read_text())
    assert record["counts"] == {"COMPLETE": 3, "PRUNED": 1, "FAILED": 0, "RUNNING": 0}, done.stdout
    assert "trial 4 PRUNED" in done.stdout


def test_check_shows_the_job_and_starts_nothing(package):
    done = flagrun(
        package, "check", "hptuning_config.yaml", "trainer/task.py", "--", "--train-files", "x"
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "trainer.task" in out and "argparse" in out
    assert "first-layer-size     INTEGER     50 .. 500 linear" in out
    assert "ignored locally (cloud only): trainingInput.scaleTier" in out
    assert "declares --job-dir: each trial gets its run folder" in out
    assert "  1: python -m trainer.task --train-files x --job-dir=runs/JOB/trials/1 " in out
    assert "nothing was started" in out
    assert not (package / "runs").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["hptuning_config.yaml", "trainer/task.py"],
            "trainer.task requires --train-files, which neither",
        ),
        (["missing.yaml", "trainer/task.py"], "missing.yaml: tuning file not found"),
        (["bad.yaml", "trainer/task.py", "--", "--train-files", "x"], "bad.yaml:7: params"),
        (["underscores.yaml", "trainer/task.py", "--", "--train-files", "x"], "spelled"),
        (["hptuning_config.yaml", "-m", "trainer.nope"], "module trainer.nope not found"),
    ],
)
def test_check_refuses_in_one_line(package, args, message):
    (package / "bad.yaml").write_text(
        "trainingInput:\n  hyperparameters:\n    goal: MAXIMIZE\n"
        "    hyperparameterMetricTag: accuracy\n    params:\n"
        "      - parameterName: first-layer-size\n"
        "        type: FLOAT\n        minValue: 1\n        maxValue: 2\n"
    )
    (package / "underscores.yaml").write_text(
        HPTUNING.replace("first-layer-size", "first_layer_size")
    )
    done = flagrun(package, "check", *args)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    first = done.stderr.splitlines()[0]
    assert message in first, done.stderr
    assert not (package / "runs").exists()


def test_arguments_after_the_double_dash_are_the_trainers(package):
    """`tune --config x -- --flag` took --flag for the script."""
    (package / "with_module.yaml").write_text(
        HPTUNING.replace("  scaleTier: STANDARD_1", "  pythonModule: trainer.task")
    )
    done = flagrun(
        package, "tune", "--config", "with_module.yaml", "--dry-run", "--", "--train-files", "y"
    )
    assert done.returncode == 0, done.stderr
    assert "--train-files y --job-dir=runs/JOB/trials/1" in done.stdout


FLAGS_TRAINER = """
import flagrun
from flagrun import flag_integer, flag_numeric, flags

FLAGS = flags(flag_integer("first_layer_size", 10), flag_numeric("learning-rate", 0.1))
flagrun.log_metrics({"accuracy": FLAGS.first_layer_size * FLAGS["learning-rate"]}, step=0)
"""


def test_hyphenated_params_tune_a_flags_script_either_spelling(tmp_path):
    (tmp_path / "train.py").write_text(textwrap.dedent(FLAGS_TRAINER))
    (tmp_path / "tuning.yml").write_text(
        HPTUNING.replace("maxTrials: 4", "maxTrials: 2").replace(
            "parameterName: learning-rate", "parameterName: learning_rate"
        )
    )
    done = flagrun(tmp_path, "tune", "--config", "tuning.yml", "--progress", "quiet")
    assert done.returncode == 0, done.stderr
    record = json.loads((only_job(tmp_path) / "job.json").read_text())
    assert record["counts"]["COMPLETE"] == 2
    best = record["best"]
    flags = best["hyperparameters"]
    assert best["objectiveValue"] == pytest.approx(
        flags["first-layer-size"] * flags["learning_rate"], rel=1e-5
    )
    train = flagrun(tmp_path, "train", "train.py", "first-layer-size=3", "learning_rate=0.5")
    assert train.returncode == 0, train.stderr


@pytest.mark.slow  # several seconds: a whole job, or more
def test_a_resume_only_file_continues_its_job(tmp_path):
    (tmp_path / "train.py").write_text(textwrap.dedent(FLAGS_TRAINER))
    (tmp_path / "tuning.yml").write_text(HPTUNING.replace("maxTrials: 4", "maxTrials: 2"))
    first = flagrun(tmp_path, "tune", "--config", "tuning.yml", "--progress", "quiet")
    assert first.returncode == 0, first.stderr
    job = only_job(tmp_path)
    (tmp_path / "more.yml").write_text(
        "trainingInput:\n  hyperparameters:\n    maxTrials: 3\n"
        f"    resumePreviousJobId: {job.name}\n"
    )
    again = flagrun(tmp_path, "tune", "--config", "more.yml", "--progress", "quiet")
    assert again.returncode == 0, again.stderr
    record = json.loads((job / "job.json").read_text())
    assert record["counts"]["COMPLETE"] == 3
    assert record["spec"]["metric_tag"] == "accuracy"  # the resumed job's, not the default
