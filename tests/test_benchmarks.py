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
        ("bench_pace.py", ["--quick"], "cost:"),
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


def test_the_race_says_where_each_tools_compute_went(tmp_path: Path) -> None:
    """Diverged trials (val acc at chance every epoch) and giants cut before their first
    epoch are counted apart from the state they ended in: the README's shares come from
    this line."""
    race = load_module(SCRIPTS / "bench_fashion_race.py")
    learned = race.Trial(1, race.COMPLETE, {}, tmp_path, 0.85, 5, 90.0, 100.0, 0.86)
    diverged = race.Trial(2, race.COMPLETE, {}, tmp_path, 0.10, 5, 140.0, 50.0, 0.11)
    giant = race.Trial(3, race.PRUNED, {}, tmp_path, None, 0, 190.0, 40.0, None)
    cut = race.Trial(4, race.PRUNED, {}, tmp_path, None, 2, 200.0, 10.0, 0.80)
    total, shares = race.Arm("flagrun", 200, [learned, diverged, giant, cut]).compute_shares()
    assert total == 200.0
    assert shares == {"complete": 0.5, "at chance": 0.25, "no epoch": 0.2, "pruned": 0.05}
    assert race.Arm("hyperopt", 0, []).compute_shares() == (0.0, {})
