"""The runs/ store: ids, records, resolving and listing runs, liveness, snapshots."""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from flagrun import store
from flagrun.errors import StoreError, UsageError
from flagrun.records import ProcessIdentity
from tests.factories import run_record

ID = re.compile(r"^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ(-\d+)?$")


def make_run(runs: Path, run_id: str, **fields) -> Path:
    run_dir = runs / run_id
    run_dir.mkdir(parents=True)
    store.write_run(run_dir, run_record(run_id, **fields))
    return run_dir


def test_new_run_dir_ids_are_timestamps_made_unique(tmp_path):
    dirs = [store.new_run_dir(tmp_path) for _ in range(5)]
    assert len(set(dirs)) == 5
    assert all(ID.match(d.name) for d in dirs)
    assert any(d.name.endswith("-2") for d in dirs) or len({d.name[:20] for d in dirs}) > 1


def test_new_run_dir_is_race_safe_across_processes(tmp_path):
    code = "import sys; from pathlib import Path; from flagrun import store\n" + (
        "for _ in range(10): print(store.new_run_dir(Path(sys.argv[1])).name)"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE)
        for _ in range(4)
    ]
    names = [line for p in procs for line in p.communicate(timeout=30)[0].decode().split()]
    assert len(names) == 40 and len(set(names)) == 40


def test_records_round_trip_and_damage_is_reported(tmp_path):
    store.write_run(tmp_path, run_record(status="RUNNING", flags={"a": 1}))
    assert store.read_run(tmp_path) == run_record(status="RUNNING", flags={"a": 1})
    (tmp_path / store.RUN_FILE).write_text('{"status": ')
    with pytest.raises(StoreError, match="cannot read"):
        store.read_run(tmp_path)
    with pytest.raises(StoreError, match="not a run"):
        store.read_run(tmp_path / "missing")


def test_list_runs_newest_first_skipping_jobs_and_damage(tmp_path):
    make_run(tmp_path, "2026-01-01T00-00-00Z")
    make_run(tmp_path, "2026-01-01T00-00-00Z-2")
    make_run(tmp_path, "2026-01-01T00-00-00Z-10")
    make_run(tmp_path, "2026-01-02T00-00-00Z")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / store.RUN_FILE).write_text("{")
    job = tmp_path / "2026-01-03T00-00-00Z"
    (job / "trials" / "1").mkdir(parents=True)
    (job / store.JOB_FILE).write_text("{}")
    store.write_run(job / "trials" / "1", run_record("1"))
    ids = [r.id for r in store.list_runs(tmp_path)]
    assert ids == [
        "2026-01-02T00-00-00Z",
        "2026-01-01T00-00-00Z-10",
        "2026-01-01T00-00-00Z-2",
        "2026-01-01T00-00-00Z",
    ]
    with_trials = store.list_runs(tmp_path, include_trials=True)
    assert with_trials[0].id == "2026-01-03T00-00-00Z/trials/1"
    assert with_trials[0].path == job / "trials" / "1"
    assert store.list_runs(tmp_path / "nothing") == []


def test_resolve_run(tmp_path):
    first = make_run(tmp_path, "2026-01-01T00-00-00Z")
    latest = make_run(tmp_path, "2026-01-02T00-00-00Z")
    assert store.resolve_run(tmp_path, "latest") == latest
    assert store.resolve_run(tmp_path, first.name) == first
    assert store.resolve_run(tmp_path, "2026-01-01") == first  # unique prefix
    with pytest.raises(UsageError, match="ambiguous"):
        store.resolve_run(tmp_path, "2026-01")
    with pytest.raises(UsageError) as info:
        store.resolve_run(tmp_path, "2025-nope")
    assert "2026-01-02T00-00-00Z" in str(info.value)  # lists the most recent ids


@pytest.mark.parametrize("ref", ["../x", "/etc", "a/../../b", ""])
def test_resolve_run_refuses_paths_out_of_the_runs_folder(tmp_path, ref):
    runs = tmp_path / "runs"
    make_run(runs, "2026-01-01T00-00-00Z")
    make_run(tmp_path, "x")
    with pytest.raises(UsageError):
        store.resolve_run(runs, ref)


def test_resolve_run_refuses_symlinks_leading_outside(tmp_path):
    runs = tmp_path / "runs"
    outside = make_run(tmp_path / "elsewhere", "secret")
    runs.mkdir()
    (runs / "link").symlink_to(outside)
    with pytest.raises(UsageError, match="outside"):
        store.resolve_run(runs, "link")


