"""The typed records: every on-disk version reads, writes back unchanged, and damage is named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from flagrun import jobstore, store
from flagrun.collect import trials
from flagrun.errors import StoreError
from flagrun.records import (
    FORMAT,
    JobRecord,
    JobState,
    Launch,
    RecordError,
    RunRecord,
    RunStatus,
    TrialRow,
    TrialState,
)

FORMAT1 = Path(__file__).parent / "data" / "records" / "format1"


def test_a_format1_job_folder_reads_through_every_reader(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    job_dir = runs / "2026-12-02T07-37-54Z"
    shutil.copytree(FORMAT1 / "job", job_dir)
    record = jobstore.read_job(job_dir)
    assert record.state == JobState.COMPLETED
    assert record.spec.metric_tag == "val_acc" and record.spec.max_trials == 3
    assert record.counts[TrialState.COMPLETE] == 3 and record.finished_trials == 3
    assert record.best is not None and record.best.trial_id == 3
    table = trials(runs_dir=runs)
    assert [row.trial_id for row in table.trials] == [3, 1, 2]
    assert all(row.state == TrialState.COMPLETE for row in table.trials)
    run = store.read_run(job_dir / "trials" / "1")
    assert run.status == RunStatus.COMPLETED and run.trial_id == 1 and run.job == job_dir.name


@pytest.mark.parametrize(
    "path, shape",
    [
        ("run/run.json", RunRecord),
        ("job/trials/2/run.json", RunRecord),
        ("job/job.json", JobRecord),
    ],
)
def test_format1_files_write_back_as_they_were(path: str, shape: type) -> None:
    data = json.loads((FORMAT1 / path).read_text())
    written = shape.from_dict(data).to_dict()
    if shape is JobRecord:  # the keys format-1 job files lacked, at their defaults
        added = {key: written.pop(key) for key in set(written) - set(data)}
        assert added == {"shared": False, "launch": Launch().to_dict(), "cluster": None}
        spec = written["spec"]
        assert (spec.pop("args"), spec.pop("job_dir"), spec.pop("max_running_time")) == (
            [],
            None,
            None,
        )
    assert written == data


def test_format1_trial_rows_write_back_as_they_were() -> None:
    for line in (FORMAT1 / "job" / "trials.jsonl").read_text().splitlines():
        data = json.loads(line)
        assert TrialRow.from_dict(data).to_dict() == data


def test_keys_written_by_a_newer_flagrun_are_kept(tmp_path: Path) -> None:
    data = json.loads((FORMAT1 / "run" / "run.json").read_text())
    data["energy_kwh"] = 0.25
    assert RunRecord.from_dict(data).to_dict()["energy_kwh"] == 0.25


def test_a_newer_format_is_refused_with_the_fix() -> None:
    data = json.loads((FORMAT1 / "run" / "run.json").read_text())
    data["format"] = FORMAT + 1
    with pytest.raises(RecordError, match="upgrade flagrun"):
        RunRecord.from_dict(data)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"status": "DONE"}, "status is 'DONE', not one of RUNNING, COMPLETED"),
        ({"flags": [1, 2]}, "flags is \\[1, 2\\], not a mapping"),
        ({"exit_code": "0"}, "exit_code is '0', not a whole number"),
        ({"runner": {"pid": "x"}}, "pid is 'x', not a whole number"),
    ],
)
def test_a_damaged_run_record_names_the_key(tmp_path: Path, change: dict, message: str) -> None:
    data = {**json.loads((FORMAT1 / "run" / "run.json").read_text()), **change}
    (tmp_path / "run.json").write_text(json.dumps(data))
    with pytest.raises(StoreError, match=message) as info:
        store.read_run(tmp_path)
    assert str(tmp_path / "run.json") in info.value.message


@pytest.mark.parametrize("text", ["[]", '"job"', '{"id": "j"}', '{"spec": {}}'])
def test_a_damaged_job_record_is_one_store_error(tmp_path: Path, text: str) -> None:
    (tmp_path / "job.json").write_text(text)
    with pytest.raises(StoreError, match="cannot read .*job.json"):
        jobstore.read_job(tmp_path)


def test_non_finite_values_never_reach_json() -> None:
    row = TrialRow(1, TrialState.PRUNED, {"x": 1.0}, "trials/1", objective_value=float("nan"))
    assert json.loads(json.dumps(row.to_dict(), allow_nan=False))["objectiveValue"] is None


def test_state_words_compare_and_print_as_their_text() -> None:
    assert RunStatus.COMPLETED == "COMPLETED" and f"{TrialState.PRUNED}" == "PRUNED"
    assert {"RUNNING": 1}[JobState.RUNNING] == 1
