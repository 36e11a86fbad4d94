"""Fashion-MNIST wall-clock race: `flagrun tune` against the tools users reach for, same space.

Every tool tunes scripts/fashion_mnist/train.py over the search space of
scripts/fashion_mnist/tuning.yml for the same wall-clock budget, one after the other:

- flagrun: `flagrun tune` (Optuna TPE, early stopping on, maxParallelTrials 2, each trial
  held to cores/2 TensorFlow threads, maxRunningTime the budget), stopped with SIGINT at
  the deadline if it has not ended by then.
- hyperopt (the blog's tool): `hyperopt.fmin(algo=tpe.suggest)` in its sequential local
  mode, every evaluation running the same train.py as a subprocess with all the cores'
  threads; val_acc is read from the event files it writes, the loss is -val_acc (last
  epoch, as the YAML aggregates).
- optuna: a plain Optuna script with its defaults (TPESampler, MedianPruner, one trial at
  a time), each trial the same train.py subprocess with all the cores' threads, its
  epochs' val_acc reported to the pruner as they appear (what a Keras pruning callback
  does) and the trial stopped when the pruner says so.
- keras_tuner: keras-tuner's HyperbandOracle (factor 3, max epochs ``--epochs``), one
  trial at a time, each the same train.py for its rung's epochs. train.py keeps no
  checkpoint, so a promoted trial trains again from scratch where keras-tuner's own
  Hyperband would go on from the lower rung's weights. Left out, and said so, when
  keras-tuner is not installed (it is not a flagrun dependency).

Each tool keeps its own TPE defaults (Optuna: 10 random startup trials, constant liar;
hyperopt: 20). Every trial trains the same `--epochs` (keras-tuner: up to them) and gets the
same compute before it is cut: `--trial-timeout` seconds with all the cores, k times that on
1/k of them. A trial still running at the deadline is stopped and counts as interrupted for
every tool. Then each tool's best trial by validation accuracy (and its best as of half the
budget) is evaluated on the 10,000 test images with scripts/fashion_mnist/evaluate.py.
The table ends with where each tool's compute went: its trials' core-minutes, split into
trials at chance every epoch (diverged learning rates), giants cut before their first
epoch, and the others by how they ended.
With ``--seeds N`` every tool races N times (seeds --seed, --seed + 1, ...) and the table
shows medians over the seeds, and every seed's test accuracy.

Why 5 epochs: an average model of this space (8 layers of ~1,000 units) trains an epoch
of 50,000 images in about 30 s on one free core (8 x 1024, batch 64: 31 s of CPU), the
largest (16 x 1536, batch 16) in several minutes. 5 epochs make an average trial ~3 min
on one core, so each tool finishes about 10 trials in 15 minutes on 2 cores: just past
Optuna's 10 random startup trials, enough for the pruner (5 complete trials) to act.

Usage: python scripts/bench_fashion_race.py [--minutes 15] [--epochs 5] [--seed 1]
           [--seeds 1] [--tools flagrun,hyperopt,optuna,keras_tuner] [--out DIR]
       python scripts/bench_fashion_race.py --quick   # smoke run: 0.5 min per tool, 1,000
                                                      # images, 1 epoch, at most 2 layers
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import itertools
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "scripts" / "fashion_mnist"
TRAIN, EVALUATE, TUNING_YML = EXAMPLE / "train.py", EXAMPLE / "evaluate.py", EXAMPLE / "tuning.yml"
BLOG_TEST_ACCURACY = 0.853  # hyperopt TPE, 100 evaluations of 50 epochs (the blog series)
STOP_GRACE_SECONDS = 5.0
COMPLETE, PRUNED, FAILED, INTERRUPTED = "COMPLETE", "PRUNED", "FAILED", "INTERRUPTED"
THREAD_VARS = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")
AT_CHANCE = 0.2  # a trial whose val_acc never passed this learned nothing (chance: 0.1)


@dataclass(frozen=True)
class Race:
    """The rules both tools run under."""

    minutes: float
    epochs: int
    trial_timeout: float  # seconds a trial may take with all the cores to itself
    seed: int
    samples: int  # train.py's samples flag (0 = all 50,000 training images)
    max_layers: int | None  # caps num_layers (the smoke run only)
    cores: int
    parallel: int  # flagrun's maxParallelTrials
    stopping: dict[str, Any] | None = None  # flagrun's earlyStopping (None: the YAML's)

    @property
    def budget(self) -> float:
        return self.minutes * 60

    @property
    def flagrun_threads(self) -> int:
        return max(1, self.cores // self.parallel)

    def timeout_for(self, threads: int) -> float:
        """The trial timeout for a trial given ``threads`` cores: the same compute for all."""
        return self.trial_timeout * self.cores / threads

    def fixed_flags(self) -> dict[str, int]:
        fixed = {"epochs": self.epochs}
        if self.samples:
            fixed["samples"] = self.samples
        return fixed


@dataclass
class Trial:
    """One finished, stopped or failed trial of either tool."""

    number: int
    state: str
    flags: dict[str, Any]
    run_dir: Path
    val_acc: float | None
    epochs: int
    end: float  # seconds since the tool started
    core_seconds: float = 0.0  # its wall time times the cores it had
    peak: float | None = None  # its best val_acc at any epoch, whatever its state

    @property
    def spent_on(self) -> str:
        """What its compute went to: a trial at chance or one cut before its first epoch
        (giants), else its state."""
        if self.epochs == 0:
            return "no epoch"
        if self.peak is not None and self.peak <= AT_CHANCE:
            return "at chance"
        return self.state.lower()


@dataclass
class Arm:
    """What one tool did in its budget."""

    tool: str
    wall: float
    trials: list[Trial]
    note: str = ""
    test_acc: dict[str, float | None] = field(default_factory=dict)  # "best", "half"
    seed: int = 0

    def count(self, state: str) -> int:
        return sum(trial.state == state for trial in self.trials)

    def compute_shares(self) -> tuple[float, dict[str, float]]:
        """Its trials' core-seconds, and each kind's share of them (``Trial.spent_on``)."""
        total = sum(trial.core_seconds for trial in self.trials)
        shares: dict[str, float] = {}
        for trial in self.trials:
            shares[trial.spent_on] = shares.get(trial.spent_on, 0.0) + trial.core_seconds
        return total, {kind: spent / total for kind, spent in shares.items()} if total else {}

    def best(self, before: float = math.inf) -> Trial | None:
        """The complete trial with the highest val_acc among those finished by ``before``."""
        done = [t for t in self.trials if t.state == COMPLETE and t.end <= before]
        return max(done, key=lambda t: t.val_acc, default=None)


# --------------------------------------------------------------------------- shared helpers


def race_config(race: Race) -> dict[str, Any]:
    """tuning.yml with the race's rules: no trial cap, the timeouts, the seed, fail-tolerant."""
    config = yaml.safe_load(TUNING_YML.read_text())
    hp = config["trainingInput"]["hyperparameters"]
    hp.pop("script", None)  # the script is given on the command line
    hp.update(
        maxTrials=10_000,  # the clock is the budget
        maxParallelTrials=race.parallel,
        maxFailedTrials=10_000,  # a few timed-out giants must not end the job
        trialTimeout=race.timeout_for(race.flagrun_threads),
        maxRunningTime=race.budget,  # what hyperopt's and Optuna's timeout= are told
        seed=race.seed,
    )
    if race.stopping is not None:
        hp["earlyStopping"] = race.stopping
    if race.max_layers:
        layers = next(p for p in hp["params"] if p["parameterName"] == "num_layers")
        layers["maxValue"] = race.max_layers
    return config


