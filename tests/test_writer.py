"""Tests for flagrun.writer: log_metrics writes real TensorBoard scalars, live."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from flagrun import metrics, writer
from flagrun.errors import MetricsError


def run_python(code: str, cwd: Path, run_dir: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k != writer.RUN_DIR_ENV}
    if run_dir is not None:
        env[writer.RUN_DIR_ENV] = str(run_dir)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


SCRIPT = """
import sys
import flagrun
assert "tensorboard" not in sys.modules and "google.protobuf" not in sys.modules
assert flagrun.log_metrics({"val_acc": 0.5, "loss": 2.0}) == 0
assert flagrun.log_metrics({"val_acc": 0.75}) == 1
assert flagrun.log_metrics({"val_acc": 0.875}, step=10) == 10
assert flagrun.log_metrics({"loss": float("nan")}) == 11
heavy = [m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "optuna", "rich")]
assert not heavy, heavy
"""


def test_log_metrics_under_flagrun_writes_into_the_run_logs(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    run_python(SCRIPT, cwd=tmp_path, run_dir=run_dir)
    (event_file,) = (run_dir / "logs").glob("*tfevents*")
    assert event_file.name.endswith(".flagrun")
    scalars = metrics.read_scalars(run_dir)
    assert [(p.step, p.value) for p in scalars["val_acc"]] == [(0, 0.5), (1, 0.75), (10, 0.875)]
    assert [p.step for p in scalars["loss"]] == [0, 11]
    assert metrics.summarize(run_dir)["loss"] == {"value": "nan", "step": 11}
    assert metrics.resolve_tag("val_acc", scalars) == "val_acc"


def test_log_metrics_by_hand_writes_into_cwd_logs(tmp_path: Path) -> None:
    run_python("import flagrun; flagrun.log_metrics({'acc': 0.25})", cwd=tmp_path)
    assert [p.value for p in metrics.read_scalars(tmp_path)["acc"]] == [0.25]


def test_each_call_is_on_disk_at_once(tmp_path: Path) -> None:
    out = writer.MetricsWriter(tmp_path / "logs")
    reader = metrics.EventReader(tmp_path)
    try:
        out.log({"acc": 0.5})
        assert reader.poll()
        out.log({"acc": 0.25, "n": np.float32(3.0)}, step=7)
        assert reader.poll()
    finally:
        out.close()
    assert [(p.step, p.value) for p in reader.scalars["acc"]] == [(0, 0.5), (7, 0.25)]
    assert [p.value for p in reader.scalars["n"]] == [3.0]
    out.close()  # closing twice is harmless


def test_numpy_values_are_numbers() -> None:
    assert writer._checked({"a": np.float64(0.5), "b": np.array(2), "c": 3}) == {
        "a": 0.5,
        "b": 2.0,
        "c": 3.0,
    }


@pytest.mark.parametrize(
    ("values", "step", "message"),
    [
        ([("acc", 0.5)], None, "dict of name -> number"),
        ({"acc": "high"}, None, "'acc' is 'high', not a number"),
        ({"acc": True}, None, "not a number"),
        ({"": 1.0}, None, "not a non-empty string"),
        ({"acc": 0.5}, -1, "step must be a whole number"),
        ({"acc": 0.5}, 1.5, "step must be a whole number"),
    ],
)
def test_bad_calls_raise_metrics_error(values: object, step: object, message: str) -> None:
    with pytest.raises(MetricsError, match=message):
        writer.log_metrics(values, step=step)  # type: ignore[arg-type]
