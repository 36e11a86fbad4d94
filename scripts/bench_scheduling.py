"""Slot utilisation of `flagrun tune`: do the parallel slots stay busy?

Runs a tuning job of N trials whose durations are drawn uniformly from
[MIN, MAX] seconds (RANDOM_SEARCH over a `duration` flag) on S slots, and prints:

- utilisation = sum of trial durations / (slots x wall time of the job)
- the tuner's own CPU time per trial (process CPU of this process, which runs
  the tuner in-process; the trials are separate processes)

Usage: python scripts/bench_scheduling.py [--trials 40] [--slots 2] [--min 0.5] [--max 2]
       python scripts/bench_scheduling.py --quick      # a smoke run for CI
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

TRIAL = """
import time
from flagrun import flags, flag_numeric, log_metrics
FLAGS = flags(flag_numeric("duration", 1.0))
time.sleep(FLAGS.duration)
log_metrics({"score": FLAGS.duration}, step=0)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The job's shape: trials, slots, and the range of trial durations."""
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--min", type=float, default=0.5)
    parser.add_argument("--max", type=float, default=2.0)
    parser.add_argument("--quick", action="store_true", help="6 trials of 0.1-0.3 s")


def parse(parser: argparse.ArgumentParser) -> argparse.Namespace:
    args = parser.parse_args()
    if args.quick:
        args.trials, args.min, args.max = 6, 0.1, 0.3
    return args


def tuning(args: argparse.Namespace) -> dict:
    """The job: RANDOM_SEARCH over the trials' durations, seeded."""
    return {
        "goal": "MAXIMIZE",
        "hyperparameterMetricTag": "score",
        "maxTrials": args.trials,
        "maxParallelTrials": args.slots,
        "algorithm": "RANDOM_SEARCH",
        "seed": 1,
        "params": [
            {
                "parameterName": "duration",
                "type": "DOUBLE",
                "minValue": args.min,
                "maxValue": args.max,
            }
        ],
    }


def write_job(root: Path, args: argparse.Namespace) -> None:
    (root / "trial.py").write_text(TRIAL)
    (root / "tuning.yml").write_text(json.dumps(tuning(args)))


def run_job(root: Path, name: str, args: argparse.Namespace, **options: object) -> dict:
    """Tune the job in ``root`` in this process; what it cost, measured."""
    from flagrun.tuner import tune

    cpu0, wall0 = time.process_time(), time.perf_counter()
    result = tune(
        root / "trial.py",
        root / "tuning.yml",
        runs_dir=root / f"runs-{name}",
        progress="quiet",
        **options,
    )
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    durations = [
        json.loads(path.read_text())["duration"]
        for path in (result.job_dir / "trials").glob("*/run.json")
    ]
    busy = sum(durations)
    return {
        "wall": wall,
        "busy": busy,
        "utilisation": busy / (args.slots * wall),
        "overhead": (args.slots * wall - busy) / args.trials,
        "cpu_ms": 1000 * cpu / args.trials,
        "complete": result.counts["COMPLETE"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parse(parser)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_job(root, args)
        job = run_job(root, "local", args)

    print(f"flagrun tune: {args.trials} trials of {args.min}-{args.max} s on {args.slots} slots")
    print(f"{'measure':<34} {'value':>10}  target")
    print(f"{'wall time (s)':<34} {job['wall']:>10.2f}")
    print(f"{'sum of trial durations (s)':<34} {job['busy']:>10.2f}")
    print(f"{'slot utilisation':<34} {job['utilisation']:>10.3f}  >= 0.95")
    print(f"{'tuner CPU per trial (ms)':<34} {job['cpu_ms']:>10.1f}")
    print(f"{'trials complete':<34} {job['complete']:>10d}")


if __name__ == "__main__":
    main()
