"""`flagrun collect`: copy the best, all or chosen trials (cloudml's job_collect)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flagrun.cli._options import add_shared_options
from flagrun.errors import UsageError


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "collect",
        help="copy a job's best (or all, or chosen) trials and write best_flags.yml",
        description="Copies trial run folders into DEST (default: collected/<job-id>) "
        "and writes DEST/best_flags.yml for `flagrun train SCRIPT --flags best_flags.yml`.",
    )
    parser.add_argument("job", nargs="?", help="job id (default: latest)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--best", action="store_true", help="the best trial (default)")
    which.add_argument("--all", action="store_true", help="every trial")
    which.add_argument("--trials", metavar="N,M", help="these trial ids")
    parser.add_argument("--dest", type=Path, help="where to copy (default: collected/<job-id>)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="default: runs")
    add_shared_options(parser, artifacts=True)
    parser.set_defaults(handler=run)


def parse_ids(text: str) -> list[int]:
    try:
        return [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise UsageError(
            f"--trials {text!r} is not a list of trial ids", hint="e.g. --trials 3,7"
        ) from None


def run(args: argparse.Namespace) -> int:
    from flagrun.collect import collect

    which: str | list[int] = (
        "all" if args.all else parse_ids(args.trials) if args.trials else "best"
    )
    done = collect(
        args.job,
        which=which,
        dest=args.dest,
        runs_dir=args.runs_dir,
        storage=args.storage,
        study=args.study,
        artifacts=args.artifacts,
    )
    for note in done.notes:
        print(f"note: {note}", file=sys.stderr)
    for skipped in done.skipped:
        print(f"skipped {skipped}", file=sys.stderr)
    trials = ", ".join(str(trial_id) for trial_id in done.trial_ids) or "none"
    print(f"collected trial(s) {trials} of job {done.job} into {done.dest}")
    if done.best_flags_file:
        print(f"best flags: {done.best_flags_file}")
    return 0
