"""Checkpoint and resume: the ``flagrun.checkpoint_dir()`` contract, Keras' automatic
BackupAndRestore, and an interrupted trial's parameters continuing from its checkpoint
(``flagrun.tuner.resume``), down to a real tuner killed mid-training and resumed."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest

from flagrun.checkpoints import CHECKPOINT_SUBDIR, has_checkpoint, remove_keras_backups
from flagrun.errors import StoreError
from flagrun.metrics import read_scalars
from flagrun.records import TrialRow, TrialState
from flagrun.tuner import budget, resume
from tests.helpers import (
    child_env,
    flagrun,
    make_project,
    only_job,
    only_run,
    trials_json,
    tuning_yaml,
    wait_for,
)

# -- the contract ---------------------------------------------------------------------------

SAVES = textwrap.dedent(
    """
    import flagrun

    folder = flagrun.checkpoint_dir()
    print("checkpoint:", folder)
    (folder / "state.txt").write_text("epoch 3")
    """
)


def test_checkpoint_dir_under_the_runner_is_the_run_folders(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", SAVES)
    done = flagrun(project, "train", "train.py")
    assert done.returncode == 0, done.stderr
    run_dir = only_run(project)
    assert f"checkpoint: {run_dir.resolve() / CHECKPOINT_SUBDIR}" in done.stdout
    assert (run_dir / CHECKPOINT_SUBDIR / "state.txt").read_text() == "epoch 3"
    assert has_checkpoint(run_dir)


def test_checkpoint_dir_run_by_hand_is_in_the_current_folder(tmp_path: Path) -> None:
    script = make_project(tmp_path / "project", SAVES) / "train.py"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLAGRUN_")}
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / CHECKPOINT_SUBDIR / "state.txt").read_text() == "epoch 3"


def test_an_empty_or_linked_checkpoint_folder_is_no_checkpoint(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / CHECKPOINT_SUBDIR / "keras-fit-1").mkdir(parents=True)
    assert not has_checkpoint(run_dir)  # what Keras leaves once fit completed
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "weights").write_text("x")
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / CHECKPOINT_SUBDIR).symlink_to(elsewhere)
    assert not has_checkpoint(linked)


def test_a_trial_ended_for_good_loses_flagruns_keras_backups_only(tmp_path: Path) -> None:
    folder = tmp_path / CHECKPOINT_SUBDIR
    (folder / "keras-fit-1").mkdir(parents=True)
    (folder / "keras-fit-1" / "latest.weights.h5").write_bytes(b"big")
    (folder / "mine.pt").write_bytes(b"the script's own")
    remove_keras_backups(tmp_path)
    assert [path.name for path in folder.iterdir()] == ["mine.pt"]
    remove_keras_backups(tmp_path / "no such run")  # nothing there: nothing to do


# -- carrying a checkpoint over to the retry --------------------------------------------------


def interrupted_trial(study: optuna.Study, job_dir: Path, *, checkpoint: bool) -> optuna.Trial:
    """Ask a trial, give its run folder event files (and a checkpoint), interrupt it."""
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    run_dir = job_dir / "trials" / str(trial.number + 1)
    (run_dir / "logs" / "train").mkdir(parents=True)
    (run_dir / "logs" / "train" / "events.out.tfevents.1.host").write_bytes(b"epochs 0 and 1")
    (run_dir / "events.out.tfevents.0000000000.flagrun-hparams").write_bytes(b"hparams")
    (run_dir / "source").mkdir()
    (run_dir / "source" / "events.out.tfevents.2.host").write_bytes(b"not the run's")
    (run_dir / "hypertune").mkdir()
    (run_dir / "hypertune" / "output.metrics").write_text('{"acc": "0.5"}\n')
    if checkpoint:
        (run_dir / CHECKPOINT_SUBDIR / "keras-fit-1").mkdir(parents=True)
        (run_dir / CHECKPOINT_SUBDIR / "keras-fit-1" / "latest.weights.h5").write_bytes(b"w")
    budget.fail_and_requeue(study, trial)
    return trial


def retry(study: optuna.Study, job_dir: Path) -> tuple[optuna.Trial, Path]:
    trial = study.ask()
    run_dir = job_dir / "trials" / str(trial.number + 1)
    run_dir.mkdir(parents=True)
    return trial, run_dir


def test_the_retry_gets_the_checkpoint_and_a_copy_of_the_curve(tmp_path: Path) -> None:
    study = optuna.create_study()
    interrupted_trial(study, tmp_path, checkpoint=True)
    trial, run_dir = retry(study, tmp_path)

    assert resume.carry_over(study, trial, tmp_path, run_dir) == 1
    old = tmp_path / "trials" / "1"
    assert (run_dir / CHECKPOINT_SUBDIR / "keras-fit-1" / "latest.weights.h5").read_bytes() == b"w"
    assert not (old / CHECKPOINT_SUBDIR).exists()  # moved: one trial owns it
    assert (run_dir / "logs/train/events.out.tfevents.1.host").read_bytes() == b"epochs 0 and 1"
    assert (old / "logs/train/events.out.tfevents.1.host").is_file()  # the old curve stays
    assert (run_dir / "hypertune/output.metrics").read_text() == '{"acc": "0.5"}\n'
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoint", "hypertune", "logs"]


def test_without_a_checkpoint_the_retry_starts_over_with_an_empty_folder(tmp_path: Path) -> None:
    study = optuna.create_study()
    interrupted_trial(study, tmp_path, checkpoint=False)
    trial, run_dir = retry(study, tmp_path)
    assert resume.carry_over(study, trial, tmp_path, run_dir) is None
    assert list(run_dir.iterdir()) == []
    fresh, fresh_dir = retry(study, tmp_path)  # a trial that retries nothing
    assert resume.carry_over(study, fresh, tmp_path, fresh_dir) is None


def test_a_second_crash_before_the_move_leaves_the_checkpoint_to_the_next_retry(
    tmp_path: Path,
) -> None:
    study = optuna.create_study()
    interrupted_trial(study, tmp_path, checkpoint=True)
    second, _ = retry(study, tmp_path)  # the tuner dies before carrying it over
    budget.fail_and_requeue(study, second)  # what the next --resume does with trial 2
    third, run_dir = retry(study, tmp_path)
    assert third.user_attrs[budget.RETRY_OF] == 2
    assert resume.carry_over(study, third, tmp_path, run_dir) == 1
    assert has_checkpoint(run_dir)


def test_a_second_crash_after_the_move_resumes_from_the_retrys_own_folder(
    tmp_path: Path,
) -> None:
    study = optuna.create_study()
    interrupted_trial(study, tmp_path, checkpoint=True)
    second, second_dir = retry(study, tmp_path)
    assert resume.carry_over(study, second, tmp_path, second_dir) == 1
    budget.fail_and_requeue(study, second)
    third, run_dir = retry(study, tmp_path)
    assert resume.carry_over(study, third, tmp_path, run_dir) == 2
    assert has_checkpoint(run_dir) and not has_checkpoint(second_dir)
    assert (run_dir / "logs/train/events.out.tfevents.1.host").is_file()


def test_a_copy_that_fails_leaves_the_retry_an_empty_folder_and_the_checkpoint_in_place(
    tmp_path: Path,
) -> None:
    study = optuna.create_study()
    interrupted_trial(study, tmp_path, checkpoint=True)
    trial, run_dir = retry(study, tmp_path)
    (tmp_path / "trials" / "1" / "events.out.tfevents.3.host").write_bytes(b"at the top")
    os.mkfifo(tmp_path / "trials" / "1" / "logs" / "events.out.tfevents.9.fifo")  # uncopyable
    with pytest.raises(OSError, match="named pipe"):
        resume.carry_over(study, trial, tmp_path, run_dir)
    assert list(run_dir.iterdir()) == []
    assert has_checkpoint(tmp_path / "trials" / "1")


def test_a_trial_folder_linked_outside_the_job_is_refused(tmp_path: Path) -> None:
    job_dir, outside = tmp_path / "job", tmp_path / "outside"
    study = optuna.create_study()
    interrupted_trial(study, outside, checkpoint=True)
    (job_dir / "trials").mkdir(parents=True)
    (job_dir / "trials" / "1").symlink_to(outside / "trials" / "1")
    trial, run_dir = retry(study, job_dir)
    with pytest.raises(StoreError, match="leads outside"):
        resume.carry_over(study, trial, job_dir, run_dir)
    assert has_checkpoint(outside / "trials" / "1")  # nothing was taken from there


def test_a_retry_id_that_is_not_an_earlier_trial_is_ignored(tmp_path: Path) -> None:
    study = optuna.create_study()
    interrupted_trial(study, tmp_path, checkpoint=True)
    retry(study, tmp_path)  # the real retry, which does not take it
    for bad in ("1", True, 99, -1):
        study.enqueue_trial({"x": 0.5}, user_attrs={budget.RETRY_OF: bad})
        trial, run_dir = retry(study, tmp_path)
        assert resume.carry_over(study, trial, tmp_path, run_dir) is None


# -- the record -------------------------------------------------------------------------------


def test_a_trial_row_says_which_trial_it_resumed_and_old_rows_still_read() -> None:
    row = TrialRow(4, TrialState.COMPLETE, {"x": 1}, "trials/4", resumed_from=2)
    data = row.to_dict()
    assert data["resumedFrom"] == 2
    assert TrialRow.from_dict(data) == row
    del data["resumedFrom"]
    assert TrialRow.from_dict(data).resumed_from is None
    assert "resumedFrom" not in TrialRow.from_dict(data).to_dict()


# -- Keras, with no change to the script ----------------------------------------------------

KERAS_TRAIN = """\
import os
import time

