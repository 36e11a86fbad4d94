"""`flagrun trials`: a job's trials, best first (cloudml's job_trials)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flagrun.cli._options import add_shared_options


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("trials", help="list a job's trials, best first")
    parser.add_argument("job", nargs="?", help="job id (default: latest)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="default: runs")
    parser.add_argument("--format", choices=["table", "json", "csv"], default="table")
    add_shared_options(parser, artifacts=False)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from flagrun.collect import trials
    from flagrun.display import print_json, print_records

    table = trials(args.job, runs_dir=args.runs_dir, storage=args.storage, study=args.study)
    for note in table.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.format == "json":
        print_json(table.to_dict())
        return 0
    columns = ["finalMetric.objectiveValue", "finalMetric.trainingStep"]
    columns += [f"hyperparameters.{name}" for name in table.params]
    columns += ["trialId", "state", "duration"]
    resumed = any(row.resumed_from is not None for row in table.trials)
    if resumed:  # the column shows only in jobs where a trial continued another's checkpoint
        columns.append("resumedFrom")
    rows = []
    for row in table.trials:
        flags = row.hyperparameters
        duration = None if row.duration is None else round(row.duration, 1)
        rows.append(
            [row.objective_value, row.training_step]
            + [flags.get(name) for name in table.params]
            + [row.trial_id, row.state.value, duration]
            + ([row.resumed_from] if resumed else [])
        )
    title = (
        f"job {table.job} ({table.state}): {table.goal} {table.metric}, "
        f"{len(table.trials)}/{table.max_trials} trials"
    )
    print_records(columns, rows, fmt=args.format, title=title)
    return 0