def child_env(threads: int) -> dict[str, str]:
    """This environment without flagrun's own settings, TensorFlow held to ``threads``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLAGRUN_")}
    env.update({name: str(threads) for name in THREAD_VARS})
    env.update(TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    return env


def val_accuracy(run_dir: Path) -> list[float]:
    """The validation accuracy of every epoch in the run's event files."""
    return [value for _, value in val_acc_points(run_dir)]


def evaluate(run_dir: Path, cores: int) -> float | None:
    """Test accuracy of the run's model.keras, by evaluate.py."""
    done = subprocess.run(
        [sys.executable, str(EVALUATE), str(run_dir)],
        env=child_env(cores),
        capture_output=True,
        text=True,
        timeout=600,
    )
    found = re.search(r"Test accuracy: ([0-9.]+)", done.stdout)
    if done.returncode != 0 or not found:
        print(f"evaluate.py {run_dir} failed:\n{(done.stdout + done.stderr)[-2000:]}")
        return None
    return float(found.group(1))


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, SIGKILL it after the grace period."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, signum)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=STOP_GRACE_SECONDS)
            return
        except subprocess.TimeoutExpired:
            continue


# --------------------------------------------------------------------------- flagrun


def run_flagrun(race: Race, root: Path) -> Arm:
    """`flagrun tune` on the race YAML until it ends or the deadline's SIGINT stops it."""
    config_file = root / "race.yml"
    config_file.write_text(yaml.safe_dump(race_config(race), sort_keys=False))
    runs_dir = root / "runs"
    fixed = [f"{name}={value}" for name, value in race.fixed_flags().items()]
    cmd = [sys.executable, "-m", "flagrun", "tune", str(TRAIN), *fixed]
    cmd += ["--config", str(config_file), "--runs-dir", str(runs_dir), "--progress", "plain"]
    with open(root / "flagrun-tune.log", "wb") as log:
        started, started_at = time.monotonic(), time.time()
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=child_env(race.flagrun_threads), stdout=log, stderr=subprocess.STDOUT
        )
        try:
            proc.wait(timeout=race.budget)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)  # the job ends INTERRUPTED, finished trials stay
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        wall = time.monotonic() - started
    note = f"flagrun tune exit {proc.returncode}"
    if proc.returncode not in (0, 130):  # it did not run to the end or the deadline: say why
        print((root / "flagrun-tune.log").read_text(errors="replace")[-3000:])
    return Arm("flagrun", wall, flagrun_trials(runs_dir, started_at, race.flagrun_threads), note)


