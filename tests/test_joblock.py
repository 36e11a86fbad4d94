"""One job, one tuner: two `flagrun tune --resume` of one crashed job at once, for real."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from flagrun.errors import UsageError
from tests.helpers import (
    make_project,
    only_job,
    start_flagrun,
    trials_json,
    tuning_yaml,
    wait_for,
)

TRAIN = textwrap.dedent(
    """
    import time
    from flagrun import flags, flag_numeric, log_metrics

    FLAGS = flags(flag_numeric("x", 0.5), flag_numeric("sleep", 0.4))
    for epoch in range(3):
        time.sleep(FLAGS.sleep)
        log_metrics({"val_acc": 1.0 - (FLAGS.x - 0.3) ** 2}, step=epoch)
    """
)


def test_a_second_lock_on_a_job_is_refused_naming_the_holder(tmp_path: Path) -> None:
    from flagrun import joblock

    held = joblock.lock_job(tmp_path)
    with pytest.raises(UsageError, match=f"another process \\(pid {os.getpid()}\\)"):
        joblock.lock_job(tmp_path)
    held.release()
    joblock.lock_job(tmp_path).release()  # free again once released


@pytest.mark.slow  # whole jobs, several seconds: kept out of the fast loop (under a minute)
def test_two_resumes_of_a_crashed_job_at_once_one_runs_it_the_other_is_refused(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path, TRAIN, tuning_yaml(maxTrials=6, maxParallelTrials=2))
    tuner = start_flagrun(project, "tune", "train.py", "--config", "tuning.yml")
    index = project / "runs"
    wait_for(lambda: any(index.glob("*/trials/2")), 60, "two trials to start")
    tuner.kill()  # a crash: the job is left RUNNING with trials in flight
    tuner.wait()
    job = only_job(project).name

    resumes = [
        start_flagrun(project, "tune", "--resume", job, "--progress", "plain",
                      stderr=subprocess.PIPE)
        for _ in range(2)
    ]  # fmt: skip
    outcomes = [(proc.wait(timeout=180), proc.stderr.read()) for proc in resumes]
    for proc in resumes:
        proc.stdout.close()
        proc.stderr.close()
    codes = sorted(code for code, _ in outcomes)
    assert codes == [0, 2], outcomes
    refused = next(err for code, err in outcomes if code == 2)
    assert f"job {job} is being tuned by another process" in refused
    assert all("Traceback" not in err for _, err in outcomes)
    states = [trial["state"] for trial in trials_json(project)["trials"]]
    assert states.count("COMPLETE") == 6
