"""The ``flagrun`` command: a thin argparse layer over the library.

Each subcommand lives in ``flagrun/cli/<name>.py`` and defines
``add_parser(subparsers)`` and ``run(args) -> int``. Command modules import
the library lazily inside ``run`` so that ``flagrun --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from flagrun.errors import FlagrunError, from_os_error

COMMANDS = (
    "train",
    "runs",
    "show",
    "logs",
    "tune",
    "check",
    "trials",
    "collect",
    "jobs",
    "tensorboard",
    "compare",
    "report",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flagrun",
        description="Run training scripts with flags, isolated and recorded; tune them.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"flagrun.cli.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    # Everything after `--` is the trainer's: argparse would take it for positionals.
    trainer_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, trainer_args = argv[:cut], argv[cut + 1 :]
    args, extra = parser.parse_known_args(argv)
    args.trainer_args = trainer_args
    if trainer_args and not getattr(args, "takes_trainer_args", False):
        parser.error("arguments after -- go to the trainer: only train, tune and check take them")
    if extra:
        # NAME=VALUE items after options (`train s.py --runs-dir X a=1`) land here.
        if hasattr(args, "values") and all("=" in item and item[0] != "-" for item in extra):
            args.values = [*(args.values or []), *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.version:
        from importlib.metadata import version

        print(f"flagrun {version('flagrun')}")
        return 0
    if not args.command:
        parser.print_help()
        return 2
    from flagrun import _interrupt

    try:
        with _interrupt.sigterm_as_interrupt():  # what cleans up after Ctrl-C does after SIGTERM
            return int(args.handler(args) or 0)
    except FlagrunError as exc:
        print(f"flagrun {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # a full disk, a read-only folder, a path that is not a folder...
        print(f"flagrun {args.command}: error: {from_os_error(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM
        print(f"flagrun {args.command}: interrupted ({_interrupt.what(exc)})", file=sys.stderr)
        return _interrupt.exit_status(exc)
