"""A better model in less compute: flagrun's early stopping against what users write instead.

Every method searches scripts/curve_cost.py (a synthetic learning curve with a cost model:
wide, deep models and small batches take long epochs; best val_acc 0.95, see its
docstring) over scripts/curve_cost.yml's space, each trial training ``--epochs`` epochs,
until it has spent the same compute: ``--budget-hours`` of simulated training seconds
(the sum over its trials of the epochs they ran, pruned ones included). Methods:

- flagrun: `flagrun tune` (library API, real trial processes, 2 slots) with its default
  early stopping (median pruner, trials compared at equal epochs)
- flagrun_percentile: the same with ``earlyStopping: {pruner: percentile}`` (keep the top
  25% at each epoch: the default before 2026-12-03)
- flagrun_time: the same with ``earlyStopping: {pruner: percentile, resource: time,
  timeStep: ...}`` (trials compared at equal elapsed seconds); skipped, and said so, when
  this flagrun rejects the setting
- flagrun_asha: the same with ``earlyStopping: {pruner: asha}``: successive halving that
  pauses a stopped trial (curve_cost.py keeps its epoch in its checkpoint folder) and
  continues it when it is later among the best of its rung
- flagrun_stalled: the default with ``earlyStopping: {stopStalled: true}`` (trials that
  learned nothing since their first epoch and are far behind are stopped, start-up or not)
- flagrun_reached: the default with ``earlyStopping: {compareWith: reached}`` (each trial
  judged against every trial that reached its epoch, pruned and running ones included,
  once 5 have: the rung of asynchronous successive halving with the median as the cut)
- flagrun_none: `flagrun tune` without early stopping
- flagrun_timed: flagrun's defaults, and the job told its time: ``maxRunningTime`` is 1.2
  times the wall time the flagrun row took on the same seed in this run (so the compute
  budget still ends it, while TPE's random start-up and the pruner's end after a third of
  the limit, if trials have not ended them before); needs the flagrun row before it

  (maxTrials is set out of reach, the budget ends a job: TPE's random start-up is 10
  trials for flagrun, whether it is Optuna's default or a fifth of maxTrials capped at 10)
- optuna: a plain in-process Optuna script, what a user writes instead: TPESampler,
  MedianPruner, ``trial.report`` every epoch, one trial at a time
- hyperopt: ``fmin(tpe.suggest)``, one trial at a time, no early stopping
- keras_tuner: keras-tuner's HyperbandOracle driven directly (no Keras model): a trial
  resumed to a higher rung trains only the epochs it lacks, as keras-tuner does from its
  checkpoints; only trials trained to all ``--epochs`` count as models found

The in-process methods run the same curve functions as curve_cost.py and sleep the same
epoch times, in a pool of worker processes next to the flagrun jobs. Every epoch sleeps its
simulated seconds times ``--time-scale`` (0.002: an average 30 s epoch sleeps 0.06 s); the
flagrun jobs poll the trials' event files every ``--poll`` seconds instead of flagrun's 0.5 s.
A pruning decision still comes up to 25 simulated seconds late (0.05 / 0.002), most of an
average epoch, where on real epochs half a second is nothing: the flagrun rows pay that, the
in-process ones (which decide at the epoch's end) do not. Trial start-up is not counted.
A flagrun job's compute is summed from the ledger its trials append to (curve_cost.py
``--ledger``), the part-epoch of a stopped trial included; it is stopped with SIGINT once
past the budget.

With ``--simulate`` the flagrun rows (flagrun, flagrun_percentile, flagrun_stalled,
flagrun_reached, flagrun_none) do not start jobs: the sampler and pruner ``flagrun tune``
builds from the same YAML are driven in process, ``--slots`` trials side by side in
simulated time, each epoch judged as it ends.
No latency, no sleeping (``--time-scale 0`` makes the in-process rows as quick): 30 seeds
in a minute or two, where a real 5-h row takes ~3 min a seed. What it leaves out is the
tuner's own loop (its poll, trial start-up), which the real rows measure.

Measured per method over ``--seeds`` seeds from ``--first-seed`` (the samplers' seeds and
the curves' noise seed): the simulated compute until a trial trained to the end reaches
``0.95 - target``, for each of ``--targets`` (">" when it did not within the budget; and on
how many seeds it did), and the regret (0.95 minus the best final val_acc) after a quarter,
half and all of the budget; medians and [IQR]. Trials started are counted too (TPE's first
10 are random: with the same seed, flagrun's and the Optuna script's are the same draws).

Usage: python scripts/bench_compute.py [--seeds 10] [--budget-hours 10] [--epochs 20]
           [--targets 0.1,0.05] [--time-scale 0.002] [--methods flagrun,optuna,...]
           [--first-seed 1] [--save results.json] [--simulate]
       python scripts/bench_compute.py --quick      # a smoke run for CI (< 60 s)
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import importlib.util
import json
import math
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from curve_cost import OPTIMUM, epoch_seconds, val_acc_curve  # noqa: E402

SCRIPTS = Path(__file__).resolve().parent
CURVE_COST, CURVE_COST_YAML = SCRIPTS / "curve_cost.py", SCRIPTS / "curve_cost.yml"
CHANCE = 0.10

METHODS = {
    "flagrun": "flagrun, median on steps",
    "flagrun_percentile": "flagrun, percentile on steps",
    "flagrun_time": "flagrun, percentile on time",
    "flagrun_asha": "flagrun, asha (pause, promote)",
    "flagrun_stalled": "flagrun, median, stop stalled",
    "flagrun_reached": "flagrun, median over reached",
    "flagrun_reached_stalled": "flagrun, reached + stop stalled",
    "flagrun_none": "flagrun, no early stopping",
    "flagrun_timed": "flagrun + maxRunningTime",
    "optuna": "Optuna TPE + MedianPruner",
    "hyperopt": "hyperopt TPE",
    "keras_tuner": "keras-tuner Hyperband",
}
IN_PROCESS = ("optuna", "hyperopt", "keras_tuner")
TIMED_SLACK = 1.2  # flagrun_timed's maxRunningTime over the flagrun row's wall time
NEEDS = {"hyperopt": "hyperopt", "keras_tuner": "keras_tuner"}  # method: module it imports
PIP_NAME = {"hyperopt": "hyperopt", "keras_tuner": "keras-tuner"}


@dataclasses.dataclass
class Search:
    """One method's search on one seed, in simulated compute."""

    completions: list[tuple[float, float]]  # (compute spent when it ended, final val_acc)
    compute: float  # simulated seconds spent in all
    trials: int  # trials started (keras-tuner: rung runs)
    wall: float = 0.0  # real seconds

    def regret_at(self, budget: float) -> float:
        found = [value for spent, value in self.completions if spent <= budget]
        return OPTIMUM - max(found, default=CHANCE)

    def compute_to(self, value: float) -> float:
        """The compute spent when a trial first ended at ``value`` or better (inf: never)."""
        return min((spent for spent, v in self.completions if v >= value), default=math.inf)


