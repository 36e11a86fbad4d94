"""Search quality at equal budget: flagrun's TPE, TPE + early stopping, random, hyperopt.

Every method tunes the same script, scripts/curve.py (a synthetic learning curve whose
best val_acc is known: 0.95), over scripts/curve.yml's search space, with the same
number of trials, for several seeds, side by side in one run (for each seed, every
method in turn):

- flagrun TPE: `flagrun tune` with curve.yml (algorithm unset: TPE), 2 slots
- flagrun TPE + early stopping: the same with `earlyStopping` (--pruner: a variant
  of scripts/bench_pruning.py, default flagrun's default pruner, median); its epochs
  last --es-epoch-seconds so the tuner, which polls the event files every 0.5 s, can
  prune early
- flagrun random: algorithm RANDOM_SEARCH
- hyperopt TPE: hyperopt's fmin over the same space, one trial at a time, each
  trial running `python scripts/curve.py --flag value ...` as a subprocess with
  FLAGRUN_RUN_DIR set, its final val_acc read from the event files (loss = -val_acc)

Regret is 0.95 minus the best final val_acc among the first N trials (in the order
they were asked for). curve.py's last epoch is noise-free, so regret is exact and
>= 0. The table shows, per method, the median regret and its interquartile range
after 20, 50 and 100 trials, and the median epochs consumed by the whole run.

Usage: python scripts/bench_search.py [--seeds 10] [--trials 100] [--epochs 20]
           [--methods tpe,tpe_es,random,hyperopt] [--pruner median]
       python scripts/bench_search.py --quick      # a smoke run for CI (< 60 s)
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from flagrun.pruners import DEFAULT_PRUNER

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_pruning import (  # noqa: E402 (scripts/ is not a package)
    CURVE,
    CURVE_YAML,
    OPTIMUM,
    VARIANTS,
    JobOutcome,
    _best_so_far,
    curve_config,
    run_curve_job,
)

METHODS = {
    "tpe": "flagrun TPE",
    "tpe_es": "flagrun TPE + early stopping",
    "random": "flagrun random",
    "hyperopt": "hyperopt TPE",
}
CHECKPOINTS = (20, 50, 100)


def run_method(
    method: str, seed: int, root: Path, args: argparse.Namespace
) -> tuple[list[float | None], int]:
    """One search: the best value after each trial, and the epochs it consumed."""
    name = f"{method}-{seed}"
    fixed = {"epochs": str(args.epochs), "epoch_seconds": "0"}
    if method == "hyperopt":
        return run_hyperopt(root / name, seed, args)
    if method == "random":
        config = curve_config(args.trials, args.slots, seed, algorithm="RANDOM_SEARCH")
    elif method == "tpe_es":
        config = curve_config(args.trials, args.slots, seed, early_stopping=VARIANTS[args.pruner])
        fixed["epoch_seconds"] = str(args.es_epoch_seconds)
    else:
        config = curve_config(args.trials, args.slots, seed)
    outcome: JobOutcome = run_curve_job(root, name, config, fixed)
    return outcome.best_by_trial, outcome.epochs


# -- hyperopt over the same script ---------------------------------------------------------


def hyperopt_space(params: list[dict[str, Any]]) -> dict[str, Any]:
    """curve.yml's params as a hyperopt space (the types and scales curve.yml uses)."""
    from hyperopt import hp

    space = {}
    for param in params:
        name, kind = param["parameterName"], param["type"]
        log = param.get("scaleType") == "UNIT_LOG_SCALE"
        if kind == "CATEGORICAL":
            space[name] = hp.choice(name, param["categoricalValues"])
            continue
        low, high = param["minValue"], param["maxValue"]
        if kind == "INTEGER":
            quantized = hp.qloguniform if log else hp.quniform
            bounds = (math.log(low), math.log(high)) if log else (low, high)
            space[name] = quantized(name, *bounds, 1)
        elif log:
            space[name] = hp.loguniform(name, math.log(low), math.log(high))
        else:
            space[name] = hp.uniform(name, low, high)
    return space