def flagrun_trials(runs_dir: Path, started_at: float, threads: int) -> list[Trial]:
    """The job's trials, read back through the library (`flagrun trials`); each ran on
    ``threads`` cores."""
    import flagrun
    from flagrun.tuner.loop import OUT_OF_TIME

    try:
        table = flagrun.trials(runs_dir=runs_dir)
    except flagrun.FlagrunError as exc:
        print(f"flagrun: no job to read: {exc.message}")
        return []
    trials = []
    for row in table.trials:
        run_dir = table.job_dir / row.run_dir
        state = row.state.value
        reason = row.reason or ""
        if state == FAILED and (reason.startswith("interrupted") or OUT_OF_TIME in reason):
            state = INTERRUPTED  # stopped at the deadline, by the race or by flagrun itself
        ended = datetime.fromisoformat(row.time or "").timestamp() - started_at
        value = row.objective_value if state == COMPLETE else None
        curve = val_accuracy(run_dir)
        core_seconds = (row.duration or 0.0) * threads
        peak = max(curve, default=None)
        flags = row.hyperparameters
        trials.append(
            Trial(row.trial_id, state, flags, run_dir, value, len(curve), ended, core_seconds, peak)
        )
    return sorted(trials, key=lambda trial: trial.number)


# --------------------------------------------------------------------------- hyperopt


def hyperopt_space(params: tuple[Any, ...]) -> dict[str, Any]:
    """The YAML's params as a hyperopt space, each the way the blog wrote its own."""
    from hyperopt import hp

    space = {}
    for p in params:
        if p.parent or p.scale == "UNIT_REVERSE_LOG_SCALE":
            raise SystemExit(f"{p.name}: no hyperopt equivalent written for this param here")
        log = p.scale == "UNIT_LOG_SCALE"
        if p.type == "CATEGORICAL":
            space[p.name] = hp.choice(p.name, list(p.categorical_values))
        elif p.type == "DISCRETE":
            space[p.name] = _discrete(p.name, list(p.discrete_values))
        elif p.type == "INTEGER" and not log:
            space[p.name] = hp.uniformint(p.name, p.min_value, p.max_value)
        elif p.type == "INTEGER":
            low, high = math.log(p.min_value), math.log(p.max_value)
            space[p.name] = hp.qloguniform(p.name, low, high, 1)
        elif log:
            space[p.name] = hp.loguniform(p.name, math.log(p.min_value), math.log(p.max_value))
        else:
            space[p.name] = hp.uniform(p.name, p.min_value, p.max_value)
    return space


