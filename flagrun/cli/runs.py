"""``flagrun runs``: list the runs, newest first."""

from __future__ import annotations

import argparse
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

    records = store.list_runs(args.runs_dir, include_trials=args.trials)
    if args.limit > 0:
        records = records[: args.limit]
    for record in records:
        record["status"] = store.effective_status(record)
    if args.format == "json":
        display.print_json(records)
    elif args.format == "csv":
        display.print_csv(records)
    else:
        display.print_runs(records)
    return 0
