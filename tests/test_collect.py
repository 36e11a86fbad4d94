"""`flagrun collect` against hostile records and odd destinations: paths read from storage
never lead out of the job folder, special files in a trial folder are skipped, and a
destination that cannot be a folder is one line. Real jobs, real study databases."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.helpers import flagrun, make_project, only_job, tuning_yaml

TRAIN = """
from flagrun import flags, flag_numeric, log_metrics

FLAGS = flags(flag_numeric("x", 0.5))
log_metrics({"val_acc": 1.0 - (FLAGS.x - 0.3) ** 2}, step=0)
"""
SECRET = "-----BEGIN OPENSSH PRIVATE KEY----- not for collecting"


def plant_secret(project: Path) -> None:
    (project / "private").mkdir()
    (project / "private" / "id_ed25519").write_text(SECRET)


def collected_text(dest: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in dest.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    project = make_project(
        tmp_path_factory.mktemp("finished"), TRAIN, tuning_yaml(maxTrials=2, maxParallelTrials=1)
    )
    done = flagrun(project, "tune", "train.py", "--config", "tuning.yml", "--progress", "quiet")
    assert done.returncode == 0, done.stderr
    return project


@pytest.fixture
def project(finished: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(finished, tmp_path / "project", symlinks=True))


def test_a_run_dir_in_the_index_leading_outside_is_never_copied(project: Path) -> None:
    plant_secret(project)
    index = only_job(project) / "trials.jsonl"
    rows = [json.loads(line) for line in index.read_text().splitlines()]
    with index.open("a") as handle:
        for row in rows:  # ../../private from runs/<job>/ is the project's private/
            handle.write(json.dumps({**row, "runDir": "../../private"}) + "\n")
    done = flagrun(project, "collect", "--all", "--dest", "out")
    assert done.returncode == 0, done.stderr
    assert SECRET not in collected_text(project / "out")
    assert sorted(p.name for p in (project / "out").iterdir()) == [
        "best_flags.yml",
        "trial-1",
        "trial-2",
    ]


@pytest.mark.slow  # whole jobs, several seconds: kept out of the fast loop (under a minute)
def test_a_run_dir_attribute_in_a_shared_study_leading_outside_is_never_copied(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path, TRAIN, tuning_yaml(maxTrials=2, maxParallelTrials=1))
    storage = ["--storage", f"sqlite:///{project / 'study.db'}", "--study", "s1"]
    done = flagrun(project, "tune", "train.py", "--config", "tuning.yml", *storage)
    assert done.returncode == 0, done.stderr
    plant_secret(project)
    with sqlite3.connect(project / "study.db") as db:  # anyone who can write the study
        db.execute(
            "UPDATE trial_user_attributes SET value_json = ? WHERE key = 'runDir'",
            (json.dumps("../../private"),),
        )
    done = flagrun(project, "collect", "--all", "--dest", "out", *storage)
    assert done.returncode == 0, done.stderr
    assert SECRET not in collected_text(project / "out")
    assert (project / "out" / "trial-1" / "run.json").is_file()


def test_a_trial_folder_that_is_a_symlink_to_elsewhere_is_refused(project: Path) -> None:
    plant_secret(project)
    trial = only_job(project) / "trials" / "1"
    shutil.rmtree(trial)
    trial.symlink_to(project / "private")
    done = flagrun(project, "collect", "--trials", "1", "--dest", "out")
    assert done.returncode == 1
    assert "leads outside" in done.stderr and "Traceback" not in done.stderr
    assert SECRET not in collected_text(project / "out")


def test_a_fifo_in_a_trial_folder_is_skipped_and_said(project: Path) -> None:
    os.mkfifo(only_job(project) / "trials" / "1" / "a-fifo")
    done = flagrun(project, "collect", "--all", "--dest", "out")
    assert done.returncode == 0, done.stderr
    assert "a-fifo: not a regular file" in done.stderr
    assert (project / "out" / "best_flags.yml").is_file()
    assert (project / "out" / "trial-1" / "run.json").is_file()
    assert not (project / "out" / "trial-1" / "a-fifo").exists()


@pytest.mark.parametrize("dest", ["a-file", "a-file/sub", "dangling", "/proc/1"])
def test_a_destination_that_cannot_be_a_folder_is_one_line(project: Path, dest: str) -> None:
    (project / "a-file").write_text("not a folder")
    (project / "dangling").symlink_to(project / "nowhere")
    done = flagrun(project, "collect", "--dest", dest)
    assert done.returncode in (1, 2), done.stdout
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2, done.stderr  # the error and its hint
    assert dest in done.stderr
