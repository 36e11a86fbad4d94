"""`flagrun report [JOB|RUN]`: one self-contained HTML page of a job's trials or of a run."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("report", help="write a self-contained HTML report of a job or a run")
    parser.add_argument(
        "ref",
        nargs="?",
        metavar="JOB|RUN",
        help="a job id (default: the latest job), a run id or JOB/trials/N",
    )
    parser.add_argument(
        "-o", "--output", type=Path, metavar="FILE", help="default: report.html in its folder"
    )
    parser.add_argument("--open", action="store_true", help="open the page in a web browser")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="default: runs")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from flagrun.htmlreport import write_report

    path = write_report(args.ref, runs_dir=args.runs_dir, output=args.output)
    print(path)
    if args.open:
        import webbrowser

        webbrowser.open(path.resolve().as_uri())
    return 0
