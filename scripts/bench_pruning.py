"""Early stopping in `flagrun tune`: how much compute each pruner saves, at what cost.

Tunes scripts/curve.py (a synthetic learning curve, best val_acc 0.95, see its
docstring) over scripts/curve.yml's search space with TPE: once without early
stopping and once per pruner, for several sampler seeds, side by side in one run
(for each seed, every variant in turn). For each variant it prints the median over
seeds of: epochs consumed (the sum over trials of the epochs each one ran, pruned
ones included), wall time, and the best val_acc found; then the compute ratio
(no pruning's median epochs / the variant's) and the per-seed difference of the
best value against no pruning (median and min..max). The spread of no pruning's
best value over seeds is the noise the differences are judged against.

The tuner decides on pruning when it polls the event files (every 0.5 s), so an
epoch must last long enough for the decision to come early: 0.1 s by default.

Usage: python scripts/bench_pruning.py [--seeds 5] [--trials 40] [--slots 2]
           [--epochs 20] [--epoch-seconds 0.1] [--variants none,median,...]
       python scripts/bench_pruning.py --quick      # a smoke run for CI
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SCRIPTS = Path(__file__).resolve().parent
CURVE = SCRIPTS / "curve.py"
CURVE_YAML = SCRIPTS / "curve.yml"
OPTIMUM = 0.95  # curve.py's best val_acc

# Each variant's `earlyStopping:` block; None turns early stopping off. A bare pruner name
# gets flagrun's defaults (tuner.make_pruner); Optuna's `percentile: 25` there KEEPS the
# top quarter of trials at each step and prunes the rest.
VARIANTS: dict[str, dict[str, Any] | None] = {
    "none": None,
    "median": {"pruner": "median"},
    "percentile": {"pruner": "percentile"},
    "successive_halving": {"pruner": "successive_halving"},
    "hyperband": {"pruner": "hyperband"},
    # other settings tried
    "median_warmup5": {"pruner": "median", "n_warmup_steps": 5},
    "sh_min5_rf2": {"pruner": "successive_halving", "min_resource": 5, "reduction_factor": 2},
    "hyperband_min2_rf2": {"pruner": "hyperband", "min_resource": 2, "reduction_factor": 2},
    "sh_min5_rf3": {"pruner": "successive_halving", "min_resource": 5, "reduction_factor": 3},
    "percentile_warmup4": {"pruner": "percentile", "n_warmup_steps": 4},
}
DEFAULT_VARIANTS = "none,median,percentile,successive_halving,hyperband"


@dataclass
class JobOutcome:
    """One tuning job, as the benchmarks measure it."""

    epochs: int  # epochs run by all its trials
    wall: float  # seconds
    best: float | None  # best final val_acc of a complete trial
    best_by_trial: list[float | None]  # best so far after trial 1, 2, ... (trial id order)
    pruned: int


def curve_config(
    trials: int,
    slots: int,
    seed: int,
    *,
    early_stopping: dict[str, Any] | None = None,
    algorithm: str | None = None,
) -> dict[str, Any]:
    """scripts/curve.yml with this budget, sampler seed, algorithm and early stopping."""
    config = yaml.safe_load(CURVE_YAML.read_text())
    hp = config["trainingInput"]["hyperparameters"]
    hp.update(maxTrials=trials, maxParallelTrials=slots, seed=seed)
    hp["enableTrialEarlyStopping"] = early_stopping is not None
    if early_stopping is not None:
        hp["earlyStopping"] = early_stopping
    if algorithm is not None:
        hp["algorithm"] = algorithm
    return config


def run_curve_job(
    root: Path, name: str, config: dict[str, Any], fixed: dict[str, str]
) -> JobOutcome:
    """Tune curve.py with ``config`` and the fixed flags; measure it."""
    from flagrun import trials, tune
    from flagrun.metrics import read_scalars

    config_path = root / f"{name}.yml"
    config_path.write_text(yaml.safe_dump(config))
    runs_dir = root / name
    start = time.perf_counter()
    result = tune(CURVE, config_path, runs_dir=runs_dir, progress="quiet", fixed=fixed)
    wall = time.perf_counter() - start
    rows = sorted(trials(result.job_dir.name, runs_dir=runs_dir).trials, key=_trial_id)
    epochs = sum(len(read_scalars(result.job_dir / row.run_dir).get("val_acc", [])) for row in rows)
    best = result.best.objective_value if result.best else None
    values = [row.objective_value if row.state == "COMPLETE" else None for row in rows]
    return JobOutcome(epochs, wall, best, _best_so_far(values), result.counts.get("PRUNED", 0))


def _trial_id(row: Any) -> int:
    return int(row.trial_id)


def _best_so_far(values: list[float | None]) -> list[float | None]:
    """The best complete value after each trial (None: the trial did not complete)."""
    best: float | None = None
    out = []
    for value in values:
        if value is not None:
            best = value if best is None else max(best, value)
        out.append(best)
    return out


def spread(values: list[float], sign: str = "+") -> str:
    """``min..max`` of a few values (``sign`` "+" shows it on both ends)."""
    return f"{min(values):{sign}.3f}..{max(values):{sign}.3f}"


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="sampler seeds 1..N")
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--epoch-seconds", type=float, default=0.1)
    parser.add_argument("--variants", default=DEFAULT_VARIANTS, help=f"of {', '.join(VARIANTS)}")
    parser.add_argument("--quick", action="store_true", help="1 seed, 6 trials, 6 epochs")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.trials, args.epochs, args.epoch_seconds = 1, 6, 6, 0.05
    variants = [name.strip() for name in args.variants.split(",")]
    unknown = [name for name in variants if name not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    if "none" not in variants:
        variants.insert(0, "none")

    fixed = {"epochs": str(args.epochs), "epoch_seconds": str(args.epoch_seconds)}
    outcomes: dict[str, list[JobOutcome]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(1, args.seeds + 1):
            for name in variants:
                config = curve_config(args.trials, args.slots, seed, early_stopping=VARIANTS[name])
                outcome = run_curve_job(Path(tmp), f"{name}-{seed}", config, fixed)
                outcomes[name].append(outcome)
                print(
                    f"seed {seed} {name:<20} epochs {outcome.epochs:>5} wall {outcome.wall:6.1f} s "
                    f"best {outcome.best or float('nan'):.4f} pruned {outcome.pruned}",
                    file=sys.stderr,
                    flush=True,
                )
    print_table(outcomes, args)


def print_table(outcomes: dict[str, list[JobOutcome]], args: argparse.Namespace) -> None:
    base = outcomes["none"]
    base_epochs = median([o.epochs for o in base])
    base_best = [o.best or 0.0 for o in base]
    print(
        f"flagrun tune on scripts/curve.py (optimum {OPTIMUM}): TPE, {args.trials} trials of "
        f"{args.epochs} epochs x {args.epoch_seconds} s, {args.slots} slots, "
        f"seeds 1..{args.seeds}; medians over seeds"
    )
    header = (
        f"{'pruner':<20} {'epochs':>7} {'wall s':>7} {'pruned':>6} {'best':>7} "
        f"{'compute ratio':>13} {'best - none':>12} {'(min..max)':>16}"
    )
    print(header)
    for name, runs in outcomes.items():
        epochs = median([o.epochs for o in runs])
        bests = [o.best or 0.0 for o in runs]
        diffs = [b - n for b, n in zip(bests, base_best, strict=True)]
        print(
            f"{name:<20} {epochs:>7.0f} {median([o.wall for o in runs]):>7.1f} "
            f"{median([o.pruned for o in runs]):>6.0f} {median(bests):>7.4f} "
            f"{base_epochs / epochs:>12.2f}x {median(diffs):>+12.4f} {spread(diffs):>16}"
        )
    print(f"noise: best value without pruning over seeds {spread(base_best, '')} (min..max)")
    print("target: compute ratio >= 2x with best - none within that noise")


if __name__ == "__main__":
    main()