import numpy as np
import keras


class Stop(keras.callbacks.Callback):
    # Dies at the start of epoch STOP_AT (as a kill would), after sleeping SLEEP seconds.
    def on_epoch_begin(self, epoch, logs=None):
        time.sleep(float(os.environ.get("SLEEP", "0")))
        if epoch == int(os.environ.get("STOP_AT", "-1")):
            os._exit(9)


rng = np.random.default_rng(0)
x = rng.random((64, 4)).astype("float32")
y = rng.integers(0, 2, 64)
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x, y, epochs=EPOCHS, batch_size=32, verbose=2, validation_split=0.25,
          callbacks=[Stop(), *CALLBACKS])
"""


def keras_script(epochs: int, callbacks: str = "") -> str:
    return KERAS_TRAIN.replace("EPOCHS", str(epochs)).replace("CALLBACKS", f"[{callbacks}]")


def run_keras(script: Path, run_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The script through the child entry point, as the runner starts it."""
    child = {k: v for k, v in os.environ.items() if not k.startswith("FLAGRUN_")}
    child.update(TF_CPP_MIN_LOG_LEVEL="3", FLAGRUN_RUN_DIR=str(run_dir), **env)
    child["FLAGRUN_CHECKPOINT_DIR"] = str(run_dir / CHECKPOINT_SUBDIR)
    return subprocess.run(
        [sys.executable, "-m", "flagrun._bootstrap", str(script)],
        cwd=run_dir,
        env=child,
        capture_output=True,
        text=True,
        timeout=180,
    )


