"""The hypertune metric file, as Google's real ``cloudml-hypertune`` writes it (the package
from PyPI, in the dev extras), read by ``HypertuneReader`` and ``sources.for_run``."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flagrun import sources
from flagrun.sources.hypertune import METRIC_FILE, HypertuneReader

pytest.importorskip("hypertune")  # cloudml-hypertune


def report(path: Path, *reports: tuple[str, float, int | None]) -> None:
    """Report with the real library in a process of its own, as a trainer does."""
    code = textwrap.dedent(
        f"""
        import hypertune
        ht = hypertune.HyperTune()
        for tag, value, step in {list(reports)!r}:
            ht.report_hyperparameter_tuning_metric(
                hyperparameter_metric_tag=tag, metric_value=value, global_step=step)
        """
    )
    env = {**os.environ, "CLOUD_ML_HP_METRIC_FILE": str(path), "CLOUD_ML_TRIAL_ID": "3"}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)


def test_reports_become_a_series_per_tag(tmp_path):
    path = tmp_path / "hypertune" / "output.metrics"
    report(path, ("accuracy", 0.5, 1), ("accuracy", 0.7, 2), ("loss", 0.3, 2))
    reader = HypertuneReader(path)
    assert reader.poll()
    assert reader.tags() == ["accuracy", "loss"]
    assert [(p.step, p.value) for p in reader.scalars["accuracy"]] == [(1, 0.5), (2, 0.7)]
    assert not reader.poll()  # unchanged: nothing new


def test_a_rewritten_file_gives_each_report_once(tmp_path):
    """The library rewrites the whole file at every report and keeps the last 100."""
    path = tmp_path / "out.metrics"
    reader = HypertuneReader(path)
    report(path, *[("acc", i / 1000, i) for i in range(1, 80)])
    reader.poll()
    report(path, *[("acc", i / 1000, i) for i in range(80, 151)])  # a new process: same file
    reader.poll()
    lines = path.read_text().splitlines()
    assert len(lines) == 71  # a fresh HyperTune starts its queue empty: the file was rewritten
    assert [p.step for p in reader.scalars["acc"]] == list(range(1, 151))


def test_reports_without_a_step_still_advance(tmp_path):
    path = tmp_path / "out.metrics"
    report(path, ("training/hptuning/metric", 0.1, None), ("training/hptuning/metric", 0.2, None))
    reader = HypertuneReader(path)
    reader.poll()
    series = reader.scalars["training/hptuning/metric"]
    assert [(p.step, p.value) for p in series] == [(0, 0.1), (1, 0.2)]


def test_a_torn_last_line_waits_for_its_end(tmp_path):
    path = tmp_path / "out.metrics"
    line = json.dumps({"acc": "0.5", "global_step": "1", "timestamp": 1.0, "trial": "1"})
    path.write_text(line + "\n" + line[:20])
    reader = HypertuneReader(path)
    assert reader.poll()
    assert len(reader.scalars["acc"]) == 1
    second = json.dumps({"acc": "0.75", "global_step": "2", "timestamp": 2.0, "trial": "1"})
    with open(path, "w") as handle:  # finished, as an appending writer would
        handle.write(line + "\n" + second + "\n")
    assert reader.poll()
    assert [p.value for p in reader.scalars["acc"]] == [0.5, 0.75]


def test_damaged_lines_are_skipped(tmp_path):
    path = tmp_path / "out.metrics"
    path.write_text(
        'not json\n[1, 2]\n{"acc": "x", "timestamp": 1}\n{"acc": "nan", "timestamp": 2}\n'
    )
    reader = HypertuneReader(path)
    reader.poll()
    assert len(reader.scalars["acc"]) == 1 and math.isnan(reader.scalars["acc"][0].value)


def test_for_run_reads_event_files_and_the_hypertune_file_together(tmp_path):
    code = "import flagrun; flagrun.log_metrics({'val_loss': 0.4}, step=1)"
    env = {**os.environ, "FLAGRUN_RUN_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    source = sources.for_run(tmp_path)
    assert source.poll()
    assert "val_loss" in source.tags()
    report(tmp_path / METRIC_FILE, ("accuracy", 0.9, 1))
    assert source.poll()
    assert {"accuracy", "val_loss"} <= set(source.tags())
    assert source.scalars["accuracy"][-1].value == 0.9
    assert not source.poll()


def test_a_fifo_or_a_link_in_its_place_is_no_metric_file_and_blocks_nothing(tmp_path):
    # Opening a FIFO nobody writes to blocks: the tuner's poll would hang on it.
    real = tmp_path / "real" / "output.metrics"
    report(real, ("accuracy", 0.5, 1))
    fifo = tmp_path / "fifo" / "output.metrics"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    linked = tmp_path / "linked" / "output.metrics"
    linked.parent.mkdir()
    linked.symlink_to(real)
    for path in (fifo, linked):
        reader = HypertuneReader(path)
        assert reader.poll() is False and reader.scalars == {}
    assert HypertuneReader(real).poll() is True