def _discrete(name: str, values: list[float]) -> Any:
    """Evenly spaced values as an ordered quniform (the blog's dropout), others as a choice."""
    from hyperopt import hp

    steps = {round(b - a, 9) for a, b in itertools.pairwise(values)}
    if len(steps) == 1 and all(isinstance(v, float) for v in values):
        return hp.quniform(name, values[0], values[-1], steps.pop())
    return hp.choice(name, values)


def snap(flags: dict[str, Any], params: tuple[Any, ...]) -> dict[str, Any]:
    """hyperopt's draws as flag values: quniform floats onto the listed values, ints as ints."""
    out = dict(flags)
    for p in params:
        if p.type == "DISCRETE":
            out[p.name] = min(p.discrete_values, key=lambda v: abs(v - out[p.name]))
        elif p.type == "INTEGER":
            out[p.name] = int(round(out[p.name]))
    return out


def run_hyperopt(race: Race, root: Path) -> Arm:
    """hyperopt.fmin with TPE, sequential, every evaluation a train.py subprocess."""
    import numpy as np
    from hyperopt import STATUS_FAIL, STATUS_OK, Trials, fmin, tpe
    from hyperopt.exceptions import AllTrialsFailed

    from flagrun.spec import load_spec

    config_file = root / "race.yml"
    config_file.write_text(yaml.safe_dump(race_config(race), sort_keys=False))
    params = load_spec(config_file).params
    trials_dir = root / "trials"
    done: list[Trial] = []
    started = time.monotonic()

    def objective(drawn: dict[str, Any]) -> dict[str, Any]:
        flags = snap(drawn, params)
        trial = train_once(len(done) + 1, flags, trials_dir, race, started)
        done.append(trial)
        if trial.state == COMPLETE:
            return {"loss": -trial.val_acc, "status": STATUS_OK}
        return {"status": STATUS_FAIL}

    # hyperopt raises AllTrialsFailed even with return_argmin=False; the table says it.
    with contextlib.suppress(AllTrialsFailed):
        fmin(
            objective,
            hyperopt_space(params),
            algo=tpe.suggest,
            max_evals=10_000,
            timeout=race.budget,
            trials=Trials(),
            rstate=np.random.default_rng(race.seed),
            show_progressbar=False,
            return_argmin=False,
        )
    return Arm("hyperopt", time.monotonic() - started, done, "sequential, tpe.suggest")


def train_once(
    number: int,
    flags: dict[str, Any],
    trials_dir: Path,
    race: Race,
    started: float,
    prune: Callable[[int, float], bool] | None = None,
) -> Trial:
    """Run train.py once in its own folder, cut at the trial timeout or the deadline.

    With ``prune``, every new epoch's val_acc is given to it while the trial runs (read
    from the event files each second); the trial is stopped as PRUNED when it says so.
    """
    run_dir = trials_dir / str(number)
    run_dir.mkdir(parents=True)
    values = {**race.fixed_flags(), **flags}
    argv = [arg for name, value in values.items() for arg in (f"--{name}", str(value))]
    # flagrun's bootstrap only adds the Keras TensorBoard capture, as under `flagrun tune`.
    cmd = [sys.executable, "-m", "flagrun._bootstrap", str(TRAIN), *argv]
    env = {**child_env(race.cores), "FLAGRUN_RUN_DIR": str(run_dir)}
    left = race.budget - (time.monotonic() - started)
    timeout = race.timeout_for(race.cores)
    began = time.monotonic()
    with open(run_dir / "output.log", "wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=run_dir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        code, pruned = watch(proc, run_dir, max(0.0, min(timeout, left)), prune)
    core_seconds = (time.monotonic() - began) * race.cores
    curve = val_accuracy(run_dir)
    if pruned:
        state = PRUNED
    elif code is None:
        state = INTERRUPTED if left <= timeout else FAILED
    else:
        state = COMPLETE if code == 0 and curve else FAILED
    value = curve[-1] if state == COMPLETE else None
    end = time.monotonic() - started
    peak = max(curve, default=None)
    return Trial(number, state, flags, run_dir, value, len(curve), end, core_seconds, peak)


def watch(
    proc: subprocess.Popen[bytes],
    run_dir: Path,
    limit: float,
    prune: Callable[[int, float], bool] | None,
) -> tuple[int | None, bool]:
    """Wait for the trial for at most ``limit`` s: (its exit code or None when cut, pruned?)."""
    deadline, seen = time.monotonic() + limit, 0
    while True:
        try:
            return proc.wait(timeout=max(0.0, min(1.0, deadline - time.monotonic()))), False
        except subprocess.TimeoutExpired:
            pass
        if prune is not None:
            points = val_acc_points(run_dir)
            for step, value in points[seen:]:
                if prune(step, value):
                    stop_group(proc)
                    return None, True
            seen = len(points)
        if time.monotonic() >= deadline:
            stop_group(proc)
            return None, False


def val_acc_points(run_dir: Path) -> list[tuple[int, float]]:
    """The (epoch, val_acc) points the trial has written so far."""
    from flagrun import metrics

    scalars = metrics.read_scalars(run_dir)
    tag = metrics.find_tag("val_acc", scalars)
    return [(point.step, point.value) for point in scalars[tag]] if tag else []


# --------------------------------------------------------------------------- plain Optuna


def run_optuna(race: Race, root: Path) -> Arm:
    """A plain Optuna script with its defaults: TPESampler, MedianPruner, one trial at a
    time, every epoch's val_acc reported (as a Keras pruning callback would)."""
    import optuna
    from bench_compute import optuna_suggest

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    params = _params(race, root)
    done: list[Trial] = []
    started = time.monotonic()

    def objective(trial: optuna.Trial) -> float:
        def prune(step: int, value: float) -> bool:
            trial.report(value, step)
            return trial.should_prune()

        flags = optuna_suggest(trial, params)
        result = train_once(len(done) + 1, flags, root / "trials", race, started, prune)
        done.append(result)
        if result.state == PRUNED:
            raise optuna.TrialPruned()
        return result.val_acc if result.val_acc is not None else math.nan  # nan: FAILED

    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=race.seed)
    )  # the default pruner: MedianPruner
    study.optimize(objective, timeout=race.budget)
    return Arm("optuna", time.monotonic() - started, done, "sequential, TPE + MedianPruner")


