"""The job folder: job.json, the trials index, job lookup."""

from __future__ import annotations

from pathlib import Path

import pytest

from flagrun import jobstore
from flagrun.errors import StoreError, UsageError
from tests.factories import job_record, trial_row


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