# -- the space, as each library writes it ---------------------------------------------------


def space_params() -> tuple[Any, ...]:
    from flagrun.spec import load_spec

    return load_spec(CURVE_COST_YAML).params


def cost_of(values: dict[str, Any]) -> float:
    return epoch_seconds(int(values["width"]), int(values["layers"]), int(values["batch_size"]))


def optuna_suggest(trial: Any, params: tuple[Any, ...]) -> dict[str, Any]:
    """The space as a user writes it with trial.suggest_*."""
    values: dict[str, Any] = {}
    for p in params:
        log = p.scale == "UNIT_LOG_SCALE"
        if p.type == "DOUBLE":
            values[p.name] = trial.suggest_float(p.name, p.min_value, p.max_value, log=log)
        elif p.type == "INTEGER":
            values[p.name] = trial.suggest_int(p.name, p.min_value, p.max_value, log=log)
        else:
            choices = list(p.discrete_values or p.categorical_values)
            values[p.name] = trial.suggest_categorical(p.name, choices)
    return values


def keras_tuner_space(params: tuple[Any, ...]) -> Any:
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    for p in params:
        log = "log" if p.scale == "UNIT_LOG_SCALE" else "linear"
        if p.type == "DOUBLE":
            hp.Float(p.name, p.min_value, p.max_value, sampling=log)
        elif p.type == "INTEGER":
            hp.Int(p.name, p.min_value, p.max_value, sampling=log)
        else:
            hp.Choice(p.name, list(p.discrete_values or p.categorical_values))
    return hp


