"""Which embedded Optuna storage for a job: the journal file or SQLite?

Replays the tuner's storage traffic for N trials (ask, two suggestions, three
user attributes, tell, and the trial count the tuner reads after each trial)
against Optuna's JournalFileBackend and an SQLite RDBStorage, side by side in
one run, and prints the time per trial, the time to reopen the study (what
`--resume` pays) and the file size.

Usage: python scripts/bench_storage.py [--trials 300]   |   --quick (20 trials)
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import optuna


def journal(folder: Path) -> optuna.storages.BaseStorage:
    backend = optuna.storages.journal.JournalFileBackend(str(folder / "study.journal"))
    return optuna.storages.JournalStorage(backend)


def sqlite(folder: Path) -> optuna.storages.BaseStorage:
    return optuna.storages.RDBStorage(f"sqlite:///{folder / 'study.db'}")


def tuner_traffic(storage: optuna.storages.BaseStorage, trials: int) -> float:
    """Seconds per trial for the storage calls the tuner makes."""
    study = optuna.create_study(
        storage=storage,
        study_name="bench",
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=1),
    )
    start = time.perf_counter()
    for _ in range(trials):
        trial = study.ask()
        x = trial.suggest_float("x", 0.0, 1.0)
        units = trial.suggest_int("units", 16, 512, log=True)
        trial.set_user_attr("trialId", trial.number + 1)
        trial.set_user_attr("flags", {"x": x, "units": units})
        trial.set_user_attr("runDir", f"trials/{trial.number + 1}")
        study.tell(trial, x * units)
        study.get_trials(deepcopy=False)
    return (time.perf_counter() - start) / trials


def reopen(make: Callable[[Path], optuna.storages.BaseStorage], folder: Path) -> float:
    start = time.perf_counter()
    study = optuna.load_study(study_name="bench", storage=make(folder))
    study.get_trials(deepcopy=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="20 trials")
    args = parser.parse_args()
    trials = 20 if args.quick else args.trials
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore")

    rows = []
    for name, make in (("journal file", journal), ("sqlite", sqlite)):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            per_trial = tuner_traffic(make(folder), trials)
            reopened = reopen(make, folder)
            size = sum(path.stat().st_size for path in folder.iterdir())
            rows.append((name, per_trial, reopened, size))

    print(f"Optuna storage, the tuner's traffic for {trials} trials (one writer)")
    print(f"{'storage':<14} {'ms per trial':>13} {'reopen ms':>10} {'file KiB':>9}")
    for name, per_trial, reopened, size in rows:
        print(f"{name:<14} {per_trial * 1e3:>13.2f} {reopened * 1e3:>10.1f} {size / 1024:>9.1f}")
    journal_row, sqlite_row = rows
    print(f"sqlite / journal time per trial: {sqlite_row[1] / journal_row[1]:.1f}x")


if __name__ == "__main__":
    main()