def run_curve_process(run_dir: Path, flags: dict[str, Any], epochs: int) -> float:
    """Run curve.py once as a subprocess; its final val_acc from the event files."""
    from flagrun.metrics import read_scalars

    argv = [sys.executable, str(CURVE), "--epochs", str(epochs), "--epoch_seconds", "0"]
    for name, value in flags.items():
        argv += [f"--{name}", str(int(value) if name == "width" else value)]
    run_dir.mkdir(parents=True)
    env = {**os.environ, "FLAGRUN_RUN_DIR": str(run_dir)}
    subprocess.run(argv, env=env, cwd=run_dir, check=True, stdout=subprocess.DEVNULL)
    return read_scalars(run_dir)["val_acc"][-1].value


def run_hyperopt(root: Path, seed: int, args: argparse.Namespace) -> tuple[list[float | None], int]:
    import numpy as np
    from hyperopt import STATUS_OK, Trials, fmin, tpe

    params = yaml.safe_load(CURVE_YAML.read_text())["trainingInput"]["hyperparameters"]["params"]
    values: list[float] = []

    def objective(flags: dict[str, Any]) -> dict[str, Any]:
        value = run_curve_process(root / str(len(values) + 1), flags, args.epochs)
        values.append(value)
        return {"loss": -value, "status": STATUS_OK}

    fmin(
        objective,
        hyperopt_space(params),
        algo=tpe.suggest,
        max_evals=args.trials,
        trials=Trials(),
        rstate=np.random.default_rng(seed),
        show_progressbar=False,
    )
    return _best_so_far(list(values)), len(values) * args.epochs


# -- the table -----------------------------------------------------------------------------


def regret_after(best_by_trial: list[float | None], trials: int) -> float:
    best = best_by_trial[trials - 1] if len(best_by_trial) >= trials else None
    return OPTIMUM - best if best is not None else OPTIMUM


def median_iqr(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.4f}"
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return f"{statistics.median(values):.4f} [{q1:.4f}-{q3:.4f}]"


def print_table(
    results: dict[str, list[tuple[list[float | None], int]]],
    checkpoints: list[int],
    args: argparse.Namespace,
) -> None:
    print(
        f"search quality on scripts/curve.py (optimum {OPTIMUM}): {args.trials} trials of "
        f"{args.epochs} epochs, seeds 1..{args.seeds}; regret = {OPTIMUM} - best val_acc, "
        "median [IQR] over seeds"
    )
    columns = [f"regret @{n}" for n in checkpoints]
    print(f"{'method':<30} " + " ".join(f"{c:>24}" for c in columns) + f" {'epochs':>8}")
    for method, runs in results.items():
        cells = [median_iqr([regret_after(best, n) for best, _ in runs]) for n in checkpoints]
        epochs = statistics.median(epochs for _, epochs in runs)
        print(f"{METHODS[method]:<30} " + " ".join(f"{c:>24}" for c in cells) + f" {epochs:>8.0f}")
    print(f"early stopping: {VARIANTS[args.pruner]}, epochs of {args.es_epoch_seconds} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds 1..N")
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--slots", type=int, default=2, help="flagrun's parallel trials")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--es-epoch-seconds", type=float, default=0.1)
    parser.add_argument("--pruner", default=DEFAULT_PRUNER, help=f"of {', '.join(VARIANTS)}")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--quick", action="store_true", help="2 seeds, 10 trials, 5 epochs")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.trials, args.epochs, args.es_epoch_seconds = 2, 10, 5, 0.02
    methods = [name.strip() for name in args.methods.split(",")]
    bad = [m for m in methods if m not in METHODS] + [
        p for p in [args.pruner] if p not in VARIANTS or VARIANTS[p] is None
    ]
    if bad:
        parser.error(f"unknown method or pruner: {', '.join(bad)}")
    if "hyperopt" in methods and importlib.util.find_spec("hyperopt") is None:
        methods.remove("hyperopt")
        print("hyperopt is not installed (pip install hyperopt): left out", file=sys.stderr)
    checkpoints = [n for n in CHECKPOINTS if n <= args.trials] or [args.trials]

    results: dict[str, list[tuple[list[float | None], int]]] = {m: [] for m in methods}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(1, args.seeds + 1):
            for method in methods:
                best_by_trial, epochs = run_method(method, seed, Path(tmp), args)
                results[method].append((best_by_trial, epochs))
                final = regret_after(best_by_trial, args.trials)
                print(
                    f"seed {seed} {method:<9} regret {final:.4f} epochs {epochs}",
                    file=sys.stderr,
                    flush=True,
                )
    print_table(results, checkpoints, args)


if __name__ == "__main__":
    main()