# -- in-process methods (run in worker processes) -------------------------------------------


@dataclasses.dataclass
class Spend:
    """The compute of an in-process search, epoch by epoch, slept at the time scale."""

    budget: float
    time_scale: float
    spent: float = 0.0
    trials: int = 0

    def epoch(self, seconds: float) -> None:
        time.sleep(seconds * self.time_scale)
        self.spent += seconds

    @property
    def over(self) -> bool:
        return self.spent >= self.budget


def run_optuna(seed: int, epochs: int, spend: Spend) -> list[tuple[float, float]]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    params, done = space_params(), []

    def objective(trial: optuna.Trial) -> float:
        values = optuna_suggest(trial, params)
        spend.trials += 1
        seconds = cost_of(values)
        for epoch, value in enumerate(val_acc_curve(values, epochs, seed), start=1):
            spend.epoch(seconds)
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        done.append((spend.spent, value))
        return value

    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(),
    )
    study.optimize(objective, callbacks=[lambda study, _: spend.over and study.stop()])
    return done


def run_hyperopt(seed: int, epochs: int, spend: Spend) -> list[tuple[float, float]]:
    import numpy as np
    from bench_fashion_race import hyperopt_space, snap
    from hyperopt import STATUS_OK, Trials, fmin, tpe

    params, done = space_params(), []

    def objective(drawn: dict[str, Any]) -> dict[str, Any]:
        values = snap(drawn, params)
        spend.trials += 1
        seconds = cost_of(values)
        for _ in range(epochs):
            spend.epoch(seconds)
        value = val_acc_curve(values, epochs, seed)[-1]
        done.append((spend.spent, value))
        return {"loss": -value, "status": STATUS_OK}

    fmin(
        objective,
        hyperopt_space(params),
        algo=tpe.suggest,
        max_evals=100_000,
        trials=Trials(),
        rstate=np.random.default_rng(seed),
        early_stop_fn=lambda trials, *rest: (spend.over, rest),
        show_progressbar=False,
    )
    return done


def run_keras_tuner(seed: int, epochs: int, spend: Spend) -> list[tuple[float, float]]:
    import keras_tuner

    oracle = keras_tuner.oracles.HyperbandOracle(
        objective=keras_tuner.Objective("val_acc", "max"),
        max_epochs=epochs,
        factor=3,
        hyperband_iterations=10_000,  # the budget ends it
        seed=seed,
        hyperparameters=keras_tuner_space(space_params()),
    )
    oracle.verbose = 0  # no trial-by-trial display
    with tempfile.TemporaryDirectory(prefix="keras-tuner-") as project:
        oracle._set_project_dir(project, "curve_cost")  # what keras_tuner.Tuner does
        return _drive_hyperband(oracle, seed, epochs, spend)


def _drive_hyperband(
    oracle: Any, seed: int, epochs: int, spend: Spend
) -> list[tuple[float, float]]:
    done = []
    while not spend.over:
        trial = oracle.create_trial("bench")
        if trial.status != "RUNNING":  # STOPPED; IDLE cannot happen with one worker
            break
        values = trial.hyperparameters.values
        spend.trials += 1
        curve, seconds = val_acc_curve(values, epochs, seed), cost_of(values)
        start, stop = values.get("tuner/initial_epoch", 0), values.get("tuner/epochs", epochs)
        for _ in range(start, stop):  # resumed from its checkpoint at initial_epoch
            spend.epoch(seconds)
        value = curve[stop - 1]
        oracle.update_trial(trial.trial_id, {"val_acc": value}, step=stop)
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        if stop == epochs:
            done.append((spend.spent, value))
    return done


IN_PROCESS_RUNNERS: dict[str, Callable[[int, int, Spend], list[tuple[float, float]]]] = {
    "optuna": run_optuna,
    "hyperopt": run_hyperopt,
    "keras_tuner": run_keras_tuner,
}


