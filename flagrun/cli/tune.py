"""`flagrun tune`: run a Cloud ML style tuning job (or resume one)."""

from __future__ import annotations

import argparse
from pathlib import Path

from flagrun.cli._options import add_shared_options, script_or_value
from flagrun.cli.check import add_trainer_options
from flagrun.errors import UsageError


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "tune",
        help="tune a script's flags from a Cloud ML tuning YAML",
        description="Run trials of SCRIPT with flag values chosen by Optuna, several at once.",
    )
    parser.add_argument("script", nargs="?", type=Path, help="training script (see YAML script:)")
    parser.add_argument("--config", type=Path, help="tuning YAML (Cloud ML or Vertex AI format)")
    add_trainer_options(parser)
    parser.add_argument(
        "--dry-run", action="store_true", help="check and show the job as flagrun check does"
    )
    parser.add_argument("--resume", metavar="JOB", help="continue a job (an id or 'latest')")
    parser.add_argument(
        "--grid",
        action="append",
        metavar="NAME=V1,V2",
        help="grid over flag values without a YAML (repeatable), like tfruns' tuning_run",
    )
    parser.add_argument("--sample", type=float, help="with --grid: run this fraction of the grid")
    parser.add_argument("--metric", help="metric tag (overrides hyperparameterMetricTag)")
    parser.add_argument("--goal", choices=["maximize", "minimize"], help="overrides goal")
    parser.add_argument(
        "--progress", choices=["auto", "live", "plain", "quiet"], default="auto", help="display"
    )
    parser.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="run each trial as a task on this Dask scheduler's workers, e.g. tcp://HOST:8786 "
        "(needs flagrun[dask]; default: $FLAGRUN_CLUSTER; a resumed job reconnects to the "
        "scheduler it last ran on; 'none': this machine)",
    )
    add_shared_options(parser, artifacts=True)
    parser.set_defaults(handler=run, takes_trainer_args=True)


def parse_grid(items: list[str] | None) -> dict[str, list[str]] | None:
    """``["dropout1=0.2,0.3", "units=64"]`` -> ``{"dropout1": ["0.2", "0.3"], "units": ["64"]}``."""
    if not items:
        return None
    grid: dict[str, list[str]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or not name or not values:
            raise UsageError(
                f"--grid {item!r} is not NAME=V1,V2,...", hint="e.g. --grid units=64,128"
            )
        grid[name.strip()] = [value.strip() for value in values.split(",")]
    return grid


def run(args: argparse.Namespace) -> int:
    from flagrun.cli.train import parse_values
    from flagrun.tuner import TuneRequest, check, tune

    script_or_value(args)
    options = dict(
        module=args.module,
        args=list(args.trainer_args),
        job_dir=args.job_dir,
        max_trials=args.max_trials,
        parallel=args.parallel,
        runs_dir=args.runs_dir,
        resume=args.resume,
        grid=parse_grid(args.grid),
        sample=args.sample,
        metric=args.metric,
        goal=args.goal,
        gpus=args.gpus,
        progress=args.progress,
        fixed=parse_values(args.values),
        storage=args.storage,
        study=args.study,
        artifacts=args.artifacts,
        cluster=args.cluster,
    )
    if args.dry_run:
        print(check(TuneRequest(script=args.script, config=args.config, **options)))
        return 0
    result = tune(args.script, args.config, **options)
    return result.exit_code