def epochs_run(output: str) -> list[int]:
    """The epochs (1-based) a Keras fit with verbose=2 ran, from its ``Epoch k/N`` lines."""
    return [int(k) for k in re.findall(r"^Epoch (\d+)/\d+", output, flags=re.MULTILINE)]


def steps(run_dir: Path, tag: str = "validation/epoch_accuracy") -> list[int]:
    return sorted(point.step for point in read_scalars(run_dir)[tag])


@pytest.mark.keras
def test_keras_fit_backs_up_into_the_checkpoint_folder_and_resumes_there(
    tmp_path: Path,
) -> None:
    script = tmp_path / "train.py"
    script.write_text(keras_script(epochs=5))
    run_dir = tmp_path / "run"
    run_dir.mkdir()

    first = run_keras(script, run_dir, STOP_AT="3")
    assert first.returncode == 9, first.stderr[-2000:]
    assert epochs_run(first.stdout) == [1, 2, 3]
    assert (run_dir / CHECKPOINT_SUBDIR / "keras-fit-1" / "training_metadata.json").is_file()

    second = run_keras(script, run_dir)
    assert second.returncode == 0, second.stderr[-2000:]
    assert epochs_run(second.stdout) == [4, 5]  # from its last finished epoch
    assert steps(run_dir) == [0, 1, 2, 3, 4]  # one continuous curve over both processes
    assert not has_checkpoint(run_dir)  # Keras deletes the backup once fit completes


