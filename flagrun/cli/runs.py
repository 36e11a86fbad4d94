"""``flagrun runs``: list the runs, newest first."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_parser(subparsers: Any) -> None:
    """Register ``flagrun runs``."""
    parser = subparsers.add_parser("runs", help="list runs, newest first")
    parser.add_argument("--runs-dir", default="runs", help="where runs are kept (default: runs)")
    parser.add_argument("--limit", type=int, default=20, metavar="N", help="show N runs (0: all)")
    parser.add_argument("--format", choices=("table", "json", "csv"), default="table")
    parser.add_argument("--trials", action="store_true", help="include tuning trials")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the runs as a table, JSON or CSV."""
    from flagrun import display, store

    damaged: list = []
    runs = store.list_runs(args.runs_dir, include_trials=args.trials, damaged=damaged)
    for error in damaged:
        print(f"flagrun runs: skipped: {error.message}", file=sys.stderr)
    if args.limit > 0:
        runs = runs[: args.limit]
    if args.format == "json":
        display.print_json([run.to_dict() for run in runs])
    elif args.format == "csv":
        display.print_csv(runs)
    else:
        display.print_runs(runs)
    return 0
