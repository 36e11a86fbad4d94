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
