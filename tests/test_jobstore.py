"""The job folder: job.json, the trials index, job lookup."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from flagrun import jobstore
from flagrun.errors import StoreError, UsageError
from tests.factories import job_record, trial_row
from tests.helpers import flagrun, make_project, only_job, trials_json, tuning_yaml


def make_job(runs: Path, job_id: str) -> Path:
    job_dir = runs / job_id
    job_dir.mkdir(parents=True)
    jobstore.write_job(job_dir, job_record(job_id, "RUNNING"))
    return job_dir


def test_index_keeps_the_last_row_per_trial_and_skips_a_torn_line(tmp_path: Path) -> None:
    job_dir = make_job(tmp_path, "2026-11-22T10-00-00Z")
    jobstore.append_trial(job_dir, trial_row(2, "RUNNING"))
    jobstore.append_trial(job_dir, trial_row(1, "RUNNING"))
    jobstore.append_trial(job_dir, trial_row(1, "COMPLETE", objective_value=0.9))
    with open(job_dir / jobstore.INDEX_FILE, "ab") as handle:
        handle.write(b'{"trialId": 2, "state": "COMPL')  # writer killed mid-line
    rows = jobstore.read_trials(job_dir)
    assert [(row.trial_id, row.state) for row in rows] == [(1, "COMPLETE"), (2, "RUNNING")]


def test_read_trials_of_a_job_without_index_is_empty(tmp_path: Path) -> None:
    assert jobstore.read_trials(make_job(tmp_path, "j")) == []


def test_resolve_job_latest_id_and_refusals(tmp_path: Path) -> None:
    old = make_job(tmp_path, "2026-11-22T10-00-00Z")
    new = make_job(tmp_path, "2026-11-22T11-00-00Z")
    (tmp_path / "2026-11-22T12-00-00Z").mkdir()  # a plain run, not a job
    assert jobstore.resolve_job(tmp_path, "latest") == new
    assert jobstore.resolve_job(tmp_path, None) == new
    assert jobstore.resolve_job(tmp_path, old.name) == old
    for bad in ("../x", "/etc", "a/b"):
        with pytest.raises(UsageError):
            jobstore.resolve_job(tmp_path, bad)
    with pytest.raises(UsageError, match="recent jobs"):
        jobstore.resolve_job(tmp_path, "2026-01-01T00-00-00Z")


def test_resolve_job_refuses_a_symlink_leading_outside(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    outside = make_job(tmp_path / "elsewhere", "j")
    runs.mkdir()
    (runs / "escape").symlink_to(outside)
    with pytest.raises(UsageError):
        jobstore.resolve_job(runs, "escape")


def test_no_job_yet_says_how_to_start_one(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no tuning job"):
        jobstore.resolve_job(tmp_path, None)


def test_unreadable_job_json_is_a_store_error(tmp_path: Path) -> None:
    job_dir = tmp_path / "j"
    job_dir.mkdir()
    (job_dir / jobstore.JOB_FILE).write_text("{not json")
    with pytest.raises(StoreError, match="cannot read"):
        jobstore.read_job(job_dir)


# -- a damaged index or job.json, as users meet them through the CLI ----------------------

TRAIN = """
from flagrun import flags, flag_numeric, log_metrics

FLAGS = flags(flag_numeric("x", 0.5))
log_metrics({"val_acc": 1.0 - (FLAGS.x - 0.3) ** 2}, step=0)
"""


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A project whose one job ran 3 trials, one at a time (copied by each test)."""
    project = make_project(
        tmp_path_factory.mktemp("finished"), TRAIN, tuning_yaml(maxTrials=3, maxParallelTrials=1)
    )
    done = flagrun(project, "tune", "train.py", "--config", "tuning.yml", "--progress", "quiet")
    assert done.returncode == 0, done.stderr
    return project


@pytest.fixture
def project(finished: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(finished, tmp_path / "project", symlinks=True))


def best_of(project: Path) -> dict:
    rows = [json.loads(line) for line in (only_job(project) / "trials.jsonl").open()]
    return max((r for r in rows if r["state"] == "COMPLETE"), key=lambda r: r["objectiveValue"])


