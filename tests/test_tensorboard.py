"""`flagrun tensorboard` serves the runs on 127.0.0.1, HParams included."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import urllib.request
from pathlib import Path

import pytest

from flagrun.errors import UsageError
from flagrun.tensorboard import command, folders_for
from tests.helpers import flagrun, start_flagrun


def test_one_folder_is_the_logdir_several_are_named(tmp_path: Path) -> None:
    assert command([tmp_path / "a"])[3:5] == ["--logdir", str(tmp_path / "a")]
    spec = command([tmp_path / "a", tmp_path / "b"])
    assert spec[3:5] == ["--logdir_spec", f"a:{tmp_path / 'a'},b:{tmp_path / 'b'}"]
    assert "127.0.0.1" in command([tmp_path])


def test_no_runs_yet_says_how_to_start_one(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no runs"):
        folders_for(tmp_path / "runs", [])


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
    finally:
        os.kill(server.pid, signal.SIGINT)
        server.wait(timeout=30)
    assert server.returncode == 130
