"""The job's append-only files after a crash: a torn journal tail is dropped (with a
notice), never appended to; a journal that vanished or was emptied is refused, never
replaced by a fresh study. Real jobs, real Optuna journal files."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.helpers import flagrun, make_project, only_job, trials_json, tuning_yaml

TRAIN = textwrap.dedent(
    """
    from flagrun import flags, flag_numeric, log_metrics

    FLAGS = flags(flag_numeric("x", 0.5))
    for epoch in range(2):
        log_metrics({"val_acc": 1.0 - (FLAGS.x - 0.3) ** 2 - 0.1 / (epoch + 1)}, step=epoch)
    """
)


@pytest.fixture
def finished_job(tmp_path: Path) -> Path:
    """A project whose one job ran 2 trials to completion, one at a time."""
    project = make_project(tmp_path, TRAIN, tuning_yaml(maxTrials=2, maxParallelTrials=1))
    done = flagrun(project, "tune", "train.py", "--config", "tuning.yml", "--progress", "plain")
    assert done.returncode == 0, done.stderr
    return project


def resume(project: Path, max_trials: int):
    args = ["--resume", "latest", "--max-trials", str(max_trials), "--progress", "plain"]
    return flagrun(project, "tune", *args)


@pytest.mark.slow  # whole jobs, several seconds: kept out of the fast loop (under a minute)
def test_a_torn_last_record_is_dropped_with_a_notice_and_never_appended_to(finished_job):
    path = only_job(finished_job) / "study.journal"
    data = path.read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    path.write_bytes(data[: last + (len(data) - last) // 2])  # the tuner killed mid-write

    done = resume(finished_job, 3)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "study.journal: dropped a torn last record" in done.stdout
    states = [trial["state"] for trial in trials_json(finished_job)["trials"]]
    assert states.count("COMPLETE") == 3

    again = resume(finished_job, 4)  # the journal is whole: it reads and appends again
    assert again.returncode == 0, again.stdout + again.stderr
    assert "torn" not in again.stdout
    assert all(line.endswith(b"}\n") for line in path.read_bytes().splitlines(keepends=True))


@pytest.mark.slow  # whole jobs, several seconds: kept out of the fast loop (under a minute)
@pytest.mark.parametrize("damage", ["deleted", "emptied"])
def test_a_journal_that_is_gone_is_refused_and_nothing_is_rewritten(finished_job, damage):
    job = only_job(finished_job)
    path = job / "study.journal"
    if damage == "deleted":
        path.unlink()
    else:
        path.write_bytes(b"")
    index = (job / "trials.jsonl").read_bytes()

    done = resume(finished_job, 3)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"{path} is {'missing' if damage == 'deleted' else 'empty'}" in done.stderr
    assert (job / "trials.jsonl").read_bytes() == index  # no trial rewritten as FAILED
    assert sorted(p.name for p in (job / "trials").iterdir()) == ["1", "2"]
    assert not path.exists() or path.read_bytes() == b""  # no fresh study in its place


@pytest.mark.slow  # whole jobs, several seconds: kept out of the fast loop (under a minute)
def test_damage_before_the_last_line_is_refused_naming_the_line(finished_job):
    path = only_job(finished_job) / "study.journal"
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2] = b'{"op_code": 5, "this line was overwritten\n'
    path.write_bytes(b"".join(lines))

    done = resume(finished_job, 3)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"{path}:3: the study journal is damaged" in done.stderr
    assert path.read_bytes() == b"".join(lines)


def test_drop_torn_tail_cuts_after_the_last_newline_however_long_the_tear(tmp_path):
    from flagrun import journal

    path = tmp_path / "log"
    path.write_bytes(b'{"a": 1}\n' + b"x" * 200_000)
    assert journal.drop_torn_tail(path) == 200_000
    assert path.read_bytes() == b'{"a": 1}\n'
    assert journal.drop_torn_tail(path) == 0
    path.write_bytes(b"no newline at all")
    assert journal.drop_torn_tail(path) == len(b"no newline at all")
    assert path.read_bytes() == b""
