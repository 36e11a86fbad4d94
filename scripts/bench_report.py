"""How long `flagrun report` takes on a 100-trial job, and how big the page is.

The job is synthetic but made of real files: job.json, trials.jsonl, each trial's
run.json and its TensorBoard event file written by flagrun.writer (val_acc and loss,
50 steps; a tenth of the trials pruned part way, a few failed). Measured side by side
in one run: the library call (imports warm) and the whole command in a fresh process.

    python scripts/bench_report.py            # 100 trials x 50 steps, 5 repeats
    python scripts/bench_report.py --quick    # a tiny job, one repeat (smoke test)
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from flagrun import jobstore, store
from flagrun.htmlreport import write_report
from flagrun.records import JobRecord, JobState, RunRecord, RunStatus, TrialRow, TrialState
from flagrun.spec import ParamSpec, TuningSpec
from flagrun.writer import MetricsWriter

TARGET_SECONDS = 2.0
TARGET_BYTES = 2_000_000

PARAMS = [
    {
        "name": "lr",
        "type": "DOUBLE",
        "min_value": 1e-4,
        "max_value": 0.1,
        "scale": "UNIT_LOG_SCALE",
    },
    {
        "name": "units",
        "type": "INTEGER",
        "min_value": 16,
        "max_value": 512,
        "scale": "UNIT_LINEAR_SCALE",
    },
    {
        "name": "optimizer",
        "type": "CATEGORICAL",
        "categorical_values": ["adam", "sgd", "rmsprop"],
        "scale": None,
    },
]


def make_job(root: Path, trials: int, steps: int, seed: int = 0) -> Path:
    """A finished job folder with ``trials`` trials of ``steps`` logged steps each."""
    rng = random.Random(seed)
    job_dir = root / "runs" / "2026-01-01T00-00-00Z"
    (job_dir / jobstore.TRIALS_DIR).mkdir(parents=True)
    counts = {"COMPLETE": 0, "PRUNED": 0, "FAILED": 0, "RUNNING": 0}
    for trial_id in range(1, trials + 1):
        flags = {
            "lr": 10 ** rng.uniform(-4, -1),
            "units": rng.randint(16, 512),
            "optimizer": rng.choice(["adam", "sgd", "rmsprop"]),
        }
        state = rng.choices(["COMPLETE", "PRUNED", "FAILED"], [0.85, 0.1, 0.05])[0]
        counts[state] += 1
        run_dir = jobstore.trial_dir(job_dir, trial_id)
        run_dir.mkdir()
        logged = steps if state == "COMPLETE" else rng.randint(1, steps // 2)
        value = write_curve(run_dir, flags, logged, rng) if state != "FAILED" else None
        row = TrialRow(
            trial_id=trial_id,
            state=TrialState(state),
            objective_value=value,
            training_step=logged - 1 if value is not None else None,
            hyperparameters=flags,
            run_dir=f"{jobstore.TRIALS_DIR}/{trial_id}",
            duration=rng.uniform(5, 60),
            reason={"PRUNED": f"pruned at step {logged - 1}", "FAILED": "exit code 1"}.get(state),
        )
        jobstore.append_trial(job_dir, row)
        status = RunStatus.COMPLETED if state == "COMPLETE" else RunStatus(state)
        record = RunRecord(str(trial_id), status, "train.py", "2026-01-01T00:00:00Z", flags)
        store.write_run(run_dir, record)
    spec = TuningSpec(
        goal="MAXIMIZE",
        metric_tag="val_acc",
        max_trials=trials,
        early_stopping=True,
        params=tuple(ParamSpec.from_dict(param) for param in PARAMS),
    )
    job = JobRecord(
        id=job_dir.name,
        state=JobState.COMPLETED,
        spec=spec,
        script="train.py",
        created="2026-01-01T00:00:00+00:00",
        updated="2026-01-01T01:00:00+00:00",
        ended="2026-01-01T01:00:00+00:00",
        counts={TrialState(name): n for name, n in counts.items()},
    )
    jobstore.write_job(job_dir, job)
    return job_dir


def write_curve(run_dir: Path, flags: dict, steps: int, rng: random.Random) -> float:
    """Log val_acc and loss for ``steps`` epochs; return the last val_acc."""
    writer = MetricsWriter(run_dir / "logs")
    quality = 1 - abs(math.log10(flags["lr"]) + 2.5) / 3 + (flags["optimizer"] == "adam") * 0.05
    acc = 0.0
    for step in range(steps):
        acc = quality * (1 - math.exp(-(step + 1) / 8)) + rng.gauss(0, 0.005)
        writer.log({"val_acc": acc, "loss": 1 - acc}, step=step)
    writer.close()
    return struct.unpack("<f", struct.pack("<f", acc))[0]  # float32, as the event file holds it


def time_library(job_dir: Path, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        write_report(str(job_dir))
        times.append(time.perf_counter() - start)
    return times


def time_command(job_dir: Path, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "flagrun", "report", str(job_dir)],
            check=True,
            capture_output=True,
        )
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="10 trials x 10 steps, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.steps, args.repeat = 10, 10, 1
    with tempfile.TemporaryDirectory() as tmp:
        job_dir = make_job(Path(tmp), args.trials, args.steps)
        library = time_library(job_dir, args.repeat)
        command = time_command(job_dir, args.repeat)
        size = (job_dir / "report.html").stat().st_size
    print(f"flagrun report: {args.trials} trials x {args.steps} steps, median of {args.repeat}")
    print(f"{'measure':<34}{'median':>10}{'best':>10}{'target':>10}{'ratio':>8}")
    for name, times in (
        ("write_report() in process", library),
        ("flagrun report (new process)", command),
    ):
        median = statistics.median(times)
        print(
            f"{name:<34}{median:>9.3f}s{min(times):>9.3f}s{TARGET_SECONDS:>9.1f}s"
            f"{median / TARGET_SECONDS:>8.2f}"
        )
    size_text = f"{size / 1e6:.3f}MB"
    target_text = f"{TARGET_BYTES / 1e6:.1f}MB"
    print(f"{'page size':<34}{size_text:>10}{'':>10}{target_text:>10}{size / TARGET_BYTES:>8.2f}")


if __name__ == "__main__":
    main()
