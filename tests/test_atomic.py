"""Writing files: records replace their own path; files the user names are written as the
shell's ``>`` writes them (through symlinks, into FIFOs and devices, never over them)."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from flagrun import _atomic
from flagrun._atomic import write_json_atomic
from tests.helpers import flagrun

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")


def test_a_record_replaces_a_symlink_planted_in_its_place_never_its_target(tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    (tmp_path / "run.json").symlink_to(precious)
    write_json_atomic(tmp_path / "run.json", {"status": "COMPLETED"})
    assert precious.read_text() == "keep me"
    assert not (tmp_path / "run.json").is_symlink()


def test_output_through_a_symlink_replaces_its_target_and_keeps_the_link(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "page.html").write_text("old")
    (tmp_path / "page.html").symlink_to(tmp_path / "real" / "page.html")
    _atomic.write_output(tmp_path / "page.html", "new")
    assert (tmp_path / "page.html").is_symlink()
    assert (tmp_path / "real" / "page.html").read_text() == "new"
    (tmp_path / "dangling.html").symlink_to(tmp_path / "real" / "made.html")
    _atomic.write_output(tmp_path / "dangling.html", "made")  # as `>` does: the target is created
    assert (tmp_path / "real" / "made.html").read_text() == "made"


def test_output_into_a_fifo_is_read_by_its_reader_and_the_fifo_stays(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    _atomic.write_output(fifo, "through the pipe")
    reader.join(timeout=10)
    assert got == [b"through the pipe"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_output_onto_a_folder_or_into_a_missing_one_names_the_path(tmp_path):
    with pytest.raises(IsADirectoryError) as caught:
        _atomic.write_output(tmp_path, "x")
    assert caught.value.filename == str(tmp_path)
    with pytest.raises(FileNotFoundError) as missing:
        _atomic.write_output(tmp_path / "no" / "page.html", "x")
    assert missing.value.filename == str(tmp_path / "no" / "page.html")


@pytest.fixture
def a_run(tmp_path: Path) -> Path:
    (tmp_path / "hello.py").write_text("print('hello')\n")
    assert flagrun(tmp_path, "train", "hello.py").returncode == 0
    return tmp_path


def report(folder: Path, output: Path):
    [run] = (folder / "runs").iterdir()
    return flagrun(folder, "report", run.name, "-o", str(output))


def test_report_through_a_symlink_writes_its_target_and_into_a_fifo_its_reader(a_run):
    (a_run / "site").mkdir()
    (a_run / "link.html").symlink_to(a_run / "site" / "page.html")
    done = report(a_run, a_run / "link.html")
    assert done.returncode == 0, done.stderr
    assert (a_run / "link.html").is_symlink()
    assert (a_run / "site" / "page.html").read_text().startswith("<!doctype html>")

    fifo = a_run / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    # daemon: a flagrun that replaced the FIFO leaves this reader waiting on it for good
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    done = report(a_run, fifo)
    reader.join(timeout=10)
    assert done.returncode == 0, done.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert got and got[0].startswith(b"<!doctype html>")


@needs_root
def test_report_onto_a_device_node_writes_into_it_and_leaves_the_node(a_run):
    null = a_run / "null"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # what /dev/null is
    done = report(a_run, null)
    assert done.returncode == 0, done.stderr
    assert stat.S_ISCHR(os.lstat(null).st_mode)

    full = a_run / "full"
    os.mknod(full, stat.S_IFCHR | 0o666, os.makedev(1, 7))  # what /dev/full is
    done = report(a_run, full)
    assert done.returncode == 1
    assert done.stderr.count("\n") <= 2 and "Traceback" not in done.stderr
    assert "No space left on device" in done.stderr and str(full) in done.stderr
    assert stat.S_ISCHR(os.lstat(full).st_mode)


def test_compare_html_onto_a_folder_or_a_missing_folder_is_one_line(a_run):
    for target in (str(a_run), str(a_run / "missing" / "page.html")):
        done = flagrun(a_run, "compare", "latest", "latest", "--html", target)
        assert done.returncode == 1
        assert "Traceback" not in done.stderr and target in done.stderr
