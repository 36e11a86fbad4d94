"""``flagrun logs RUN [--follow]``: print a run's output.log."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

FOLLOW_POLL_SECONDS = 0.2


def add_parser(subparsers: Any) -> None:
    """Register ``flagrun logs``."""
    parser = subparsers.add_parser("logs", help="print a run's output (id or 'latest')")
    parser.add_argument("run_ref", metavar="RUN", help="a run id, or latest")
    parser.add_argument("--runs-dir", default="runs", help="where runs are kept (default: runs)")
    parser.add_argument(
        "-f", "--follow", action="store_true", help="keep printing until the run ends"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Copy the log to stdout; with --follow, until the run is no longer RUNNING."""
    from flagrun import store

    run_dir = store.resolve_run(Path(args.runs_dir), args.run_ref)
    log_path = run_dir / store.LOG_FILE
    position = 0
    while True:
        running = args.follow and _running(run_dir)
        position = _copy_from(log_path, position)
        if not running:
            return 0
        time.sleep(FOLLOW_POLL_SECONDS)


def _copy_from(path: Path, position: int) -> int:
    """Write ``path`` from byte ``position`` to stdout; return the new position."""
    try:
        with open(path, "rb") as handle:
            handle.seek(position)
            data = handle.read()
    except FileNotFoundError:
        return position
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
    return position + len(data)


def _running(run_dir: Path) -> bool:
    from flagrun import store
    from flagrun.errors import StoreError
    from flagrun.records import RunStatus

    try:
        return store.effective_status(store.read_run(run_dir)) == RunStatus.RUNNING
    except StoreError:
        return False
