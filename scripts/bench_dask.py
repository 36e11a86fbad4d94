"""Slot utilisation and per-trial overhead: the Dask executor against the local one.

Runs the same tuning job twice in one run: N trials whose durations are drawn
uniformly from [MIN, MAX] seconds (RANDOM_SEARCH over a `duration` flag, seed 1) on S
slots, first with the local executor (S trials at once on this machine), then on a
Dask cluster this script starts on 127.0.0.1: a `dask scheduler` and S `dask worker`
processes of one thread each, each worker in a folder of its own, so that every trial's
folder is sent back through Dask as it would be between machines. Prints:

- utilisation = sum of trial durations / (slots x wall time of the job)
- overhead per trial = (slots x wall time - sum of trial durations) / trials: the slot
  time each trial costs beyond its own process's lifetime (starting it, bringing its
  folder back, asking Optuna for the next one)
- the driver's CPU per trial (process CPU of this process, which runs the tuner)

Usage: python scripts/bench_dask.py [--trials 40] [--slots 2] [--min 0.5] [--max 2]
       python scripts/bench_dask.py --quick      # a smoke run for CI
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scheduling import add_arguments, parse, run_job, write_job  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parse(parser)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_job(root, args)
        local = run_job(root, "local", args, gpus="none")
        with cluster(root / "cluster", args.slots) as address:
            os.environ["FLAGRUN_CLUSTER_SHARED"] = "no"  # ship folders, as between machines
            dask = run_job(root, "dask", args, cluster=address)

    print(
        f"flagrun tune: {args.trials} trials of {args.min}-{args.max} s on {args.slots} slots: "
        f"local executor vs Dask executor ({args.slots} workers x 1 thread, 127.0.0.1)"
    )
    print(f"{'measure':<34} {'local':>10} {'dask':>10}  target")
    rows = [
        ("wall time (s)", "wall", "{:.2f}", ""),
        ("sum of trial durations (s)", "busy", "{:.2f}", ""),
        ("slot utilisation", "utilisation", "{:.3f}", "dask within 0.05 of local"),
        ("overhead per trial (s)", "overhead", "{:.3f}", "dask < 0.3"),
        ("driver CPU per trial (ms)", "cpu_ms", "{:.1f}", ""),
        ("trials complete", "complete", "{:d}", ""),
    ]
    for label, key, fmt, target in rows:
        print(f"{label:<34} {fmt.format(local[key]):>10} {fmt.format(dask[key]):>10}  {target}")
    gap = local["utilisation"] - dask["utilisation"]
    print(f"{'utilisation gap (local - dask)':<34} {gap:>21.3f}")


class cluster:  # noqa: N801 (a context manager used like a function)
    """A scheduler and ``workers`` one-thread workers on 127.0.0.1, each in its own folder."""

    def __init__(self, folder: Path, workers: int) -> None:
        self.folder = folder
        self.workers = workers
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> str:
        self.folder.mkdir(parents=True)
        path = os.environ.get("PYTHONPATH", "")
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)}
        scheduler_file = self.folder / "scheduler.json"
        self._spawn(
            ["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
             "--no-dashboard", "--scheduler-file", str(scheduler_file)], env, "scheduler",
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                address = json.loads(scheduler_file.read_text())["address"]
                break
            except (OSError, ValueError, KeyError):
                if time.monotonic() > deadline:
                    raise SystemExit("the Dask scheduler did not start") from None
                time.sleep(0.05)
        for n in range(self.workers):
            folder = self.folder / f"worker{n}"
            folder.mkdir()
            self._spawn(
                ["distributed.cli.dask_worker", address, "--nthreads", "1", "--no-nanny",
                 "--no-dashboard", "--host", "127.0.0.1", "--local-directory", str(folder)],
                env, f"worker{n}",
            )  # fmt: skip
        from distributed import Client

        with Client(address, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(self.workers, timeout=60)
        return address

    def _spawn(self, args: list[str], env: dict[str, str], name: str) -> None:
        with open(self.folder / f"{name}.log", "wb") as log:
            self.procs.append(
                subprocess.Popen([sys.executable, "-m", *args], env=env, stdout=log, stderr=log)
            )

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    main()