# --------------------------------------------------------------------------- keras-tuner


def run_keras_tuner(race: Race, root: Path) -> Arm:
    """keras-tuner's HyperbandOracle, one trial at a time, each train.py for its rung's epochs.

    train.py cannot resume from a checkpoint, so a trial promoted to a higher rung trains
    from scratch (keras-tuner's own Hyperband would start from the lower rung's weights).
    """
    import keras_tuner
    from bench_compute import keras_tuner_space

    oracle = keras_tuner.oracles.HyperbandOracle(
        objective=keras_tuner.Objective("val_acc", "max"),
        max_epochs=race.epochs,
        factor=3,
        hyperband_iterations=10_000,  # the clock ends it
        seed=race.seed,
        hyperparameters=keras_tuner_space(_params(race, root)),
        max_consecutive_failed_trials=10_000,  # a few timed-out giants must not end it
    )
    oracle.verbose = 0
    oracle._set_project_dir(str(root / "keras-tuner"), "race")  # what keras_tuner.Tuner does
    done: list[Trial] = []
    started = time.monotonic()
    while time.monotonic() - started < race.budget:
        trial = oracle.create_trial("race")
        if trial.status != "RUNNING":  # STOPPED; IDLE cannot happen with one worker
            break
        values = trial.hyperparameters.values
        flags = {name: value for name, value in values.items() if not name.startswith("tuner/")}
        flags["epochs"] = values.get("tuner/epochs", race.epochs)
        result = train_once(len(done) + 1, flags, root / "trials", race, started)
        done.append(result)
        if result.state == COMPLETE:
            oracle.update_trial(trial.trial_id, {"val_acc": result.val_acc})
            trial.status = "COMPLETED"
        else:
            trial.status, trial.message = "FAILED", result.state.lower()
        oracle.end_trial(trial)
    return Arm("keras_tuner", time.monotonic() - started, done, "HyperbandOracle, factor 3")


def _params(race: Race, root: Path) -> tuple[Any, ...]:
    from flagrun.spec import load_spec

    config_file = root / "race.yml"
    config_file.write_text(yaml.safe_dump(race_config(race), sort_keys=False))
    return load_spec(config_file).params


# --------------------------------------------------------------------------- the table


def evaluate_bests(arm: Arm, race: Race) -> None:
    """Test accuracy of the arm's best trial, and of its best as of half the budget."""
    best, half = arm.best(), arm.best(before=race.budget / 2)
    arm.test_acc["best"] = evaluate(best.run_dir, race.cores) if best else None
    if half is best:
        arm.test_acc["half"] = arm.test_acc["best"]
    else:
        arm.test_acc["half"] = evaluate(half.run_dir, race.cores) if half else None


