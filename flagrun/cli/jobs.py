"""`flagrun jobs`: tuning jobs with state, trials done and best value."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("jobs", help="list tuning jobs, newest first")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="default: runs")
    parser.add_argument("--format", choices=["table", "json", "csv"], default="table")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from flagrun.collect import jobs
    from flagrun.display import print_json, print_records

    damaged: list = []
    listing = jobs(args.runs_dir, damaged)
    for error in damaged:
        print(f"flagrun jobs: skipped: {error.message}", file=sys.stderr)
    if args.format == "json":
        print_json(listing)
        return 0
    columns = ["job", "state", "script", "metric", "goal", "done", "maxTrials", "best", "bestTrial"]
    rows = [[job[column] for column in columns] for job in listing]
    print_records(columns, rows, fmt=args.format, title=f"tuning jobs in {args.runs_dir}")
    return 0
