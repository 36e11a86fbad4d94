"""Smoke runs of every benchmark on a tiny budget, so they keep working.

The figures themselves are measured by running the scripts by hand (README);
here only that each one runs and prints its table.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import load_module

pytestmark = pytest.mark.benchmark

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def test_the_race_fails_only_when_no_tool_finished_a_trial(tmp_path: Path) -> None:
    """A tool that finished nothing in its budget is a measured result (hyperopt in the
    30-minute race; keras-tuner in a smoke run on a loaded machine), not a failed race."""
    race = load_module(SCRIPTS / "bench_fashion_race.py")
    done = race.Trial(1, race.COMPLETE, {}, tmp_path, 0.8, 5, 60.0)
    cut = race.Trial(1, race.FAILED, {}, tmp_path, None, 0, 60.0)
    assert race.verdict([race.Arm("flagrun", 60, [done]), race.Arm("hyperopt", 60, [cut])]) is None
    assert "no tool finished" in race.verdict([race.Arm("hyperopt", 60, [cut])])


@pytest.mark.parametrize(
    ("script", "args", "expected"),
    [
        ("bench_overhead.py", ["--quick"], "overhead"),
        ("bench_import.py", ["--repeat", "1"], "flagrun"),
        ("bench_events.py", ["--quick", "--repeat", "1"], "EventAccumulator"),
        ("bench_scheduling.py", ["--quick"], "slot utilisation"),
        ("bench_dask.py", ["--quick"], "overhead per trial"),
        ("bench_storage.py", ["--quick"], "sqlite / journal"),
        ("bench_trials.py", ["--quick"], "flagrun trials --format table"),
        ("bench_report.py", ["--quick"], "flagrun report"),
        ("bench_fashion_race.py", ["--quick"], "TEST acc"),
        ("bench_pruning.py", ["--quick"], "compute ratio"),
        ("bench_search.py", ["--quick"], "regret"),
        ("bench_compute.py", ["--quick"], "hours to regret"),
        ("bench_compute.py", ["--quick", "--simulate", "--methods", "flagrun,optuna"], "simulated"),
    ],
)
def test_benchmark_runs_and_prints_its_table(script: str, args: list[str], expected: str) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert expected in done.stdout
