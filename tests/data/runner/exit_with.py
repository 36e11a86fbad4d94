"""Fixture: exit with the code given as --code=N, or raise with --raise=MESSAGE."""

import sys

args = dict(arg[2:].split("=", 1) for arg in sys.argv[1:])
if "raise" in args:
    raise ValueError(args["raise"])
print("exiting with", args.get("code", "0"), file=sys.stderr)
sys.exit(int(args.get("code", "0")))
