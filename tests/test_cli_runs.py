"""`flagrun train`, `runs`, `show` and `logs` as a user runs them."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from flagrun import store
from flagrun.records import ProcessIdentity
from tests.factories import run_record
from tests.helpers import flagrun

DATA = Path(__file__).parent / "data" / "runner"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name in ("exit_with.py", "echo_args.py"):
        shutil.copy(DATA / name, tmp_path / name)
    return tmp_path


def test_train_exit_status_is_the_scripts(folder):
    assert flagrun(folder, "train", "exit_with.py", "code=0").returncode == 0
    done = flagrun(folder, "train", "exit_with.py", "code=3")
    assert done.returncode == 3
    assert "exiting with 3" in done.stderr  # echoed live
    failed = flagrun(folder, "train", "exit_with.py", "raise=bad")
    assert failed.returncode == 1 and "ValueError: bad" in failed.stderr


def test_train_refuses_a_malformed_value_before_creating_anything(folder):
    done = flagrun(folder, "train", "echo_args.py", "units")
    assert done.returncode == 2
    assert "'units' is not NAME=VALUE" in done.stderr and "Traceback" not in done.stderr
    assert not (folder / "runs").exists()


def test_train_refuses_a_missing_script(folder):
    done = flagrun(folder, "train", "nope.py")
    assert done.returncode == 2 and "no such script" in done.stderr


def test_train_label_and_runs_dir(folder):
    done = flagrun(folder, "train", "echo_args.py", "--runs-dir", "exp", "--label", "try 1")
    assert done.returncode == 0, done.stderr
    (run,) = store.list_runs(folder / "exp")
    assert run.record.label == "try 1" and run.status == "COMPLETED"


def test_runs_lists_newest_first_in_every_format(folder):
    flagrun(folder, "train", "exit_with.py", "code=0", "--label", "good")
    flagrun(folder, "train", "exit_with.py", "code=4", "--label", "bad")
    table = flagrun(folder, "runs")
    assert table.returncode == 0
    lines = [ln for ln in table.stdout.splitlines() if ln.strip()]
    assert lines[0].split()[:2] == ["id", "status"]
    assert "FAILED" in lines[1] and "bad" in lines[1] and "code=4" in lines[1]
    assert "COMPLETED" in lines[2] and "good" in lines[2]
    records = json.loads(flagrun(folder, "runs", "--format", "json").stdout)
    assert [r["label"] for r in records] == ["bad", "good"]
    rows = list(csv.DictReader(io.StringIO(flagrun(folder, "runs", "--format", "csv").stdout)))
    assert [(r["status"], r["flag_code"]) for r in rows] == [("FAILED", "4"), ("COMPLETED", "0")]
    assert len(json.loads(flagrun(folder, "runs", "--limit", "1", "--format", "json").stdout)) == 1


def test_runs_shows_crashed_runs(folder):
    run_dir = folder / "runs" / "2026-01-01T00-00-00Z"
    run_dir.mkdir(parents=True)
    dead = ProcessIdentity(2**22 + 12345, 1, store.runner_identity().host)
    store.write_run(run_dir, run_record(status="RUNNING", runner=dead, script="x.py"))
    assert "CRASHED" in flagrun(folder, "runs").stdout
    assert "CRASHED" in flagrun(folder, "show", "latest").stdout


def test_runs_with_no_runs(folder):
    done = flagrun(folder, "runs")
    assert done.returncode == 0 and "no runs yet" in done.stdout


def test_show_and_logs(folder):
    flagrun(folder, "train", "exit_with.py", "code=2")
    run_id = store.list_runs(folder / "runs")[0].id
    show = flagrun(folder, "show", run_id)
    assert show.returncode == 0
    for text in ("FAILED", "exit code 2", "python exit_with.py --code=2", "exiting with 2"):
        assert text in show.stdout, text
    assert flagrun(folder, "show", "latest").stdout == show.stdout
    logs = flagrun(folder, "logs", "latest")
    assert logs.returncode == 0 and logs.stdout == "exiting with 2\n"
    follow = flagrun(folder, "logs", "--follow", run_id)  # a finished run: prints and ends
    assert follow.stdout == "exiting with 2\n"


def test_show_unknown_run_is_one_clear_line(folder):
    flagrun(folder, "train", "exit_with.py")
    done = flagrun(folder, "show", "2020-01-01")
    assert done.returncode == 2 and "no run '2020-01-01'" in done.stderr
    assert "most recent runs" in done.stderr and "Traceback" not in done.stderr
    assert flagrun(folder, "logs", "../x").returncode == 2


def test_unknown_flag_names_the_closest_declared_one(folder):
    (folder / "declares.py").write_text(
        "from flagrun import flags, flag_integer\nFLAGS = flags(flag_integer('units', 8))\n"
    )
    done = flagrun(folder, "train", "declares.py", "unit=3")
    assert done.returncode == 2 and "units" in done.stderr
    assert not (folder / "runs").exists()


def test_flag_values_may_follow_options(folder):
    (folder / "declares.py").write_text(
        "import json\nfrom flagrun import flags, flag_integer\n"
        "print(json.dumps(dict(flags(flag_integer('units', 8)))))\n"
    )
    done = flagrun(folder, "train", "declares.py", "--label", "x", "units=3")
    assert done.returncode == 0, done.stderr
    assert '{"units": 3}' in done.stdout


STAMPED = """
import datetime, sys
from pathlib import Path
from flagrun import flags, flag_numeric
from flagrun.writer import MetricsWriter
FLAGS = flags(flag_numeric("lr", 0.1))
stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")  # a folder per run of it
writer = MetricsWriter(Path("logs/fit") / stamp / "validation")
writer.log({"epoch_accuracy": FLAGS.lr * 4}, step=0)
"""


def test_runs_and_compare_show_metrics_by_name_across_timestamped_folders(tmp_path):
    (tmp_path / "train.py").write_text(STAMPED)
    for lr in ("0.1", "0.2"):
        assert flagrun(tmp_path, "train", "train.py", f"lr={lr}").returncode == 0
    rows = list(csv.DictReader(io.StringIO(flagrun(tmp_path, "runs", "--format", "csv").stdout)))
    assert [row["validation/epoch_accuracy"] for row in rows] == ["0.8", "0.4"]
    assert flagrun(tmp_path, "runs").stdout.splitlines()[0].split()[5] == (
        "validation/epoch_accuracy"
    )
    first, second = (row["id"] for row in reversed(rows))
    compared = flagrun(tmp_path, "compare", first, second).stdout
    assert "validation/epoch_accuracy: 0.4 -> 0.8  (+0.4)" in compared
    shown = flagrun(tmp_path, "show", second).stdout
    assert "validation/epoch_accuracy" in shown and "logs/fit" not in shown


def test_show_takes_a_run_folder_path_as_trials_lists_it(tmp_path):
    trial = tmp_path / "runs" / "2026-12-02T05-54-26Z" / "trials" / "1"
    trial.mkdir(parents=True)
    store.write_run(trial, run_record("1", label="trial one"))
    for ref in (
        "runs/2026-12-02T05-54-26Z/trials/1",
        str(trial),
        "runs/2026-12-02T05-54-26Z/trials/1/",
    ):
        done = flagrun(tmp_path, "show", ref)
        assert done.returncode == 0, done.stderr
        assert "trial one" in done.stdout
    elsewhere = tmp_path / "other" / "r1"
    elsewhere.mkdir(parents=True)
    store.write_run(elsewhere, run_record("r1"))
    done = flagrun(tmp_path, "show", str(elsewhere))
    assert done.returncode == 2 and "--runs-dir" in done.stderr


def test_data_beside_the_script_is_found_through_script_dir(tmp_path):
    # pytorch/examples' mnist reads '../data' relative to where it is run by hand.
    script = tmp_path / "examples" / "mnist" / "train.py"
    script.parent.mkdir(parents=True)
    (tmp_path / "examples" / "data").mkdir()
    (tmp_path / "examples" / "data" / "digits.txt").write_text("3 1 4\n")
    script.write_text("print(open('../data/digits.txt').read())\n")
    done = flagrun(tmp_path, "train", "examples/mnist/train.py")
    assert done.returncode == 1
    assert "flagrun.script_dir() / '../data'" in done.stderr.splitlines()[-1]
    shown = flagrun(tmp_path, "show", "latest").stdout
    assert "script_dir()" in shown  # the run's reason says it too

    script.write_text(
        "import flagrun\nprint(open(flagrun.script_dir() / '../data/digits.txt').read())\n"
    )
    done = flagrun(tmp_path, "train", "examples/mnist/train.py")
    assert done.returncode == 0, done.stderr
    assert "3 1 4" in done.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["train", "echo_args.py"],
        ["runs"],
        ["jobs"],
        ["trials"],
        ["tune", "flagged.py", "--grid", "x=1,2", "--metric", "acc"],
    ],
)
def test_a_runs_dir_that_is_a_file_is_one_line_for_every_command(folder, args):
    (folder / "flagged.py").write_text(
        "from flagrun import flags, flag_integer\nflags(flag_integer('x', 1))\n"
    )
    (folder / "afile").write_text("not a folder")
    done = flagrun(folder, *args, "--runs-dir", "afile")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "afile is not a folder" in done.stderr


def test_runs_lists_the_readable_runs_and_names_a_damaged_record(folder):
    assert flagrun(folder, "train", "echo_args.py").returncode == 0
    good = next((folder / "runs").iterdir())
    damaged = folder / "runs" / "2020-01-01T00-00-00Z"
    shutil.copytree(good, damaged)
    (damaged / "run.json").write_text((damaged / "run.json").read_text()[:40])
    done = flagrun(folder, "runs", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert [run["id"] for run in json.loads(done.stdout)] == [good.name]
    assert f"skipped: cannot read runs/{damaged.name}/run.json" in done.stderr