def print_table(arms: list[Arm], race: Race, seeds: list[int], skipped: dict[str, str]) -> None:
    """One row per tool: medians over the seeds (the trial counts too), TEST per seed."""
    print(
        f"\nFashion-MNIST race: {race.minutes:g} min per tool, {race.epochs} epochs per trial, "
        f"trial timeout {race.trial_timeout:g} s on {race.cores} cores "
        f"({race.timeout_for(race.flagrun_threads):g} s on flagrun's {race.flagrun_threads}), "
        f"seeds {', '.join(map(str, seeds))}"
        + (f", {race.samples} images" if race.samples else "")
        + (f", flagrun earlyStopping {race.stopping}" if race.stopping is not None else "")
        + ("; medians over seeds" if len(seeds) > 1 else "")
    )
    header = (
        f"{'tool':<12} {'trials C/P/F/I':>15} {'epochs':>7} {'best val acc':>13} "
        f"{'TEST acc':>9} {'TEST @1/2':>10} {'vs 0.853':>9} {'wall (s)':>9}  TEST per seed"
    )
    print(header)
    print("-" * len(header))
    for tool in dict.fromkeys(arm.tool for arm in arms):
        runs = [arm for arm in arms if arm.tool == tool]
        counts = "/".join(
            f"{_median([arm.count(s) for arm in runs]):g}"
            for s in (COMPLETE, PRUNED, FAILED, INTERRUPTED)
        )
        epochs = _median([sum(t.epochs for t in arm.trials) for arm in runs])
        best_val = _median([best.val_acc for arm in runs if (best := arm.best())])
        test = _median([arm.test_acc.get("best") for arm in runs])
        half = _median([arm.test_acc.get("half") for arm in runs])
        per_seed = " ".join(_fmt(arm.test_acc.get("best")) for arm in runs)
        print(
            f"{tool:<12} {counts:>15} {epochs or 0:>7g} {_fmt(best_val):>13} {_fmt(test):>9} "
            f"{_fmt(half):>10} "
            f"{_fmt(None if test is None else test - BLOG_TEST_ACCURACY, '+.4f'):>9} "
            f"{_median([arm.wall for arm in runs]) or 0:>9.1f}  {per_seed}"
        )
    for tool, why in skipped.items():
        print(f"{tool:<12} not run: {why}")
    print(
        "C/P/F/I: complete / pruned / failed or timed out / stopped at the deadline; epochs: "
        "all trials' epochs; TEST: the best val-acc trial on the 10,000 test images; "
        "TEST @1/2: the best trial finished by half the budget."
    )
    for arm in arms:
        best = arm.best()
        shown = f"trial {best.number} {best.flags}" if best else "none complete"
        print(f"{arm.tool} seed {arm.seed} best: {shown} ({arm.note})")
    print(
        "where the compute went (core-minutes of trials; at chance: val acc never above "
        f"{AT_CHANCE:g}; no epoch: cut before its first):"
    )
    for arm in arms:
        total, shares = arm.compute_shares()
        shown = ", ".join(f"{kind} {share:.0%}" for kind, share in sorted(shares.items()))
        print(f"{arm.tool} seed {arm.seed}: {total / 60:.1f} core-min: {shown or 'none'}")


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _fmt(value: float | None, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


# --------------------------------------------------------------------------- main


def parse_race() -> tuple[Race, list[int], list[str], Path | None]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=15.0, help="budget per tool")
    parser.add_argument("--epochs", type=int, default=5, help="epochs every trial trains")
    parser.add_argument(
        "--trial-timeout",
        type=float,
        help="seconds a trial may take with all the cores (default: a quarter of the budget; "
        "a trial on 1/k of the cores gets k times as long)",
    )
    parser.add_argument("--seed", type=int, default=1, help="the first seed")
    parser.add_argument("--seeds", type=int, default=1, help="races per tool, seeds from --seed")
    parser.add_argument("--tools", default=",".join(TOOLS), help=f"of {', '.join(TOOLS)}")
    parser.add_argument("--samples", type=int, default=0, help="train.py samples (0 = all)")
    parser.add_argument(
        "--stopping",
        type=yaml.safe_load,
        help="flagrun's earlyStopping as YAML, e.g. '{resource: time, timeStep: 10}' "
        "(default: tuning.yml's, flagrun's default pruner on epochs)",
    )
    parser.add_argument("--out", type=Path, help="keep the runs here (default: a temp dir)")
    parser.add_argument("--quick", action="store_true", help="the smoke run (see above)")
    args = parser.parse_args()
    tools = [name.strip() for name in args.tools.split(",")]
    unknown = [name for name in tools if name not in TOOLS]
    if unknown:
        parser.error(f"unknown tool {', '.join(unknown)}; choose from {', '.join(TOOLS)}")
    race = Race(
        minutes=args.minutes,
        epochs=args.epochs,
        trial_timeout=args.trial_timeout or args.minutes * 60 / 4,
        seed=args.seed,
        samples=args.samples,
        max_layers=None,
        cores=len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count() or 1,
        parallel=2,
        stopping=args.stopping,
    )
    if args.quick:
        race = replace(race, minutes=0.5, epochs=1, trial_timeout=20, samples=1000, max_layers=2)
    return race, list(range(args.seed, args.seed + args.seeds)), tools, args.out


