"""`flagrun tensorboard` serves the runs on 127.0.0.1, HParams included."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import urllib.request
from pathlib import Path

import pytest

from flagrun import jobstore, metrics, store
from flagrun.errors import UsageError
from flagrun.tensorboard import command, folders_for, prepare_logdir
from flagrun.writer import MetricsWriter
from tests.factories import job_record, run_record
from tests.helpers import flagrun, start_flagrun
from tests.tbview import metric, sessions_by_name, tensorboard_view


def test_the_command_serves_one_logdir_on_localhost(tmp_path: Path) -> None:
    assert command(tmp_path / "a")[3:5] == ["--logdir", str(tmp_path / "a")]
    assert "127.0.0.1" in command(tmp_path)


def write_run(run_dir: Path, flags: dict, stamp: str, val_acc: float) -> None:
    """A finished run whose Keras-tutorial writer chose a timestamped folder."""
    run_dir.mkdir(parents=True)
    writer = MetricsWriter(run_dir / "logs" / "fit" / stamp / "validation")
    writer.log({"epoch_accuracy": val_acc})
    writer.close()
    record = run_record(run_dir.name, flags=flags, metrics=metrics.summarize(run_dir))
    store.write_run(run_dir, record)
    from flagrun import hparams

    hparams.write_run_session(run_dir)


def test_runs_are_sessions_named_by_their_ids_with_metric_columns(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    write_run(runs / "2026-12-02T05-54-26Z", {"lr": 0.1}, "20261202-055426", 0.8)
    write_run(runs / "2026-12-02T06-10-00Z", {"lr": 0.2}, "20261202-061000", 0.7)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    for refs in (["2026-12-02T05-54-26Z"], ["2026-12-02T05-54-26Z", "2026-12-02T06-10-00Z"]):
        logdir = prepare_logdir(folders_for(runs, refs), scratch)
        view = tensorboard_view(logdir)
        assert [m["name"] for m in view["experiment"]["metricInfos"]] == [
            {"tag": "validation/epoch_accuracy"}  # one column, not one per timestamp
        ]
        sessions = sessions_by_name(view)
        assert sorted(sessions) == refs  # not "." nor "A/."
        assert metric(sessions[refs[0]], "", "validation/epoch_accuracy") == pytest.approx(0.8)


def test_a_lone_job_is_its_own_logdir_and_a_trial_is_named_by_its_job(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    job_dir = runs / "job"
    job_dir.mkdir(parents=True)
    jobstore.write_job(job_dir, job_record())
    write_run(jobstore.trial_dir(job_dir, 1), {"lr": 0.1}, "20261202-055426", 0.8)
    assert prepare_logdir([job_dir], tmp_path) == job_dir
    logdir = prepare_logdir(folders_for(runs, ["job/trials/1"]), tmp_path / "x")
    assert (logdir / "job" / "trials" / "1").resolve() == jobstore.trial_dir(job_dir, 1)


def test_no_runs_yet_says_how_to_start_one(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no runs"):
        folders_for(tmp_path / "runs", [])


@pytest.mark.slow  # several seconds: a whole job, or more
def test_serves_a_run_with_its_scalars_and_hparams(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(
        textwrap.dedent(
            """
            from flagrun import flags, flag_numeric, log_metrics
            FLAGS = flags(flag_numeric("lr", 0.1))
            for step in range(3):
                log_metrics({"val_acc": FLAGS.lr * step}, step=step)
            """
        )
    )
    done = flagrun(tmp_path, "train", "train.py", "lr=0.2")
    assert done.returncode == 0, done.stderr
    # buffered: the address line must be flushed all the same
    server = start_flagrun(tmp_path, "tensorboard", env={"PYTHONUNBUFFERED": None}, stderr=None)
    try:
        line = server.stdout.readline()
        assert line.startswith("TensorBoard at http://127.0.0.1:"), line
        url = line.split()[2]
        with urllib.request.urlopen(url + "data/plugins_listing", timeout=30) as response:
            plugins = json.load(response)
        assert plugins["scalars"]["enabled"] and plugins["hparams"]["enabled"]
        run_id = next(p.name for p in (tmp_path / "runs").iterdir())
        with urllib.request.urlopen(url + "data/runs", timeout=30) as response:
            assert run_id in json.load(response)  # the run is named by its id, through the link
    finally:
        os.kill(server.pid, signal.SIGINT)
        server.wait(timeout=30)
    assert server.returncode == 130
