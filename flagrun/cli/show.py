"""``flagrun show RUN``: one run's flags, metrics, status, timings and last output."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

TAIL_LINES = 15


def add_parser(subparsers: Any) -> None:
    """Register ``flagrun show``."""
    parser = subparsers.add_parser("show", help="show one run (id or 'latest')")
    parser.add_argument("run_ref", metavar="RUN", help="a run id, or latest")
    parser.add_argument("--runs-dir", default="runs", help="where runs are kept (default: runs)")
    parser.add_argument("--tags", action="store_true", help="list every scalar tag the run wrote")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the run."""
    from flagrun import display, store

    run_dir = store.resolve_run(Path(args.runs_dir), args.run_ref)
    if args.tags:
        from flagrun import metrics

        display.print_tags(metrics.read_scalars(run_dir))
        return 0
    record = store.read_run(run_dir)
    tail = tail_lines(run_dir / store.LOG_FILE, TAIL_LINES)
    display.print_run(store.ListedRun(record.id, run_dir, record), tail)
    return 0


def tail_lines(path: Path, count: int) -> list[str]:
    """The last ``count`` lines of a text file (empty when it is missing)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - 200 * count))
            text = handle.read().decode(errors="replace")
    except OSError:
        return []
    return text.splitlines()[-count:]
