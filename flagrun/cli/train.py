"""``flagrun train SCRIPT [NAME=VALUE ...]``: run a script once, isolated and recorded."""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any


def add_parser(subparsers: Any) -> None:
    """Register ``flagrun train``."""
    parser = subparsers.add_parser(
        "train",
        help="run a training script once, recorded under runs/",
        description="Run SCRIPT once in a new run folder, with flags given as NAME=VALUE.",
    )
    parser.add_argument(
        "script", help="the training script (a .py file; one in a package runs as python -m)"
    )
    parser.add_argument("values", nargs="*", metavar="NAME=VALUE", help="flag values")
    parser.add_argument("--flags", metavar="FILE.yml", help="read flag values from a YAML file")
    parser.add_argument("--runs-dir", default="runs", help="where runs are kept (default: runs)")
    parser.add_argument("--timeout", type=float, metavar="SECONDS", help="stop the run after this")
    parser.add_argument("--label", help="a note stored with the run")
    parser.set_defaults(handler=run, takes_trainer_args=True)


def parse_values(items: list[str]) -> dict[str, str]:
    """``["a=1", "b=-2"]`` -> ``{"a": "1", "b": "-2"}``; UsageError for an item without ``=``."""
    from flagrun.errors import UsageError

    values = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip().removeprefix("--")
        if not sep or not name:
            raise UsageError(f"{item!r} is not NAME=VALUE", hint="write flags like dropout=0.3")
        values[name] = value
    return values


def run(args: argparse.Namespace) -> int:
    """Run the script; the exit status is the script's (128+signal when killed)."""
    from flagrun import training

    result = training.train(
        args.script,
        parse_values(args.values),
        flags_file=args.flags,
        runs_dir=args.runs_dir,
        timeout=args.timeout,
        label=args.label,
        args=list(args.trainer_args),
    )
    if result.status == "FAILED" and result.reason:
        print(f"flagrun: run {result.run_dir.name} failed: {result.reason}", file=sys.stderr)
    return exit_status(result)


def exit_status(result: Any) -> int:
    """The shell exit status for a RunResult."""
    if result.signal:
        try:
            return 128 + int(signal.Signals[result.signal])
        except KeyError:
            return 1
    if result.exit_code:
        return int(result.exit_code)
    from flagrun.records import RunStatus

    return 0 if result.status == RunStatus.COMPLETED else 1