def run_in_process(method: str, seed: int, epochs: int, budget: float, scale: float) -> Search:
    spend, start = Spend(budget, scale), time.perf_counter()
    completions = IN_PROCESS_RUNNERS[method](seed, epochs, spend)
    return Search(completions, spend.spent, spend.trials, time.perf_counter() - start)


# -- flagrun ------------------------------------------------------------------------------


def early_stopping_of(method: str, args: argparse.Namespace) -> dict[str, Any] | None:
    """The method's ``earlyStopping`` block; {} for flagrun's default, None for off."""
    if method == "flagrun_time":
        step = args.time_step * args.time_scale  # the tuner measures real seconds
        return {"pruner": "percentile", "resource": "time", "timeStep": step}
    if method == "flagrun_percentile":
        return {"pruner": "percentile"}
    if method == "flagrun_asha":
        return {"pruner": "asha"}  # curve_cost.py keeps its epoch in its checkpoint folder
    if method == "flagrun_stalled":
        return {"stopStalled": True}
    if method == "flagrun_reached":
        return {"compareWith": "reached"}
    if method == "flagrun_reached_stalled":
        return {"compareWith": "reached", "stopStalled": True}
    return {} if method in ("flagrun", "flagrun_timed") else None


def cost_config(
    seed: int,
    slots: int,
    early_stopping: dict[str, Any] | None,
    max_running_time: float | None = None,
) -> dict[str, Any]:
    """curve_cost.yml with no trial cap (the compute budget ends it), the seed and slots."""
    config = yaml.safe_load(CURVE_COST_YAML.read_text())
    hp = config["trainingInput"]["hyperparameters"]
    hp.update(maxTrials=100_000, maxParallelTrials=slots, seed=seed)
    if max_running_time is not None:
        hp["maxRunningTime"] = max_running_time
    hp["enableTrialEarlyStopping"] = early_stopping is not None
    if early_stopping:
        hp["earlyStopping"] = early_stopping
    return config


def rejected(method: str, args: argparse.Namespace, root: Path) -> str | None:
    """Why this flagrun rejects the method's YAML (a setting not on this branch), or None."""
    from flagrun.errors import FlagrunError
    from flagrun.spec import load_spec

    path = root / f"check-{method}.yml"
    path.write_text(yaml.safe_dump(cost_config(1, args.slots, early_stopping_of(method, args))))
    try:
        load_spec(path)
    except FlagrunError as exc:
        return exc.message.split(": ", 1)[-1]  # without the temporary file's name
    return None


def run_flagrun(
    method: str, seed: int, root: Path, args: argparse.Namespace, limit: float | None = None
) -> Search:
    """`flagrun tune` until the trials' ledger shows the budget spent; measured from it.
    ``limit``: the job's maxRunningTime."""
    import flagrun.tuner.loop
    from flagrun import tune

    name = f"{method}-{seed}"
    config_path = root / f"{name}.yml"
    config_path.write_text(
        yaml.safe_dump(cost_config(seed, args.slots, early_stopping_of(method, args), limit))
    )
    ledger = root / f"{name}.ledger"
    fixed = {
        "epochs": str(args.epochs),
        "seed": str(seed),
        "time_scale": str(args.time_scale),
        "ledger": str(ledger),
    }
    # The tuner's clock, scaled with the epochs' (see the docstring).
    flagrun.tuner.loop.METRIC_POLL_SECONDS = args.poll
    start = time.perf_counter()
    with stop_when_spent(ledger, args.budget_hours * 3600):
        tune(CURVE_COST, config_path, runs_dir=root / name, progress="quiet", fixed=fixed)
    search = search_from_ledger(ledger, args.epochs)
    search.wall = time.perf_counter() - start
    return search


# what --simulate can drive
SIMULATED = (
    "flagrun",
    "flagrun_percentile",
    "flagrun_stalled",
    "flagrun_reached",
    "flagrun_reached_stalled",
    "flagrun_none",
)


