"""Tests for flagrun._untrusted: a run folder's file read only when it is a regular one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flagrun._untrusted import read_regular


def test_a_regular_file_is_read_from_an_offset_up_to_a_limit(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    assert read_regular(path) == b"0123456789"
    assert read_regular(path, 4) == b"456789"
    assert read_regular(path, 4, limit=6) == b"456789"
    with pytest.raises(OSError, match="more than 5 bytes"):
        read_regular(path, 4, limit=5)


def test_links_fifos_devices_and_folders_are_refused_without_blocking(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_bytes(b"x")
    link = tmp_path / "link"
    link.symlink_to(target)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    device = tmp_path / "zero"
    device.symlink_to("/dev/zero")
    for path in (link, fifo, device, tmp_path, tmp_path / "missing"):
        with pytest.raises(OSError):
            read_regular(path)
