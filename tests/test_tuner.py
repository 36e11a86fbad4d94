"""End-to-end tuning jobs: real `flagrun tune` processes, real trial subprocesses,
real TensorBoard event files, real Optuna journal storage."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.helpers import (
    HOPELESS_LAST_TRAIN,
    flagrun,
    hopeless_last_grid_yaml,
    make_project,
    only_job,
    only_run,
    start_flagrun,
    trials_json,
    tuning_yaml,
    wait_for,
)

TRAIN = textwrap.dedent(
    """
    import os, sys, time
    from flagrun import flags, flag_integer, flag_numeric, flag_string, log_metrics

    FLAGS = flags(
        flag_numeric("x", 0.5),
        flag_integer("epochs", 3),
        flag_numeric("sleep", 0.0),
        flag_string("mode", "ok"),
    )
    if FLAGS.mode == "fail":
        sys.exit(3)
    if FLAGS.mode == "nan":
        log_metrics({"val_acc": float("nan")}, step=0)
        sys.exit(0)
    if FLAGS.mode == "hang":
        time.sleep(60)
    with open("out.txt", "w") as f:  # relative output: must land in the trial's own dir
        f.write(repr(FLAGS.x))
    with open(os.path.join(os.environ["FLAGRUN_PROJECT_DIR"], "pids.txt"), "a") as f:
        f.write(f"{os.getpid()}\\n")
    for epoch in range(FLAGS.epochs):
        time.sleep(FLAGS.sleep)
        # best at x = 0.3; improves with epochs
        log_metrics({"val_acc": 1.0 - (FLAGS.x - 0.3) ** 2 - 0.1 / (epoch + 1)}, step=epoch)
    """
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path, TRAIN, tuning_yaml())


def trial_pids(project: Path) -> list[int]:
    """The pids the trial processes wrote into pids.txt (TRAIN and HOPELESS_LAST_TRAIN do)."""
    return [int(pid) for pid in (project / "pids.txt").read_text().split()]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def test_parallel_job_finishes_best_first_with_isolated_outputs(project: Path) -> None:
    done = flagrun(project, "tune", "train.py", "--config", "tuning.yml", "--progress", "plain")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "scaleTier" in done.stdout + done.stderr  # cloud-only field reported as ignored

    table = trials_json(project)
    assert table["goal"] == "MAXIMIZE" and table["metric"] == "val_acc"
    trials = table["trials"]
    assert len(trials) == 8
    assert sorted(t["trialId"] for t in trials) == list(range(1, 9))
    assert all(t["state"] == "COMPLETE" for t in trials)
    values = [t["objectiveValue"] for t in trials]
    assert values == sorted(values, reverse=True)
    for trial in trials:
        run_dir = Path(trial["runDir"])
        x = trial["hyperparameters"]["x"]
        assert 0.0 <= x <= 1.0
        assert float((run_dir / "out.txt").read_text()) == x
        assert trial["objectiveValue"] == pytest.approx(1.0 - (x - 0.3) ** 2 - 0.1 / 3)
        assert trial["trainingStep"] == 2
        record = json.loads((run_dir / "run.json").read_text())
        assert record["status"] == "COMPLETED"
        assert record["trial"]["state"] == "COMPLETE"

    job = json.loads((only_job(project) / "job.json").read_text())
    assert job["state"] == "COMPLETED"
    assert job["counts"]["COMPLETE"] == 8
    # TensorBoard HParams: the experiment at the job's root, a session per trial
    # (their content is checked with TensorBoard's own reader in test_hparams.py).
    assert list(only_job(project).glob("events.out.tfevents.*.flagrun-hparams"))
    for trial in trials:
        assert len(list(Path(trial["runDir"]).glob("events.out.tfevents.*.flagrun-hparams-*"))) == 2
    assert job["best"]["trialId"] == trials[0]["trialId"]


def test_grid_covers_every_combination_once(project: Path) -> None:
    done = flagrun(
        project,
        "tune",
        "train.py",
        "--grid",
        "x=0.1,0.3,0.5",
        "--grid",
        "epochs=1,2",
        "--metric",
        "val_acc",
        "--parallel",
        "2",
        "--progress",
        "plain",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    trials = trials_json(project)["trials"]
    combos = sorted((t["hyperparameters"]["x"], t["hyperparameters"]["epochs"]) for t in trials)
    assert combos == sorted((x, e) for x in (0.1, 0.3, 0.5) for e in (1, 2))
    assert trials[0]["hyperparameters"] == {"x": 0.3, "epochs": 2}


def test_missing_metric_tag_stops_the_job_after_the_first_trial(project: Path) -> None:
    (project / "tuning.yml").write_text(tuning_yaml(hyperparameterMetricTag="val_accuracy_x"))
    done = flagrun(project, "tune", "train.py", "--config", "tuning.yml", "--progress", "plain")
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "val_accuracy_x" in done.stderr and "val_acc" in done.stderr
    trials = trials_json(project)["trials"]
    assert len(trials) <= 2  # the two that ran at once, not the whole budget


def test_failing_trials_stop_the_job_with_a_clear_message(project: Path) -> None:
    (project / "tuning.yml").write_text(
        tuning_yaml(
            maxTrials=10,
            params=[
                {"parameterName": "mode", "type": "CATEGORICAL", "categoricalValues": ["fail"]}
            ],
        )
    )
    done = flagrun(project, "tune", "train.py", "--config", "tuning.yml", "--progress", "plain")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "failed" in done.stderr
    trials = trials_json(project)["trials"]
    assert 3 <= len(trials) < 10
    assert all(t["state"] == "FAILED" for t in trials)


def slow_trials_yaml(max_trials: int, sleep: float) -> str:
    """Trials of 3 epochs of ``sleep`` seconds each, so a test can catch them mid-run."""
    return tuning_yaml(
        maxTrials=max_trials,
        params=[
            {"parameterName": "x", "type": "DOUBLE", "minValue": 0.0, "maxValue": 1.0},
            {"parameterName": "sleep", "type": "DISCRETE", "discreteValues": [sleep]},
        ],
    )


def start_tuner(project: Path) -> subprocess.Popen:
    """`flagrun tune` in the background, once its first two trials are running."""
    tuner = start_flagrun(
        project, "tune", "train.py", "--config", "tuning.yml", "--progress", "plain"
    )
    wait_for(
        lambda: (
            running_trials(project) >= 2
            and (project / "pids.txt").exists()
            and len(trial_pids(project)) >= 2
        ),
        timeout=60,
        what="two running trials",
    )
    return tuner


@pytest.mark.slow  # several seconds: a whole job, or more
def test_nan_objective_and_trial_timeout_fail_their_trials_with_the_reason(project: Path) -> None:
    (project / "tuning.yml").write_text(
        tuning_yaml(
            maxTrials=2,
            trialTimeout=2,
            algorithm="GRID_SEARCH",
            params=[
                {
                    "parameterName": "mode",
                    "type": "CATEGORICAL",
                    "categoricalValues": ["nan", "hang"],
                }
            ],
        )
    )
    started = time.monotonic()
    done = flagrun(project, "tune", "train.py", "--config", "tuning.yml", "--progress", "plain")
    assert time.monotonic() - started < 30  # the hanging trial did not run its 60 s
    assert done.returncode == 1  # no trial completed
    assert "Traceback" not in done.stderr
    index = jobstore_rows(project)
    reasons = {row.hyperparameters["mode"]: row.reason for row in index}
    assert "nan" in reasons["nan"] and "val_acc" in reasons["nan"]
    assert "timeout" in reasons["hang"]
    assert {row.state for row in index} == {"FAILED"}
    csv_out = flagrun(project, "trials", "--format", "csv")
    assert csv_out.returncode == 0
    assert csv_out.stdout.splitlines()[0].startswith("finalMetric.objectiveValue,")
    assert len(csv_out.stdout.splitlines()) == 3


def jobstore_rows(project: Path) -> list:
    from flagrun import jobstore

    return jobstore.read_trials(only_job(project))


@pytest.mark.slow  # several seconds: a whole job, or more
def test_sigkill_of_the_tuner_then_resume_completes_exactly_max_trials(project: Path) -> None:
    (project / "tuning.yml").write_text(slow_trials_yaml(max_trials=6, sleep=0.5))
    tuner = start_tuner(project)
    tuner.kill()
    tuner.wait()

    done = flagrun(project, "tune", "--resume", "latest", "--progress", "plain")
    assert done.returncode == 0, done.stdout + done.stderr
    trials = trials_json(project)["trials"]
    complete = [t for t in trials if t["state"] == "COMPLETE"]
    assert len(complete) == 6
    ids = [t["trialId"] for t in trials]
    assert len(ids) == len(set(ids))
    interrupted = [t for t in trials if t["state"] == "FAILED"]
    assert interrupted  # the trials the kill cut short, whose parameters ran again
    retried = {t["hyperparameters"]["x"] for t in complete}
    assert all(t["hyperparameters"]["x"] in retried for t in interrupted)
    for pid in trial_pids(project):
        assert not pid_alive(pid)


@pytest.mark.slow  # several seconds: a whole job, or more
def test_ctrl_c_stops_every_trial_and_leaves_a_resumable_job(project: Path) -> None:
    (project / "tuning.yml").write_text(slow_trials_yaml(max_trials=3, sleep=1))
    tuner = start_tuner(project)
    tuner.send_signal(signal.SIGINT)
    output, _ = tuner.communicate(timeout=60)
    assert tuner.returncode == 130, output
    for pid in trial_pids(project):
        assert not pid_alive(pid)
    job = json.loads((only_job(project) / "job.json").read_text())
    assert job["state"] == "INTERRUPTED"
    trials = trials_json(project)["trials"]
    assert len(trials) == 2 and all(t["state"] == "FAILED" for t in trials)

    done = flagrun(project, "tune", "--resume", job["id"], "--progress", "plain")
    assert done.returncode == 0, done.stdout + done.stderr
    states = [t["state"] for t in trials_json(project)["trials"]]
    assert states.count("COMPLETE") == 3 and states.count("FAILED") == 2


@pytest.mark.slow  # several seconds: a whole job, or more
def test_collect_best_gives_flags_that_train_accepts(project: Path) -> None:
    assert flagrun(project, "tune", "--config", "tuning.yml", "--max-trials", "3").returncode == 0
    best = trials_json(project)["trials"][0]
    done = flagrun(project, "collect", "--dest", "best")
    assert done.returncode == 0, done.stderr
    collected = project / "best" / f"trial-{best['trialId']}"
    assert (collected / "run.json").exists() and (collected / "out.txt").exists()
    flags_file = project / "best" / "best_flags.yml"
    assert f"x: {best['hyperparameters']['x']}" in flags_file.read_text()
    train = flagrun(project, "train", "train.py", "--flags", str(flags_file))
    assert train.returncode == 0, train.stderr
    assert float((only_run(project) / "out.txt").read_text()) == best["hyperparameters"]["x"]


def test_bad_yaml_exits_2_and_creates_no_job(project: Path) -> None:
    (project / "tuning.yml").write_text(
        tuning_yaml(
            params=[{"parameterName": "dropout9", "type": "DOUBLE", "minValue": 0, "maxValue": 1}]
        )
    )
    done = flagrun(project, "tune", "train.py", "--config", "tuning.yml")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "dropout9" in done.stderr
    assert not (project / "runs").exists() or not any((project / "runs").iterdir())


def test_jobs_lists_the_job(project: Path) -> None:
    assert flagrun(project, "tune", "--config", "tuning.yml", "--max-trials", "2").returncode == 0
    done = flagrun(project, "jobs", "--format", "json")
    assert done.returncode == 0, done.stderr
    [job] = json.loads(done.stdout)
    assert job["state"] == "COMPLETED" and job["done"] == 2 and job["maxTrials"] == 2


def running_trials(project: Path) -> int:
    if not (project / "runs").is_dir():
        return 0
    jobs = [p for p in (project / "runs").iterdir() if (p / "trials").is_dir()]
    if not jobs:
        return 0
    count = 0
    for run_json in (jobs[0] / "trials").glob("*/run.json"):
        try:
            if json.loads(run_json.read_text()).get("status") == "RUNNING":
                count += 1
        except ValueError:
            pass
    return count


def test_early_stopping_prunes_a_hopeless_trial_and_kills_it(project: Path) -> None:
    # The grid runs in ascending order: four good quick trials fill the pruner's
    # history, then x=0.9, hopeless from its first epoch and slow, must be cut short.
    (project / "prune.py").write_text(HOPELESS_LAST_TRAIN)
    (project / "tuning.yml").write_text(hopeless_last_grid_yaml())
    done = flagrun(project, "tune", "prune.py", "--config", "tuning.yml", "--progress", "plain")
    assert done.returncode == 0, done.stdout + done.stderr
    trials = trials_json(project)["trials"]
    assert [t["state"] for t in trials] == ["COMPLETE"] * 4 + ["PRUNED"]
    pruned = trials[-1]
    assert pruned["hyperparameters"]["x"] == 0.9
    assert pruned["trainingStep"] < 39  # stopped long before its 40 epochs
    record = json.loads((Path(pruned["runDir"]) / "run.json").read_text())
    assert record["status"] == "PRUNED"
    for pid in trial_pids(project):
        assert not pid_alive(pid)


def tune_four_then_x09(
    project: Path,
    script: str,
    stopping: dict[str, object],
    grid: tuple[float, ...] = (0.3, 0.31, 0.32, 0.33, 0.9),
) -> list[dict]:
    """Tune ``script`` over x = 0.3, 0.31, 0.32, 0.33, then 0.9 (or ``grid``), one trial
    at a time."""
    (project / "train_x.py").write_text(script)
    (project / "tuning.yml").write_text(
        tuning_yaml(maxTrials=5, maxParallelTrials=1, algorithm="GRID_SEARCH",
                    enableTrialEarlyStopping=True, earlyStopping=stopping,
                    params=[{"parameterName": "x", "type": "DISCRETE",
                             "discreteValues": list(grid)}])
    )  # fmt: skip
    done = flagrun(project, "tune", "train_x.py", "--config", "tuning.yml", "--progress", "plain")
    assert done.returncode == 0, done.stdout + done.stderr
    return trials_json(project)["trials"]


# x=0.9 is behind at every epoch, its last one too, and then, like a script that saves
# its model or evaluates on a test set, runs on a while after its last point.
BEHIND_TO_THE_END_TRAIN = textwrap.dedent(
    """
    import time
    from flagrun import flags, flag_numeric, log_metrics

    FLAGS = flags(flag_numeric("x", 0.3))
    behind = FLAGS.x > 0.5
    for epoch in range(3):
        log_metrics({"val_acc": 0.05 if behind else FLAGS.x}, step=epoch)
    time.sleep(2 if behind else 0)
    """
)


def test_a_trial_that_wrote_all_its_points_is_complete_not_pruned(project: Path) -> None:
    # Pruning it would save no compute and hide a whole curve from the pruner, whose
    # median is taken over complete trials only.
    # Warm-up to the last step: the pruner first judges the trial at its last point.
    stopping = {"pruner": "median", "n_startup_trials": 4, "n_warmup_steps": 2}
    trials = tune_four_then_x09(project, BEHIND_TO_THE_END_TRAIN, stopping)
    [late] = [t for t in trials if t["hyperparameters"]["x"] == 0.9]
    assert (late["state"], late["trainingStep"]) == ("COMPLETE", 2)
    assert late["objectiveValue"] == pytest.approx(0.05)  # float32 in the event file
    assert [t["state"] for t in trials] == ["COMPLETE"] * 5


# Fast trials reach 0.1 per epoch in a blink; x=0.9 is ahead of them at every epoch
# but takes half a second per epoch, so by any given time it is far behind.
SLOW_BUT_AHEAD_TRAIN = textwrap.dedent(
    """
    import time
    from flagrun import flags, flag_numeric, log_metrics

    FLAGS = flags(flag_numeric("x", 0.3))
    slow = FLAGS.x > 0.5
    for epoch in range(6):
        if slow:
            time.sleep(0.5)
        log_metrics({"val_acc": 0.1 * (epoch + 1) + (0.05 if slow else 0.0)}, step=epoch)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize(("resource", "last_state"), [("steps", "COMPLETE"), ("time", "PRUNED")])