def simulate_flagrun(method: str, seed: int, root: Path, args: argparse.Namespace) -> Search:
    """The method's job as flagrun's tuner would run it, its processes and clock simulated.

    The sampler and pruner are the ones ``flagrun tune`` builds from the same YAML; the
    ``--slots`` trials run side by side in simulated time (the next epoch to end is the one
    reported, and judged at once), so no process starts, nothing sleeps and no decision
    comes late: a 5-h search takes seconds.
    """
    import heapq

    import optuna

    from flagrun import space
    from flagrun.pruners import make_pruner
    from flagrun.spec import load_spec

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = root / f"simulated-{method}-{seed}.yml"
    path.write_text(yaml.safe_dump(cost_config(seed, args.slots, early_stopping_of(method, args))))
    spec = load_spec(path)
    study = optuna.create_study(
        direction="maximize", sampler=space.make_sampler(spec), pruner=make_pruner(spec)
    )
    # (when its next epoch ends, trial number, that epoch, the trial, epoch seconds, curve)
    running: list[tuple[float, int, int, optuna.Trial, float, list[float]]] = []
    search, started = Search([], 0.0, 0), time.perf_counter()

    def start(now: float) -> None:
        trial = study.ask()
        values = space.suggest(trial, spec)
        seconds, curve = cost_of(values), val_acc_curve(values, args.epochs, seed)
        heapq.heappush(running, (now + seconds, trial.number, 1, trial, seconds, curve))
        search.trials += 1

    for _ in range(args.slots):
        start(0.0)
    while search.compute < args.budget_hours * 3600:
        now, number, epoch, trial, seconds, curve = heapq.heappop(running)
        search.compute += seconds
        trial.report(curve[epoch - 1], epoch)
        if epoch == args.epochs:
            study.tell(trial, curve[-1])
            search.completions.append((search.compute, curve[-1]))
            start(now)
        elif trial.should_prune():
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            start(now)
        else:
            heapq.heappush(running, (now + seconds, number, epoch + 1, trial, seconds, curve))
    search.wall = time.perf_counter() - started
    return search


@contextlib.contextmanager
def stop_when_spent(ledger: Path, budget: float) -> Iterator[None]:
    """SIGINT this process (the tuner stops as on Ctrl-C) once the ledger sums to ``budget``."""
    done, sent = threading.Event(), threading.Event()

    def watch() -> None:
        while not done.wait(0.05):
            if ledger_compute(ledger) >= budget:
                sent.set()
                os.kill(os.getpid(), signal.SIGINT)
                return

    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum: int, frame: Any) -> None:
        # Ours, sent just as the job ended, is dropped; a user's Ctrl-C is not.
        if not sent.is_set() and callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGINT, on_sigint)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()
        signal.signal(signal.SIGINT, previous)


def read_ledger(ledger: Path) -> list[tuple[float, int, int, float, float]]:
    """The ledger's (time, pid, epoch, seconds, val_acc) lines, in time order."""
    if not ledger.exists():
        return []
    rows = []
    for line in ledger.read_text().splitlines():
        fields = line.split()
        if len(fields) == 5:  # a line being written is left for the next read
            t, pid, epoch, seconds, value = fields
            rows.append((float(t), int(pid), int(epoch), float(seconds), float(value)))
    return sorted(rows)


def ledger_compute(ledger: Path) -> float:
    return sum(row[3] for row in read_ledger(ledger))


def search_from_ledger(ledger: Path, epochs: int) -> Search:
    spent, completions, pids = 0.0, [], set()
    for _, pid, epoch, seconds, value in read_ledger(ledger):
        spent += seconds
        pids.add(pid)
        if epoch == epochs:
            completions.append((spent, value))
    return Search(completions, spent, len(pids))


# -- the table ------------------------------------------------------------------------------


def quartiles(values: list[float]) -> tuple[float, float, float]:
    """Q1, median, Q3 (linear interpolation; inf, for "never", stays inf)."""
    ordered = sorted(values)

    def at(fraction: float) -> float:
        position = fraction * (len(ordered) - 1)
        low, high = ordered[math.floor(position)], ordered[math.ceil(position)]
        return low if low == high else low + (high - low) * (position - math.floor(position))

    return at(0.25), at(0.5), at(0.75)


