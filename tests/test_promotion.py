"""Paused trials and their promotion (flagrun.tuner.promotion): the rule over a real
in-memory Optuna study, and a whole job whose paused trial continues from its checkpoint."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import optuna
import pytest

from flagrun.metrics import read_scalars
from flagrun.tuner import budget, promotion
from tests.helpers import flagrun, make_project, trials_json, tuning_yaml

MAXIMIZE = optuna.study.StudyDirection.MAXIMIZE


def paused_at_rung_0(study: optuna.Study, value: float, *, paused: bool = True) -> None:
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    study._storage.set_trial_system_attr(trial._trial_id, "completed_rung_0", value)
    if paused:
        trial.set_user_attr(promotion.PAUSED, True)
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)


def tune_asha(
    tmp_path: Path,
    train: str,
    *,
    min_resource: int,
    stopping: dict[str, object] | None = None,
    **more: object,
) -> tuple[str, dict[int, dict]]:
    """Run ``train`` as an asha job (halving, random search, one trial at a time, unless
    ``more`` fields of the tuning file say otherwise; ``stopping``: more earlyStopping
    settings), to a successful end; its output and its trials by id."""
    halving = {"pruner": "asha", "min_resource": min_resource, "reduction_factor": 2}
    fields = {"maxParallelTrials": 1, **more}
    project = make_project(
        tmp_path,
        train,
        tuning_yaml(algorithm="RANDOM_SEARCH", enableTrialEarlyStopping=True,
                    earlyStopping={**halving, **(stopping or {})}, **fields),
    )  # fmt: skip
    done = flagrun(project, "tune", "train.py", "--config", "tuning.yml", "--progress", "plain")
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout, {t["trialId"]: t for t in trials_json(project)["trials"]}


def test_a_paused_trial_is_promoted_once_it_is_among_the_best_of_its_rung() -> None:
    study = optuna.create_study(direction="maximize")
    paused_at_rung_0(study, 0.9, paused=False)  # went on at once
    paused_at_rung_0(study, 0.5)  # judged against 0.9 alone: paused
    assert promotion.next_promotion(study.trials, 2, MAXIMIZE) is None  # 0.5 is not top half
    paused_at_rung_0(study, 0.3)
    paused_at_rung_0(study, 0.2)
    chosen = promotion.next_promotion(study.trials, 2, MAXIMIZE)
    assert chosen is not None and chosen.number == 1  # now 0.5 is in the top 2 of 4
    promotion.promote(study, chosen)
    # queued as a retry of trial 2, which holds budget and is not promoted twice
    assert budget.Tally.of(study.trials).claimed == 5
    assert promotion.next_promotion(study.trials, 2, MAXIMIZE) is None
    retry = study.ask()
    assert promotion.inherit_rungs(study, retry) == 2
    assert promotion.rungs(study.trials[retry.number]) == [0.5]


def test_when_minimizing_the_lowest_values_are_the_best() -> None:
    study = optuna.create_study(direction="minimize")
    for value in (0.1, 0.4, 0.2, 0.8):
        paused_at_rung_0(study, value)
    chosen = promotion.next_promotion(study.trials, 2, optuna.study.StudyDirection.MINIMIZE)
    assert chosen is not None and promotion.rungs(chosen) == [0.1]


# Each trial's quality is set by its id (trials run one at a time: 1 best, then worse),
# whatever x is; the script keeps its epoch and quality in its checkpoint folder and
# restarts after that epoch, as the checkpoint contract asks. It writes the state whole
# (a pause's SIGTERM mid-write left half a file, and the promoted trial failed on it).
RESUMABLE_TRAIN = textwrap.dedent(
    """
    import json, os, time
    from flagrun import checkpoint_dir, flags, flag_numeric, log_metrics

    FLAGS = flags(flag_numeric("x", 0.5))
    state_file = checkpoint_dir() / "state.json"
    quality = {"1": 0.9, "2": 0.5, "3": 0.3, "4": 0.2}.get(os.environ["FLAGRUN_TRIAL_ID"], 0.1)
    fresh = {"epoch": -1, "q": quality}
    state = json.loads(state_file.read_text()) if state_file.exists() else fresh
    print(f"starting at epoch {state['epoch'] + 1}")
    for epoch in range(state["epoch"] + 1, 8):
        time.sleep(0.3)
        log_metrics({"val_acc": state["q"] * (epoch + 1) / 8}, step=epoch)
        part = state_file.with_name("state.json.part")
        part.write_text(json.dumps({"epoch": epoch, "q": state["q"]}))
        os.replace(part, state_file)
    """
)


@pytest.mark.slow
def test_a_paused_trial_is_promoted_and_continues_from_its_checkpoint(tmp_path: Path) -> None:
    # Rungs at steps 2 and 4, halving. Trial 1 goes on; 2, 3 and 4 are paused at rung 0;
    # once four values are in, trial 2's is in the top half, so trial 5 continues it from
    # epoch 3, to be paused again at rung 1 behind trial 1.
    output, trials = tune_asha(tmp_path, RESUMABLE_TRAIN, min_resource=2, maxTrials=5)
    assert "trial 5: promotes paused trial 2" in output
    assert [trials[i]["state"] for i in range(1, 6)] == ["COMPLETE"] + ["PRUNED"] * 4
    promoted = trials[5]
    assert promoted["hyperparameters"] == trials[2]["hyperparameters"]
    assert promoted["resumedFrom"] == 2
    run_dir = Path(promoted["runDir"])
    started = int((run_dir / "output.log").read_text().split("starting at epoch ")[1].split()[0])
    assert started >= 3  # after trial 2's rung 0 (step 2), not from the start
    steps = [point.step for point in read_scalars(run_dir)["val_acc"]]
    assert steps == list(range(len(steps)))  # one curve: trial 2's epochs, then its own
    reason = json.loads((run_dir / "run.json").read_text())["reason"]
    assert reason.endswith(": its checkpoint waits for a promotion"), reason
    # judged at rung 1 (step 4, or a later point read in the same poll); under load the
    # script may write one more epoch in the stop's grace, which trainingStep then counts
    paused_at = int(reason.removeprefix("paused at step ").split(":")[0])
    assert 4 <= paused_at <= promoted["trainingStep"]


# Trial 1, the best, hangs after its second epoch the first time it runs, until its
# trialTimeout stops it; continued from its checkpoint, it trains on to the end.
HANGS_ONCE_TRAIN = textwrap.dedent(
    """
    import json, os, time
    from flagrun import checkpoint_dir, flags, flag_numeric, log_metrics

    FLAGS = flags(flag_numeric("x", 0.5))
    state_file = checkpoint_dir() / "state.json"
    quality = {"1": 0.9, "2": 0.5}.get(os.environ["FLAGRUN_TRIAL_ID"], 0.1)
    fresh = {"epoch": -1, "q": quality}
    resumed = state_file.exists()
    state = json.loads(state_file.read_text()) if resumed else fresh
    print(f"starting at epoch {state['epoch'] + 1}")
    for epoch in range(state["epoch"] + 1, 4):
        time.sleep(0.5)  # time for the tuner to judge each epoch
        if epoch == 2 and not resumed and state["q"] == 0.9:
            time.sleep(120)
        log_metrics({"val_acc": state["q"] * (epoch + 1) / 4}, step=epoch)
        part = state_file.with_name("state.json.part")
        part.write_text(json.dumps({"epoch": epoch, "q": state["q"]}))
        os.replace(part, state_file)
    """
)


@pytest.mark.slow
def test_a_trial_its_timeout_stopped_is_paused_and_promoted_like_one_stopped_at_a_rung(
    tmp_path: Path,
) -> None:
    # Rungs at steps 1 and 2, halving. Trial 1 passes rung 0 alone, then hangs until its
    # timeout: paused, not failed. Trial 2 is paused at rung 0 behind it, so trial 1 is in
    # the top half of rung 0 and trial 3 continues it from epoch 2 to the end.
    output, trials = tune_asha(
        tmp_path, HANGS_ONCE_TRAIN, min_resource=1, maxTrials=3, trialTimeout=8
    )
    assert "trial 3: promotes paused trial 1" in output
    assert [trials[i]["state"] for i in range(1, 4)] == ["PRUNED", "PRUNED", "COMPLETE"]
    record = json.loads((Path(trials[1]["runDir"]) / "run.json").read_text())
    assert record["reason"] == "timeout after 8 s"  # the run's end; the trial's outcome:
    assert record["trial"]["reason"] == (
        "paused at step 1, timeout after 8 s: its checkpoint waits for a promotion"
    )
    promoted = trials[3]
    assert promoted["resumedFrom"] == 1
    assert promoted["hyperparameters"] == trials[1]["hyperparameters"]
    run_dir = Path(promoted["runDir"])
    assert "starting at epoch 2" in (run_dir / "output.log").read_text()
    steps = [point.step for point in read_scalars(run_dir)["val_acc"]]
    assert steps == [0, 1, 2, 3]  # trial 1's epochs, then its own


# Trial 2, the best, has one slow epoch (its third) on top of fast ones: at the pace of
# its first three points it would not finish within its timeout, though it does.
SLOW_THIRD_EPOCH_TRAIN = textwrap.dedent(
    """
    import json, os, time
    from flagrun import checkpoint_dir, flags, flag_numeric, log_metrics

    FLAGS = flags(flag_numeric("x", 0.5))
    state_file = checkpoint_dir() / "state.json"
    quality = 0.9 if os.environ["FLAGRUN_TRIAL_ID"] == "2" else 0.5
    for epoch in range(6):
        time.sleep(0.3)
        if epoch == 2 and quality == 0.9:
            time.sleep(8)
        log_metrics({"val_acc": quality * (epoch + 1) / 6}, step=epoch)
        state_file.write_text(json.dumps({"epoch": epoch}))
    """
)


@pytest.mark.slow
def test_a_trial_past_a_rung_is_not_stopped_for_its_pace_its_timeout_would_pause_it(
    tmp_path: Path,
) -> None:
    # Rungs at steps 1, 2 and 4, halving. Trial 1 finishes (6 points expected). Trial 2
    # passes rungs 0 and 1, then its pace projects ~23 s against trialTimeout 15 s; as it
    # passed a rung it runs on (its timeout would pause it) and finishes in ~10 s.
    output, trials = tune_asha(
        tmp_path, SLOW_THIRD_EPOCH_TRAIN, min_resource=1, maxTrials=2, trialTimeout=15
    )
    assert [trials[i]["state"] for i in range(1, 3)] == ["COMPLETE", "COMPLETE"], output
    steps = [point.step for point in read_scalars(Path(trials[2]["runDir"]))["val_acc"]]
    assert steps == list(range(6))


# Trial 1 diverged (at chance from its first epoch, slow); trial 2, beside it, learns fast.
DIVERGED_BESIDE_A_GOOD_ONE_TRAIN = textwrap.dedent(
    """
    import json, os, time
    from flagrun import checkpoint_dir, flags, flag_numeric, log_metrics

    FLAGS = flags(flag_numeric("x", 0.5))
    diverged = os.environ["FLAGRUN_TRIAL_ID"] == "1"
    for epoch in range(8):
        time.sleep(1.0 if diverged else 0.1)
        log_metrics({"val_acc": 0.1 if diverged else 0.8 + 0.01 * epoch}, step=epoch)
        (checkpoint_dir() / "state.json").write_text(json.dumps({"epoch": epoch}))
    """
)


@pytest.mark.slow
def test_with_stop_stalled_a_diverged_trial_is_stopped_for_good_not_paused(
    tmp_path: Path,
) -> None:
    # Rung 0 at step 3: by then the diverged trial has learned nothing in two epochs
    # after its first and is far behind trial 2, so it is stopped as stalled, before
    # halving would judge it. A trial that learned nothing is not worth a promotion: no
    # pause, though its checkpoint is there.
    output, trials = tune_asha(
        tmp_path,
        DIVERGED_BESIDE_A_GOOD_ONE_TRAIN,
        min_resource=3,
        stopping={"stopStalled": True},
        maxTrials=2,
        maxParallelTrials=2,
    )
    assert [trials[i]["state"] for i in (1, 2)] == ["PRUNED", "COMPLETE"], output
    reason = json.loads((Path(trials[1]["runDir"]) / "run.json").read_text())["reason"]
    assert reason.startswith("stalled at step ") and "promotion" not in reason, reason
    assert trials[1]["trainingStep"] < 7