def test_with_resource_time_trials_are_compared_at_equal_elapsed_time(
    project: Path, resource: str, last_state: str
) -> None:
    stopping = {"pruner": "median", "n_startup_trials": 4, "n_warmup_steps": 0,
                "resource": resource, "timeStep": 0.1}  # fmt: skip
    trials = tune_four_then_x09(project, SLOW_BUT_AHEAD_TRAIN, stopping)
    assert sorted(t["state"] for t in trials) == sorted(["COMPLETE"] * 4 + [last_state])
    if resource == "time":
        [pruned] = [t for t in trials if t["state"] == "PRUNED"]
        assert pruned["trainingStep"] < 5
        reason = json.loads((Path(pruned["runDir"]) / "run.json").read_text())["reason"]
        assert reason.startswith("pruned at step ") and " after " in reason, reason
        # under load the script may write one more epoch before the stop reaches it
        assert int(reason.split()[3]) <= pruned["trainingStep"]


# x=0.9 diverged: at chance from its first epoch, taking half a second each; the others learn.
DIVERGED_TRAIN = textwrap.dedent(
    """
    import time
    from flagrun import flags, flag_numeric, log_metrics

    FLAGS = flags(flag_numeric("x", 0.3))
    diverged = FLAGS.x > 0.5
    for epoch in range(6):
        if diverged:
            time.sleep(0.5)
        log_metrics({"val_acc": 0.1 if diverged else FLAGS.x + 0.1 * epoch}, step=epoch)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize(("stop_stalled", "last_state"), [(True, "PRUNED"), (False, "COMPLETE")])
def test_a_diverged_trial_is_stopped_before_the_pruners_start_up_is_over(
    project: Path, stop_stalled: bool, last_state: str
) -> None:
    # Four complete trials are fewer than the median pruner's start-up (5): only the stop of
    # stalled trials can stop the fifth.
    trials = tune_four_then_x09(project, DIVERGED_TRAIN, {"stopStalled": stop_stalled})
    [diverged] = [t for t in trials if float(t["hyperparameters"]["x"]) == 0.9]
    assert [t["state"] for t in trials if t is not diverged] == ["COMPLETE"] * 4
    assert diverged["state"] == last_state
    if stop_stalled:
        assert diverged["trainingStep"] < 5
        reason = json.loads((Path(diverged["runDir"]) / "run.json").read_text())["reason"]
        assert reason.startswith("stalled at step ")
        assert reason.endswith(": learned nothing since its first, far behind")


# Trials run in the grid's order, x = 1, 2, ... 5; each learns a little per epoch from where
# it starts. The pause after step 1, the step judged, lets the tuner see it alone.
RISING_TRAIN = textwrap.dedent(
    """
    import time
    from flagrun import flags, flag_numeric, log_metrics

    FLAGS = flags(flag_numeric("x", 1))
    start = {1: 0.8, 2: 0.1, 3: 0.11, 4: 0.12, 5: 0.5}[FLAGS.x]
    for epoch in range(6):
        log_metrics({"val_acc": start + 0.01 * epoch}, step=epoch)
        time.sleep(2.0 if epoch == 1 else 0.2)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize(("compare_with", "last_state"), [("reached", "COMPLETE"),
                                                          ("complete", "PRUNED")])  # fmt: skip
def test_trials_cut_early_count_when_comparing_with_every_trial_that_reached_the_step(
    project: Path, compare_with: str, last_state: str
) -> None:
    # The one at 0.8 completes; those at 0.1, 0.11 and 0.12 fall behind it. Against the
    # complete trials only (0.8) the one at 0.5 is cut too; against every trial that reached
    # step 1 it is above the median. (Only step 1 is judged: interval_steps.)
    stopping = {"n_startup_trials": 1, "interval_steps": 10, "compareWith": compare_with}
    trials = tune_four_then_x09(project, RISING_TRAIN, stopping, grid=(1, 2, 3, 4, 5))
    state = {round(float(t["hyperparameters"]["x"])): t["state"] for t in trials}
    assert state[1] == "COMPLETE" and state[2] == "PRUNED"
    assert state[5] == last_state


# x=0.3 is quick; x=0.5 takes 0.5 s an epoch and fits trialTimeout (6 s); x=0.9 takes 3 s
# an epoch, 12 s in all: at its pace it cannot finish, which shows within its first epoch.
PACED_TRAIN = textwrap.dedent(
    """
    import time
    from flagrun import flags, flag_numeric, log_metrics

    FLAGS = flags(flag_numeric("x", 0.3))
    for epoch in range(4):
        time.sleep({0.3: 0.0, 0.5: 0.5, 0.9: 3.0}[FLAGS.x])
        log_metrics({"val_acc": 0.1 * (epoch + 1)}, step=epoch)
    """
)


def test_a_trial_that_cannot_finish_within_its_timeout_is_stopped_at_once(project: Path) -> None:
    (project / "paced.py").write_text(PACED_TRAIN)
    (project / "tuning.yml").write_text(
        tuning_yaml(maxTrials=3, maxParallelTrials=1, algorithm="GRID_SEARCH", trialTimeout=6,
                    enableTrialEarlyStopping=True, earlyStopping={"pruner": "none"},
                    params=[{"parameterName": "x", "type": "DISCRETE",
                             "discreteValues": [0.3, 0.5, 0.9]}])
    )  # fmt: skip
    done = flagrun(project, "tune", "paced.py", "--config", "tuning.yml", "--progress", "plain")
    assert done.returncode == 0, done.stdout + done.stderr
    trials = {t["hyperparameters"]["x"]: t for t in trials_json(project)["trials"]}
    assert trials[0.3]["state"] == trials[0.5]["state"] == "COMPLETE"
    slow = trials[0.9]
    assert slow["state"] == "PRUNED"  # not FAILED by the timeout: TPE learns from it
    record = json.loads((Path(slow["runDir"]) / "run.json").read_text())
    assert record["status"] == "PRUNED"
    assert "of 4 points" in record["reason"] and "past trialTimeout 6 s" in record["reason"]
    assert record["duration"] < 5  # stopped before the timeout would have cut it


# As on a GPU: seconds of start-up (imports, compiling), then 20 quick epochs. The
# start-up in seconds for x=0.3, 0.4 and 0.5; PACED: each epoch says how far it is
# through its batches, as Keras does under capture.
STARTUP_TRAIN = textwrap.dedent(
    """
    import time
    from flagrun import flags, flag_numeric, log_metrics, record_progress

    FLAGS = flags(flag_numeric("x", 0.3))
    time.sleep(STARTUP[FLAGS.x])
    for epoch in range(20):
        for batch in range(5):
            time.sleep(0.01)
            if PACED:
                record_progress(epoch, batch + 1, 5, 20)
        log_metrics({"val_acc": FLAGS.x + 0.01 * epoch}, step=epoch)
    """
)


def tune_startup(project: Path, startup: dict[float, float], paced: bool) -> list[str]:
    """The states of the three trials of a job of STARTUP_TRAIN, one at a time, with
    trialTimeout 10 s and early stopping on (the pace stop)."""
    (project / "startup.py").write_text(f"PACED = {paced}\nSTARTUP = {startup}\n{STARTUP_TRAIN}")
    (project / "tuning.yml").write_text(
        tuning_yaml(maxTrials=3, maxParallelTrials=1, algorithm="GRID_SEARCH", trialTimeout=10,
                    enableTrialEarlyStopping=True, earlyStopping={"pruner": "none"},
                    params=[{"parameterName": "x", "type": "DISCRETE",
                             "discreteValues": list(startup)}])
    )  # fmt: skip
    done = flagrun(project, "tune", "startup.py", "--config", "tuning.yml", "--progress", "plain")
    assert done.returncode == 0, done.stdout + done.stderr
    return [t["state"] for t in trials_json(project)["trials"]]


@pytest.mark.slow
def test_a_trial_slow_to_start_and_quick_an_epoch_is_not_stopped_for_its_start_up(
    project: Path,
) -> None:
    # Its start-up counted into each of 20 epochs, a trial with no point after 1 s was
    # projected to need 20 s, past trialTimeout 10 s: every trial after the first was
    # stopped (on a GPU, every trial of a 27-epoch job at 6.5 s). The first trial's own
    # start-up, kept on it, is no longer counted into every epoch.
    states = tune_startup(project, {0.3: 3, 0.4: 3, 0.5: 3}, paced=False)
    assert states == ["COMPLETE"] * 3


@pytest.mark.slow
def test_a_trial_that_says_its_progress_is_not_stopped_before_its_training_began(
    project: Path,
) -> None:
    # x=0.3 finished with a start-up of ~1.3 s; at 2.5 s, with no point, x=0.4 was
    # projected from it to need 2.5 + 19 * 1.2 s, past trialTimeout 10 s, still starting.
    # In a job whose trials say their progress, the time run projects nothing until the
    # trial's own first reading says when its training began.
    states = tune_startup(project, {0.3: 1, 0.4: 4, 0.5: 4}, paced=True)
    assert states == ["COMPLETE"] * 3


# x=0.3 takes 6 s an epoch, 12 s in all; x=0.9, beside it, 20 s an epoch, 40 s in all.
# Both say how far they are through each epoch (flagrun.pace).
BATCHED_TRAIN = textwrap.dedent(
    """
    import time
    from flagrun import flags, flag_numeric, log_metrics, record_progress

    FLAGS = flags(flag_numeric("x", 0.3))
    for epoch in range(2):
        for batch in range(100):
            time.sleep(0.2 if FLAGS.x > 0.5 else 0.06)
            record_progress(epoch, batch + 1, 100, 2)
        log_metrics({"val_acc": 0.1 * (epoch + 1)}, step=epoch)
    """
)


def test_a_trial_that_says_its_progress_is_stopped_by_the_pace_of_its_batches(
    project: Path,
) -> None:
    # The pace of x=0.9's batches shows within seconds that it cannot finish within 20 s,
    # before any trial of the job finished (until then points project nothing: no one
    # knows how many a trial writes).
    (project / "batched.py").write_text(BATCHED_TRAIN)
    (project / "tuning.yml").write_text(
        tuning_yaml(maxTrials=2, maxParallelTrials=2, algorithm="GRID_SEARCH", trialTimeout=20,
                    enableTrialEarlyStopping=True, earlyStopping={"pruner": "none"},
                    params=[{"parameterName": "x", "type": "DISCRETE",
                             "discreteValues": [0.3, 0.9]}])
    )  # fmt: skip
    done = flagrun(project, "tune", "batched.py", "--config", "tuning.yml", "--progress", "plain")
    assert done.returncode == 0, done.stdout + done.stderr
    trials = {t["hyperparameters"]["x"]: t for t in trials_json(project)["trials"]}
    assert trials[0.3]["state"] == "COMPLETE"
    record = json.loads((Path(trials[0.9]["runDir"]) / "run.json").read_text())
    assert record["status"] == "PRUNED"
    assert "with 0 points: at the pace of its batches (~2" in record["reason"], record["reason"]
    assert record["duration"] < 10  # before x=0.3 finished


@pytest.mark.slow
def test_max_running_time_ends_the_job_with_what_its_finished_trials_found(
    project: Path,
) -> None:
    # Cloud ML's own place for the job's time limit, written as the service writes it.
    config = json.loads(tuning_yaml(maxTrials=1000))
    config["trainingInput"]["scheduling"] = {"maxRunningTime": "8s"}
    (project / "tuning.yml").write_text(json.dumps(config))
    started = time.monotonic()
    done = flagrun(project, "tune", "train.py", "sleep=0.4", "--config", "tuning.yml",
                   "--progress", "plain")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert time.monotonic() - started < 30
    job = json.loads((only_job(project) / "job.json").read_text())
    assert (job["state"], job["reason"]) == ("COMPLETED", "maxRunningTime ran out (8 s)")
    trials = trials_json(project)["trials"]
    complete = [t for t in trials if t["state"] == "COMPLETE"]
    assert 1 <= len(complete) < len(trials) < 1000
    cut = [t for t in trials if t["state"] == "FAILED"]
    assert cut, "the trials running at the deadline were stopped"
    for trial in cut:
        record = json.loads((Path(trial["runDir"]) / "run.json").read_text())
        assert record["reason"] == "stopped: the job's maxRunningTime ran out"
    for pid in trial_pids(project):
        assert not pid_alive(pid)
    # --resume gives the job its time again and runs the cut trials' parameters first.
    done = flagrun(project, "tune", "--resume", "latest", "--progress", "plain")
    assert done.returncode == 0, done.stdout + done.stderr
    finished = {t["hyperparameters"]["x"] for t in trials_json(project)["trials"]
                if t["state"] == "COMPLETE"}  # fmt: skip
    assert {t["hyperparameters"]["x"] for t in cut} <= finished


def test_fixed_flags_reach_every_trial_but_are_not_tuned(project: Path) -> None:
    done = flagrun(project, "tune", "train.py", "--config", "tuning.yml", "--max-trials", "2",
                   "epochs=1")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    for trial in trials_json(project)["trials"]:
        assert trial["trainingStep"] == 0  # one epoch only
        assert set(trial["hyperparameters"]) == {"x"}
    clash = flagrun(project, "tune", "train.py", "--config", "tuning.yml", "x=0.5")
    assert clash.returncode == 2 and "x is tuned" in clash.stderr
    unknown = flagrun(project, "tune", "train.py", "--config", "tuning.yml", "epoch=1")
    assert unknown.returncode == 2 and "epochs" in unknown.stderr


def test_grid_sample_runs_that_fraction_of_distinct_combinations(project: Path) -> None:
    grid = ["--grid", "x=0.1,0.2,0.3,0.4", "--grid", "epochs=1,2", "--sample", "0.5"]
    done = flagrun(project, "tune", "train.py", *grid, "--metric", "val_acc", "--parallel", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    trials = trials_json(project)["trials"]
    combos = {(t["hyperparameters"]["x"], t["hyperparameters"]["epochs"]) for t in trials}
    assert len(trials) == len(combos) == 4


@pytest.mark.slow  # several seconds: a whole job, or more
def test_resume_previous_job_id_in_the_yaml_continues_that_job(project: Path) -> None:
    assert flagrun(project, "tune", "--config", "tuning.yml", "--max-trials", "2").returncode == 0
    job_id = only_job(project).name
    # The same search space written as block YAML: its params stand on other lines.
    import yaml

    spec = json.loads(tuning_yaml(maxTrials=3, resumePreviousJobId=job_id))
    (project / "tuning.yml").write_text(yaml.safe_dump(spec))
    done = flagrun(project, "tune", "train.py", "--config", "tuning.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert only_job(project).name == job_id  # no second job
    assert len(trials_json(project, job_id)["trials"]) == 3

    spec["trainingInput"]["hyperparameters"]["params"][0]["maxValue"] = 2.0
    (project / "tuning.yml").write_text(yaml.safe_dump(spec))
    changed = flagrun(project, "tune", "train.py", "--config", "tuning.yml")
    assert changed.returncode == 2 and "searched other params" in changed.stderr


CALLBACK_TRAIN = textwrap.dedent(
    """
    import time
    import flagrun
    from flagrun import flags, flag_numeric

    FLAGS = flags(flag_numeric("x", 0.5))
    hopeless = FLAGS.x > 0.5
    for epoch in range(40):
        flagrun.report(0.1 if hopeless else 1.0 - (FLAGS.x - 0.3) ** 2, step=epoch)
        if flagrun.should_stop():
            with open("stopped.txt", "w") as f:
                f.write(f"stopped cleanly at {epoch}")
            break
        if hopeless:
            time.sleep(0.25)
    """
)


@pytest.mark.slow  # several seconds: a whole job, or more
def test_callback_style_report_and_should_stop_let_a_pruned_trial_exit_cleanly(
    project: Path,
) -> None:
    (project / "callback.py").write_text(CALLBACK_TRAIN)
    (project / "tuning.yml").write_text(hopeless_last_grid_yaml())
    done = flagrun(project, "tune", "callback.py", "--config", "tuning.yml", "--progress", "plain")
    assert done.returncode == 0, done.stdout + done.stderr
    trials = trials_json(project)["trials"]
    assert [t["state"] for t in trials] == ["COMPLETE"] * 4 + ["PRUNED"]
    pruned_dir = Path(trials[-1]["runDir"])
    assert (pruned_dir / "stopped.txt").read_text().startswith("stopped cleanly at")
    assert trials[-1]["trainingStep"] < 39


def test_the_default_pruner_is_the_measured_one_and_settings_reach_it() -> None:
    import optuna

    from flagrun.spec import TuningSpec
    from flagrun.tuner import make_pruner

    spec = TuningSpec(goal="MAXIMIZE", metric_tag="val_acc", max_parallel_trials=2)
    assert isinstance(make_pruner(spec), optuna.pruners.NopPruner)  # early stopping off
    on = TuningSpec(goal="MAXIMIZE", metric_tag="val_acc", early_stopping=True)
    default = make_pruner(on)
    assert type(default) is optuna.pruners.MedianPruner
    chosen = TuningSpec(
        goal="MAXIMIZE",
        metric_tag="val_acc",
        early_stopping=True,
        early_stopping_config={"pruner": "hyperband", "min_resource": 2},
    )
    assert isinstance(make_pruner(chosen), optuna.pruners.HyperbandPruner)


def test_trials_find_data_beside_the_original_script_through_script_dir(tmp_path: Path) -> None:
    code = tmp_path / "examples" / "mnist"
    code.mkdir(parents=True)
    (tmp_path / "examples" / "data").mkdir()
    (tmp_path / "examples" / "data" / "scale.txt").write_text("0.5\n")
    (code / "train.py").write_text(
        textwrap.dedent(
            """
            import flagrun
            from flagrun import flags, flag_numeric, log_metrics
            FLAGS = flags(flag_numeric("x", 0.5))
            scale = float(open(flagrun.script_dir() / "../data/scale.txt").read())
            log_metrics({"val_acc": scale * FLAGS.x}, step=0)
            """
        )
    )
    (tmp_path / "tuning.yml").write_text(tuning_yaml(maxTrials=1, maxParallelTrials=1))
    done = flagrun(tmp_path, "tune", "examples/mnist/train.py", "--config", "tuning.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    (trial,) = trials_json(tmp_path)["trials"]
    assert trial["objectiveValue"] == pytest.approx(0.5 * trial["hyperparameters"]["x"])


# -- faults: mistakes refused before anything exists, trials that damage their own folder ---


def no_job_made(project: Path) -> bool:
    runs = project / "runs"
    return not runs.exists() or not any(runs.iterdir())


@pytest.mark.parametrize(
    "args, says",
    [
        (["--gpus", "abc"], "--gpus 'abc' is not a list of GPU indices"),
        (["--sample", "0.5"], "--sample applies to --grid only"),
        (["--max-trials", "0"], "--max-trials must be at least 1"),
    ],
)
def test_bad_options_exit_2_and_make_no_job(project: Path, args: list[str], says: str) -> None:
    done = flagrun(project, "tune", "train.py", "--config", "tuning.yml", *args)
    assert done.returncode == 2, done.stderr
    assert says in done.stderr and "Traceback" not in done.stderr
    assert no_job_made(project)


@pytest.mark.parametrize(
    "early_stopping, says",
    [
        ({"pruner": "percentile", "percentile": 500}, "earlyStopping.percentile 500"),
        ({"pruner": "median", "bogus": 1}, "earlyStopping.bogus is not a setting"),
        ({"pruner": "sometimes"}, "earlyStopping.pruner"),
    ],
)
def test_bad_pruner_settings_exit_2_and_make_no_job(
    project: Path, early_stopping: dict, says: str
) -> None:
    (project / "tuning.yml").write_text(
        tuning_yaml(enableTrialEarlyStopping=True, earlyStopping=early_stopping)
    )
    done = flagrun(project, "tune", "train.py", "--config", "tuning.yml")
    assert done.returncode == 2, done.stderr
    assert says in done.stderr and "Traceback" not in done.stderr
    assert no_job_made(project)


@pytest.fixture(scope="module")
def one_trial_job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose one job ran 1 trial (shared: tests must not change it)."""
    project = make_project(tmp_path_factory.mktemp("one-trial"), TRAIN, tuning_yaml())
    assert flagrun(project, "tune", "--config", "tuning.yml", "--max-trials", "1").returncode == 0
    return project


@pytest.mark.parametrize(
    "args",
    [["--config", "tuning.yml"], ["--grid", "x=0.1,0.2"], ["--metric", "loss"], ["train.py"]],
)
def test_resume_refuses_what_would_change_the_search_instead_of_ignoring_it(
    one_trial_job: Path, args: list[str]
) -> None:
    done = flagrun(one_trial_job, "tune", *args, "--resume", "latest")
    assert done.returncode == 2, done.stderr
    assert "--resume continues a job with its own" in done.stderr


@pytest.mark.slow  # whole jobs, several seconds: kept out of the fast loop (under a minute)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_during_the_source_snapshot_leaves_no_job_folder(
    project: Path, signum: int
) -> None:
    from tests.test_training import big_project, interrupt_during_snapshot

    big_project(project)
    args = ["tune", "train.py", "--config", "tuning.yml"]
    proc = interrupt_during_snapshot(project, "job.json", *args, signum=signum)
    assert proc.returncode == 128 + signum, proc.stdout.read()
    assert no_job_made(project)


VANDAL = textwrap.dedent(
    """
    import os, shutil
    from flagrun import flags, flag_numeric, flag_string, log_metrics, run_dir

    FLAGS = flags(flag_numeric("x", 0.5), flag_string("damage", "rmtree"))
    log_metrics({"val_acc": 1.0 - FLAGS.x}, step=0)
    if FLAGS.damage == "rmtree":
        shutil.rmtree(run_dir())
    else:
        os.chmod(run_dir(), 0)
    """
)


def as_permissions_bind(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``flagrun ARGS`` as a user whom file permissions bind: root keeps its uid (its files
    stay its own) but loses CAP_DAC_OVERRIDE, so a folder with mode 000 locks it out too."""
    command = [sys.executable, "-m", "flagrun", *args]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("needs setpriv to drop CAP_DAC_OVERRIDE as root")
        caps = "-dac_override,-dac_read_search"
        command = ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}", "--", *command]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.slow  # whole jobs, several seconds: kept out of the fast loop (under a minute)
@pytest.mark.parametrize("damage", ["rmtree", "chmod"])
def test_a_trial_that_removes_or_locks_its_own_folder_ends_like_any_other(
    project: Path, damage: str
) -> None:
    (project / "vandal.py").write_text(VANDAL)
    args = ["vandal.py", f"damage={damage}", "--config", "tuning.yml", "--max-trials", "3"]
    done = as_permissions_bind(project, "tune", *args, "--progress", "plain")
    assert "Traceback" not in done.stderr
    trials = trials_json(project)["trials"]
    assert trials and "RUNNING" not in {t["state"] for t in trials}
    for trial in trials:  # its record is back, with how it ended
        outcome = json.loads((Path(trial["runDir"]) / "run.json").read_text())["trial"]
        assert outcome["state"] == trial["state"]
    if damage == "chmod":  # its files are all still there: it counts
        assert done.returncode == 0, done.stdout + done.stderr
        assert [t["state"] for t in trials] == ["COMPLETE"] * 3
    else:  # its event files went with its folder: the job stops on the missing tag
        assert done.returncode == 1
        assert "without the metric tag 'val_acc'" in done.stderr


def test_resume_of_a_finished_job_with_a_truncated_trial_record_says_so(project: Path) -> None:
    assert flagrun(project, "tune", "--config", "tuning.yml", "--max-trials", "2").returncode == 0
    record = only_job(project) / "trials" / "1" / "run.json"
    record.write_text(record.read_text()[:100])
    done = flagrun(project, "tune", "--resume", "latest", "--progress", "plain")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert f"cannot read {record}" in done.stdout


@pytest.mark.slow  # whole jobs, several seconds: kept out of the fast loop (under a minute)
def test_a_pruned_trial_whose_last_point_is_nan_is_written_as_valid_json(project: Path) -> None:
    (project / "prune.py").write_text(
        HOPELESS_LAST_TRAIN.replace(
            "    if hopeless:\n",
            "    if hopeless:\n        log_metrics({'val_acc': float('nan')}, step=epoch + 1)\n",
        )
    )
    (project / "tuning.yml").write_text(hopeless_last_grid_yaml())
    done = flagrun(project, "tune", "prune.py", "--config", "tuning.yml", "--progress", "plain")
    assert done.returncode == 0, done.stdout + done.stderr

    def strict(text: str) -> object:
        def refuse(word: str) -> None:
            raise AssertionError(f"bare {word} in JSON")

        return json.loads(text, parse_constant=refuse)

    listed = flagrun(project, "trials", "--format", "json")
    trials = strict(listed.stdout)["trials"]
    assert trials[-1]["state"] == "PRUNED"
    job = only_job(project)
    for line in (job / "trials.jsonl").read_text().splitlines():
        strict(line)
    for record in job.glob("trials/*/run.json"):
        strict(record.read_text())
