"""`flagrun trials` latency on a job with many trials (target: under 0.5 s for 10,000).

Builds a finished job folder the way the tuner leaves it (job.json and the
trials index, each trial with a RUNNING row then its final row) and times the
whole `flagrun trials` command, as a user runs it, in each output format.

Usage: python scripts/bench_trials.py [--trials 10000] [--repeat 5]   |   --quick
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from flagrun import jobstore
from flagrun.records import JobRecord, JobState
from flagrun.spec import ParamSpec, TuningSpec

PARAMS = ("dropout1", "dropout2", "dense_units1")


def build_job(runs_dir: Path, trials: int) -> Path:
    job_dir = runs_dir / "2026-11-22T00-00-00Z"
    job_dir.mkdir(parents=True)
    params = tuple(ParamSpec(name, "DOUBLE", 0.0, 1.0) for name in PARAMS)
    spec = TuningSpec(goal="MAXIMIZE", metric_tag="val_acc", max_trials=trials, params=params)
    stamp = "2026-11-22T00:00:00+00:00"
    record = JobRecord(job_dir.name, JobState.COMPLETED, spec, "train.py", stamp, stamp)
    jobstore.write_job(job_dir, record)
    rng = random.Random(1)
    lines = []
    for trial_id in range(1, trials + 1):
        flags = {"dropout1": rng.random(), "dropout2": rng.random(), "dense_units1": 128}
        state = rng.choice(("COMPLETE",) * 8 + ("PRUNED", "FAILED"))
        for row_state in ("RUNNING", state):
            lines.append(
                json.dumps(
                    {
                        "trialId": trial_id,
                        "state": row_state,
                        "objectiveValue": rng.random() if row_state == "COMPLETE" else None,
                        "trainingStep": 29,
                        "hyperparameters": flags,
                        "runDir": f"trials/{trial_id}",
                        "duration": 30.0,
                        "reason": None,
                        "time": "2026-11-22T00:00:00+00:00",
                        "host": "bench",
                    }
                )
            )
    (job_dir / jobstore.INDEX_FILE).write_text("\n".join(lines) + "\n")
    return job_dir


def timed(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="200 trials, 1 run")
    args = parser.parse_args()
    trials, repeat = (200, 1) if args.quick else (args.trials, args.repeat)
    flagrun = str(Path(sys.executable).parent / "flagrun")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build_job(root / "runs", trials)
        print(f"flagrun trials on a job of {trials:,} trials (median of {repeat})")
        print(f"{'command':<34} {'seconds':>8}  target")
        for fmt in ("json", "csv", "table"):
            command = [flagrun, "trials", "--format", fmt]
            timed(command, root)  # warm-up
            median = statistics.median(timed(command, root) for _ in range(repeat))
            print(f"{'flagrun trials --format ' + fmt:<34} {median:>8.3f}  < 0.5")


if __name__ == "__main__":
    main()