def check_dataset() -> None:
    sys.path.insert(0, str(EXAMPLE))
    from data import DatasetNotFound, load_fashion_mnist

    try:
        load_fashion_mnist()
    except DatasetNotFound as error:
        raise SystemExit(f"bench_fashion_race: {error}") from None
    finally:
        sys.path.remove(str(EXAMPLE))


def run_race(race: Race, seeds: list[int], tools: list[str], root: Path) -> list[Arm]:
    """Every tool in turn, seed by seed, their bests evaluated on the test set, the table."""
    skipped = {
        tool: f"{TOOL_MODULES[tool]} is not installed (pip install {tool.replace('_', '-')})"
        for tool in tools
        if tool in TOOL_MODULES and importlib.util.find_spec(TOOL_MODULES[tool]) is None
    }
    arms = []
    for seed in seeds:
        for tool in [tool for tool in tools if tool not in skipped]:
            print(f"{tool} seed {seed}: tuning for {race.minutes:g} min ...", flush=True)
            folder = root / f"{tool}-{seed}"
            folder.mkdir(parents=True, exist_ok=True)
            arm = TOOLS[tool](replace(race, seed=seed), folder)
            arm.seed = seed
            print(f"{tool}: {len(arm.trials)} trials in {arm.wall:.1f} s ({arm.note})", flush=True)
            arms.append(arm)
    for arm in arms:
        evaluate_bests(arm, race)
    print_table(arms, race, seeds, skipped)
    return arms


def main() -> None:
    race, seeds, tools, out = parse_race()
    check_dataset()
    if out is None:
        with tempfile.TemporaryDirectory(prefix="fashion-race-") as tmp:
            arms = run_race(race, seeds, tools, Path(tmp))
    else:
        if out.exists() and any(out.iterdir()):
            sys.exit(f"bench_fashion_race: --out {out} is not empty: give a new folder")
        out.mkdir(parents=True, exist_ok=True)
        arms = run_race(race, seeds, tools, out.absolute())
        print(f"runs kept in {out}")
    problem = verdict(arms)
    if problem:
        sys.exit(f"bench_fashion_race: {problem}")


def verdict(arms: list[Arm]) -> str | None:
    """Why the race compared nothing, or None. A tool that finished no trial in its budget
    is a result (its row shows none); only a race where no tool finished one is not."""
    empty = sorted({arm.tool for arm in arms if arm.best() is None})
    if empty:
        print(f"no complete trial from {', '.join(empty)} in its budget")
    if all(arm.best() is None for arm in arms):
        return (
            "no tool finished a trial: nothing to compare "
            "(a busy machine? see the trials' output.log under --out DIR)"
        )
    return None


TOOLS: dict[str, Callable[[Race, Path], Arm]] = {
    "flagrun": run_flagrun,
    "hyperopt": run_hyperopt,
    "optuna": run_optuna,
    "keras_tuner": run_keras_tuner,
}
TOOL_MODULES = {"hyperopt": "hyperopt", "keras_tuner": "keras_tuner"}  # not flagrun's deps


if __name__ == "__main__":
    main()
