"""`flagrun tensorboard`: TensorBoard over jobs or runs, HParams dashboard included."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "tensorboard",
        help="start TensorBoard on 127.0.0.1 over jobs or runs and print its URL",
        description="Starts TensorBoard over the chosen jobs or runs (default: the latest job, "
        "else every run) and prints the URL; Ctrl-C stops it.",
    )
    parser.add_argument("refs", nargs="*", metavar="JOB|RUN", help="job or run ids, or 'latest'")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="default: runs")
    parser.add_argument("--port", type=int, default=0, help="default: any free port")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from flagrun.tensorboard import folders_for, serve

    return serve(folders_for(args.runs_dir, args.refs), port=args.port)