def fmt_hours(seconds: float, budget: float) -> str:
    return f">{budget / 3600:g}" if math.isinf(seconds) else f"{seconds / 3600:.1f}"


def median_iqr(values: list[float], show: Callable[[float], str]) -> str:
    q1, q2, q3 = quartiles(values)
    return show(q2) if len(values) < 2 else f"{show(q2)} [{show(q1)}, {show(q3)}]"


def print_table(
    results: dict[str, list[Search]], skipped: dict[str, str], args: argparse.Namespace
) -> None:
    budget = args.budget_hours * 3600
    seeds = f"{args.first_seed}..{args.first_seed + args.seeds - 1}"
    print(
        f"compute to a good model on scripts/curve_cost.py (optimum {OPTIMUM}): "
        f"{args.budget_hours:g} h of simulated training per search, {args.epochs} epochs a "
        f"trial, seeds {seeds}; median [IQR] over seeds"
    )
    fractions = (0.25, 0.5, 1.0)
    columns = [f"hours to regret {t:g} (reached)" for t in args.targets]
    columns += [f"regret @{f * args.budget_hours:g} h" for f in fractions]
    print(f"{'method':<30} {'trials':>6} " + " ".join(f"{c:>28}" for c in columns))
    for method, runs in results.items():
        if not runs:
            print(f"{METHODS[method]:<30} not measured yet: {skipped[method]}")
            continue
        cells = []
        for target in args.targets:
            hours = [run.compute_to(OPTIMUM - target) for run in runs]
            reached = sum(not math.isinf(h) for h in hours)
            shown = median_iqr(hours, lambda s: fmt_hours(s, budget))
            cells.append(f"{shown} {reached}/{len(runs)}")
        cells += [
            median_iqr([run.regret_at(f * budget) for run in runs], lambda r: f"{r:.3f}")
            for f in fractions
        ]
        trials = statistics.median(run.trials for run in runs)
        print(f"{METHODS[method]:<30} {trials:>6.0f} " + " ".join(f"{c:>28}" for c in cells))
    flagrun = (
        "flagrun's jobs simulated (--simulate): its sampler and pruner, no processes"
        if args.simulate
        else f"flagrun polls every {args.poll:g} s"
    )
    print(
        f"time scale {args.time_scale:g} (real s per simulated s), {flagrun}, {args.slots} "
        f"slots; resource: time steps of {args.time_step:g} simulated s; trials: started "
        "(keras-tuner: rung runs)"
    )


def save(
    path: Path, results: dict[str, list[Search]], skipped: dict[str, str], args: argparse.Namespace
) -> None:
    """Every search's completions, as JSON, to re-read with other targets or budgets."""
    data = {
        "args": {k: v for k, v in vars(args).items() if k not in ("save", "load")},
        "results": {m: [dataclasses.asdict(run) for run in runs] for m, runs in results.items()},
        "skipped": skipped,
    }
    path.write_text(json.dumps(data, indent=1))


def load(path: Path, args: argparse.Namespace) -> tuple[dict[str, list[Search]], dict[str, str]]:
    """A saved run's results (and settings, but for the targets asked for now)."""
    data = json.loads(path.read_text())
    targets = args.targets
    vars(args).update(data["args"], targets=targets)
    results = {
        method: [
            Search(**{**run, "completions": [tuple(c) for c in run["completions"]]}) for run in runs
        ]
        for method, runs in data["results"].items()
    }
    skipped = {method: "skipped in the saved run" for method, runs in results.items() if not runs}
    skipped.update(data.get("skipped", {}))
    return results, skipped


