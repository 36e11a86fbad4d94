"""How long ``import flagrun`` takes: the cost every trial pays before its first line.

Runs ``python -X importtime -c "import flagrun"`` several times and prints the
median cumulative import time of ``flagrun`` against the 50 ms target, next to
the interpreter's own start-up (``python -c pass``), measured in the same run.

    .venv/bin/python scripts/bench_import.py [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

TARGET_MS = 50.0


def import_time_ms(module: str) -> float:
    """Cumulative import time of ``module`` in a fresh interpreter, from -X importtime."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
    )
    for line in done.stderr.splitlines():
        # "import time:  self [us] | cumulative | imported package"
        parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[2] == module:
            return int(parts[1]) / 1000
    raise SystemExit(f"no import time line for {module}")


def wall_ms(args: list[str]) -> float:
    """Wall time of a fresh interpreter running ``args``."""
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, capture_output=True)
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    repeat = parser.parse_args().repeat
    cumulative, baseline, with_flagrun = [], [], []
    for _ in range(repeat):  # interleaved, so both sides see the same machine load
        cumulative.append(import_time_ms("flagrun"))
        baseline.append(wall_ms(["-c", "pass"]))
        with_flagrun.append(wall_ms(["-c", "import flagrun"]))
    median = statistics.median
    rows = [
        ("import flagrun (cumulative, -X importtime)", median(cumulative), f"{TARGET_MS:.0f}"),
        ("python -c pass (wall)", median(baseline), ""),
        ("python -c 'import flagrun' (wall)", median(with_flagrun), ""),
        ("  added over python -c pass (wall)", median(with_flagrun) - median(baseline), ""),
    ]
    print(f"{'measure (median of ' + str(repeat) + ')':<44} {'ms':>8} {'target':>8}")
    for name, value, target in rows:
        print(f"{name:<44} {value:>8.1f} {target:>8}")
    verdict = "OK" if median(cumulative) <= TARGET_MS else "OVER TARGET"
    print(f"\nflagrun import: {median(cumulative):.1f} ms vs target {TARGET_MS:.0f} ms: {verdict}")


if __name__ == "__main__":
    main()
