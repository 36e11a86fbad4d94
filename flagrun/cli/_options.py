"""Options several commands share."""

from __future__ import annotations

import argparse


def add_shared_options(parser: argparse.ArgumentParser, *, artifacts: bool) -> None:
    """--storage/--study (and --artifacts): a study shared by workers on several machines."""
    parser.add_argument(
        "--storage",
        metavar="URL",
        help="database shared by workers, e.g. postgresql://USER@HOST/DB "
        "(default: $FLAGRUN_STORAGE, else a file inside the job folder)",
    )
    parser.add_argument("--study", metavar="NAME", help="the shared study's name")
    if artifacts:
        parser.add_argument(
            "--artifacts",
            metavar="PATH|URL",
            help="where trials' folders are uploaded for every machine to collect: a shared "
            "folder or s3://BUCKET/PREFIX (default: $FLAGRUN_ARTIFACTS, else the study's)",
        )


def script_or_value(args: argparse.Namespace) -> None:
    """``tune --config t.yml a=1``: the first NAME=VALUE lands in SCRIPT's place; put it
    back among the values (a script file of that name wins)."""
    if args.script is not None and "=" in args.script.name and not args.script.exists():
        args.values.insert(0, str(args.script))
        args.script = None