# -- main ----------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="how many seeds")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--budget-hours", type=float, default=10.0, help="simulated, per search")
    parser.add_argument("--epochs", type=int, default=20, help="epochs of a full trial")
    parser.add_argument("--targets", default="0.1,0.05", help="regrets to reach, comma-separated")
    parser.add_argument("--save", type=Path, help="write every search's results here (JSON)")
    parser.add_argument("--load", type=Path, help="print the table of a --save file, run nothing")
    parser.add_argument("--time-scale", type=float, default=0.002, help="real s per simulated s")
    parser.add_argument("--poll", type=float, default=0.05, help="flagrun's metric poll, s")
    parser.add_argument(
        "--time-step",
        type=float,
        default=60.0,
        help="flagrun_time's step in simulated s (its YAML gets it times --time-scale)",
    )
    parser.add_argument("--slots", type=int, default=2, help="flagrun's parallel trials")
    parser.add_argument("--workers", type=int, default=4, help="processes for in-process methods")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"of {', '.join(METHODS)}")
    parser.add_argument(
        "--simulate",
        action="store_true",
        help=f"simulate flagrun's jobs in process (of {', '.join(SIMULATED)}; see the docstring)",
    )
    parser.add_argument("--quick", action="store_true", help="1 seed, 0.5 h budget, 5 epochs")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.budget_hours, args.epochs, args.time_scale = 1, 0.5, 5, 0.002
    args.methods = [name.strip() for name in args.methods.split(",")]
    args.targets = [float(target) for target in args.targets.split(",")]
    unknown = [name for name in args.methods if name not in METHODS]
    if unknown:
        parser.error(f"unknown method {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    cannot = [m for m in args.methods if m not in IN_PROCESS and m not in SIMULATED]
    if args.simulate and cannot:
        parser.error(f"--simulate cannot run {', '.join(cannot)}; it runs {', '.join(SIMULATED)}")
    if (
        "flagrun_timed" in args.methods
        and "flagrun" not in args.methods[: args.methods.index("flagrun_timed")]
    ):
        parser.error(
            "flagrun_timed takes its time limit from the flagrun row: list flagrun before it"
        )
    return args


def unavailable(methods: list[str], args: argparse.Namespace, root: Path) -> dict[str, str]:
    """The methods that cannot run here, and why."""
    skipped = {}
    for method in methods:
        module = NEEDS.get(method)
        if module and importlib.util.find_spec(module) is None:
            skipped[method] = f"{module} is not installed (pip install {PIP_NAME[method]})"
        elif method.startswith("flagrun") and (problem := rejected(method, args, root)):
            skipped[method] = f"this flagrun rejects its YAML: {problem}"
    return skipped


def main() -> None:
    args = parse_args()
    if args.load:
        print_table(*load(args.load, args), args)
        return
    budget = args.budget_hours * 3600
    results: dict[str, list[Search]] = {m: [] for m in args.methods}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        skipped = unavailable(args.methods, args, root)
        for method, why in skipped.items():
            print(f"{method}: left out: {why}", file=sys.stderr)
        runnable = [m for m in args.methods if m not in skipped]
        seeds = range(args.first_seed, args.first_seed + args.seeds)
        with concurrent.futures.ProcessPoolExecutor(args.workers) as pool:
            # flagrun's real jobs run here, one at a time; the rest go to the pool.
            jobs = [m for m in runnable if m not in IN_PROCESS and not args.simulate]
            futures = {
                (m, s): pool.submit(run_in_process, m, s, args.epochs, budget, args.time_scale)
                if m in IN_PROCESS
                else pool.submit(simulate_flagrun, m, s, root, args)
                for s in seeds
                for m in runnable
                if m not in jobs
            }
            for seed in seeds:
                walls: dict[str, float] = {}
                for method in jobs:
                    limit = TIMED_SLACK * walls["flagrun"] if method == "flagrun_timed" else None
                    search = run_flagrun(method, seed, root, args, limit)
                    walls[method] = search.wall
                    report(method, seed, search, args)
                    results[method].append(search)
            for (method, seed), future in futures.items():
                search = future.result()
                report(method, seed, search, args)
                results[method].append(search)
    print_table(results, skipped, args)
    if args.save:
        save(args.save, results, skipped, args)


def report(method: str, seed: int, search: Search, args: argparse.Namespace) -> None:
    print(
        f"seed {seed} {method:<13} trials {search.trials:>4} compute "
        f"{search.compute / 3600:5.2f} h regret {search.regret_at(args.budget_hours * 3600):.4f} "
        f"wall {search.wall:.0f} s",
        file=sys.stderr,
        flush=True,
    )


if __name__ == "__main__":
    main()
