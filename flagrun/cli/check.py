"""``flagrun check tuning.yml [SCRIPT]``: validate a tuning job and show it; start nothing."""

from __future__ import annotations

import argparse
from pathlib import Path

from flagrun.cli._options import script_or_value


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "check",
        help="validate a tuning file against its trainer and show the job, starting nothing",
        description="Check CONFIG and the trainer's arguments; print the search space, what "
        "is ignored locally and the first trials' command lines. Nothing is started.",
    )
    parser.add_argument("config", type=Path, help="tuning YAML (Cloud ML or Vertex AI)")
    parser.add_argument("script", nargs="?", type=Path, help="training script (see YAML script:)")
    add_trainer_options(parser)
    parser.set_defaults(handler=run, takes_trainer_args=True)


def add_trainer_options(parser: argparse.ArgumentParser) -> None:
    """What says which trainer runs and how: shared by tune and check."""
    parser.add_argument(
        "values", nargs="*", metavar="NAME=VALUE", help="flags every trial gets, not tuned"
    )
    parser.add_argument(
        "-m",
        "--module",
        metavar="MODULE",
        help="run the trainer as python -m MODULE from the folder holding its package "
        "(as Cloud ML's pythonModule, e.g. trainer.task)",
    )
    parser.add_argument(
        "--job-dir", metavar="DIR", help="--job-dir every trial gets (over the file's jobDir)"
    )
    parser.add_argument("--max-trials", type=int, help="override maxTrials")
    parser.add_argument(
        "--parallel",
        type=int,
        help="override maxParallelTrials (by default at most the cores, or --gpus, here)",
    )
    parser.add_argument(
        "--gpus", help="GPU indices for trials, e.g. 0,1 (default: all nvidia-smi lists; 'none')"
    )
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="default: runs")


def run(args: argparse.Namespace) -> int:
    from flagrun.cli.train import parse_values
    from flagrun.tuner import TuneRequest, check

    script_or_value(args)
    request = TuneRequest(
        script=args.script,
        config=args.config,
        module=args.module,
        args=list(args.trainer_args),
        job_dir=args.job_dir,
        max_trials=args.max_trials,
        parallel=args.parallel,
        gpus=args.gpus,
        runs_dir=args.runs_dir,
        fixed=parse_values(args.values),
    )
    print(check(request))
    return 0