def test_resolve_run_on_an_empty_folder(tmp_path):
    with pytest.raises(UsageError, match="no runs"):
        store.resolve_run(tmp_path, "latest")


def test_effective_status(tmp_path):
    me = store.runner_identity()
    assert store.effective_status(run_record(status="RUNNING", runner=me)) == "RUNNING"
    assert store.effective_status(run_record(status="COMPLETED", runner=me)) == "COMPLETED"
    reused = dataclasses.replace(me, start_time=me.start_time + 1)
    assert store.effective_status(run_record(status="RUNNING", runner=reused)) == "CRASHED"
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    dead = ProcessIdentity(proc.pid, 1, socket.gethostname())
    assert store.effective_status(run_record(status="RUNNING", runner=dead)) == "CRASHED"
    remote = dataclasses.replace(dead, host="another-host-" + socket.gethostname())
    assert store.effective_status(run_record(status="RUNNING", runner=remote)) == "RUNNING"
    assert store.is_alive(me)


def make_source(root: Path) -> Path:
    src = root / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "train.py").write_text("print('hi')\n")
    (src / "flags.yml").write_text("units: 3\n")
    (src / "pkg" / "util.py").write_text("X = 1\n")
    (src / "data").mkdir()
    (src / "data" / "images.npz").write_bytes(b"\0" * 100)
    (src / "data" / "labels.txt").write_text("a\n")
    (src / "big.csv").write_bytes(b"1," * (store.MAX_FILE_BYTES // 2 + 1))
    for skipped in ("runs/r1", ".git", ".venv", "__pycache__", ".hidden"):
        (src / skipped).mkdir(parents=True)
        (src / skipped / "f.py").write_text("x\n")
    (src / "experiments" / "r1").mkdir(parents=True)  # a custom runs folder
    (src / "experiments" / "r1" / store.RUN_FILE).write_text("{}")
    return src


def test_snapshot_copies_code_and_links_the_rest(tmp_path):
    src = make_source(tmp_path)
    dest = tmp_path / "snap"
    digest = store.snapshot_source(src, dest)
    assert (dest / "train.py").read_text() == "print('hi')\n"
    assert not (dest / "train.py").is_symlink()
    assert (dest / "pkg" / "util.py").is_file() and (dest / "flags.yml").is_file()
    assert (dest / "data").is_symlink() and (dest / "data" / "images.npz").stat().st_size == 100
    assert (dest / "big.csv").is_symlink()
    for skipped in ("runs", ".git", ".venv", "__pycache__", ".hidden", "experiments"):
        assert not os.path.lexists(dest / skipped), skipped
    assert len(digest) == 64
    assert store.snapshot_source(src, tmp_path / "snap2") == digest
    (src / "train.py").write_text("print('changed')\n")
    assert store.snapshot_source(src, tmp_path / "snap3") != digest


def test_snapshot_inside_the_source_skips_itself(tmp_path):
    src = make_source(tmp_path)
    dest = src / "out" / "r1" / "source"
    store.snapshot_source(src, dest)
    assert (dest / "train.py").is_file()
    assert not os.path.lexists(dest / "out")


def test_snapshot_caps_the_total_size(tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.py").write_text("a" * 100)
    (src / "b.py").write_text("b" * 100)
    monkeypatch.setattr(store, "MAX_TOTAL_BYTES", 150)
    store.snapshot_source(src, tmp_path / "snap")
    assert not (tmp_path / "snap" / "a.py").is_symlink()
    assert (tmp_path / "snap" / "b.py").is_symlink()


def test_snapshot_leaves_out_tensorboard_logs_of_runs_by_hand(tmp_path):
    # `python train.py` by hand leaves lightning_logs/version_0/events... beside the
    # script; linked into source/, TensorBoard showed it as a run of every job.
    from flagrun.writer import MetricsWriter

    src = make_source(tmp_path)
    writer = MetricsWriter(src / "lightning_logs" / "version_0")
    writer.log({"val_acc": 0.5})
    writer.close()
    (src / "lightning_logs" / "version_0" / "hparams.yaml").write_text("lr: 0.1\n")
    dest = tmp_path / "snap"
    store.snapshot_source(src, dest)
    assert not os.path.lexists(dest / "lightning_logs")
    assert (dest / "data").is_symlink()  # data folders are still linked