@pytest.mark.keras
def test_a_scripts_own_backup_and_restore_is_left_alone(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(keras_script(2, "keras.callbacks.BackupAndRestore('mine', False)"))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    first = run_keras(script, run_dir, STOP_AT="1")
    assert first.returncode == 9, first.stderr[-2000:]
    assert (run_dir / "mine" / "training_metadata.json").is_file()
    assert not has_checkpoint(run_dir)


@pytest.mark.keras
def test_a_model_not_built_before_fit_trains_as_before_without_a_backup(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(keras_script(epochs=2).replace("keras.Input((4,)), ", ""))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    done = run_keras(script, run_dir, STOP_AT="1")
    assert done.returncode == 9, done.stderr[-2000:]  # trained its first epoch, then died
    assert steps(run_dir) == [0]
    assert not has_checkpoint(run_dir)  # Keras restores only into a built model


# -- the acceptance test: a real tuner killed mid-training, then resumed ---------------

EPOCHS = 6
TUNED_KERAS = """\
import time

import numpy as np
import keras
from flagrun import flags, flag_integer, flag_numeric

FLAGS = flags(flag_numeric("lr", 0.01), flag_integer("epochs", 6))


class Slow(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        time.sleep(1.0)  # long enough to be killed between epochs


rng = np.random.default_rng(0)
x = rng.random((64, 4)).astype("float32")
y = rng.integers(0, 2, 64)
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
model.compile(keras.optimizers.Adam(FLAGS.lr), "sparse_categorical_crossentropy",
              metrics=["accuracy"])
model.fit(x, y, epochs=FLAGS.epochs, batch_size=32, verbose=2, validation_split=0.25,
          callbacks=[Slow()])
"""


def backed_up_epochs(trial_dir: Path) -> int:
    """Epochs both in the trial's events and in its Keras backup (0 while they differ: an
    epoch's events are written an instant before its backup, and a kill in between would
    run that epoch again on resume)."""
    metadata = trial_dir / CHECKPOINT_SUBDIR / "keras-fit-1" / "training_metadata.json"
    try:
        backed_up = json.loads(metadata.read_text())["epoch"]
        written = len(read_scalars(trial_dir).get("validation/epoch_accuracy", []))
    except (OSError, ValueError, KeyError):
        return 0
    return written if written == backed_up else 0


def intermediate_steps(job_dir: Path, trial_id: int) -> list[int]:
    from flagrun import storage

    study = optuna.load_study(
        study_name="flagrun", storage=storage.open_journal(job_dir / "study.journal")
    )
    return sorted(study.trials[trial_id - 1].intermediate_values)


@pytest.mark.keras
@pytest.mark.parametrize("how", ["kill -9", "ctrl-c"])
def test_a_keras_trial_cut_short_with_its_tuner_continues_on_resume(
    tmp_path: Path, how: str
) -> None:
    yaml = tuning_yaml(
        hyperparameterMetricTag="val_accuracy",
        maxTrials=1,
        maxParallelTrials=1,
        enableTrialEarlyStopping=True,  # the pruner must get the whole curve
        params=[
            {"parameterName": "lr", "type": "DOUBLE", "minValue": 0.001, "maxValue": 0.1},
            {"parameterName": "epochs", "type": "DISCRETE", "discreteValues": [EPOCHS]},
        ],
    )
    project = make_project(tmp_path / "project", TUNED_KERAS, yaml)
    env = {"TF_CPP_MIN_LOG_LEVEL": "3"}
    tuner = subprocess.Popen(
        [sys.executable, "-m", "flagrun", "tune", "train.py", "--config", "tuning.yml",
         "--progress", "plain"],
        cwd=project, env=child_env(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,  # its own process group, as a terminal gives it
    )  # fmt: skip
    first = project / "runs"
    wait_for(
        lambda: any(backed_up_epochs(p / "trials" / "1") >= 2 for p in first.glob("*")),
        timeout=120,
        what="two epochs of trial 1, backed up",
    )
    if how == "kill -9":
        os.killpg(tuner.pid, signal.SIGKILL)  # a crash: the trial dies with it
        tuner.communicate(timeout=60)
    else:
        tuner.send_signal(signal.SIGINT)
        output, _ = tuner.communicate(timeout=60)
        assert tuner.returncode == 130, output
    job_dir = only_job(project)
    trial1 = job_dir / "trials" / "1"
    done_before = steps(trial1)
    assert len(done_before) >= 2 and done_before == list(range(len(done_before)))
    assert has_checkpoint(trial1)

    done = flagrun(project, "tune", "--resume", "latest", "--progress", "plain", env=env,
                   timeout=180)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "trial 2: continues trial 1 from its checkpoint" in done.stdout + done.stderr
    trial2 = job_dir / "trials" / "2"
    assert steps(trial2) == list(range(EPOCHS))  # every epoch, each step once
    ran = epochs_run((trial2 / "output.log").read_text())
    assert ran == list(range(len(done_before) + 1, EPOCHS + 1))  # from its last finished epoch
    assert intermediate_steps(job_dir, 2) == list(range(EPOCHS))
    assert not has_checkpoint(trial2)  # fit completed: Keras removed its backup

    trials = {t["trialId"]: t for t in trials_json(project)["trials"]}
    assert trials[2]["state"] == "COMPLETE" and trials[2]["resumedFrom"] == 1
    assert trials[2]["trainingStep"] == EPOCHS - 1
    assert trials[1]["state"] == "FAILED"
    table = flagrun(project, "trials", "--format", "csv")
    assert table.stdout.splitlines()[0].endswith(",resumedFrom")
    rows = [json.loads(line) for line in (job_dir / "trials.jsonl").read_text().splitlines()]
    assert [row.get("resumedFrom") for row in rows if row["trialId"] == 2] == [1, 1]


# -- any framework, through the contract ------------------------------------------------------

CONTRACT_TRAIN = """\
import json
import time

import flagrun
from flagrun import flags, flag_integer, flag_numeric, log_metrics

FLAGS = flags(flag_numeric("x", 0.5), flag_integer("epochs", 6))
state = flagrun.checkpoint_dir() / "state.json"
start = json.loads(state.read_text())["epoch"] + 1 if state.exists() else 0
print("starting at epoch", start, flush=True)
for epoch in range(start, FLAGS.epochs):
    time.sleep(0.4)
    log_metrics({"val_acc": FLAGS.x + epoch / 100}, step=epoch)
    state.write_text(json.dumps({"epoch": epoch}))
"""


def contract_yaml(max_trials: int = 1) -> str:
    return tuning_yaml(
        maxTrials=max_trials,
        maxParallelTrials=1,
        params=[
            {"parameterName": "x", "type": "DOUBLE", "minValue": 0.0, "maxValue": 1.0},
            {"parameterName": "epochs", "type": "DISCRETE", "discreteValues": [EPOCHS]},
        ],
    )


def saved_epoch(trial_dir: Path) -> int:
    try:
        return json.loads((trial_dir / CHECKPOINT_SUBDIR / "state.json").read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return -1


@pytest.mark.slow  # several seconds: a job, killed, then resumed
def test_a_script_keeping_the_contract_continues_after_a_crash_of_the_tuner(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path / "project", CONTRACT_TRAIN, contract_yaml())
    tuner = subprocess.Popen(
        [sys.executable, "-m", "flagrun", "tune", "train.py", "--config", "tuning.yml",
         "--progress", "plain"],
        cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    wait_for(
        lambda: any(saved_epoch(p / "trials" / "1") >= 1 for p in (project / "runs").glob("*")),
        what="two epochs of trial 1",
    )
    os.killpg(tuner.pid, signal.SIGKILL)
    tuner.wait()
    job_dir = only_job(project)
    stopped_after = saved_epoch(job_dir / "trials" / "1")

    done = flagrun(project, "tune", "--resume", "latest", "--progress", "plain")
    assert done.returncode == 0, done.stdout + done.stderr
    trial2 = job_dir / "trials" / "2"
    assert f"starting at epoch {stopped_after + 1}" in (trial2 / "output.log").read_text()
    assert [point.step for point in read_scalars(trial2)["val_acc"]] == list(range(EPOCHS))
    assert trials_json(project)["trials"][0]["resumedFrom"] == 1


FAILS_WITH_A_BACKUP = """\
import flagrun

folder = flagrun.checkpoint_dir()
(folder / "keras-fit-1").mkdir()
(folder / "keras-fit-1" / "latest.weights.h5").write_bytes(b"big")
(folder / "mine.pt").write_bytes(b"the script's own")
raise SystemExit(1)
"""


@pytest.mark.slow  # several seconds: a whole job
def test_a_failed_trial_loses_its_keras_backup_and_keeps_the_rest(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", FAILS_WITH_A_BACKUP, contract_yaml())
    done = flagrun(project, "tune", "train.py", "--config", "tuning.yml", "--progress", "plain")
    assert done.returncode == 1  # no trial completed
    folder = only_job(project) / "trials" / "1" / CHECKPOINT_SUBDIR
    assert [path.name for path in folder.iterdir()] == ["mine.pt"]
