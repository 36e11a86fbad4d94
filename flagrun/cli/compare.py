"""`flagrun compare RUN_A RUN_B`: flags, metrics and source that differ (tfruns' compare_runs)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "compare", help="show the flags, metrics and source that differ between two runs"
    )
    parser.add_argument("run_a", metavar="RUN_A", help="a run id, 'latest' or JOB/trials/N")
    parser.add_argument("run_b", metavar="RUN_B")
    parser.add_argument("--html", type=Path, metavar="FILE", help="also write it as an HTML page")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="default: runs")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from flagrun._atomic import write_output
    from flagrun.compare import compare, to_html, to_text

    comparison = compare(args.runs_dir, args.run_a, args.run_b)
    print(to_text(comparison), end="")
    if args.html:
        write_output(args.html, to_html(comparison))
        print(f"written: {args.html}")
    return 0
