"""Benchmark: the start-up overhead of `flagrun train` over plain `python`.

Runs a script that does nothing N times each way, side by side (alternating,
so both see the same machine load), and prints the medians, the overhead in
ms and the ratio. Target: overhead under 150 ms.

    .venv/bin/python scripts/bench_overhead.py [--repeat 15] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

TARGET_MS = 150.0


# Measure Python as users run it: with bytecode caching (some CI images turn it off,
# which makes every run recompile flagrun's modules in the runner and in the child).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        cmd, cwd=cwd, env=ENV, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return time.perf_counter() - start


def commands(folder: Path) -> dict[str, list[str] | None]:
    """Each contender's command line, as a user types it; None when it is not installed."""
    bin_dir = Path(sys.executable).parent
    guild = bin_dir / "guild"  # `pip install guildai` to include Guild AI
    if guild.exists():
        (folder / "guild-home").mkdir(exist_ok=True)
        ENV["GUILD_HOME"] = str(folder / "guild-home")
    return {
        "python noop.py": [sys.executable, "noop.py"],
        "flagrun train noop.py": [str(bin_dir / "flagrun"), "train", "noop.py"],
        "guild run noop.py": [str(guild), "run", "-y", "noop.py"] if guild.exists() else None,
    }


def measure(folder: Path, repeat: int) -> dict[str, list[float]]:
    runnable = {name: cmd for name, cmd in commands(folder).items() if cmd is not None}
    for name in commands(folder).keys() - runnable.keys():
        print(f"({name}: not installed, skipped)")
    times: dict[str, list[float]] = {name: [] for name in runnable}
    for cmd in runnable.values():  # one warm-up each
        timed(cmd, folder)
    for _ in range(repeat):
        for name, cmd in runnable.items():
            times[name].append(timed(cmd, folder))
    return times


def report(times: dict[str, list[float]], out: Callable[[str], None] = print) -> float:
    base = statistics.median(times["python noop.py"])
    out(f"{'command':<24} {'median ms':>10} {'overhead ms':>12} {'ratio':>7}")
    for name, samples in times.items():
        median = statistics.median(samples)
        out(
            f"{name:<24} {median * 1e3:>10.1f} {(median - base) * 1e3:>12.1f} {median / base:>7.2f}"
        )
    overhead = (statistics.median(times["flagrun train noop.py"]) - base) * 1e3
    verdict = "OK" if overhead < TARGET_MS else "OVER TARGET"
    out(f"flagrun overhead {overhead:.1f} ms (target < {TARGET_MS:.0f} ms): {verdict}")
    return overhead


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="runs per command (default 15)")
    parser.add_argument("--quick", action="store_true", help="3 runs per command")
    args = parser.parse_args()
    repeat = 3 if args.quick else args.repeat
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "noop.py").write_text("pass\n")
        report(measure(folder, repeat))
        print(f"({repeat} runs each, runs kept in a temporary folder)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