def test_a_torn_last_line_does_not_hide_how_the_best_trial_ended(project: Path) -> None:
    index = only_job(project) / "trials.jsonl"
    best = best_of(project)
    lines = index.read_text().splitlines(keepends=True)
    final = json.dumps(best, separators=(",", ":")) + "\n"
    kept = [line for line in lines if json.loads(line) != best]
    index.write_text("".join(kept) + final[: len(final) // 2])  # its final row, torn

    table = trials_json(project)
    assert table["trials"][0]["trialId"] == best["trialId"]
    assert table["trials"][0]["state"] == "COMPLETE"
    done = flagrun(project, "collect", "--dest", "best")
    assert done.returncode == 0, done.stderr
    assert f"trial(s) {best['trialId']} " in done.stdout


def test_a_deleted_index_is_rebuilt_from_the_trials_own_records_and_said(project: Path) -> None:
    index = only_job(project) / "trials.jsonl"
    shown = index.relative_to(project)  # as the user named it: runs/<job>/trials.jsonl
    before = trials_json(project)["trials"]
    index.unlink()
    done = flagrun(project, "trials", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert f"{shown} is missing: 3 trial(s) read from their own run folders" in done.stderr
    after = json.loads(done.stdout)["trials"]
    keys = ("trialId", "state", "objectiveValue", "hyperparameters")
    assert [{k: t[k] for k in keys} for t in after] == [{k: t[k] for k in keys} for t in before]


def test_damaged_rows_are_skipped_by_one_rule_and_named(project: Path) -> None:
    index = only_job(project) / "trials.jsonl"
    with index.open("a") as handle:
        handle.write('{"x": 1}\n[1, 2]\nnot json at all\n')
        row = {**best_of(project), "runDir": "../../private"}
        handle.write(json.dumps(row) + "\n")
    done = flagrun(project, "trials", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    shown = index.relative_to(project)
    assert f"{shown}: skipped 4 damaged line(s) (line 7, 8, 9, 10)" in done.stderr
    trials = json.loads(done.stdout)["trials"]
    assert len(trials) == 3
    assert all("/trials/" in t["runDir"] and ".." not in t["runDir"] for t in trials)


def test_an_append_after_a_torn_line_starts_a_line_of_its_own(tmp_path: Path) -> None:
    job_dir = make_job(tmp_path, "j")
    jobstore.append_trial(job_dir, trial_row(1, "RUNNING"))
    with open(job_dir / jobstore.INDEX_FILE, "ab") as handle:
        handle.write(b'{"trialId": 1, "state": "COMPL')
    jobstore.append_trial(job_dir, trial_row(2, "RUNNING"))
    rows = jobstore.read_trials(job_dir)
    assert [(row.trial_id, row.state) for row in rows] == [(1, "RUNNING"), (2, "RUNNING")]


DAMAGE = ("a list", "no spec", "truncated")  # job.json as [], without its spec, cut short


def damage_job(job: Path, how: str) -> None:
    path = job / "job.json"
    if how == "a list":
        path.write_text("[]")
    elif how == "no spec":
        data = json.loads(path.read_text())
        del data["spec"]
        path.write_text(json.dumps(data))
    else:
        path.write_text(path.read_text()[:50])


@pytest.mark.slow  # whole jobs, several seconds: kept out of the fast loop (under a minute)
@pytest.mark.parametrize("how", DAMAGE)
def test_a_damaged_job_json_is_one_line_naming_it_and_the_other_jobs_still_list(
    project: Path, how: str
) -> None:
    good = only_job(project)
    damaged = good.with_name("2020-01-01T00-00-00Z")
    shutil.copytree(good, damaged)
    damage_job(damaged, how)

    listing = flagrun(project, "jobs", "--format", "json")
    assert listing.returncode == 0, listing.stderr
    assert [job["job"] for job in json.loads(listing.stdout)] == [good.name]
    shown = (damaged / "job.json").relative_to(project)
    assert f"skipped: cannot read {shown}" in listing.stderr

    for args in (
        ["trials", damaged.name],
        ["report", damaged.name],
        ["collect", damaged.name, "--dest", "out"],
        ["tune", "--resume", damaged.name],
    ):
        done = flagrun(project, *args)
        assert done.returncode == 1, (args, done.stderr)
        assert "Traceback" not in done.stderr
        assert str(shown) in done.stderr, (args, done.stderr)
