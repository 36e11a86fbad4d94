"""A trial's verdict and what reaches its pruner (flagrun.tuner.trial), over real processes,
real event files and a real Optuna study."""

from __future__ import annotations

import textwrap
import time
import warnings
from pathlib import Path

import optuna

from flagrun import runner
from flagrun.executors import LocalExecutor
from flagrun.records import RunStatus, TrialState
from flagrun.spec import TuningSpec
from flagrun.tuner.trial import ActiveTrial, judge, report_new_points

SPEC = TuningSpec(goal="MAXIMIZE", metric_tag="val_acc", early_stopping=True)


def start_trial(tmp_path: Path, code: str) -> ActiveTrial:
    source = tmp_path / "source"
    source.mkdir()
    (source / "train.py").write_text(textwrap.dedent(code))
    run_dir = tmp_path / "trial"
    run_dir.mkdir()
    spec = runner.RunSpec(
        script=source / "train.py",
        run_dir=run_dir,
        source_dir=source,
        project_dir=tmp_path,
        echo=False,
    )
    study = optuna.create_study(direction="maximize")
    return ActiveTrial(study.ask(), 1, {}, LocalExecutor().start(spec))


def wait_exited(active: ActiveTrial, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not active.process.poll():
        assert time.monotonic() < deadline, "the trial did not exit"
        time.sleep(0.02)


def test_a_trial_that_exited_before_the_prune_reached_it_is_complete(tmp_path: Path) -> None:
    active = start_trial(
        tmp_path,
        """
        import flagrun
        for step in range(4):
            flagrun.log_metrics({"val_acc": 0.1 * step}, step=step)
        """,
    )
    wait_exited(active)
    active.process.metrics.poll()
    report_new_points(active, SPEC)
    # The pruner's answer arrives after the process ended on its own: the stop is a no-op.
    active.pruned_at = 3
    active.process.stop(RunStatus.PRUNED, "pruned at step 3", 5.0)
    verdict = judge(active, active.process.result(), SPEC)
    assert verdict.state == TrialState.COMPLETE
    assert (verdict.value, verdict.step) == (0.30000001192092896, 3)


def test_a_trial_stopped_while_it_runs_is_pruned(tmp_path: Path) -> None:
    active = start_trial(
        tmp_path,
        """
        import time, flagrun
        flagrun.log_metrics({"val_acc": 0.1}, step=0)
        time.sleep(60)
        """,
    )
    deadline = time.monotonic() + 60
    while not active.process.metrics.poll():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    report_new_points(active, SPEC)
    active.pruned_at = 0
    active.process.stop(RunStatus.PRUNED, "pruned at step 0", 5.0)
    result = active.process.result()
    assert result.signal == "SIGTERM"
    assert judge(active, result, SPEC).state == TrialState.PRUNED


def test_a_repeated_step_reaches_the_pruner_once_and_without_a_warning(tmp_path: Path) -> None:
    # Hugging Face's Trainer: the final evaluate() lands on the last epoch's step.
    active = start_trial(
        tmp_path,
        """
        import flagrun
        for step, value in ((4, 0.5), (8, 0.6), (8, 0.6)):
            flagrun.log_metrics({"val_acc": value}, step=step)
        """,
    )
    wait_exited(active)
    active.process.metrics.poll()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Optuna's "already reported" is a warning
        report_new_points(active, SPEC)
        report_new_points(active, SPEC)
    assert active.trial.study.trials[0].intermediate_values == {4: 0.5, 8: 0.6000000238418579}
    active.process.result()


def test_over_time_the_last_point_of_a_time_step_is_what_the_pruner_gets(tmp_path: Path) -> None:
    active = start_trial(
        tmp_path,
        """
        import flagrun
        for step, value in ((0, 0.2), (1, 0.4), (2, 0.6)):
            flagrun.log_metrics({"val_acc": value}, step=step)
        """,
    )
    wait_exited(active)
    active.process.metrics.poll()
    over_time = TuningSpec(
        goal="MAXIMIZE",
        metric_tag="val_acc",
        early_stopping=True,
        early_stopping_config={"pruner": "median", "resource": "time", "timeStep": 3600},
    )
    report_new_points(active, over_time)  # the hour is not over: nothing reported yet
    assert active.trial.study.trials[0].intermediate_values == {}
    report_new_points(active, over_time, finished=True)
    assert active.trial.study.trials[0].intermediate_values == {1: 0.6000000238418579}
    active.process.result()
